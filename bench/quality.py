"""Matte quality of pipeline variants: ``make quality`` (or ``.venv/bin/python -m bench.quality``).

Set A: the shared fixture photo against the alpha of rembg's BiRefNet-massive output (a
state-of-the-art model's matte as pseudo ground truth). For orientation, rembg's own outputs score
SAD u2netp 15.4, u2net 13.2, isnet-general-use 10.4, birefnet-general 9.0 on it.
Set B: the held-out synthetic composites (cvunet.synthetic.HELD_OUT_SEEDS, 512², exact alpha),
metrics averaged per image. Every variant starts from the served ONNX files of U²-Net and U²-Netp and
the server's own functions (matting.refine.full_resolution_matte); the candidates for post-processing
(monotone contrast curves, flip test-time augmentation, rembg's ``-ppm``) add their step to that.
Columns: SAD, MSE, Grad, MAE and IoU at 0.5 (matting.metrics). "0.3 MP ms" and "12 MP ms" are what the
variant adds after its network on a 640×480 and a 4000×3000 photo (for flip TTA: a second network run).
A second table measures
foreground colour on set B: the plain cut-out keeps the composite's colours (background bleeding
into soft edges), the estimate removes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

from matting.codec import decode_image
from matting.metrics import all_metrics
from matting.networks import network_spec, normalised_output, prepare_input
from matting.paths import MODEL_REPOSITORY, REMBG_FIXTURES
from matting.compose import estimate_foreground
from matting.refine import GuidedFilter, full_resolution_matte
from cvunet.synthetic import HELD_OUT_SEEDS, synthetic_sample

SPEC = network_spec("u2netp")
METRICS = ("SAD", "MSE", "Grad", "MAE", "IoU")
#: The photo sizes whose added time per variant is measured (the fixture, resized).
TIMED_SIZES = {"0.3 MP ms": (640, 480), "12 MP ms": (4000, 3000)}


@dataclass
class Sample:
    image: Image.Image
    truth: np.ndarray  # float alpha in [0, 1]
    coarse: np.ndarray  # U²-Netp's matte in [0, 1], 320²
    u2net: np.ndarray  # U²-Net's matte in [0, 1], 320²


class Session:
    """One served ONNX file under ONNX Runtime, fed by input name."""

    def __init__(self, name: str):
        self.session = ort.InferenceSession(str(MODEL_REPOSITORY / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        return self.session.run(None, {name: value[np.newaxis] for name, value in inputs.items()})[0][0]


def served(refine: str) -> Callable[[Sample], np.ndarray]:
    def variant(sample: Sample) -> np.ndarray:
        return full_resolution_matte(sample.image, sample.coarse, refine)

    return variant


def guided(radius: int, eps: float, color: bool = True) -> Callable[[Sample], np.ndarray]:
    refiner = GuidedFilter(radius=radius, eps=eps, color=color)
    return lambda sample: refiner.upsample(sample.image, sample.coarse)


def contrast(network: str, low: float, high: float) -> Callable[[Sample], np.ndarray]:
    """A monotone transfer curve on the network's matte: ``low`` and below → 0, ``high`` and above → 1."""
    def variant(sample: Sample) -> np.ndarray:
        return full_resolution_matte(sample.image, np.clip((getattr(sample, network) - low) / (high - low), 0, 1), "none")

    return variant


def rembg_post_process(network: str) -> Callable[[Sample], np.ndarray]:
    """rembg's ``-ppm``: morphological opening, Gaussian blur, then a cut at 127 (a hard mask)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def variant(sample: Sample) -> np.ndarray:
        matte = cv2.morphologyEx(full_resolution_matte(sample.image, getattr(sample, network), "none"), cv2.MORPH_OPEN, kernel)
        matte = cv2.GaussianBlur(matte, (5, 5), sigmaX=2, sigmaY=2)
        return np.where(matte < 127, 0, 255).astype(np.uint8)

    return variant


def flip_averaged(network: str, session: Session) -> Callable[[Sample], np.ndarray]:
    """Test-time augmentation: the mean of the network's matte and its matte of the mirrored photo
    (the second network run is part of the variant's time)."""
    def variant(sample: Sample) -> np.ndarray:
        mirrored_input = np.ascontiguousarray(prepare_input(sample.image, SPEC)[..., ::-1])  # as the server mirrors
        mirrored = normalised_output(session(network_input=mirrored_input), SPEC)
        return full_resolution_matte(sample.image, (getattr(sample, network) + mirrored[:, ::-1]) / 2, "none")

    return variant


def variants(u2netp: Session, u2net: Session) -> dict[str, Callable[[Sample], np.ndarray]]:
    return {
        "U²-Net raw (rembg-equivalent; the default)": lambda sample: full_resolution_matte(sample.image, sample.u2net, "none"),
        "U²-Net + guided filter, colour r=8 eps=1e-3": lambda sample: full_resolution_matte(sample.image, sample.u2net, "guided"),
        "U²-Net + flip test-time augmentation": flip_averaged("u2net", u2net),
        "U²-Net + contrast curve 0.05–0.6": contrast("u2net", 0.05, 0.6),
        "U²-Net + contrast curve 0–0.75": contrast("u2net", 0.0, 0.75),
        "U²-Net + rembg -ppm": rembg_post_process("u2net"),
        "U²-Netp raw (rembg-equivalent)": served("none"),
        "+ guided filter, gray r=8 eps=1e-3": guided(8, 1e-3, color=False),
        "+ guided filter, colour r=4 eps=1e-3": guided(4, 1e-3),
        "+ guided filter, colour r=8 eps=1e-3 (served)": served("guided"),
        "+ guided filter, colour r=16 eps=1e-2": guided(16, 1e-2),
        "+ closed-form band, 800 px (served)": served("closed-form"),
        "+ flip test-time augmentation": flip_averaged("coarse", u2netp),
        "+ contrast curve 0–0.6": contrast("coarse", 0.0, 0.6),
        "+ rembg -ppm": rembg_post_process("coarse"),
    }


def load_samples(u2netp: Session, u2net: Session) -> tuple[list[Sample], list[Sample], dict[str, Sample]]:
    def sample(image: Image.Image, truth: np.ndarray | None) -> Sample:
        network_input = prepare_input(image, SPEC)
        return Sample(image, truth, normalised_output(u2netp(network_input=network_input), SPEC),
                      normalised_output(u2net(network_input=network_input), SPEC))

    set_a, set_b = reference_sets()
    timed = {label: sample(set_a[0][0].resize(size, Image.BICUBIC), None) for label, size in TIMED_SIZES.items()}
    return [sample(*pair) for pair in set_a], [sample(*pair) for pair in set_b], timed


def reference_sets() -> tuple[list[tuple[Image.Image, np.ndarray]], list[tuple[Image.Image, np.ndarray]]]:
    """Sets A and B as (photo, true alpha in [0, 1]) pairs."""
    photo = decode_image((REMBG_FIXTURES / "anime-girl-1.jpg").read_bytes())
    birefnet = np.asarray(Image.open(REMBG_FIXTURES / "anime-girl-1.birefnet-massive.png"))[..., 3] / 255.0
    synthetic = [synthetic_sample(seed) for seed in HELD_OUT_SEEDS]
    return [(photo, birefnet)], [(Image.fromarray(sample.image), sample.alpha) for sample in synthetic]


def mean_metrics(variant: Callable[[Sample], np.ndarray], samples: list[Sample]) -> dict[str, float]:
    scores = [all_metrics(variant(sample) / 255.0, sample.truth) for sample in samples]
    return {name: float(np.mean([score[name] for score in scores])) for name in METRICS}


def added_ms(variant: Callable[[Sample], np.ndarray], photo: Sample) -> float:
    """Median of 3 timings of what the variant adds after its network on ``photo``."""
    variant(photo)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        variant(photo)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings))


def main() -> None:
    u2netp, u2net = Session("u2netp"), Session("u2net")
    set_a, set_b, timed = load_samples(u2netp, u2net)

    print(f"\n{'':<48}{'set A (fixture vs BiRefNet)':^36}{'set B (synthetic, mean of ' + str(len(set_b)) + ')':^36}")
    header = f"{'variant':<48}" + "".join(f"{name:>9}" for name in METRICS * 2) + "".join(f"{label:>11}" for label in timed)
    print(header + "\n" + "-" * len(header))
    for label, variant in variants(u2netp, u2net).items():
        values = [row[name] for row in (mean_metrics(variant, set_a), mean_metrics(variant, set_b)) for name in METRICS]
        print(f"{label:<48}" + "".join(f"{value:>9.4f}" if name in ("MSE", "MAE", "IoU") else f"{value:>9.2f}" for name, value in zip(METRICS * 2, values))
              + "".join(f"{added_ms(variant, photo):>11.0f}" for photo in timed.values()))
    foreground_table()


def foreground_error(colours: np.ndarray, sample) -> float:
    """Mean absolute colour error (0–255) against the true foreground, over partly transparent pixels."""
    band = (sample.alpha > 0.05) & (sample.alpha < 0.95)
    return float(np.abs(colours.astype(np.float64) - sample.foreground)[band].mean())


def foreground_table() -> None:
    print(f"\n{'foreground colours in soft edges (set B, true matte)':<56}{'MAE 0-255':>10}")
    samples = [synthetic_sample(seed) for seed in HELD_OUT_SEEDS]
    cut_out = np.mean([foreground_error(sample.image, sample) for sample in samples])
    estimated = np.mean([foreground_error(np.asarray(estimate_foreground(Image.fromarray(sample.image),
                                                                          (sample.alpha * 255).astype(np.uint8))), sample)
                         for sample in samples])
    print(f"{'plain cut-out (composite colours)':<56}{cut_out:>10.1f}")
    print(f"{'estimate_foreground (pymatting, multilevel)':<56}{estimated:>10.1f}")


if __name__ == "__main__":
    main()
