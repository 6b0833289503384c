"""One loader for every network checkpoint the project writes, whichever network it holds: a CV-UNet
(cvunet.model) or a ported or fine-tuned U²-Net / U²-Netp (cvunet.u2net). Exporting, serving and
resuming a run take either."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cvunet.model import CHECKPOINT_FORMAT, CVUNet, cvunet_from_payload
from cvunet.u2net import U2Net, u2net_from_payload


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's payload (weights-only unpickling); ValueError if it is not one of ours."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a foreign or damaged file
        raise ValueError(f"{path} is not a network checkpoint (cannot be read: {exc})") from None
    if not isinstance(payload, dict) or (payload.get("format") != CHECKPOINT_FORMAT and "network" not in payload):
        raise ValueError(f"{path} is neither a CV-UNet nor a U²-Net checkpoint")
    return payload


def network_from_payload(payload: dict[str, Any], path: str | os.PathLike) -> CVUNet | U2Net:
    if payload.get("format") == CHECKPOINT_FORMAT:
        return cvunet_from_payload(payload)
    return u2net_from_payload(payload, Path(path))


def load_network(path: str | os.PathLike) -> CVUNet | U2Net:
    """The eval-mode network of any checkpoint the project writes."""
    return network_from_payload(read_checkpoint(path), path)


def network_name(model: CVUNet | U2Net) -> str:
    """The served name of the network a module is (matting.networks)."""
    return model.name if isinstance(model, U2Net) else "cvunet"
