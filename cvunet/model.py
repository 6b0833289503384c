"""CV-UNet: the matting network (U-Net with ASPP, attention-gated skips and residual dense blocks).

Input convention (every entry point must feed the network this way):

* channels 0-2: RGB scaled to [0, 1], then ImageNet-normalised per channel with
  mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225);
* channel 3 (only when ``in_channels == 4``, the refiner role): the coarse alpha mask in [0, 1],
  not normalised.

Height and width must be multiples of 32. The output is the alpha matte, N x 1 x H x W in [0, 1].
A refiner predicts a correction to its coarse mask: its head's output is added to the mask's logit
before the sigmoid, and the head starts at zero, so an untrained refiner returns the coarse mask and
training only has to learn where the coarse network was wrong.

Layout: five encoder levels at strides 1, 2, 4, 8 and 16 feed five attention-gated skip connections;
the deepest level is pooled once more (stride 32) into the ASPP bottleneck, and five decoder stages
climb back to full resolution. Levels from ``rdb_from_level`` down use a residual dense block
instead of the plain conv-BN-ReLU pair, so the extra capacity sits where the receptive field is large.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from matting.files import sibling_temp_path

CHECKPOINT_FORMAT = "cvunet-checkpoint-v1"
SIZE_MULTIPLE = 32
NUM_LEVELS = 5
COARSE_EPS = 1e-3
"""A refiner reads its coarse mask as a logit, clamped to ±6.9 so certain pixels stay correctable."""


@dataclass(frozen=True)
class CVUNetConfig:
    """Architecture and serving shape of one CV-UNet.

    ``widths`` are the channel counts of encoder/decoder levels 1-5 (full resolution first);
    levels numbered ``rdb_from_level`` and deeper use residual dense blocks with ``rdb_layers``
    densely connected convs of ``rdb_growth`` channels each. ``input_size`` is the square size the
    exported model is served at.
    """

    widths: tuple[int, ...] = (24, 48, 96, 160, 224)
    rdb_layers: int = 4
    rdb_growth: int = 24
    rdb_from_level: int = 3
    aspp_channels: int = 128
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    input_size: int = 512
    in_channels: int = 3

    def __post_init__(self) -> None:
        if len(self.widths) != NUM_LEVELS or any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be {NUM_LEVELS} positive ints, got {self.widths}")
        if self.rdb_layers < 1 or self.rdb_growth < 1:
            raise ValueError("rdb_layers and rdb_growth must be positive")
        if not 1 <= self.rdb_from_level <= NUM_LEVELS + 1:
            raise ValueError(f"rdb_from_level must be in 1..{NUM_LEVELS + 1} ({NUM_LEVELS + 1} = no RDB)")
        if self.aspp_channels < 1 or not self.aspp_rates or any(r < 1 for r in self.aspp_rates):
            raise ValueError("aspp_channels and every aspp rate must be positive")
        if self.input_size < SIZE_MULTIPLE or self.input_size % SIZE_MULTIPLE:
            raise ValueError(f"input_size must be a positive multiple of {SIZE_MULTIPLE}, got {self.input_size}")
        if self.in_channels not in (3, 4):
            raise ValueError(f"in_channels must be 3 (RGB) or 4 (RGB + coarse mask), got {self.in_channels}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CVUNetConfig:
        """Rebuild a config from ``dataclasses.asdict`` output, also after a JSON round trip (lists)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown CVUNetConfig fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


PRESETS: dict[str, CVUNetConfig] = {
    "full": CVUNetConfig(
        widths=(64, 128, 256, 512, 672),
        rdb_layers=6,
        rdb_growth=64,
        aspp_channels=480,
        input_size=1024,
    ),
    "lite": CVUNetConfig(
        widths=(24, 48, 96, 160, 224),
        rdb_layers=4,
        rdb_growth=24,
        aspp_channels=128,
        input_size=512,
    ),
    # The refiner role (a 4th input channel holds a coarse matte to correct): a third of lite's size
    # and ~2.5x faster on CPU, since it would run on every request after the coarse network.
    "refiner": CVUNetConfig(
        widths=(16, 32, 64, 96, 128),
        rdb_layers=3,
        rdb_growth=16,
        aspp_channels=64,
        input_size=512,
        in_channels=4,
    ),
}


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel_size // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DoubleConv(nn.Sequential):
    """The plain U-Net block: (3x3 conv, BN, ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels))


class ResidualDenseBlock(nn.Module):
    """RDN residual dense block: dense 3x3 conv+ReLU layers, 1x1 local feature fusion, local residual."""

    def __init__(self, channels: int, layers: int, growth: int) -> None:
        super().__init__()
        self.dense_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels + i * growth, growth, 3, padding=1), nn.ReLU(inplace=True))
            for i in range(layers)
        )
        self.local_fusion = nn.Conv2d(channels + layers * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.dense_layers:
            features.append(layer(torch.cat(features, dim=1)))
        return x + self.local_fusion(torch.cat(features, dim=1))


class DenseStage(nn.Sequential):
    """Channel transition (3x3 conv, BN, ReLU) followed by a residual dense block at that width."""

    def __init__(self, in_channels: int, out_channels: int, layers: int, growth: int) -> None:
        super().__init__(conv_bn_relu(in_channels, out_channels), ResidualDenseBlock(out_channels, layers, growth))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: multi-rate context at the bottleneck.

    The image-pooling branch has no BatchNorm: its 1x1 map has a single value per channel, which
    BatchNorm cannot normalise in training with batch size 1.
    """

    def __init__(self, in_channels: int, out_channels: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_channels, out_channels, kernel_size=1)]
            + [conv_bn_relu(in_channels, out_channels, dilation=rate) for rate in rates]
        )
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True)
        )
        self.project = conv_bn_relu((len(rates) + 2) * out_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.image_pool(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1))


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al., Attention U-Net) on a skip connection.

    alpha = sigmoid(psi(ReLU(W_g * g + W_x * x + b))), output x * alpha, where g is the decoder
    gating signal (already at the skip's size), x the skip features, and W_g, W_x, psi 1x1 convs.
    """

    def __init__(self, gate_channels: int, skip_channels: int, inter_channels: int) -> None:
        super().__init__()
        self.gate_proj = nn.Conv2d(gate_channels, inter_channels, 1, bias=True)
        self.skip_proj = nn.Conv2d(skip_channels, inter_channels, 1, bias=False)
        self.psi = nn.Conv2d(inter_channels, 1, 1)

    def coefficients(self, gate: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """The attention map alpha, N x 1 x H x W in (0, 1)."""
        return torch.sigmoid(self.psi(F.relu(self.gate_proj(gate) + self.skip_proj(skip))))

    def forward(self, gate: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return skip * self.coefficients(gate, skip)


class DecoderStage(nn.Module):
    """Upsample the deeper features, gate the skip with them, fuse both."""

    def __init__(self, deep_channels: int, skip_channels: int, out_channels: int, block: nn.Module) -> None:
        super().__init__()
        self.gate = AttentionGate(deep_channels, skip_channels, max(skip_channels // 2, 1))
        self.block = block

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        deep = F.interpolate(deep, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([deep, self.gate(deep, skip)], dim=1))


class CVUNet(nn.Module):
    """The matting network; see the module docstring for the input convention and layout."""

    def __init__(self, config: CVUNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths

        def block(level: int, in_channels: int, out_channels: int) -> nn.Module:
            if level >= config.rdb_from_level:
                return DenseStage(in_channels, out_channels, config.rdb_layers, config.rdb_growth)
            return DoubleConv(in_channels, out_channels)

        encoder_inputs = (config.in_channels,) + widths[:-1]
        self.encoder = nn.ModuleList(
            block(level, c_in, c_out) for level, c_in, c_out in zip(range(1, NUM_LEVELS + 1), encoder_inputs, widths)
        )
        self.pool = nn.MaxPool2d(2)
        self.aspp = ASPP(widths[-1], config.aspp_channels, config.aspp_rates)

        decoder_inputs = (config.aspp_channels,) + widths[:0:-1]
        self.decoder = nn.ModuleList(
            DecoderStage(deep, skip, skip, block(level, deep + skip, skip))
            for level, deep, skip in zip(range(NUM_LEVELS, 0, -1), decoder_inputs, widths[::-1])
        )
        self.head = nn.Conv2d(widths[0], 1, 1)
        if config.in_channels == 4:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected input N x {self.config.in_channels} x H x W, got {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(f"input height and width must be multiples of {SIZE_MULTIPLE}, got {height}x{width}")

        coarse = x[:, 3:4] if self.config.in_channels == 4 else None
        skips = []
        for level, encode in enumerate(self.encoder):
            x = encode(x if level == 0 else self.pool(x))
            skips.append(x)
        x = self.aspp(self.pool(x))
        for stage, skip in zip(self.decoder, reversed(skips)):
            x = stage(x, skip)
        logits = self.head(x)
        if coarse is not None:
            coarse = coarse.clamp(COARSE_EPS, 1.0 - COARSE_EPS)
            logits = logits + torch.log(coarse) - torch.log1p(-coarse)
        return torch.sigmoid(logits)


def coarse_channel(raw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A coarse network's raw output (N x 1 x h x w) as a refiner's mask channel: stretched to [0, 1]
    per image (how U²-Netp's output is read) and resized bilinearly to ``size``. Training and serving
    both call this, so the refiner learns from exactly the masks it is served."""
    low = raw.amin(dim=(1, 2, 3), keepdim=True)
    high = raw.amax(dim=(1, 2, 3), keepdim=True)
    stretched = (raw - low) / (high - low).clamp_min(1e-6)
    return F.interpolate(stretched, size=size, mode="bilinear", align_corners=False)


def build_cvunet(preset_or_config: str | CVUNetConfig, in_channels: int | None = None) -> CVUNet:
    """Build a freshly initialised CV-UNet from a preset name or a config, optionally overriding in_channels."""
    if isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise ValueError(f"unknown preset {preset_or_config!r}; choose one of {sorted(PRESETS)}")
        config = PRESETS[preset_or_config]
    else:
        config = preset_or_config
    if in_channels is not None:
        config = dataclasses.replace(config, in_channels=in_channels)
    return CVUNet(config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def save_checkpoint(model: CVUNet, path: str | os.PathLike, **metadata: Any) -> Path:
    """Write model weights, config and metadata; atomic, so readers never see a half-written file.

    Metadata values must be plain Python data (str, numbers, bool, None, lists, dicts) so the
    checkpoint loads with ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": dataclasses.asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata,
    }
    atomic_torch_save(path, payload)
    return path


def atomic_torch_save(path: Path, payload: Any) -> None:
    """torch.save to a temporary sibling, then rename: readers and crashes never see half a file."""
    temp = sibling_temp_path(Path(path))
    try:
        torch.save(payload, temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> CVUNet:
    """Load a checkpoint written by ``save_checkpoint`` into a CV-UNet in eval mode (on CPU)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{path} is not a CV-UNet checkpoint (cannot be read: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a CV-UNet checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return cvunet_from_payload(payload)


def cvunet_from_payload(payload: dict[str, Any]) -> CVUNet:
    """The eval-mode CV-UNet of a checkpoint's loaded payload."""
    model = CVUNet(CVUNetConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
