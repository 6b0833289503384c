"""Matte quality of pipeline variants: ``make quality`` (or ``.venv/bin/python -m bench.quality``).

Set A: the shared fixture photo against the alpha of rembg's BiRefNet-massive output (a
state-of-the-art model's matte as pseudo ground truth). For orientation, rembg's own outputs score
SAD u2netp 15.4, u2net 13.2, isnet-general-use 10.4, birefnet-general 9.0 on it.
Set B: the held-out synthetic composites (cvunet.synthetic.HELD_OUT_SEEDS, 512², exact alpha),
metrics averaged per image. "12 MP ms" times the variant's upsampling step on a 4000×3000 photo. A second table measures
foreground colour on set B: the plain cut-out keeps the composite's colours (background bleeding
into soft edges), the estimate removes it.
"""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
from PIL import Image

from cvunet.imageops import decode_image
from cvunet.metrics import all_metrics
from cvunet.networks import alpha_from_output, network_spec, normalised_output, prepare_input
from cvunet.paths import MODEL_REPOSITORY, REMBG_FIXTURES
from cvunet.refine import ClosedFormBand, GuidedFilter, estimate_foreground
from cvunet.synthetic import HELD_OUT_SEEDS, synthetic_sample

SPEC = network_spec("u2netp")


def raw(image: Image.Image, output: np.ndarray) -> np.ndarray:
    return alpha_from_output(output, SPEC, image.size)


def guided(refiner: GuidedFilter):
    return lambda image, output: refiner.upsample(image, normalised_output(output, SPEC))


def closed_form(refiner: ClosedFormBand):
    return lambda image, output: refiner.refine(image, raw(image, output))


VARIANTS = {
    "U²-Netp raw (rembg-equivalent)": raw,
    "+ guided filter, gray r=8 eps=1e-3": guided(GuidedFilter(radius=8, eps=1e-3, color=False)),
    "+ guided filter, colour r=4 eps=1e-3": guided(GuidedFilter(radius=4, eps=1e-3)),
    "+ guided filter, colour r=8 eps=1e-3": guided(GuidedFilter(radius=8, eps=1e-3)),
    "+ guided filter, colour r=16 eps=1e-2": guided(GuidedFilter(radius=16, eps=1e-2)),
    "+ closed-form band (800 px)": closed_form(ClosedFormBand()),
}


class U2Netp:
    def __init__(self):
        self.session = ort.InferenceSession(str(MODEL_REPOSITORY / "u2netp" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, image: Image.Image) -> np.ndarray:
        return self.session.run(None, {self.input_name: prepare_input(image, SPEC)[np.newaxis]})[0][0]


def main() -> None:
    network = U2Netp()
    photo = decode_image((REMBG_FIXTURES / "anime-girl-1.jpg").read_bytes())
    set_a = [(photo, network(photo), np.asarray(Image.open(REMBG_FIXTURES / "anime-girl-1.birefnet-massive.png"))[..., 3] / 255.0)]
    set_b = []
    for seed in HELD_OUT_SEEDS:
        sample = synthetic_sample(seed)
        image = Image.fromarray(sample.image)
        set_b.append((image, network(image), sample.alpha))
    large = photo.resize((4000, 3000), Image.BICUBIC)
    large_output = network(large)

    header = f"{'variant':<40}" + "".join(f"{name:>9}" for name in ("SAD", "MSE", "Grad", "Conn") * 2) + f"{'12 MP ms':>10}"
    print(f"\n{'':<40}{'set A (fixture vs BiRefNet)':^36}{'set B (synthetic, mean of ' + str(len(set_b)) + ')':^36}")
    print(header + "\n" + "-" * len(header))
    for label, variant in VARIANTS.items():
        columns = []
        for samples in (set_a, set_b):
            scores = [all_metrics(variant(image, output) / 255.0, truth) for image, output, truth in samples]
            columns += [np.mean([score[name] for score in scores]) for name in ("SAD", "MSE", "Grad", "Conn")]
        variant(large, large_output)
        started = time.perf_counter()
        variant(large, large_output)
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"{label:<40}" + "".join(f"{value:>9.4f}" if index % 4 == 1 else f"{value:>9.2f}" for index, value in enumerate(columns))
              + f"{elapsed_ms:>10.0f}")
    foreground_table(set_b)


def foreground_error(colours: np.ndarray, sample) -> float:
    """Mean absolute colour error (0–255) against the true foreground, over partly transparent pixels."""
    band = (sample.alpha > 0.05) & (sample.alpha < 0.95)
    return float(np.abs(colours.astype(np.float64) - sample.foreground)[band].mean())


def foreground_table(set_b) -> None:
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
