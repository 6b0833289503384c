"""Encoded test images made on the fly: the awkward inputs a matting service meets in the wild."""

from __future__ import annotations

import io
import struct
import zlib
import numpy as np
from PIL import Image

from cvunet.paths import REMBG_FIXTURES

PHOTO = REMBG_FIXTURES / "anime-girl-1.jpg"


def photo(size: tuple[int, int] | None = None) -> Image.Image:
    image = Image.open(PHOTO).convert("RGB")
    return image.resize(size, Image.LANCZOS) if size else image


def encode(image: Image.Image, format: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **params)
    return buffer.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR claims width×height: a decompression-bomb header."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def cmyk_jpeg() -> bytes:
    return encode(photo((160, 120)).convert("CMYK"), "JPEG", quality=90)


def png16() -> bytes:
    gray = np.asarray(photo((160, 120)).convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(gray), "PNG")


def grayscale_jpeg() -> bytes:
    return encode(photo((160, 120)).convert("L"), "JPEG")


def palette_png_with_transparency() -> bytes:
    image = photo((160, 120)).convert("P", palette=Image.ADAPTIVE, colors=64)
    return encode(image, "PNG", transparency=0)


def rgba_png() -> bytes:
    image = photo((160, 120)).convert("RGBA")
    image.putalpha(128)
    return encode(image, "PNG")


def exif_rotated_jpeg() -> tuple[bytes, tuple[int, int]]:
    """A 160×120 JPEG whose EXIF orientation 6 means 'display rotated 90°': upright it is 120×160."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo((160, 120)), "JPEG", exif=exif.tobytes()), (120, 160)


def animated_gif() -> bytes:
    first, second = photo((96, 64)), photo((96, 64)).transpose(Image.FLIP_LEFT_RIGHT)
    return encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def truncated_jpeg() -> bytes:
    data = encode(photo((320, 240)), "JPEG", quality=95)
    return data[: len(data) // 2]


def animated_webp() -> bytes:
    first, second = photo((96, 64)), photo((96, 64)).transpose(Image.FLIP_LEFT_RIGHT)
    return encode(first, "WEBP", save_all=True, append_images=[second], duration=100, loop=0)


def one_pixel_png() -> bytes:
    return encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG")


def wide_jpeg() -> bytes:
    """10000×200: an extreme aspect ratio (a panorama strip)."""
    return encode(photo().resize((10000, 200), Image.BILINEAR), "JPEG", quality=85)


def twelve_megapixel_jpeg() -> bytes:
    return encode(photo().resize((4000, 3000), Image.BICUBIC), "JPEG", quality=90)
