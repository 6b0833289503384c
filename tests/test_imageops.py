"""Decoding, composition and encoding on the inputs users actually send (no server involved)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cvunet.imageops import ImageError, OptionsError, OutputOptions, compose, decode_image, encode_image, parse_color
from tests import image_cases


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "0 bytes"),
        (b"hello, this is a text file named photo.jpg\n", "not a supported image"),
        (image_cases.truncated_jpeg(), "truncated or corrupt"),
        (image_cases.png_with_declared_size(20000, 20000), "too large"),
        (image_cases.png_with_declared_size(30000, 30000), "too large"),
    ],
    ids=["zero-bytes", "text", "truncated-jpeg", "bomb-20000", "bomb-30000"],
)
def test_bad_inputs_raise_clear_image_errors(data, message):
    with pytest.raises(ImageError, match=message):
        decode_image(data)


def test_pixel_limit_is_enforced_below_pillows_own():
    data = image_cases.encode(Image.new("RGB", (300, 200)), "PNG")
    with pytest.raises(ImageError, match=r"300×200 .* limit"):
        decode_image(data, max_pixels=50_000)


@pytest.mark.parametrize(
    "make",
    [image_cases.cmyk_jpeg, image_cases.png16, image_cases.grayscale_jpeg,
     image_cases.palette_png_with_transparency, image_cases.rgba_png, image_cases.animated_gif],
    ids=["cmyk", "16-bit", "grayscale", "palette", "rgba", "animated-gif"],
)
def test_every_mode_decodes_to_rgb8(make):
    image = decode_image(make())
    assert image.mode == "RGB"
    assert np.asarray(image).dtype == np.uint8


def test_16_bit_is_scaled_not_clipped():
    decoded = np.asarray(decode_image(image_cases.png16()))
    reference = np.asarray(image_cases.photo((160, 120)).convert("L"))
    assert np.abs(decoded[..., 0].astype(int) - reference).max() <= 1


def test_exif_orientation_is_applied():
    data, upright = image_cases.exif_rotated_jpeg()
    assert decode_image(data).size == upright


def test_animated_image_gives_first_frame():
    first = np.asarray(image_cases.photo((96, 64)), dtype=int)
    decoded = np.asarray(decode_image(image_cases.animated_gif()), dtype=int)
    flipped = first[:, ::-1]
    assert np.abs(decoded - first).mean() < np.abs(decoded - flipped).mean()


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


@pytest.mark.parametrize("format", ["png", "webp"])
def test_encode_round_trips_alpha(format):
    image = Image.new("RGBA", (32, 16), (10, 20, 30, 255))
    image.putalpha(Image.linear_gradient("L").resize((32, 16)))
    decoded = Image.open(io.BytesIO(encode_image(image, format)))
    assert decoded.format == format.upper() and decoded.mode == "RGBA" and decoded.size == (32, 16)
    assert np.abs(np.asarray(decoded)[..., 3].astype(int) - np.asarray(image)[..., 3]).max() <= (0 if format == "png" else 8)


@pytest.mark.parametrize(("text", "rgb"), [("#ff8800", (255, 136, 0)), ("white", (255, 255, 255)), ("10, 20,30", (10, 20, 30))])
def test_parse_color(text, rgb):
    assert parse_color(text) == rgb


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kind": "jpeg"}, "kind must be"), ({"format": "gif"}, "format must be"), ({"bg_color": "not-a-colour"}, "not a colour")],
)
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(OptionsError, match=message):
        OutputOptions.parse(**kwargs)


def test_default_options():
    options = OutputOptions.parse(None, "", None)
    assert (options.kind, options.format, options.media_type) == ("rgba", "png", "image/png")
