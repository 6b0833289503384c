"""Small PNGs for showing a result on a page: the browser never needs a 12-megapixel image for a panel."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

from matting.codec import decode_image, encode_image

PREVIEW_BOX = (1200, 1200)
THUMBNAIL_BOX = (160, 160)
CHECKER_SQUARE = 16
#: What a result can be looked at over, besides any "#rrggbb" colour (the one the user picked).
BACKDROPS = ("checkerboard", "white", "black")
BACKDROP_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0)}
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
#: The side of the 100 % crop for checking edges: fits a phone screen, large enough to follow hair.
ACTUAL_PIXELS_BOX = 400


def over_checkerboard(image: Image.Image) -> Image.Image:
    """The image over light and dark grey squares, so transparency is visible on any page colour."""
    rgba = image.convert("RGBA")
    rows, columns = np.indices((rgba.height, rgba.width))
    light = (rows // CHECKER_SQUARE + columns // CHECKER_SQUARE) % 2 == 0
    board = Image.fromarray(np.where(light, 255, 204).astype(np.uint8), mode="L").convert("RGBA")
    return Image.alpha_composite(board, rgba).convert("RGB")


def on_backdrop(image: Image.Image, backdrop: str) -> Image.Image:
    """The image (transparency and all) over one of BACKDROPS or a "#rrggbb" colour, as RGB: a cut-out
    seen on white, on black and on the checkerboard shows different edge faults."""
    if backdrop == "checkerboard":
        return over_checkerboard(image)
    if backdrop in BACKDROP_COLOURS:
        colour = BACKDROP_COLOURS[backdrop]
    elif HEX_COLOUR.fullmatch(backdrop):
        colour = tuple(int(backdrop[start:start + 2], 16) for start in (1, 3, 5))
    else:
        raise ValueError(f"backdrop must be one of {', '.join(BACKDROPS)} or a #rrggbb colour, not {backdrop!r}")
    return Image.alpha_composite(Image.new("RGBA", image.size, colour + (255,)), image.convert("RGBA")).convert("RGB")


def actual_pixels(image: Image.Image, centre: tuple[float, float], box: int = ACTUAL_PIXELS_BOX) -> Image.Image:
    """A box×box crop at 100 % (smaller along a side the image is smaller on) around ``centre``, given
    as (x, y) fractions of the width and height, moved inside the image where it would cross an edge."""
    if box < 1:
        raise ValueError(f"box must be at least 1 pixel, not {box}")
    width, height = min(box, image.width), min(box, image.height)
    left = min(max(round(centre[0] * image.width - width / 2), 0), image.width - width)
    top = min(max(round(centre[1] * image.height - height / 2), 0), image.height - height)
    return image.crop((left, top, left + width, top + height))


def _downscaled(image: Image.Image, box: tuple[int, int] = PREVIEW_BOX) -> Image.Image:
    preview = image.copy()
    preview.thumbnail(box)
    return preview


def thumbnail_png(image: Image.Image) -> bytes:
    """A thumbnail small enough to store in a history row."""
    buffer = io.BytesIO()
    _downscaled(image, THUMBNAIL_BOX).save(buffer, "PNG")
    return buffer.getvalue()


def thumbnail_of_file(path: Path) -> bytes:
    with Image.open(path) as image:
        return thumbnail_png(image)


def visible_thumbnail_of_file(path: Path) -> bytes:
    """A thumbnail of an image file, a transparent one over a checkerboard (else it melts into the page)."""
    with Image.open(path) as image:
        small = _downscaled(image, THUMBNAIL_BOX)
    if small.mode in ("RGBA", "LA", "PA") or "transparency" in small.info:
        small = over_checkerboard(small)
    return encode_image(small.convert("RGB") if small.mode not in ("RGB", "L") else small, "png")


def matte_png(alpha: np.ndarray) -> bytes:
    """The full-size uint8 matte as a PNG, for download."""
    return encode_image(Image.fromarray(alpha, mode="L"), "png")


def result_previews(photo: bytes, result: Image.Image) -> dict[str, bytes]:
    """Downscaled PNGs of a finished job: "original" (upright, decoded at reduced scale where the format
    allows) and "result" for the page, "thumbnail" for the history."""
    result_image = _downscaled(result)
    original = decode_image(photo, draft_size=PREVIEW_BOX)
    return {
        "original": encode_image(_downscaled(original), "png"),
        "result": encode_image(result_image, "png"),
        "thumbnail": thumbnail_png(result_image),
    }
