"""The result view's pictures: a cut-out over each backdrop, and the 100 % crop for checking edges."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from matting.previews import THUMBNAIL_BOX, BACKDROPS, actual_pixels, on_backdrop, over_checkerboard, visible_thumbnail_of_file

RED = (200, 30, 30)


def half_cutout(width: int = 64, height: int = 48) -> Image.Image:
    """Opaque red on the left half, transparent on the right, one half-transparent column between."""
    pixels = np.zeros((height, width, 4), dtype=np.uint8)
    pixels[:, : width // 2] = RED + (255,)
    pixels[:, width // 2] = RED + (128,)
    return Image.fromarray(pixels, mode="RGBA")


def positions(width: int, height: int) -> Image.Image:
    """Each pixel says where it is: R = x mod 256, G = y mod 256, B = x // 256 + 16 * (y // 256)."""
    rows, columns = np.indices((height, width))
    pixels = np.stack([columns % 256, rows % 256, columns // 256 + 16 * (rows // 256)], axis=2)
    return Image.fromarray(pixels.astype(np.uint8), mode="RGB")


def top_left_of(crop: Image.Image) -> tuple[int, int]:
    red, green, blue = crop.getpixel((0, 0))
    return red + 256 * (blue % 16), green + 256 * (blue // 16)


@pytest.mark.parametrize(
    ("backdrop", "colour"),
    [("white", (255, 255, 255)), ("black", (0, 0, 0)), ("#FF8000", (255, 128, 0)), ("#00a0ff", (0, 160, 255))],
)
def test_transparent_pixels_show_the_backdrop_colour(backdrop, colour):
    shown = on_backdrop(half_cutout(), backdrop)

    assert shown.mode == "RGB" and shown.size == (64, 48)
    pixels = np.asarray(shown).astype(int)
    assert (pixels[:, :32] == RED).all(), "opaque pixels keep their colour"
    assert (pixels[:, 33:] == colour).all()
    assert np.abs(pixels[:, 32] - (np.add(RED, colour) / 2)).max() <= 1, "half transparent: half and half"


def test_the_checkerboard_backdrop_is_the_checkerboard_preview():
    image = half_cutout()

    assert np.array_equal(np.asarray(on_backdrop(image, "checkerboard")), np.asarray(over_checkerboard(image)))


def test_every_named_backdrop_is_accepted():
    assert [on_backdrop(half_cutout(), backdrop).size for backdrop in BACKDROPS] == [(64, 48)] * len(BACKDROPS)


def test_an_opaque_image_shows_no_backdrop():
    photo = positions(40, 30)

    assert np.array_equal(np.asarray(on_backdrop(photo, "black")), np.asarray(photo))


@pytest.mark.parametrize("backdrop", ["grey", "#fff", "#12345g", "ff8000", "", "#ff800000"])
def test_an_unknown_backdrop_is_refused(backdrop):
    with pytest.raises(ValueError, match="backdrop"):
        on_backdrop(half_cutout(), backdrop)


@pytest.mark.parametrize(
    ("centre", "top_left"),
    [
        ((0.5, 0.5), (300, 200)),
        ((0.3, 0.6), (100, 280)),
        ((0.0, 0.0), (0, 0)),
        ((1.0, 1.0), (600, 400)),
        ((0.05, 0.95), (0, 400)),
    ],
    ids=["middle", "inside", "top-left-corner", "bottom-right-corner", "bottom-left-edge"],
)
def test_actual_pixels_crops_at_full_size_around_the_point_kept_inside(centre, top_left):
    image = positions(1000, 800)

    crop = actual_pixels(image, centre)

    assert crop.size == (400, 400)
    assert top_left_of(crop) == top_left
    left, top = top_left
    assert np.array_equal(np.asarray(crop), np.asarray(image)[top:top + 400, left:left + 400]), "100 %: not scaled"


def test_actual_pixels_of_a_smaller_image_is_the_whole_image_along_the_short_side():
    image = positions(300, 900)

    crop = actual_pixels(image, (0.5, 0.5), box=400)

    assert crop.size == (300, 400)
    assert top_left_of(crop) == (0, 250)


def test_actual_pixels_keeps_the_transparency():
    crop = actual_pixels(half_cutout(), (0.5, 0.5), box=10)

    assert crop.mode == "RGBA" and crop.size == (10, 10)
    assert crop.getpixel((0, 0)) == RED + (255,) and crop.getpixel((9, 0))[3] == 0


def test_an_empty_box_is_refused():
    with pytest.raises(ValueError, match="box"):
        actual_pixels(positions(20, 20), (0.5, 0.5), box=0)


def test_visible_thumbnail_puts_a_transparent_file_over_a_checkerboard(tmp_path):
    transparent, opaque = tmp_path / "cutout.png", tmp_path / "photo.jpg"
    Image.new("RGBA", (640, 320), (255, 0, 0, 0)).save(transparent)
    Image.new("RGB", (320, 640), (0, 0, 255)).save(opaque)
    board = Image.open(io.BytesIO(visible_thumbnail_of_file(transparent)))
    photo = Image.open(io.BytesIO(visible_thumbnail_of_file(opaque)))
    assert board.mode == "RGB" and max(board.size) == THUMBNAIL_BOX[0]
    assert {board.getpixel((0, 0)), board.getpixel((20, 0))} == {(255, 255, 255), (204, 204, 204)}, "the checkerboard shows"
    assert photo.getpixel((5, 5))[2] > 200 and max(photo.size) == THUMBNAIL_BOX[1]
