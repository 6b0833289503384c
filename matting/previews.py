"""Small PNGs for showing a result on a page: the browser never needs a 12-megapixel image for a panel."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from matting.codec import decode_image, encode_image

PREVIEW_BOX = (1200, 1200)
THUMBNAIL_BOX = (160, 160)
CHECKER_SQUARE = 16


def over_checkerboard(image: Image.Image) -> Image.Image:
    """The image over light and dark grey squares, so transparency is visible on any page colour."""
    rgba = image.convert("RGBA")
    rows, columns = np.indices((rgba.height, rgba.width))
    light = (rows // CHECKER_SQUARE + columns // CHECKER_SQUARE) % 2 == 0
    board = Image.fromarray(np.where(light, 255, 204).astype(np.uint8), mode="L").convert("RGBA")
    return Image.alpha_composite(board, rgba).convert("RGB")


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


def matte_png(alpha: np.ndarray) -> bytes:
    """The full-size uint8 matte as a PNG, for download."""
    return encode_image(Image.fromarray(alpha, mode="L"), "png")


def result_previews(photo: bytes, result: bytes, alpha: np.ndarray) -> dict[str, bytes]:
    """Downscaled PNGs of a finished job: "checkerboard" (the result over a checkerboard), "alpha",
    "original" (upright, decoded at reduced scale where the format allows) and "result"; plus
    "thumbnail" for the history."""
    with Image.open(io.BytesIO(result)) as decoded:
        result_image = _downscaled(decoded)
    original = decode_image(photo, draft_size=PREVIEW_BOX)
    return {
        "checkerboard": encode_image(over_checkerboard(result_image), "png"),
        "alpha": encode_image(_downscaled(Image.fromarray(alpha, mode="L")), "png"),
        "original": encode_image(_downscaled(original), "png"),
        "result": encode_image(result_image, "png"),
        "thumbnail": thumbnail_png(result_image),
    }
