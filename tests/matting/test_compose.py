"""The one compose path: cut-out, matte, composite over a colour or a background picture, and
foreground estimation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cvunet.synthetic import HELD_OUT_SEEDS, synthetic_sample
from matting.compose import compose, estimate_foreground
from matting.options import OutputOptions

RED, BLUE = (220, 20, 20), (20, 20, 220)
COMPOSITE = OutputOptions(kind="composite")


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

    result = compose(photo, half_matte(160, 120), COMPOSITE, background)

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

    result = compose(photo, np.zeros((100, 100), dtype=np.uint8), COMPOSITE, Image.fromarray(background))

    assert (np.asarray(result) == BLUE).all()


def test_partial_alpha_blends_and_background_modes_are_converted():
    photo = Image.new("RGB", (10, 10), (200, 200, 200))
    background = Image.new("RGBA", (10, 10), (0, 0, 0, 0))

    result = compose(photo, np.full((10, 10), 128, dtype=np.uint8), COMPOSITE, background)

    assert result.mode == "RGB"
    assert np.allclose(np.asarray(result, dtype=int), 100, atol=1)


def test_matte_of_another_size_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        compose(Image.new("RGB", (10, 10)), np.zeros((5, 5), dtype=np.uint8), COMPOSITE, Image.new("RGB", (10, 10)))


def test_compose_kinds():
    image = Image.new("RGB", (4, 2), (200, 100, 50))
    alpha = np.array([[0, 255, 128, 0], [255, 255, 0, 0]], dtype=np.uint8)
    rgba = np.asarray(compose(image, alpha, OutputOptions.parse("rgba")))
    assert rgba.shape == (2, 4, 4) and (rgba[..., 3] == alpha).all()
    assert (rgba[alpha > 0, :3] == (200, 100, 50)).all(), "visible pixels keep the original colour"
    assert (rgba[alpha == 0, :3] == 0).all(), "invisible pixels are blacked out for compression"
    matte = compose(image, alpha, OutputOptions.parse("alpha"))
    assert matte.mode == "L" and (np.asarray(matte) == alpha).all()
    composite = np.asarray(compose(image, alpha, OutputOptions.parse("composite", bg_color="#00ff00")))
    assert tuple(composite[0, 0]) == (0, 255, 0) and tuple(composite[0, 1]) == (200, 100, 50)


def test_compose_refuses_mismatched_matte():
    with pytest.raises(ValueError, match="does not match"):
        compose(Image.new("RGB", (4, 4)), np.zeros((2, 2), np.uint8), OutputOptions())


def test_foreground_estimate_removes_background_colour_from_soft_edges():
    sample = synthetic_sample(HELD_OUT_SEEDS[1], 128)
    matte = (sample.alpha * 255).astype(np.uint8)
    band = (sample.alpha > 0.05) & (sample.alpha < 0.95)
    estimated = np.asarray(estimate_foreground(Image.fromarray(sample.image), matte)).astype(float)
    assert np.abs(estimated - sample.foreground)[band].mean() < 0.7 * np.abs(sample.image.astype(float) - sample.foreground)[band].mean()


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (1, 2)])
def test_foreground_estimate_serves_the_tiniest_images(size):
    """pymatting divides by zero on a single pixel; that pixel keeps its colour, and two pixels are estimated."""
    photo = Image.new("RGB", size, RED)
    alpha = np.full(size[::-1], 128, dtype=np.uint8)
    result = compose(photo, alpha, OutputOptions(kind="composite", foreground="estimate"))
    assert result.size == size
    if size == (1, 1):
        assert result.getpixel((0, 0)) == compose(photo, alpha, COMPOSITE).getpixel((0, 0)), "the photo's colour, kept"
