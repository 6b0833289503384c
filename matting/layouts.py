"""Photos people order: the white product shot and the ID photo, laid out from a cut-out.

Both start from the served RGBA cut-out (full resolution, A = the matte): the subject is found in the
matte, scaled once with LANCZOS straight from the full-size cut-out to its place on the canvas, and put
on the background colour through :func:`matting.compose.compose`, the one compose path.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from matting.compose import compose
from matting.options import OutputOptions

#: Print resolution of the ID sizes, written into every encoded photo.
DPI = 300
#: Square sides shops upload as main images (Taobao, JD, Pinduoduo ask for 800 px or more).
PRODUCT_SIDES = (800, 1200)
#: 1寸 25×35 mm, 2寸 35×49 mm, 小一寸 22×32 mm, in pixels at 300 dpi (width, height).
ID_SIZES = {"1inch": (295, 413), "2inch": (413, 579), "small1inch": (260, 378)}
#: The colours Chinese ID photo services fill with: 证件蓝 #438EDB, 红底 #FF0000, white.
ID_BACKGROUNDS = {"blue": (67, 142, 219), "red": (255, 0, 0), "white": (255, 255, 255)}
PHOTO_FORMATS = ("jpeg", "png")
#: Quality 95 with 4:4:4 chroma: a print shop gets no visible JPEG loss and no colour bleeding at the
#: sharp edge between the subject and a saturated ID background.
JPEG_QUALITY = 95

#: The widest padding a product photo accepts: at 0.4 the subject still gets a fifth of the side.
MAX_PADDING = 0.4
#: The darkest point of the product's contact shadow (opacity over the background).
SHADOW_OPACITY = 0.35
#: Shadow ellipse: width relative to the subject's base, height relative to the ellipse width.
SHADOW_WIDTH = 1.1
SHADOW_FLATNESS = 0.12
#: The base the shadow sits under: the subject's lowest rows, as a fraction of its height.
SHADOW_BASE_ROWS = 0.03

#: ID framing (the usual Chinese guidance): head top 7–10 % of the height below the upper edge, head
#: from top to chin 50–60 % of the height.
HEAD_TOP = 0.085
HEAD_HEIGHT = 0.55
#: Without a recognisable head (no narrow part above wider shoulders): the subject's width takes this
#: share of the photo's width, its top FALLBACK_TOP of the height below the upper edge.
FALLBACK_WIDTH = 0.7
FALLBACK_TOP = 0.08
#: A neck: rows at most this share of the head's width (its widest row) below the head.
NECK_NARROWING = 0.9
#: Shoulders: the first row below a neck this much wider than the head.
SHOULDER_GROWTH = 1.3
#: A plausible head is this many times as tall (top to chin) as it is wide; a narrowing and widening
#: out of these proportions (a hair tuft, a bottle's cap) is not the neck and the scan goes on.
HEAD_ASPECT = (0.6, 2.5)
#: Row widths are smoothed over this share of the subject's height, so a ragged edge makes no neck.
WIDTH_SMOOTHING = 0.01
#: The matte value from which a pixel belongs to the subject when finding and measuring it.
SUBJECT_THRESHOLD = 128


class LayoutError(ValueError):
    """The cut-out cannot be laid out (its matte holds no subject); the message is for engineers."""


@dataclass(frozen=True)
class ProductLayout:
    """A square product shot: the subject centred, ``padding`` (share of the side) free on each side."""

    side: int = 800
    padding: float = 0.08
    shadow: bool = False
    background: tuple[int, int, int] = (255, 255, 255)

    def __post_init__(self) -> None:
        if self.side not in PRODUCT_SIDES:
            raise ValueError(f"side must be one of {PRODUCT_SIDES}, not {self.side!r}")
        if not 0 <= self.padding <= MAX_PADDING:
            raise ValueError(f"padding must be between 0 and {MAX_PADDING}, not {self.padding!r}")
        _check_colour(self.background)


@dataclass(frozen=True)
class IdPhotoLayout:
    """An ID photo: one of ID_SIZES on one of ID_BACKGROUNDS, head and shoulders."""

    size: str = "1inch"
    background: str = "blue"

    def __post_init__(self) -> None:
        if self.size not in ID_SIZES:
            raise ValueError(f"size must be one of {', '.join(ID_SIZES)}, not {self.size!r}")
        if self.background not in ID_BACKGROUNDS:
            raise ValueError(f"background must be one of {', '.join(ID_BACKGROUNDS)}, not {self.background!r}")


def _check_colour(colour: tuple[int, int, int]) -> None:
    if not (isinstance(colour, tuple) and len(colour) == 3
            and all(isinstance(value, int) and 0 <= value <= 255 for value in colour)):
        raise ValueError(f"background must be an (r, g, b) tuple of integers 0-255, not {colour!r}")


def subject_box(alpha: np.ndarray, threshold: int = SUBJECT_THRESHOLD) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the pixels at least ``threshold`` opaque, right and bottom
    exclusive like a Pillow crop box; None when there are none."""
    subject = np.asarray(alpha) >= threshold
    rows = np.flatnonzero(subject.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(subject.any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def product_photo(cutout: Image.Image, layout: ProductLayout) -> Image.Image:
    """The subject scaled to fit inside the padding, centred on the background colour, over its contact
    shadow if asked; RGB, side×side."""
    alpha = _matte(cutout)
    left, top, right, bottom = _subject_box(alpha)
    inner = layout.side * (1 - 2 * layout.padding)
    scale = inner / max(right - left, bottom - top)
    centre = layout.side / 2
    offset = (centre - (left + right) / 2 * scale, centre - (top + bottom) / 2 * scale)
    placed = _placed(cutout, scale, offset, (layout.side, layout.side))
    backdrop = Image.new("RGB", placed.size, layout.background)
    if layout.shadow:
        backdrop = _with_contact_shadow(backdrop, alpha, (left, top, right, bottom), scale, offset)
    return _composed(placed, backdrop)


def id_photo(cutout: Image.Image, layout: IdPhotoLayout) -> Image.Image:
    """Head and shoulders on the ID background colour; RGB, exactly ID_SIZES[layout.size].

    The head is the narrow part above the shoulders: scaled so top to chin takes HEAD_HEIGHT of the
    height, its top HEAD_TOP below the upper edge, centred across. A subject without one (a blob, hair
    down to the shoulders hiding the neck) gets the FALLBACK_WIDTH framing instead."""
    alpha = _matte(cutout)
    box = _subject_box(alpha)
    width, height = ID_SIZES[layout.size]
    head = _head(alpha >= SUBJECT_THRESHOLD, box)
    if head is not None:
        head_top, chin, head_centre = head
        scale = HEAD_HEIGHT * height / (chin - head_top)
        offset = (width / 2 - head_centre * scale, HEAD_TOP * height - head_top * scale)
    else:
        left, top, right, _ = box
        scale = FALLBACK_WIDTH * width / (right - left)
        offset = (width / 2 - (left + right) / 2 * scale, FALLBACK_TOP * height - top * scale)
    placed = _placed(cutout, scale, offset, (width, height))
    return _composed(placed, Image.new("RGB", (width, height), ID_BACKGROUNDS[layout.background]))


def encode_photo(image: Image.Image, format: str) -> bytes:
    """The photo as JPEG (quality 95, 4:4:4) or PNG, both marked 300 dpi so it prints at its size."""
    buffer = io.BytesIO()
    if format == "jpeg":
        image.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0, dpi=(DPI, DPI))
    elif format == "png":
        image.save(buffer, "PNG", dpi=(DPI, DPI))
    else:
        raise ValueError(f"format must be one of {', '.join(PHOTO_FORMATS)}, not {format!r}")
    return buffer.getvalue()


def _matte(cutout: Image.Image) -> np.ndarray:
    if cutout.mode != "RGBA":
        raise ValueError(f"a cut-out is an RGBA image, not {cutout.mode}")
    return np.asarray(cutout.getchannel("A"))


def _subject_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    box = subject_box(alpha)
    if box is None:
        raise LayoutError(f"the matte ({alpha.shape[1]}×{alpha.shape[0]}) holds no subject: no pixel is at least half opaque")
    return box


def _head(subject: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, float] | None:
    """(top, chin row, centre column) of the head in the boolean ``subject`` mask, or None when the
    subject has no narrow part (a neck) between a head and wider shoulders, of plausible proportions.

    Scanning down from the top, the widest row so far is the head's width until a row narrows below
    NECK_NARROWING of it; the narrowest row from there is the neck, taken as the chin, until a row
    SHOULDER_GROWTH wider than the head: the shoulders.
    """
    left, top, right, bottom = box
    window = max(1, round(WIDTH_SMOOTHING * (bottom - top)))
    # Sums over the window, in integers: a float mean would make the equal rows of a neck unequal.
    widths = np.convolve(subject[top:bottom, left:right].sum(axis=1), np.ones(window, dtype=int), mode="same")
    widest, neck = 0, None
    for row in range(1, len(widths)):
        if neck is None:
            if widths[row] > widths[widest]:
                widest = row
            elif widths[row] <= NECK_NARROWING * widths[widest]:
                neck = row
        elif widths[row] >= SHOULDER_GROWTH * widths[widest]:
            if HEAD_ASPECT[0] <= neck / (widths[widest] / window) <= HEAD_ASPECT[1]:
                head_columns = np.nonzero(subject[top:top + neck, left:right])[1]
                return top, top + neck, left + float(head_columns.mean()) + 0.5
            widest, neck = row, None  # a tuft or a stalk above the real head: go on below it
        elif widths[row] < widths[neck]:
            neck = row
    return None


def _placed(cutout: Image.Image, scale: float, offset: tuple[float, float], size: tuple[int, int]) -> Image.Image:
    """A transparent ``size`` canvas with the cut-out scaled by ``scale`` and its top-left corner at
    ``offset``: only the part that lands on the canvas is resampled (a 12-megapixel cut-out framed as a
    295×413 ID photo resizes a small crop)."""
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    x, y = offset
    left, top = max(0, round(x)), max(0, round(y))
    right = min(size[0], round(x + cutout.width * scale))
    bottom = min(size[1], round(y + cutout.height * scale))
    if right <= left or bottom <= top:
        return canvas
    source = ((left - x) / scale, (top - y) / scale, (right - x) / scale, (bottom - y) / scale)
    # LANCZOS reads 3 source pixels per output pixel each side: keep them in the crop.
    margin = math.ceil(3 / min(scale, 1)) + 1
    crop = (max(0, math.floor(source[0]) - margin), max(0, math.floor(source[1]) - margin),
            min(cutout.width, math.ceil(source[2]) + margin), min(cutout.height, math.ceil(source[3]) + margin))
    within = (max(0.0, source[0] - crop[0]), max(0.0, source[1] - crop[1]),
              min(crop[2] - crop[0], source[2] - crop[0]), min(crop[3] - crop[1], source[3] - crop[1]))
    canvas.paste(cutout.crop(crop).resize((right - left, bottom - top), Image.LANCZOS, box=within), (left, top))
    return canvas


def _composed(placed: Image.Image, backdrop: Image.Image) -> Image.Image:
    """The placed cut-out over ``backdrop`` (a colour, or a colour with a shadow) through compose."""
    alpha = np.asarray(placed.getchannel("A"))
    return compose(placed.convert("RGB"), alpha, OutputOptions(kind="composite"), background=backdrop)


def _with_contact_shadow(backdrop: Image.Image, alpha: np.ndarray, box: tuple[int, int, int, int], scale: float,
                         offset: tuple[float, float]) -> Image.Image:
    """``backdrop`` with a soft, flat, dark ellipse centred on the subject's base, where it would touch
    the ground; the subject is drawn over its upper half."""
    left, top, right, bottom = box
    base_rows = max(1, round(SHADOW_BASE_ROWS * (bottom - top)))
    base_columns = np.flatnonzero((alpha[bottom - base_rows:bottom, left:right] >= SUBJECT_THRESHOLD).any(axis=0))
    base_centre = offset[0] + (left + (base_columns[0] + base_columns[-1] + 1) / 2) * scale
    half_width = SHADOW_WIDTH * (base_columns[-1] + 1 - base_columns[0]) * scale / 2
    half_height = max(2.0, SHADOW_FLATNESS * float(half_width))
    ground = offset[1] + bottom * scale
    shape = Image.new("L", backdrop.size, 0)
    ImageDraw.Draw(shape).ellipse((base_centre - half_width, ground - half_height, base_centre + half_width,
                                   ground + half_height), fill=round(255 * SHADOW_OPACITY))
    shadow = shape.filter(ImageFilter.GaussianBlur(half_height / 2))
    return Image.composite(Image.new("RGB", backdrop.size, (0, 0, 0)), backdrop, shadow)
