"""The before/after slider (a small Streamlit component, everything inline: no CDN, works offline)."""

from __future__ import annotations

import base64

import streamlit as st

from ui.page import ASSETS

#: CSS backgrounds for matting.previews.BACKDROPS; any other backdrop is a "#rrggbb" colour, used as it is.
BACKDROP_CSS = {
    "checkerboard": "repeating-conic-gradient(#cccccc 0% 25%, #ffffff 0% 50%) 50% / 20px 20px",
    "white": "#ffffff",
    "black": "#000000",
}

_compare = st.components.v2.component(
    "cvunet_compare", isolate_styles=False,
    js=(ASSETS / "compare.js").read_text(encoding="utf-8"), css=(ASSETS / "compare.css").read_text(encoding="utf-8"),
)


def data_url(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def before_after(before_png: bytes, after_png: bytes, size: tuple[int, int], backdrop: str,
                 labels: dict[str, str], key: str) -> None:
    """``after_png`` over ``before_png`` (same aspect, ``size`` = (width, height)) with a draggable split;
    ``backdrop`` is a CSS background shown through the result's transparency."""
    _compare(key=key, data={"before": data_url(before_png), "after": data_url(after_png), "width": size[0],
                            "height": size[1], "backdrop": backdrop, "labels": labels})
