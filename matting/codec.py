"""Decoding what users send and encoding what they get back, written once for every process.

Everything a user can throw at the service goes through :func:`decode_image`, which either returns
an 8-bit RGB image (EXIF orientation applied, first frame of an animation) or raises
:class:`ImageError` with a message meant for the person who sent the file: our words, never the
decoder library's. Only the formats the README names are decoded (SUPPORTED_FORMATS); an image the
asked output format cannot hold is refused as well (WebP: at most 16383 pixels a side).
"""

from __future__ import annotations

import io
import os
import warnings

import imagecodecs
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Largest accepted image, in pixels (w × h). 12-megapixel photos pass; a decompression bomb whose
#: header claims 20000×20000 is refused before any pixel is decoded.
DEFAULT_MAX_PIXELS = int(os.environ.get("CVUNET_MAX_PIXELS", 50_000_000))

#: libpng through imagecodecs with zlib level 1, run-length strategy and the "up" filter writes a
#: 12-megapixel cut-out in 0.16 s where Pillow needs 0.37 s at level 1 and 1.1 s at its default 6,
#: for a file the size of Pillow's level 1. Encoding, not the network, dominates large images.
PNG_SETTINGS = {"level": 1, "strategy": imagecodecs.PNG.STRATEGY.RLE, "filter": imagecodecs.PNG.FILTER.UP}
WEBP_QUALITY = 90
#: Effort 2 of 0-6: about 1.5× faster than the default 4 on large images for a similar size.
WEBP_METHOD = 2
#: libwebp cannot hold an image wider or taller than this.
WEBP_MAX_SIDE = 16383

#: The Pillow decoders tried, and the only ones (README: JPEG, PNG, WebP, BMP, TIFF, GIF; a phone's
#: multi-picture JPEG opens as MPO through the JPEG decoder). PPM, PSD, EPS… are refused.
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
SUPPORTED_NAMES = "JPEG, PNG, WebP, BMP, TIFF or GIF"


class ImageError(ValueError):
    """The input is not an image we can process; the message says why, for the end user."""


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The image's header, parsed and checked (supported format, size within ``max_pixels``); no pixel
    is decoded. Raises ImageError for empty, unknown, unreadable or oversized data."""
    if not data:
        raise ImageError("empty input: the file has 0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError:
        raise ImageError(f"not a supported image: send {SUPPORTED_NAMES}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("image too large: its header declares more pixels than allowed") from None
    except Exception:  # noqa: BLE001 - whatever the decoder trips over in a header is the file's fault
        raise ImageError("unreadable image header: the file is damaged, cut short or carries oversized metadata") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"invalid image size {width}×{height}")
    if width * height > max_pixels:
        raise ImageError(
            f"image too large: {width}×{height} = {width * height / 1e6:.1f} megapixels, "
            f"the limit is {max_pixels / 1e6:.1f} megapixels"
        )
    return image


def check_encodable(size: tuple[int, int], format: str) -> None:
    """Refuse an image of ``size`` that ``format`` (a matting.options.FORMATS value) cannot hold."""
    width, height = size
    if format == "webp" and max(width, height) > WEBP_MAX_SIDE:
        raise ImageError(f"{width}×{height} is too large for WebP, which holds at most {WEBP_MAX_SIDE} pixels a side: "
                         f"ask for format=png")


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: tuple[int, int] | None = None,
                 output_format: str | None = None) -> Image.Image:
    """Decode encoded image bytes into an upright 8-bit RGB image.

    Handles EXIF rotation, CMYK, 16-bit, grayscale, palette, alpha and animated inputs (first
    frame). Raises ImageError for empty, unknown, truncated or oversized data, and, given the
    ``output_format`` the result will be encoded in, for an image that format cannot hold, before
    any pixel is decoded. With ``draft_size`` a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (in the
    DCT, so 4–8× faster) as long as the result stays at least that size: enough for a network input
    or a preview, never for the output.
    """
    image = open_image(data, max_pixels)
    if output_format:
        check_encodable(image.size, output_format)
    try:
        image.seek(0)
        if draft_size and image.format in ("JPEG", "MPO"):
            image.draft(image.mode, draft_size)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
    except MemoryError:
        raise  # the server's trouble (within the pixel limit), not the file's
    except Exception:  # noqa: BLE001 - whatever the decoder trips over in the pixels is the file's fault
        raise ImageError(f"truncated or corrupt image data: the {image.format} file is damaged or cut short") from None
    return _to_rgb8(image)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The size the header declares, without decoding pixels; None when the header is unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001 - an unreadable header is exactly what failed jobs often have
        return None


def _to_rgb8(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling high-bit-depth data instead of clipping it."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(np.rint(values * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def encode_image(image: Image.Image, format: str) -> bytes:
    """Encode to PNG (lossless, fast settings) or WebP (lossy colour, kept alpha); ``format`` is a
    validated matting.options.FORMATS value. An image the format cannot hold raises ImageError."""
    check_encodable(image.size, format)
    if format == "png":
        pixels = np.asarray(image)
        return imagecodecs.png_encode(pixels, out=_png_size_bound(pixels), **PNG_SETTINGS)
    if format == "webp":
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
        return buffer.getvalue()
    raise ValueError(f"no encoder for {format!r}")


def _png_size_bound(pixels: np.ndarray) -> int:
    """Room for any PNG of ``pixels``: imagecodecs' own estimate is too small for tall, narrow,
    incompressible images (a 1×1000 noisy matte fails with "output stream too small"). The bound is
    zlib's worst case on the filtered rows plus the chunk overheads; allocating it costs nothing measurable."""
    rows = pixels.shape[0]
    raw = rows * (1 + pixels.size // rows)  # each row: the filter byte, then the pixels
    return raw + raw // 1000 + 12 * (raw // 8192 + 2) + 1024
