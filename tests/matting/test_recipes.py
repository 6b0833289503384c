"""Recipes: what the dashboard makes from a served cut-out (pure logic on synthetic cut-outs)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from matting.codec import encode_image
from matting.layouts import IdPhotoLayout, ProductLayout
from matting.options import OptionsError
from matting.recipes import FORMATS, MODES, Recipe, RecipeError


def served_cutout(size=(120, 90)) -> bytes:
    """A red disc on transparency, as the server returns a cut-out (PNG)."""
    rows, columns = np.indices(size[::-1])
    alpha = (((rows - size[1] / 2) ** 2 + (columns - size[0] / 2) ** 2) < (size[1] / 3) ** 2).astype(np.uint8) * 255
    pixels = np.dstack([np.full_like(alpha, 220), np.zeros_like(alpha), np.zeros_like(alpha), alpha])
    return encode_image(Image.fromarray(pixels, mode="RGBA"), "png")


def made(recipe: Recipe) -> Image.Image:
    return Image.open(io.BytesIO(recipe.finish(served_cutout())))


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_asks_the_server_only_for_the_cut_out(mode):
    background = encode_image(Image.new("RGB", (10, 10), (0, 0, 255)), "png") if mode == "image" else None
    options = Recipe(mode, FORMATS[mode][0], "u2netp", True, background=background).request_options()
    assert (options.kind, options.format, options.model, options.foreground) == ("rgba", "png", "u2netp", "estimate")


def test_transparent_keeps_the_matte_and_colour_and_image_fill_the_background():
    transparent = made(Recipe("transparent", "webp"))
    assert (transparent.format, transparent.mode, transparent.getpixel((0, 0))[3]) == ("WEBP", "RGBA", 0)
    coloured = made(Recipe("color", "jpeg", bg_color="#00ff00"))
    assert coloured.format == "JPEG" and coloured.getpixel((0, 0))[1] > 240 and coloured.getpixel((60, 45))[0] > 200
    background = encode_image(Image.new("RGB", (10, 10), (0, 0, 255)), "png")
    pictured = made(Recipe("image", "png", background=background, background_name="blue.png"))
    assert pictured.mode == "RGB" and pictured.getpixel((0, 0)) == (0, 0, 255)


def test_layouts_have_their_sizes_and_dpi():
    product = made(Recipe("product", "jpeg", product=ProductLayout(1200, 0.1, True)))
    assert product.size == (1200, 1200) and product.info["dpi"] == pytest.approx((300, 300))
    id_photo = made(Recipe("id", "png", id_photo=IdPhotoLayout("2inch", "red")))
    assert id_photo.size == (413, 579) and id_photo.getpixel((0, 0))[:3] == (255, 0, 0)


@pytest.mark.parametrize(("values", "error"), [
    ({"mode": "sideways"}, RecipeError),
    ({"mode": "transparent", "format": "jpeg"}, RecipeError),
    ({"mode": "product", "format": "webp"}, RecipeError),
    ({"mode": "image", "format": "png"}, RecipeError),
    ({"mode": "color", "format": "png", "bg_color": "not a colour"}, OptionsError),
])
def test_impossible_recipes_are_refused(values, error):
    with pytest.raises(error):
        Recipe(**values)


def test_history_names_only_what_the_mode_uses():
    assert Recipe().for_history() == {"output": "transparent", "format": "png"}
    assert Recipe("product", "jpeg", "u2net", bg_color="#ffffff").for_history() == {
        "output": "product", "format": "jpeg", "model": "u2net", "bg_color": "#ffffff", "product_side": 800,
        "padding": 0.08, "shadow": False}
    assert Recipe("id", "png").for_history() == {"output": "id", "format": "png", "id_size": "1inch", "id_background": "blue"}
