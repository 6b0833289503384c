"""U²-Net and U²-Netp (Qin et al., "U²-Net: Going Deeper with Nested U-Structure for Salient Object
Detection", 2020) as PyTorch modules, and their pretrained weights ported from the pinned ONNX files.

The network is a U-Net of residual U-blocks (RSU): an RSU-L block is itself a small U-Net of depth L
whose output is added to its input convolution. The encoder runs RSU-7, 6, 5, 4 and two dilated
RSU-4F blocks (no pooling: dilations 1, 2, 4, 8); the decoder mirrors it; every decoder stage gives a
side output (3×3 conv to one channel, upsampled to the input size) and a 1×1 conv fuses the six.
Every output goes through a sigmoid. U²-Netp is the same graph with 16 channels inside every block.

The published ONNX files have BatchNorm folded into the convolutions, so here a conv with bias
stands where the paper has conv + BN; :func:`port_onnx_weights` copies the files' Conv weights in
graph order, which is this module's execution order (checked shape by shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class ConvRelu(nn.Module):
    """3×3 conv (BatchNorm folded into its bias) + ReLU; ``dilation`` keeps the size."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


def upsample_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear, half-pixel centres: what the published graphs do (ONNX Resize, pytorch_half_pixel)."""
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


def pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


class RSU(nn.Module):
    """Residual U-block of ``depth`` levels (RSU-7 … RSU-4). With ``dilated`` (RSU-4F) the levels keep
    the resolution and widen their dilation (1, 2, 4, 8) instead of pooling."""

    def __init__(self, depth: int, in_channels: int, mid_channels: int, out_channels: int, dilated: bool = False):
        super().__init__()
        self.dilated = dilated
        dilations = [2**level for level in range(depth)] if dilated else [1] * (depth - 1) + [2]
        self.input = ConvRelu(in_channels, out_channels)
        self.encoder = nn.ModuleList(
            ConvRelu(out_channels if level == 0 else mid_channels, mid_channels, dilations[level]) for level in range(depth)
        )
        self.decoder = nn.ModuleList(
            ConvRelu(2 * mid_channels, out_channels if level == 0 else mid_channels, dilations[level])
            for level in reversed(range(depth - 1))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.input(x)
        skips, hx = [], residual
        for level, conv in enumerate(self.encoder):
            if level and not self.dilated and level < len(self.encoder) - 1:
                hx = pool(hx)
            hx = conv(hx)
            skips.append(hx)
        hx = skips.pop()  # the deepest level ran at the resolution of the one above it
        for index, conv in enumerate(self.decoder):
            skip = skips.pop()
            hx = conv(torch.cat((hx if self.dilated or index == 0 else upsample_like(hx, skip), skip), 1))
        return hx + residual


#: The size the published weights expect (rembg's): inputs are resized to it.
INPUT_SIZE = 320


@dataclass(frozen=True)
class U2NetConfig:
    #: (depth, in, mid, out, dilated) for encoder stages 1–6, then decoder stages 5d–1d.
    encoder: tuple[tuple[int, int, int, int, bool], ...]
    decoder: tuple[tuple[int, int, int, int, bool], ...]


CONFIGS = {
    "u2net": U2NetConfig(
        encoder=((7, 3, 32, 64, False), (6, 64, 32, 128, False), (5, 128, 64, 256, False), (4, 256, 128, 512, False),
                 (4, 512, 256, 512, True), (4, 512, 256, 512, True)),
        decoder=((4, 1024, 256, 512, True), (4, 1024, 128, 256, False), (5, 512, 64, 128, False), (6, 256, 32, 64, False),
                 (7, 128, 16, 64, False)),
    ),
    "u2netp": U2NetConfig(
        encoder=((7, 3, 16, 64, False), (6, 64, 16, 64, False), (5, 64, 16, 64, False), (4, 64, 16, 64, False),
                 (4, 64, 16, 64, True), (4, 64, 16, 64, True)),
        decoder=((4, 128, 16, 64, True), (4, 128, 16, 64, False), (5, 128, 16, 64, False), (6, 128, 16, 64, False),
                 (7, 128, 16, 64, False)),
    ),
}


class U2Net(nn.Module):
    """``forward`` returns the fused matte N×1×H×W in [0, 1]; ``side_outputs`` also the six side mattes."""

    def __init__(self, name: str = "u2netp"):
        super().__init__()
        config = CONFIGS[name]
        self.name = name
        #: sha256 of the published file the weights were ported from (set by load_pretrained).
        self.source_sha256: str | None = None
        #: How the ported weights were fine-tuned since (cvunet.train), e.g. "500 steps on data/"; None if not.
        self.fine_tuned: str | None = None
        self.encoder = nn.ModuleList(RSU(*stage) for stage in config.encoder)
        self.decoder = nn.ModuleList(RSU(*stage) for stage in config.decoder)
        side_channels = [stage[3] for stage in reversed(config.decoder)] + [config.encoder[-1][3]]
        self.side = nn.ModuleList(nn.Conv2d(channels, 1, 3, padding=1) for channels in side_channels)
        self.fuse = nn.Conv2d(len(side_channels), 1, 1)

    def logits(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The fused output and side 1 (finest) … side 6 before the sigmoid, each N×1×H×W."""
        skips, hx = [], x
        for index, stage in enumerate(self.encoder):
            hx = stage(pool(hx) if index else hx)
            skips.append(hx)
        decoded = [skips.pop()]  # stage 6, then decoder 5d … 1d
        for stage in self.decoder:
            skip = skips.pop()
            decoded.append(stage(torch.cat((upsample_like(decoded[-1], skip), skip), 1)))
        features = list(reversed(decoded))  # 1d (finest) … 5d, then stage 6
        sides = [conv(feature) for conv, feature in zip(self.side, features)]
        sides = [sides[0]] + [upsample_like(side, sides[0]) for side in sides[1:]]
        return self.fuse(torch.cat(sides, 1)), sides

    def side_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[fused, side 1 … side 6] after the sigmoid: the published graph's seven outputs."""
        fused, sides = self.logits(x)
        return [torch.sigmoid(output) for output in (fused, *sides)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x)[0])


def port_onnx_weights(model: U2Net, onnx_path: str | Path) -> U2Net:
    """Copy the published file's Conv weights and biases into ``model`` in graph order, checking shapes.

    The ONNX graph lists its convolutions in the order the original forward ran them; the modules'
    order is recorded by running this model once on a small input.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    onnx_convs = [node for node in graph.node if node.op_type == "Conv"]
    executed: list[nn.Conv2d] = []
    hooks = [module.register_forward_hook(lambda module, inputs, output: executed.append(module))
             for module in model.modules() if isinstance(module, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
    finally:
        for hook in hooks:
            hook.remove()
    if len(executed) != len(onnx_convs):
        raise ValueError(f"{onnx_path} has {len(onnx_convs)} convolutions, {model.name} runs {len(executed)}")
    with torch.no_grad():
        for index, (module, node) in enumerate(zip(executed, onnx_convs)):
            weight, bias = (torch.from_numpy(numpy_helper.to_array(initializers[name]).copy()) for name in node.input[1:3])
            if weight.shape != module.weight.shape or bias.shape != module.bias.shape:
                raise ValueError(f"convolution {index} of {onnx_path}: {tuple(weight.shape)} does not fit "
                                 f"{model.name}'s {tuple(module.weight.shape)}")
            module.weight.copy_(weight)
            module.bias.copy_(bias)
    return model.eval()


def save_pretrained(model: U2Net, path: Path, source_sha256: str, **metadata) -> Path:
    """The port (or a fine-tuned port, with cvunet.train's ``metadata``) as a checkpoint that records
    which published file it came from (written atomically)."""
    from cvunet.model import atomic_torch_save

    state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    atomic_torch_save(Path(path), {"network": model.name, "source_sha256": source_sha256, "state_dict": state_dict,
                                   "metadata": metadata})
    return Path(path)


def load_pretrained(path: Path, expected_source: str | None = None) -> U2Net:
    """A ported checkpoint as an eval-mode module; ValueError if it is not one, or came from another file."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a foreign or damaged file
        raise ValueError(f"{path} is not a ported U²-Net checkpoint: {exc}") from None
    if expected_source and isinstance(saved, dict) and saved.get("source_sha256") != expected_source:
        raise ValueError(f"{path} was ported from {saved.get('source_sha256')}, not {expected_source}")
    return u2net_from_payload(saved, path)


def u2net_from_payload(saved: object, path: str | Path) -> U2Net:
    """The eval-mode module of a ported (or fine-tuned) checkpoint's loaded payload."""
    try:
        model = U2Net(saved["network"])
        model.load_state_dict(saved["state_dict"])
    except Exception as exc:  # noqa: BLE001 - a foreign payload fails in many ways
        raise ValueError(f"{path} is not a ported U²-Net checkpoint: {exc!r}") from None
    model.source_sha256 = saved.get("source_sha256")
    model.fine_tuned = saved.get("metadata", {}).get("fine_tuned")
    return model.eval()
