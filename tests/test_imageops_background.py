"""Compositing a cut-out over a background picture (the dashboard's "background image" option)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cvunet.imageops import composite_over_image

RED, BLUE = (220, 20, 20), (20, 20, 220)


def half_matte(width: int, height: int) -> np.ndarray:
    """Opaque on the left half, transparent on the right."""
    alpha = np.zeros((height, width), dtype=np.uint8)
    alpha[:, : width // 2] = 255
    return alpha


@pytest.mark.parametrize("background_size", [(40, 30), (800, 100), (100, 800), (160, 120)],
                         ids=["smaller", "wider", "taller", "same"])
def test_background_is_scaled_to_cover_the_photo(background_size):
    photo = Image.new("RGB", (160, 120), RED)
    background = Image.new("RGB", background_size, BLUE)

    result = composite_over_image(photo, half_matte(160, 120), background)

    assert result.mode == "RGB" and result.size == (160, 120)
    pixels = np.asarray(result)
    assert (pixels[:, :80] == RED).all(), "opaque pixels keep the photo"
    assert (pixels[:, 80:] == BLUE).all(), "transparent pixels show the background, with no bars"


def test_covering_crops_the_centre_of_a_wider_background():
    background = np.zeros((100, 300, 3), dtype=np.uint8)
    background[:, :100] = RED
    background[:, 100:200] = BLUE
    background[:, 200:] = RED
    photo = Image.new("RGB", (100, 100), (0, 0, 0))

    result = composite_over_image(photo, np.zeros((100, 100), dtype=np.uint8), Image.fromarray(background))

    assert (np.asarray(result) == BLUE).all()


def test_partial_alpha_blends_and_background_modes_are_converted():
    photo = Image.new("RGB", (10, 10), (200, 200, 200))
    background = Image.new("RGBA", (10, 10), (0, 0, 0, 0))

    result = composite_over_image(photo, np.full((10, 10), 128, dtype=np.uint8), background)

    assert result.mode == "RGB"
    assert np.allclose(np.asarray(result, dtype=int), 100, atol=1)


def test_matte_of_another_size_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        composite_over_image(Image.new("RGB", (10, 10)), np.zeros((5, 5), dtype=np.uint8), Image.new("RGB", (10, 10)))
