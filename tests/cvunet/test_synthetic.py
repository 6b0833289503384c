"""The deterministic synthetic set (set B): exact alpha with fine structure."""

from __future__ import annotations

import numpy as np

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
