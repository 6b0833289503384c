"""Export a CV-UNet, or a ported U²-Net / U²-Netp (cvunet.u2net), to ONNX and prove the file matches
PyTorch under ONNX Runtime.

The graph has one input ``input`` (N x C x S x S) and one output ``alpha`` (N x 1 x S x S) with a
symbolic batch dimension ``batch`` and the spatial size fixed to ``config.input_size``, so Triton can
batch requests while every layer keeps static shapes. The CV-UNet config
travels inside the file as the metadata property ``cvunet_config`` (JSON) for the serving side to read;
a U²-Net export records ``network`` and the ``source_sha256`` of the published file its weights came
from (and ``fine_tuned``, how, if cvunet.train fine-tuned them), and every export ``exported_by`` =
``cvunet.export_onnx``.

Uses the torch.export-based exporter (``dynamo=True``), PyTorch's default and supported path; the
legacy TorchScript exporter is deprecated and leaves the output's spatial dims symbolic.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from matting.files import sibling_temp_path
from cvunet.checkpoints import load_network
from cvunet.model import PRESETS, CVUNet, build_cvunet, count_parameters
from cvunet.u2net import INPUT_SIZE as U2NET_INPUT_SIZE
from cvunet.u2net import U2Net
from matting.contract import EXPORTED_BY, FINE_TUNED, SOURCE_SHA256

INPUT_NAME = "input"
OUTPUT_NAME = "alpha"
BATCH_DIM_NAME = "batch"
CONFIG_METADATA_KEY = "cvunet_config"
#: Every export records who made it; a U²-Net port also the sha256 of the published file it came from.
EXPORTER = "cvunet.export_onnx"
MIN_OPSET = 18
"""The torch.export-based exporter emits opset 18 and newer; it cannot reliably convert down to 17."""
TRACE_BATCH = 2
"""Tracing at batch 1 would let torch.export specialise the batch dimension to a constant."""


class ExportVerificationError(RuntimeError):
    """The exported ONNX model disagrees with PyTorch beyond the tolerance."""


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress lines, deprecation warnings and optional-dependency notices."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def sample_input(model: CVUNet, batch: int, seed: int) -> torch.Tensor:
    """Seeded input following the model's convention: normalised RGB, plus a [0, 1] mask if 4 channels."""
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, 3, config.input_size, config.input_size)
    channels = [torch.randn(shape, generator=generator)]
    if config.in_channels == 4:
        channels.append(torch.rand((batch, 1, config.input_size, config.input_size), generator=generator))
    return torch.cat(channels, dim=1)


def graph_inputs(model: CVUNet | U2Net, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Seeded example inputs by graph input name."""
    if isinstance(model, U2Net):
        generator = torch.Generator().manual_seed(seed)
        return {INPUT_NAME: torch.randn((batch, 3, U2NET_INPUT_SIZE, U2NET_INPUT_SIZE), generator=generator)}
    return {INPUT_NAME: sample_input(model, batch, seed)}


def max_abs_diff_vs_torch(model: CVUNet | U2Net, onnx_path: Path, batch: int) -> float:
    """Run the same seeded batch through PyTorch and ONNX Runtime (CPU) and return the largest difference."""
    device = next(model.parameters()).device
    inputs = graph_inputs(model, batch, seed=0)
    with torch.no_grad():
        expected = model(*(tensor.to(device) for tensor in inputs.values())).cpu().numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], {name: tensor.numpy() for name, tensor in inputs.items()})
    if actual.shape != expected.shape:
        raise ExportVerificationError(f"ONNX output shape {actual.shape} != PyTorch output shape {expected.shape}")
    return float(np.max(np.abs(actual - expected)))


def metadata(model: CVUNet | U2Net) -> dict[str, str]:
    """What the file records about its origin: the exporter, and the CV-UNet config or the U²-Net source."""
    if isinstance(model, U2Net):
        fine_tuned = {FINE_TUNED: model.fine_tuned} if model.fine_tuned else {}
        return {EXPORTED_BY: EXPORTER, "network": model.name, SOURCE_SHA256: model.source_sha256 or "", **fine_tuned}
    return {EXPORTED_BY: EXPORTER, CONFIG_METADATA_KEY: json.dumps(dataclasses.asdict(model.config))}


def export_onnx(
    model: CVUNet | U2Net, out_path: str | os.PathLike, opset: int = 18, batch_verify: int = 2, atol: float = 1e-4
) -> dict[str, Any]:
    """Export ``model`` (in eval mode) to ``out_path``, verify it, and return a report.

    The file is written to a temporary name beside ``out_path`` and moved into place only after
    ``onnx.checker`` and the ONNX Runtime comparison at batch ``batch_verify`` pass, so a failed
    export leaves no file behind.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET} for the torch.export-based exporter, got {opset}")
    if batch_verify < 1:
        raise ValueError(f"batch_verify must be >= 1, got {batch_verify}")
    out_path = Path(out_path)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    tmp_path = sibling_temp_path(out_path)
    trace_inputs = graph_inputs(model, TRACE_BATCH, seed=1)
    batch_dim = torch.export.Dim(BATCH_DIM_NAME)
    try:
        with quiet_exporter():
            program = torch.onnx.export(
                model,
                tuple(tensor.to(device) for tensor in trace_inputs.values()),
                input_names=list(trace_inputs),
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=tuple({0: batch_dim} for _ in trace_inputs),
                external_data=False,
                verbose=False,
            )
        program.model.metadata_props.update(metadata(model))
        program.save(tmp_path, external_data=False)

        onnx.checker.check_model(str(tmp_path), full_check=True)
        exported_opset = program.model.opset_imports[""]
        if exported_opset != opset:
            raise ExportVerificationError(f"requested opset {opset} but the exporter produced opset {exported_opset}")
        max_abs_diff = max_abs_diff_vs_torch(model, tmp_path, batch_verify)
        if not max_abs_diff <= atol:  # also rejects NaN
            raise ExportVerificationError(
                f"ONNX Runtime output differs from PyTorch by {max_abs_diff:.3g} (> atol {atol:g}) at batch {batch_verify}"
            )
        os.replace(tmp_path, out_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    finally:
        model.train(was_training)

    return {
        "path": str(out_path),
        "opset": exported_opset,
        "max_abs_diff": max_abs_diff,
        "verified_batch": batch_verify,
        "input_size": trace_inputs[INPUT_NAME].shape[-1],
        "in_channels": trace_inputs[INPUT_NAME].shape[1],
        "parameters": count_parameters(model),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cvunet.export_onnx", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", choices=sorted(PRESETS), help="fresh, untrained network of this preset")
    source.add_argument("--checkpoint", type=Path, help="checkpoint written by cvunet.train (CV-UNet or a fine-tuned U²-Net)")
    parser.add_argument("--in-channels", type=int, choices=(3, 4), help="with --preset: 4 for the refiner role")
    parser.add_argument("--out", type=Path, required=True, help="destination .onnx file")
    parser.add_argument("--opset", type=int, default=18)
    args = parser.parse_args(argv)
    if args.in_channels is not None and args.preset is None:
        parser.error("--in-channels only applies to --preset (a checkpoint fixes its own channels)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.checkpoint is not None:
        model = load_network(args.checkpoint)
    else:
        print(
            f"WARNING: exporting preset {args.preset!r} with untrained (randomly initialised) weights",
            file=sys.stderr,
        )
        model = build_cvunet(args.preset, in_channels=args.in_channels).eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = export_onnx(model, args.out, opset=args.opset)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
