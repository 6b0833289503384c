"""The one compose path: photo + matte → cut-out, matte, or composite over a colour or a picture.

The Triton postprocess step calls :func:`compose` for every request; nothing else composes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from matting.options import OutputOptions


def estimate_foreground(image: Image.Image, matte: np.ndarray) -> Image.Image:
    """Colours of the foreground alone (pymatting's multilevel estimate): removes the background's
    colour from semi-transparent edges, the colour halo of a plain cut-out. A single pixel has no
    neighbours to estimate from (pymatting divides by zero there): its colour is kept."""
    if max(image.size) < 2:
        return image
    from pymatting import estimate_foreground_ml  # numba-compiled: imported only when used

    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    foreground = estimate_foreground_ml(rgb, matte.astype(np.float64) / 255.0)
    return Image.fromarray(np.clip(foreground * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="RGB")


def compose(image: Image.Image, alpha: np.ndarray, options: OutputOptions, background: Image.Image | None = None) -> Image.Image:
    """Build the requested output from the RGB image and its uint8 matte (same size).

    ``background`` (kind composite only) replaces the colour: it is scaled to cover the photo and
    centre-cropped, so the result keeps the photo's size and has no bars.
    """
    matte = Image.fromarray(alpha, mode="L")
    if matte.size != image.size:
        raise ValueError(f"matte size {matte.size} does not match image size {image.size}")
    if options.kind == "alpha":
        return matte
    if options.foreground == "estimate":
        image = estimate_foreground(image, alpha)
    if options.kind == "composite":
        if background is not None:
            result = ImageOps.fit(background.convert("RGB"), image.size, Image.LANCZOS)
        else:
            result = Image.new("RGB", image.size, options.bg_color)
        result.paste(image.convert("RGB"), mask=matte)
        return result
    # Invisible pixels carry no colour: black them out so PNG compresses them to almost nothing
    # (a typical cut-out is 3× smaller and encodes 1.5× faster); visible pixels keep their colour.
    visible = matte.point(lambda value: 255 if value else 0)
    cutout = Image.composite(image, Image.new("RGB", image.size), visible)
    cutout.putalpha(matte)
    return cutout
