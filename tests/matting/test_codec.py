"""Decoding and encoding on the inputs users actually send (no server involved)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from matting.codec import ImageError, declared_size, decode_image, encode_image
from tests import support


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "0 bytes"),
        (b"hello, this is a text file named photo.jpg\n", "not a supported image"),
        (support.truncated_jpeg(), "truncated or corrupt"),
        (support.png_with_declared_size(20000, 20000), "too large"),
        (support.png_with_declared_size(30000, 30000), "too large"),
    ],
    ids=["zero-bytes", "text", "truncated-jpeg", "bomb-20000", "bomb-30000"],
)
def test_bad_inputs_raise_clear_image_errors(data, message):
    with pytest.raises(ImageError, match=message):
        decode_image(data)


def test_pixel_limit_is_enforced_below_pillows_own():
    data = support.encode(Image.new("RGB", (300, 200)), "PNG")
    with pytest.raises(ImageError, match=r"300×200 .* limit"):
        decode_image(data, max_pixels=50_000)


@pytest.mark.parametrize(
    "make",
    [support.cmyk_jpeg, support.png16, support.grayscale_jpeg,
     support.palette_png_with_transparency, support.rgba_png, support.animated_gif],
    ids=["cmyk", "16-bit", "grayscale", "palette", "rgba", "animated-gif"],
)
def test_every_mode_decodes_to_rgb8(make):
    image = decode_image(make())
    assert image.mode == "RGB"
    assert np.asarray(image).dtype == np.uint8


def test_16_bit_is_scaled_not_clipped():
    decoded = np.asarray(decode_image(support.png16()))
    reference = np.asarray(support.photo((160, 120)).convert("L"))
    assert np.abs(decoded[..., 0].astype(int) - reference).max() <= 1


def test_exif_orientation_is_applied():
    data, upright = support.exif_rotated_jpeg()
    assert decode_image(data).size == upright


def test_animated_image_gives_first_frame():
    first = np.asarray(support.photo((96, 64)), dtype=int)
    decoded = np.asarray(decode_image(support.animated_gif()), dtype=int)
    flipped = first[:, ::-1]
    assert np.abs(decoded - first).mean() < np.abs(decoded - flipped).mean()


@pytest.mark.parametrize("format", ["png", "webp"])
def test_encode_round_trips_alpha(format):
    image = Image.new("RGBA", (32, 16), (10, 20, 30, 255))
    image.putalpha(Image.linear_gradient("L").resize((32, 16)))
    decoded = Image.open(io.BytesIO(encode_image(image, format)))
    assert decoded.format == format.upper() and decoded.mode == "RGBA" and decoded.size == (32, 16)
    assert np.abs(np.asarray(decoded)[..., 3].astype(int) - np.asarray(image)[..., 3]).max() <= (0 if format == "png" else 8)


def test_declared_size_reads_the_header_only():
    assert declared_size(support.png_with_declared_size(3000, 2000)) == (3000, 2000)
    assert declared_size(b"not an image") is None


@pytest.mark.parametrize(
    ("make", "message"),
    [(support.ppm, "not a supported image: send JPEG, PNG, WebP, BMP, TIFF or GIF"),
     (support.png_with_oversized_text, "unreadable image header"),
     (support.png_cut_in_a_text_chunk, "unreadable image header")],
    ids=["ppm", "png-oversized-text", "png-cut-in-text"],
)
def test_undocumented_formats_and_broken_metadata_are_refused_in_our_words(make, message):
    with pytest.raises(ImageError, match=message) as refused:
        decode_image(make())
    assert not any(word in str(refused.value) for word in ("MAX_TEXT", "Truncated File Read", "PngImagePlugin"))


def test_a_phone_multi_picture_jpeg_still_decodes():
    first = support.photo((64, 48))
    data = support.encode(first, "MPO", save_all=True, append_images=[first.transpose(Image.FLIP_LEFT_RIGHT)])
    assert decode_image(data).size == (64, 48)


def test_an_image_webp_cannot_hold_is_refused_before_decoding_and_at_encoding():
    with pytest.raises(ImageError, match=r"65500×1 is too large for WebP, which holds at most 16383 pixels a side"):
        decode_image(support.strip_jpeg(), output_format="webp")
    assert decode_image(support.strip_jpeg(), output_format="png").size == (65500, 1)
    with pytest.raises(ImageError, match="16384×1 is too large for WebP"):
        encode_image(Image.new("RGB", (16384, 1)), "webp")
    assert Image.open(io.BytesIO(encode_image(Image.new("RGB", (1, 16383)), "webp"))).size == (1, 16383)


@pytest.mark.parametrize("shape", [(1000, 1), (16384, 2), (1, 1)])
def test_png_encodes_tall_narrow_incompressible_mattes(shape):
    """imagecodecs' own output estimate is too small for these ("output stream too small")."""
    noise = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    decoded = Image.open(io.BytesIO(encode_image(Image.fromarray(noise, mode="L"), "png")))
    assert (np.asarray(decoded) == noise).all()
