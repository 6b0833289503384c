"""Widgets and words more than one tab shows: the model choice, the output form (single image and batch), the
video formats' names (video and history), durations and file names in Markdown."""

from __future__ import annotations

import re
from functools import partial

import streamlit as st

from matting.contract import DEFAULT_NETWORK
from matting.layouts import ID_BACKGROUNDS, ID_SIZES, PRODUCT_SIDES, IdPhotoLayout, ProductLayout
from matting.options import MODELS
from matting.recipes import FORMATS, MODES, Recipe
from ui.context import UPLOAD_TYPES, UiContext
from ui.state import sticky

#: Background swatches: name → colour; "custom" opens a colour picker.
SWATCHES = {"white": "#ffffff", "light_grey": "#f2f2f2", "black": "#000000", "red": "#c8102e", "blue": "#438edb"}
FORMAT_NAMES = {"png": "PNG", "webp": "WebP", "jpeg": "JPG"}
#: A video's outputs (matting.video), in the order the video tab offers them; the first is the default.
VIDEO_FORMATS = ("webm", "mov", "mp4", "png")
MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")

STRINGS = {
    "en": {
        "seconds": "{seconds} s",
        "minutes": "{minutes} min {seconds} s",
        "video_format_webm": "Transparent WebM",
        "video_format_mov": "Transparent MOV",
        "video_format_mp4": "MP4 on a background",
        "video_format_png": "PNG sequence (ZIP)",
        "output": "Make",
        "mode_transparent": "Transparent background",
        "mode_color": "Solid colour",
        "mode_image": "Background picture",
        "mode_product": "White product shot",
        "mode_id": "ID photo",
        "colour": "Background",
        "swatch_white": "White",
        "swatch_light_grey": "Light grey",
        "swatch_black": "Black",
        "swatch_red": "Red",
        "swatch_blue": "Blue",
        "swatch_custom": "Other colour…",
        "custom_colour": "Pick a colour",
        "background": "Background picture (scaled to cover the photo)",
        "need_background": "Add a background picture to see the result.",
        "side": "Size",
        "side_value": "{side} × {side} px",
        "padding": "Space around the product",
        "shadow": "Soft shadow under the product",
        "id_size": "Photo size (300 dpi)",
        "id_size_1inch": "1-inch 295 × 413 px",
        "id_size_2inch": "2-inch 413 × 579 px",
        "id_size_small1inch": "Small 1-inch 260 × 378 px",
        "id_background": "Background",
        "id_background_blue": "Blue",
        "id_background_red": "Red",
        "id_background_white": "White",
        "format": "File type",
        "decontaminate": "Clean colour fringes on hair and soft edges (slower)",
        "decontaminate_help": "Estimates the subject's own colours at soft edges, so the old background does not tint them.",
    },
    "zh": {
        "seconds": "{seconds} 秒",
        "minutes": "{minutes} 分 {seconds} 秒",
        "video_format_webm": "透明背景 WebM",
        "video_format_mov": "透明背景 MOV",
        "video_format_mp4": "换背景 MP4",
        "video_format_png": "PNG 序列（ZIP）",
        "output": "制作",
        "mode_transparent": "透明背景",
        "mode_color": "纯色背景",
        "mode_image": "背景图片",
        "mode_product": "电商白底主图",
        "mode_id": "证件照",
        "colour": "背景颜色",
        "swatch_white": "白色",
        "swatch_light_grey": "浅灰",
        "swatch_black": "黑色",
        "swatch_red": "红色",
        "swatch_blue": "蓝色",
        "swatch_custom": "其他颜色…",
        "custom_colour": "选择颜色",
        "background": "背景图片（自动缩放铺满）",
        "need_background": "请添加一张背景图片，即可看到效果。",
        "side": "尺寸",
        "side_value": "{side} × {side} 像素",
        "padding": "商品四周留白",
        "shadow": "商品底部柔和阴影",
        "id_size": "照片尺寸（300 dpi）",
        "id_size_1inch": "1寸 295 × 413 像素",
        "id_size_2inch": "2寸 413 × 579 像素",
        "id_size_small1inch": "小1寸 260 × 378 像素",
        "id_background": "背景颜色",
        "id_background_blue": "蓝底",
        "id_background_red": "红底",
        "id_background_white": "白底",
        "format": "文件格式",
        "decontaminate": "去除头发和柔和边缘的杂色（较慢）",
        "decontaminate_help": "估计头发和柔和边缘处主体自身的颜色，避免原背景颜色渗入。",
    },
}


def model_choice(context: UiContext, name: str) -> str:
    """精细 / 快速: the network for the job, with this server's recent time per photo for each under it
    (in a caption: labels that change between reruns would reset the choice)."""
    model = sticky(st.radio, name, context.language, DEFAULT_NETWORK, context.common("model"), options=MODELS,
                   horizontal=True, format_func=lambda network: context.common(f"model_{network}"),
                   help=context.common("model_help"))
    recent = {network: context.history.recent_average_ms(network) for network in MODELS}
    times = [context.common("model_recent", label=context.common(f"model_{network}"), seconds=ms / 1000)
             for network, ms in recent.items() if ms]
    if times:
        st.caption(" · ".join(times))
    return model


def colour_choice(context: UiContext, scope: str) -> str:
    """A background colour: one of the swatches, or any colour from the picker."""
    text = partial(context.text, STRINGS)
    swatch = sticky(st.pills, f"{scope}_swatch", context.language, "white", text("colour"),
                    options=[*SWATCHES, "custom"], format_func=lambda name: text(f"swatch_{name}"),
                    selection_mode="single", required=True)
    if swatch == "custom":
        return sticky(st.color_picker, f"{scope}_custom_colour", context.language, "#ffffff", text("custom_colour"))
    return SWATCHES[swatch]


def recipe_form(context: UiContext, scope: str) -> Recipe | None:
    """The output choices of ``scope`` ("single" or "batch"), kept across language switches; None (after
    saying what is missing) while the choices are incomplete."""
    text = partial(context.text, STRINGS)
    language = context.language
    model = model_choice(context, f"{scope}_model")
    mode = sticky(st.radio, f"{scope}_mode", language, "transparent", text("output"), options=MODES,
                  format_func=lambda value: text(f"mode_{value}"), horizontal=True)
    colour, background, product, id_layout = "#ffffff", None, ProductLayout(), IdPhotoLayout()
    if mode in ("color", "product"):
        colour = colour_choice(context, scope)
    if mode == "image":
        background = st.file_uploader(text("background"), type=UPLOAD_TYPES, key=f"{scope}_background",
                                      max_upload_size=context.settings.max_upload_mb)
    if mode == "product":
        side = sticky(st.radio, f"{scope}_side", language, PRODUCT_SIDES[0], text("side"), options=PRODUCT_SIDES,
                      format_func=lambda value: text("side_value", side=value), horizontal=True)
        padding = sticky(st.slider, f"{scope}_padding", language, 8, text("padding"), min_value=0, max_value=30,
                         step=1, format="%d%%")
        shadow = sticky(st.checkbox, f"{scope}_shadow", language, False, text("shadow"))
        product = ProductLayout(side, padding / 100, shadow)
    if mode == "id":
        size = sticky(st.radio, f"{scope}_id_size", language, "1inch", text("id_size"), options=list(ID_SIZES),
                      format_func=lambda value: text(f"id_size_{value}"), horizontal=True)
        backdrop = sticky(st.radio, f"{scope}_id_background", language, "blue", text("id_background"),
                          options=list(ID_BACKGROUNDS), format_func=lambda value: text(f"id_background_{value}"),
                          horizontal=True)
        id_layout = IdPhotoLayout(size, backdrop)
    formats = FORMATS[mode]
    format = sticky(st.radio, f"{scope}_format_{formats[0]}", language, formats[0], text("format"), options=formats,
                    format_func=FORMAT_NAMES.get, horizontal=True)
    decontaminate = sticky(st.checkbox, f"{scope}_decontaminate", language, False, text("decontaminate"),
                           help=text("decontaminate_help"))
    if mode == "image" and background is None:
        st.info(text("need_background"))
        return None
    return Recipe(mode, format, model, decontaminate, colour,
                  background.getvalue() if background else None, background.name if background else None,
                  product, id_layout)


def duration_text(context: UiContext, seconds: float) -> str:
    if seconds < 60:
        return context.text(STRINGS, "seconds", seconds=f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}")
    minutes, rest = divmod(round(seconds), 60)
    return context.text(STRINGS, "minutes", minutes=minutes, seconds=rest)


def markdown_escaped(name: str) -> str:
    """A file name for Markdown, shown as it is."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", name)
