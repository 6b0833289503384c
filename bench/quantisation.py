"""ONNX Runtime on CPU: graph optimisation levels and int8 quantisation of a served network, against the
served fp32 file: speed and quality side by side.

    .venv/bin/python -m bench.quantisation [--model u2net|u2netp]

Per variant: ms per image at batch 1 on one thread (one serving instance), and how far the full-size
matte of the fixture photo moves from the served file's, in 1/255 (mean and max), and the SAD and IoU of
its matte on `make quality`'s sets A and B. Quantisation uses ONNX
Runtime's own tools: pre-processing, dynamic (weights only) and static QDQ with per-channel weights,
calibrated on crops of the fixture. A variant may ship only if its mean stays within 1/255 and `make
quality`'s set B does not get worse. Every number is measured in this run; compare rows, not runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from bench.measure import percentiles
from bench.quality import reference_sets
from matting.codec import decode_image
from matting.contract import DEFAULT_NETWORK
from matting.metrics import all_metrics
from matting.networks import alpha_from_output, network_spec, normalised_output, prepare_input
from matting.options import MODELS
from matting.paths import MODEL_REPOSITORY, REMBG_FIXTURES
from matting.refine import full_resolution_matte

FIXTURE = REMBG_FIXTURES / "anime-girl-1.jpg"
CALIBRATION_CROPS = 8
LEVELS = {"ORT_ENABLE_ALL (served)": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
          "ORT_ENABLE_BASIC": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "ORT_ENABLE_EXTENDED": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}


def calibration_inputs(spec) -> list[np.ndarray]:
    """Shifted crops of the fixture, every other one mirrored, prepared as the server prepares them."""
    photo = Image.open(FIXTURE).convert("RGB")
    crops = []
    for index in range(CALIBRATION_CROPS):
        left, top = index * 20, index * 12
        crop = photo.crop((left, top, photo.width - 80 + left, photo.height - 60 + top))
        crops.append(prepare_input(crop.transpose(Image.FLIP_LEFT_RIGHT) if index % 2 else crop, spec)[np.newaxis])
    return crops


class Calibration(CalibrationDataReader):
    def __init__(self, input_name: str, tensors: list[np.ndarray]):
        self.feeds = iter([{input_name: tensor} for tensor in tensors])

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def session(path: Path, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantised_variants(source: Path, folder: Path, input_name: str, spec) -> dict[str, Path]:
    prepared = folder / "prepared.onnx"
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    variants = {"int8 dynamic, weights QUInt8": folder / "dynamic-quint8.onnx",
                "int8 dynamic, weights QInt8 per channel": folder / "dynamic-qint8.onnx",
                "int8 static QDQ, per-channel weights": folder / "static-qdq.onnx"}
    paths = iter(variants.values())
    quantize_dynamic(str(prepared), str(next(paths)), weight_type=QuantType.QUInt8)
    quantize_dynamic(str(prepared), str(next(paths)), weight_type=QuantType.QInt8, per_channel=True)
    quantize_static(str(prepared), str(next(paths)), Calibration(input_name, calibration_inputs(spec)),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True)
    return variants


def set_scores(variant: ort.InferenceSession, input_name: str, spec, pairs) -> tuple[float, float]:
    """(SAD, IoU) of the variant's served matte (no refinement, as the default serves it), mean over ``pairs``."""
    scores = []
    for image, truth in pairs:
        output = variant.run(None, {input_name: prepare_input(image, spec)[np.newaxis]})[0][0]
        scores.append(all_metrics(full_resolution_matte(image, normalised_output(output, spec), "none") / 255.0, truth))
    return float(np.mean([score["SAD"] for score in scores])), float(np.mean([score["IoU"] for score in scores]))


def study(model: str, repeats: int) -> None:
    spec = network_spec(model)
    source = MODEL_REPOSITORY / model / "1" / "model.onnx"
    photo = decode_image(FIXTURE.read_bytes())
    tensor = prepare_input(photo, spec)[np.newaxis]
    input_name = session(source).get_inputs()[0].name
    set_a, set_b = reference_sets()
    print(f"\n{model}: batch 1, one thread; the fixture's full-size matte against the served file's (1/255); "
          f"SAD and IoU on set A (fixture vs BiRefNet) and set B (synthetic, mean of {len(set_b)}) as `make quality`")
    print(f"{'variant':<42}{'ms':>8}{'speed-up':>10}{'mean':>8}{'max':>6}{'MB':>8}{'A SAD':>8}{'A IoU':>8}{'B SAD':>8}{'B IoU':>8}")
    reference = served_ms = None
    with tempfile.TemporaryDirectory() as directory:
        candidates = {f"fp32, {label}": (source, level) for label, level in LEVELS.items()}
        candidates |= {label: (path, LEVELS["ORT_ENABLE_ALL (served)"])
                       for label, path in quantised_variants(source, Path(directory), input_name, spec).items()}
        for label, (path, level) in candidates.items():
            variant = session(path, level)
            alpha = alpha_from_output(variant.run(None, {input_name: tensor})[0][0], spec, photo.size).astype(np.float64)
            reference = alpha if reference is None else reference
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                variant.run(None, {input_name: tensor})
                times.append((time.perf_counter() - started) * 1000)
            ms = percentiles(times)[0]
            served_ms = served_ms or ms
            moved = np.abs(alpha - reference)
            quality = [*set_scores(variant, input_name, spec, set_a), *set_scores(variant, input_name, spec, set_b)]
            print(f"{label:<42}{ms:>8.0f}{served_ms / ms:>9.2f}×{moved.mean():>8.2f}{moved.max():>6.0f}"
                  f"{path.stat().st_size / 1e6:>8.1f}" + "".join(f"{value:>8.2f}" if index % 2 == 0 else f"{value:>8.4f}"
                                                                for index, value in enumerate(quality)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default=DEFAULT_NETWORK)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    study(args.model, args.repeats)


if __name__ == "__main__":
    main()
