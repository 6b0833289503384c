"""Image decoding, composition and encoding, written once for the Triton steps, clients and tests.

Everything a user can throw at the service goes through :func:`decode_image`, which either returns
an 8-bit RGB image (EXIF orientation applied, first frame of an animation) or raises
:class:`ImageError` with a message meant for the person who sent the file.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import imagecodecs
import numpy as np
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

#: Largest accepted image, in pixels (w × h). 12-megapixel photos pass; a decompression bomb whose
#: header claims 20000×20000 is refused before any pixel is decoded.
DEFAULT_MAX_PIXELS = int(os.environ.get("CVUNET_MAX_PIXELS", 50_000_000))

OUTPUT_KINDS = ("rgba", "alpha", "composite")
OUTPUT_FORMATS = ("png", "webp")
FOREGROUND_MODES = ("original", "estimate")
#: How the network's low-resolution matte becomes full size (cvunet.refine.full_resolution_matte):
#: plain LANCZOS (rembg's way), the guided filter, the closed-form band, or the project-trained
#: refiner (served by the ``matting_refined`` ensemble).
REFINE_MODES = ("none", "guided", "closed-form", "refiner")
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp"}

#: libpng through imagecodecs with zlib level 1, run-length strategy and the "up" filter writes a
#: 12-megapixel cut-out in 0.16 s where Pillow needs 0.37 s at level 1 and 1.1 s at its default 6,
#: for a file the size of Pillow's level 1. Encoding, not the network, dominates large images.
PNG_SETTINGS = {"level": 1, "strategy": imagecodecs.PNG.STRATEGY.RLE, "filter": imagecodecs.PNG.FILTER.UP}
WEBP_QUALITY = 90
#: Effort 2 of 0-6: about 1.5× faster than the default 4 on large images for a similar size.
WEBP_METHOD = 2


class ImageError(ValueError):
    """The input is not an image we can process; the message says why, for the end user."""


class OptionsError(ValueError):
    """A per-request output option is invalid; the message names the option and allowed values."""


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode encoded image bytes into an upright 8-bit RGB image.

    Handles EXIF rotation, CMYK, 16-bit, grayscale, palette, alpha and animated inputs (first
    frame). Raises ImageError for empty, unknown, truncated or oversized data. With ``draft_size``
    a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (in the DCT, so 4–8× faster) as long as the
    result stays at least that size: enough for a network input, never for the output.
    """
    if not data:
        raise ImageError("empty input: the file has 0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError("not a supported image: the data is not JPEG, PNG, WebP, BMP, TIFF or GIF") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("image too large: its header declares more pixels than allowed") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"unreadable image header: {exc}") from None

    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"invalid image size {width}×{height}")
    if width * height > max_pixels:
        raise ImageError(
            f"image too large: {width}×{height} = {width * height / 1e6:.1f} megapixels, "
            f"the limit is {max_pixels / 1e6:.1f} megapixels"
        )
    try:
        image.seek(0)
        if draft_size and image.format == "JPEG":
            image.draft(image.mode, draft_size)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"truncated or corrupt image data ({image.format}): {exc}") from None
    return _to_rgb8(image)


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


@dataclass(frozen=True)
class OutputOptions:
    """What the caller wants back: the cut-out, the matte alone, or a composite on a colour."""

    kind: str = "rgba"
    format: str = "png"
    bg_color: tuple[int, int, int] = (255, 255, 255)
    #: "original": the photo's colours; "estimate": foreground colours estimated from the matte, which
    #: removes the background's colour bleeding into hair and soft edges (costs ~2 s at 12 MP).
    foreground: str = "original"
    #: One of REFINE_MODES; the default is the best variant measured by ``make quality`` (README).
    refine: str = "none"

    @classmethod
    def parse(cls, kind: str | None = None, format: str | None = None, bg_color: str | None = None,
              foreground: str | None = None, refine: str | None = None) -> OutputOptions:
        """Validate user-supplied strings; empty or None means the default."""
        kind = (kind or cls.kind).strip().lower()
        format = (format or cls.format).strip().lower()
        foreground = (foreground or cls.foreground).strip().lower()
        refine = (refine or cls.refine).strip().lower()
        if kind not in OUTPUT_KINDS:
            raise OptionsError(f"kind must be one of {', '.join(OUTPUT_KINDS)}, not {kind!r}")
        if format not in OUTPUT_FORMATS:
            raise OptionsError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {format!r}")
        if foreground not in FOREGROUND_MODES:
            raise OptionsError(f"foreground must be one of {', '.join(FOREGROUND_MODES)}, not {foreground!r}")
        if refine not in REFINE_MODES:
            raise OptionsError(f"refine must be one of {', '.join(REFINE_MODES)}, not {refine!r}")
        color = parse_color(bg_color) if bg_color else cls.bg_color
        return cls(kind=kind, format=format, bg_color=color, foreground=foreground, refine=refine)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def bg_color_hex(self) -> str:
        return "#%02x%02x%02x" % self.bg_color


def parse_color(text: str) -> tuple[int, int, int]:
    """Parse '#RRGGBB', a CSS colour name or 'R,G,B' into an RGB triple."""
    text = text.strip()
    if "," in text and not text.lower().startswith(("rgb", "hsl", "hsv")):
        text = f"rgb({text})"
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise OptionsError(f"bg_color {text!r} is not a colour: use '#RRGGBB', a name like 'white' or 'R,G,B'") from None


def compose(image: Image.Image, alpha: np.ndarray, options: OutputOptions) -> Image.Image:
    """Build the requested output from the RGB image and its uint8 matte (same size)."""
    matte = Image.fromarray(alpha, mode="L")
    if matte.size != image.size:
        raise ValueError(f"matte size {matte.size} does not match image size {image.size}")
    if options.kind == "alpha":
        return matte
    if options.foreground == "estimate":
        from cvunet.refine import estimate_foreground  # pymatting/numba: loaded only when asked for

        image = estimate_foreground(image, alpha)
    if options.kind == "composite":
        result = Image.new("RGB", image.size, options.bg_color)
        result.paste(image, mask=matte)
        return result
    # Invisible pixels carry no colour: black them out so PNG compresses them to almost nothing
    # (a typical cut-out is 3× smaller and encodes 1.5× faster); visible pixels keep their colour.
    visible = matte.point(lambda value: 255 if value else 0)
    cutout = Image.composite(image, Image.new("RGB", image.size), visible)
    cutout.putalpha(matte)
    return cutout


def composite_over_image(image: Image.Image, alpha: np.ndarray, background: Image.Image) -> Image.Image:
    """Place the cut-out on a background picture scaled to cover the photo and centre-cropped.

    Covering (rather than fitting) leaves no bars, and the result keeps the photo's size, so it can be
    encoded like any other output.
    """
    matte = Image.fromarray(alpha, mode="L")
    if matte.size != image.size:
        raise ValueError(f"matte size {matte.size} does not match image size {image.size}")
    result = ImageOps.fit(background.convert("RGB"), image.size, Image.LANCZOS)
    result.paste(image.convert("RGB"), mask=matte)
    return result


def encode_image(image: Image.Image, format: str) -> bytes:
    """Encode to PNG (lossless, fast settings) or WebP (lossy colour, kept alpha)."""
    if format == "png":
        return imagecodecs.png_encode(np.asarray(image), **PNG_SETTINGS)
    if format == "webp":
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
        return buffer.getvalue()
    raise OptionsError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {format!r}")
