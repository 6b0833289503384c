"""What the dashboard makes from each photo: the served cut-out, then the chosen background or layout.

The server is asked once per photo for the RGBA cut-out; the background colour or picture, the white
product shot and the ID photo are laid out here from that cut-out (matting.compose, matting.layouts).
So switching background or preset re-composes at once, with no second trip through the network.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from matting.codec import decode_image, encode_image
from matting.compose import compose
from matting.layouts import IdPhotoLayout, ProductLayout, encode_photo, id_photo, product_photo
from matting.options import OutputOptions, parse_color

#: transparent: the cut-out; color / image: the photo on a colour or a picture; product: 电商白底主图; id: 证件照.
MODES = ("transparent", "color", "image", "product", "id")
#: Transparency needs PNG or WebP; an opaque result is a photo, where shops and print shops want JPEG.
FORMATS = {"transparent": ("png", "webp"), "color": ("jpeg", "png"), "image": ("jpeg", "png"),
           "product": ("jpeg", "png"), "id": ("jpeg", "png")}
SUFFIXES = {"png": "png", "webp": "webp", "jpeg": "jpg"}
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}


class RecipeError(ValueError):
    """The choices do not make a recipe (e.g. a background picture is missing); the message is for engineers."""


@dataclass(frozen=True)
class Recipe:
    mode: str = "transparent"
    format: str = "png"
    #: One of matting.options.MODELS, or None for the server's default.
    model: str | None = None
    #: Estimate the subject's own colours in soft edges (the server's foreground=estimate).
    decontaminate: bool = False
    bg_color: str = "#ffffff"
    background: bytes | None = field(default=None, repr=False)
    background_name: str | None = None
    product: ProductLayout = ProductLayout()
    id_photo: IdPhotoLayout = IdPhotoLayout()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise RecipeError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.format not in FORMATS[self.mode]:
            raise RecipeError(f"a {self.mode} result is {' or '.join(FORMATS[self.mode])}, not {self.format!r}")
        if self.mode == "image" and not self.background:
            raise RecipeError("background image missing: choose one, or another output")
        parse_color(self.bg_color)

    def request_options(self) -> OutputOptions:
        """What to ask the server for: always the full-resolution RGBA cut-out as PNG."""
        return OutputOptions.parse(kind="rgba", format="png", model=self.model,
                                   foreground="estimate" if self.decontaminate else None)

    def make(self, cutout: Image.Image) -> Image.Image:
        """The result for this recipe from the served RGBA cut-out (RGBA for transparent, RGB otherwise)."""
        if self.mode == "transparent":
            return cutout
        if self.mode == "product":
            return product_photo(cutout, ProductLayout(self.product.side, self.product.padding, self.product.shadow,
                                                       parse_color(self.bg_color)))
        if self.mode == "id":
            return id_photo(cutout, self.id_photo)
        background = decode_image(self.background) if self.mode == "image" else None
        options = OutputOptions(kind="composite", bg_color=parse_color(self.bg_color))
        return compose(cutout.convert("RGB"), np.asarray(cutout.getchannel("A")), options, background)

    def encode(self, image: Image.Image) -> bytes:
        if self.mode == "transparent":
            return encode_image(image, self.format)
        return encode_photo(image, self.format)

    def finish(self, served: bytes) -> bytes:
        """The served cut-out (PNG bytes) → this recipe's encoded result."""
        with Image.open(io.BytesIO(served)) as cutout:
            return self.encode(self.make(cutout.convert("RGBA")))

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.format]

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def for_history(self) -> dict:
        """The choices worth showing in the history (ui.tabs.history names them in the user's language)."""
        options: dict = {"output": self.mode, "format": self.format}
        if self.model:
            options["model"] = self.model
        if self.decontaminate:
            options["decontaminate"] = True
        if self.mode in ("color", "product"):
            options["bg_color"] = self.bg_color
        if self.mode == "image":
            options["background"] = self.background_name
        if self.mode == "product":
            options.update(product_side=self.product.side, padding=self.product.padding, shadow=self.product.shadow)
        if self.mode == "id":
            options.update(id_size=self.id_photo.size, id_background=self.id_photo.background)
        return options

