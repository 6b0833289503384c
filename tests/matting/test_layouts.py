"""Product shots and ID photos laid out from synthetic cut-outs (a person, a product, an empty matte,
subjects off-centre, touching the borders or tiny) and from rembg's real U²-Net cut-out."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, JpegImagePlugin

from matting.layouts import (
    DPI,
    ID_BACKGROUNDS,
    ID_SIZES,
    PHOTO_FORMATS,
    PRODUCT_SIDES,
    SHADOW_OPACITY,
    IdPhotoLayout,
    LayoutError,
    ProductLayout,
    encode_photo,
    id_photo,
    product_photo,
    subject_box,
)
from matting.paths import REMBG_FIXTURES

#: Colours no edge blend of the others or of an ID background comes near, so each part can be found.
FACE, NECK, SHIRT = (240, 220, 20), (200, 120, 90), (40, 40, 90)
PRODUCT = (30, 90, 200)
IVORY = (250, 245, 235)


def cutout(size: tuple[int, int], draw, colour: tuple[int, int, int] = PRODUCT) -> Image.Image:
    """An RGBA cut-out of ``size`` whose subject is what ``draw(ImageDraw)`` paints; invisible pixels
    black, as the service serves them."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw(ImageDraw.Draw(image), colour + (255,))
    return image


def person(size: tuple[int, int] = (600, 700), head_centre: int = 300, head_top: int = 120) -> Image.Image:
    """Head and shoulders: an oval face 100×130 px, a 50 px wide neck, shoulders 320 px wide down past
    the bottom edge; each part its own colour so the output can be measured."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((head_centre - 160, head_top + 160, head_centre + 160, size[1] + 50), radius=40,
                           fill=SHIRT + (255,))
    draw.rectangle((head_centre - 25, head_top + 120, head_centre + 25, head_top + 160), fill=NECK + (255,))
    draw.ellipse((head_centre - 50, head_top, head_centre + 50, head_top + 130), fill=FACE + (255,))
    return image


def rows_and_columns(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))


def near(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    return (np.abs(pixels.astype(int) - colour) <= tolerance).all(axis=2)


def not_background(photo: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    """Pixels at least half way from the background colour: the subject, edges counted as LANCZOS blends them."""
    return ~near(np.asarray(photo), background, tolerance=60)


def corners(photo: Image.Image) -> list[tuple[int, ...]]:
    width, height = photo.size
    return [photo.getpixel(xy) for xy in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1))]


# --- subject_box --------------------------------------------------------------------------------------

def test_subject_box_is_the_opaque_pixels_right_and_bottom_exclusive():
    alpha = np.zeros((50, 80), dtype=np.uint8)
    alpha[10:20, 30:45] = 255
    alpha[25, 5] = 127  # below the threshold: not subject

    assert subject_box(alpha) == (30, 10, 45, 20)
    assert subject_box(alpha, threshold=100) == (5, 10, 45, 26)


def test_subject_box_of_an_empty_matte_is_none():
    assert subject_box(np.zeros((40, 30), dtype=np.uint8)) is None
    assert subject_box(np.full((40, 30), 127, dtype=np.uint8)) is None


def test_subject_box_of_a_subject_touching_every_border_is_the_image():
    assert subject_box(np.full((7, 9), 255, dtype=np.uint8)) == (0, 0, 9, 7)


# --- product_photo ------------------------------------------------------------------------------------

@pytest.mark.parametrize("side", PRODUCT_SIDES)
@pytest.mark.parametrize("padding", [0.0, 0.08, 0.25, 0.4])
def test_product_photo_centres_the_subject_inside_the_padding(side, padding):
    wide_off_centre = cutout((900, 500), lambda draw, fill: draw.ellipse((80, 300, 380, 460), fill=fill))

    photo = product_photo(wide_off_centre, ProductLayout(side=side, padding=padding, background=IVORY))

    assert photo.mode == "RGB" and photo.size == (side, side)
    rows, columns = rows_and_columns(not_background(photo, IVORY))
    assert abs((columns[0] + columns[-1] + 1) / 2 - side / 2) <= 2
    assert abs((rows[0] + rows[-1] + 1) / 2 - side / 2) <= 2
    assert abs(columns[-1] + 1 - columns[0] - side * (1 - 2 * padding)) <= 2, "the wider side fills the inner square"
    assert abs((rows[-1] + 1 - rows[0]) / (columns[-1] + 1 - columns[0]) - 160 / 300) < 0.02, "aspect kept"
    if padding:
        assert corners(photo) == [IVORY] * 4


def test_product_photo_fits_a_tall_subject_by_its_height():
    bottle = cutout((300, 1000), lambda draw, fill: draw.rectangle((100, 100, 199, 899), fill=fill))

    photo = product_photo(bottle, ProductLayout(side=800, padding=0.1))

    rows, columns = rows_and_columns(not_background(photo, (255, 255, 255)))
    assert abs(rows[-1] + 1 - rows[0] - 640) <= 2
    assert abs(columns[-1] + 1 - columns[0] - 80) <= 2
    assert np.asarray(photo)[400, 400].tolist() == list(PRODUCT)


@pytest.mark.parametrize(
    "subject",
    [
        cutout((120, 90), lambda draw, fill: draw.rectangle((0, 0, 119, 89), fill=fill)),
        cutout((3, 5), lambda draw, fill: draw.point((1, 2), fill=fill)),
        cutout((1, 1), lambda draw, fill: draw.point((0, 0), fill=fill)),
    ],
    ids=["touching-every-border", "tiny", "one-pixel"],
)
def test_product_photo_of_border_and_tiny_subjects_has_the_exact_size(subject):
    photo = product_photo(subject, ProductLayout(side=1200))

    assert photo.size == (1200, 1200)
    assert np.asarray(photo)[600, 600].tolist() == list(PRODUCT)


def test_the_shadow_darkens_only_under_the_subject():
    blob = cutout((400, 400), lambda draw, fill: draw.ellipse((100, 60, 300, 340), fill=fill))
    plain = np.asarray(product_photo(blob, ProductLayout(side=800)), dtype=int)

    shadowed = np.asarray(product_photo(blob, ProductLayout(side=800, shadow=True)), dtype=int)

    subject_rows, _ = rows_and_columns(not_background(Image.fromarray(plain.astype(np.uint8)), (255, 255, 255)))
    top, bottom = subject_rows[0], subject_rows[-1] + 1
    darker = (plain - shadowed).max(axis=2)
    assert (darker >= 0).all(), "a shadow only darkens"
    changed_rows, _ = rows_and_columns(darker > 0)
    assert changed_rows[0] >= bottom - (bottom - top) // 10, "nothing changes above the subject's base"
    assert darker[bottom + 3, 400] > 20, "the ground under the subject is darker"
    assert darker.max() <= 255 * SHADOW_OPACITY + 1, "subtle: at most SHADOW_OPACITY dark"
    assert corners(Image.fromarray(shadowed.astype(np.uint8))) == [(255, 255, 255)] * 4


# --- id_photo -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", ID_SIZES)
@pytest.mark.parametrize("background", ID_BACKGROUNDS)
def test_id_photo_frames_head_and_shoulders(size, background):
    off_centre = person(size=(900, 700), head_centre=220)

    photo = id_photo(off_centre, IdPhotoLayout(size=size, background=background))

    width, height = ID_SIZES[size]
    assert photo.mode == "RGB" and photo.size == (width, height)
    assert corners(photo)[:2] == [ID_BACKGROUNDS[background]] * 2, "upper corners: background"
    face_rows, face_columns = rows_and_columns(near(np.asarray(photo), FACE))
    assert 0.07 <= face_rows[0] / height <= 0.10, "head top 7-10 % below the upper edge"
    assert 0.50 <= (face_rows[-1] + 1 - face_rows[0]) / height <= 0.60, "head 50-60 % of the height"
    assert abs((face_columns[0] + face_columns[-1] + 1) / 2 - width / 2) <= 2, "head centred"
    assert near(np.asarray(photo)[-1:], SHIRT).mean() > 0.6, "the bottom cuts through the shoulders"


def test_id_photo_extends_with_background_where_the_photo_ends():
    """The head close to the photo's top and shoulders ending at its bottom: background fills both."""
    cropped_tight = person(size=(600, 200), head_top=5)

    photo = id_photo(cropped_tight, IdPhotoLayout(size="2inch", background="red"))

    pixels = np.asarray(photo)
    face_rows, _ = rows_and_columns(near(pixels, FACE))
    assert 0.07 <= face_rows[0] / 579 <= 0.10
    assert (pixels[:face_rows[0] - 15] == ID_BACKGROUNDS["red"]).all(), "above the photo: background"
    assert (pixels[-3:] == ID_BACKGROUNDS["red"]).all(), "below the photo: background"


@pytest.mark.parametrize(
    "subject",
    [
        cutout((400, 400), lambda draw, fill: draw.rectangle((150, 100, 249, 199), fill=fill)),
        cutout((200, 300), lambda draw, fill: draw.rectangle((0, 0, 199, 299), fill=fill)),
        cutout((500, 300), lambda draw, fill: draw.polygon([(250, 20), (450, 280), (50, 280)], fill=fill)),
    ],
    ids=["square", "touching-every-border", "triangle"],
)
def test_id_photo_without_a_neck_fills_seventy_percent_of_the_width(subject):
    photo = id_photo(subject, IdPhotoLayout(size="1inch", background="white"))

    rows, columns = rows_and_columns(not_background(photo, (255, 255, 255)))
    assert abs(columns[-1] + 1 - columns[0] - 0.7 * 295) <= 2
    assert abs((columns[0] + columns[-1] + 1) / 2 - 295 / 2) <= 2
    assert abs(rows[0] - 0.08 * 413) <= 2


def test_id_photo_of_a_tiny_cutout_has_the_exact_size():
    tiny = cutout((8, 10), lambda draw, fill: draw.rectangle((2, 1, 5, 9), fill=fill))

    assert id_photo(tiny, IdPhotoLayout(size="small1inch")).size == (260, 378)


# --- refusals -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", [ProductLayout(), IdPhotoLayout()], ids=["product", "id"])
def test_an_empty_matte_raises_layout_error(layout):
    empty = Image.new("RGBA", (200, 150), (90, 90, 90, 0))
    lay_out = product_photo if isinstance(layout, ProductLayout) else id_photo

    with pytest.raises(LayoutError, match="no subject"):
        lay_out(empty, layout)


def test_a_cutout_without_alpha_is_refused():
    with pytest.raises(ValueError, match="RGBA"):
        product_photo(Image.new("RGB", (20, 20)), ProductLayout())


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProductLayout(side=1000),
        lambda: ProductLayout(padding=-0.01),
        lambda: ProductLayout(padding=0.41),
        lambda: ProductLayout(background=(256, 0, 0)),
        lambda: ProductLayout(background=(255, 255)),
        lambda: ProductLayout(background="white"),
        lambda: IdPhotoLayout(size="3inch"),
        lambda: IdPhotoLayout(background="green"),
    ],
    ids=["side", "negative-padding", "padding-too-wide", "colour-out-of-range", "colour-short", "colour-name",
         "id-size", "id-background"],
)
def test_invalid_layouts_are_refused(make):
    with pytest.raises(ValueError):
        make()


# --- encode_photo -------------------------------------------------------------------------------------

@pytest.mark.parametrize("format", PHOTO_FORMATS)
def test_encoded_photos_carry_300_dpi(format):
    photo = id_photo(person(), IdPhotoLayout(size="2inch"))

    data = encode_photo(photo, format)

    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == format.upper()
        assert decoded.size == (413, 579)
        assert decoded.info["dpi"] == pytest.approx((DPI, DPI), abs=0.01)
        if format == "jpeg":
            assert JpegImagePlugin.get_sampling(decoded) == 0, "4:4:4, no chroma subsampling"
        else:
            assert np.array_equal(np.asarray(decoded), np.asarray(photo)), "PNG is lossless"


def test_encoding_in_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="jpeg, png"):
        encode_photo(Image.new("RGB", (4, 4)), "webp")


# --- the real U²-Net cut-out --------------------------------------------------------------------------

def test_rembg_u2net_cutout_lays_out_with_the_subject_in_the_middle():
    """rembg's U²-Net output for the fixture photo: a seated girl, hair over the neck."""
    with Image.open(REMBG_FIXTURES / "anime-girl-1.u2net.png") as served:
        real = served.copy()

    product = product_photo(real, ProductLayout(side=800, shadow=True))
    identity = id_photo(real, IdPhotoLayout(size="1inch", background="red"))  # blue is close to her colours

    assert product.size == (800, 800) and identity.size == (295, 413)
    assert corners(product) == [(255, 255, 255)] * 4
    assert corners(identity)[:2] == [ID_BACKGROUNDS["red"]] * 2
    product_subject = not_background(product, (255, 255, 255))
    assert product_subject[350:450, 350:450].mean() > 0.9, "the girl fills the middle"
    assert 0.06 <= rows_and_columns(product_subject)[0][0] / 800 <= 0.10, "default padding above her"
    identity_subject = not_background(identity, ID_BACKGROUNDS["red"])
    assert identity_subject[100:300, 120:175].mean() > 0.9, "the girl fills the middle"
    assert 0.06 <= rows_and_columns(identity_subject)[0][0] / 413 <= 0.10, "a margin above her head"
