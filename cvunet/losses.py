"""The training loss: 1.0·L1 + 1.5·gradient + 0.5·perceptual, all on the alpha matte, plus, when
fine-tuning U²-Net, 0.2·side: the mean L1 of its six side outputs.

- L1: mean absolute error of the predicted alpha.
- Gradient: mean absolute error between the Sobel x/y derivatives of predicted and true alpha, so
  blurry edges and lost strands cost more than the few pixels they cover would under L1.
- Side (U²-Net only): the paper trains every side output against the truth (deep supervision); keeping
  a light L1 on them stops fine-tuning from drifting the branches the fused output is built from.
- Perceptual: VGG16 feature distance (mean absolute error at relu1_2, relu2_2 and relu3_3, averaged)
  on the alpha replicated to three channels and ImageNet-normalised. The alpha, not the composite,
  because the image-alpha folder layout has no foreground/background to re-composite with.

The perceptual term needs torchvision's ImageNet VGG16 weights on local disk (nothing is downloaded,
and random VGG weights would only add noise). Without them it is disabled with a warning, and the
reason is kept in :attr:`MattingLoss.perceptual_status` for the run's metadata.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from matting.networks import IMAGENET_MEAN, IMAGENET_STD

logger = logging.getLogger(__name__)

L1_WEIGHT = 1.0
GRADIENT_WEIGHT = 1.5
PERCEPTUAL_WEIGHT = 0.5
SIDE_OUTPUT_WEIGHT = 0.2
VGG16_WEIGHTS_FILE = "vgg16-397923af.pth"
"""torchvision's ImageNet VGG16 weights, as ``torchvision.models.vgg16(weights="IMAGENET1K_V1")`` caches them."""

VGG16_FEATURES_THROUGH_RELU3_3 = (64, 64, "M", 128, 128, "M", 256, 256, 256)
"""torchvision's VGG16 ``features`` layout up to relu3_3 (index 15): the layer indices, and so the
``features.N.weight/bias`` state_dict keys, are the same as torchvision's."""
PERCEPTUAL_LAYERS = {3: "relu1_2", 8: "relu2_2", 15: "relu3_3"}


def sobel_gradients(alpha: torch.Tensor) -> torch.Tensor:
    """The x and y Sobel derivatives of an N x 1 x H x W matte, as N x 2 x H x W (edges replicated).

    The kernels are divided by 8 so a ramp of slope 1 has derivative 1, like the finite difference.
    """
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=alpha.device) / 8
    kernels = torch.stack([sobel_x, sobel_x.T]).unsqueeze(1).to(alpha.dtype)
    return F.conv2d(F.pad(alpha, (1, 1, 1, 1), mode="replicate"), kernels)


def gradient_loss(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(sobel_gradients(predicted), sobel_gradients(truth))


class VGG16Features(nn.Module):
    """The frozen front of VGG16 (through relu3_3) returning the activations the perceptual loss compares."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for spec in VGG16_FEATURES_THROUGH_RELU3_3:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, spec, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_channels = spec
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_torchvision_weights(cls, path: str | os.PathLike) -> VGG16Features:
        """Load the ``features.*`` tensors this module has from a torchvision VGG16 state_dict file.

        The deeper layers and the classifier in the file are not needed and are ignored; a missing or
        misshapen tensor among the needed ones is an error.
        """
        module = cls()
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state_dict, dict):
            raise ValueError(f"{path} is not a VGG16 state_dict")
        needed = module.state_dict()
        missing = sorted(set(needed) - set(state_dict))
        if missing:
            raise ValueError(f"{path} is not a torchvision VGG16 state_dict: missing {missing}")
        try:
            module.load_state_dict({key: state_dict[key] for key in needed})
        except RuntimeError as exc:
            raise ValueError(f"{path} is not a torchvision VGG16 state_dict: {exc}") from exc
        return module

    def train(self, mode: bool = True) -> VGG16Features:
        """Stay in eval mode: the network is a fixed feature extractor."""
        return super().train(False)

    def forward(self, alpha: torch.Tensor) -> list[torch.Tensor]:
        x = (alpha.expand(-1, 3, -1, -1) - self.mean) / self.std
        activations = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in PERCEPTUAL_LAYERS:
                activations.append(x)
        return activations


def find_vgg16_weights(explicit_path: str | os.PathLike | None = None) -> Path | None:
    """The VGG16 weights file to use: ``explicit_path`` (must exist), else torch hub's cache, else None."""
    if explicit_path is not None:
        path = Path(explicit_path)
        if not path.is_file():
            raise FileNotFoundError(f"VGG16 weights not found at {path}")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS_FILE
    return cached if cached.is_file() else None


class MattingLoss(nn.Module):
    """L1 + gradient (+ perceptual when VGG16 weights are given, + side with side outputs); returns the
    total and each term."""

    def __init__(self, vgg: VGG16Features | None, perceptual_status: str) -> None:
        super().__init__()
        self.vgg = vgg
        self.perceptual_status = perceptual_status

    def forward(
        self, predicted: torch.Tensor, truth: torch.Tensor, side_outputs: Sequence[torch.Tensor] = ()
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        predicted, truth = predicted.float(), truth.float()
        terms = {"l1": F.l1_loss(predicted, truth), "gradient": gradient_loss(predicted, truth)}
        total = L1_WEIGHT * terms["l1"] + GRADIENT_WEIGHT * terms["gradient"]
        if side_outputs:
            terms["side"] = torch.stack([F.l1_loss(side.float(), truth) for side in side_outputs]).mean()
            total = total + SIDE_OUTPUT_WEIGHT * terms["side"]
        if self.vgg is not None:
            with torch.no_grad():
                truth_features = self.vgg(truth)
            distances = [F.l1_loss(p.float(), t.float()) for p, t in zip(self.vgg(predicted), truth_features)]
            terms["perceptual"] = torch.stack(distances).mean()
            total = total + PERCEPTUAL_WEIGHT * terms["perceptual"]
        return total, {name: value.detach() for name, value in terms.items()}


def build_matting_loss(vgg_weights: str | os.PathLike | None = None) -> MattingLoss:
    """The training loss, with the perceptual term if local VGG16 weights exist (see module docstring)."""
    path = find_vgg16_weights(vgg_weights)
    if path is None:
        expected = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS_FILE
        logger.warning(
            "perceptual loss disabled: no local VGG16 weights (pass --vgg-weights PATH or put %s at %s)",
            VGG16_WEIGHTS_FILE,
            expected,
        )
        return MattingLoss(None, "disabled: no local VGG16 weights")
    return MattingLoss(VGG16Features.from_torchvision_weights(path), f"enabled: VGG16 weights {path}")
