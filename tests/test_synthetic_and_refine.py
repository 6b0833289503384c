"""The synthetic benchmark generator and the guided-filter upsampler (pure functions, no server)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cvunet.refine import ClosedFormBand, GuidedFilter, estimate_foreground
from cvunet.synthetic import HELD_OUT_SEEDS, synthetic_sample


def test_samples_are_deterministic_and_distinct():
    first, again, other = synthetic_sample(7, 128), synthetic_sample(7, 128), synthetic_sample(8, 128)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.alpha, again.alpha)
    assert not np.array_equal(first.alpha, other.alpha)


def test_sample_alpha_is_exact_and_has_fine_structure():
    sample = synthetic_sample(HELD_OUT_SEEDS[0], 256)
    assert sample.image.shape == (256, 256, 3) and sample.alpha.shape == (256, 256)
    assert sample.alpha.min() == 0.0 and sample.alpha.max() == 1.0
    assert ((sample.alpha > 0.02) & (sample.alpha < 0.98)).mean() > 0.01, "anti-aliased strands and translucency"
    recomposed = sample.alpha[..., None] * sample.foreground + (1 - sample.alpha[..., None]) * sample.background
    assert np.abs(recomposed - sample.image).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("color", [True, False])
def test_guided_filter_puts_the_matte_edge_on_the_photo_edge(color):
    """A matte upsampled 20× ramps over dozens of pixels; guided, it steps where the photo does."""
    photo = np.zeros((300, 400, 3), np.uint8)
    photo[:, 200:] = (230, 190, 60)
    truth = (np.arange(400) >= 200).astype(np.uint8)[None, :].repeat(300, 0) * 255
    low = np.asarray(Image.fromarray(truth).resize((20, 15), Image.BILINEAR)) / 255.0
    plain = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((400, 300), Image.BILINEAR)) / 255.0
    refined = GuidedFilter(radius=40, eps=1e-4, working_size=400, color=color).upsample(Image.fromarray(photo), low) / 255.0
    assert refined.shape == (300, 400)
    assert plain[150, 200] - plain[150, 199] < 0.1
    assert refined[150, 200] - refined[150, 199] > 0.5


def test_foreground_estimate_removes_background_colour_from_soft_edges():
    sample = synthetic_sample(HELD_OUT_SEEDS[1], 128)
    matte = (sample.alpha * 255).astype(np.uint8)
    band = (sample.alpha > 0.05) & (sample.alpha < 0.95)
    estimated = np.asarray(estimate_foreground(Image.fromarray(sample.image), matte)).astype(float)
    assert np.abs(estimated - sample.foreground)[band].mean() < 0.7 * np.abs(sample.image.astype(float) - sample.foreground)[band].mean()


def test_closed_form_band_keeps_certain_regions_and_fills_the_band():
    sample = synthetic_sample(HELD_OUT_SEEDS[2], 128)
    coarse = np.asarray(Image.fromarray((sample.alpha * 255).astype(np.uint8)).resize((32, 32)).resize((128, 128), Image.BILINEAR))
    refined = ClosedFormBand(erode_size=3).refine(Image.fromarray(sample.image), coarse)
    assert refined.shape == coarse.shape and refined.dtype == np.uint8
    certain = (coarse == 255) | (coarse == 0)
    assert (refined[certain] == coarse[certain]).mean() > 0.9
    assert not np.array_equal(refined, coarse)
