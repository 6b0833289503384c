"""The guided-filter upsampler and the closed-form band (pure functions, no server)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from matting.refine import ClosedFormBand, GuidedFilter
from cvunet.synthetic import HELD_OUT_SEEDS, synthetic_sample


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


def test_closed_form_band_keeps_certain_regions_and_fills_the_band():
    sample = synthetic_sample(HELD_OUT_SEEDS[2], 128)
    coarse = np.asarray(Image.fromarray((sample.alpha * 255).astype(np.uint8)).resize((32, 32)).resize((128, 128), Image.BILINEAR))
    refined = ClosedFormBand(erode_size=3).refine(Image.fromarray(sample.image), coarse)
    assert refined.shape == coarse.shape and refined.dtype == np.uint8
    certain = (coarse == 255) | (coarse == 0)
    assert (refined[certain] == coarse[certain]).mean() > 0.9
    assert not np.array_equal(refined, coarse)
