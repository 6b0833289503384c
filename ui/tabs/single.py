"""The single-image tab: upload a photo, matte it on Triton, look at the cut-out, the matte and a
before/after view, download them or save them under the outputs folder.

The work is in :func:`process_upload` (no widgets), so it is testable on its own; every job, ok or
failed, is recorded in the history. The last result lives in ``st.session_state`` because a download
click or any other widget reruns the script.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from client import MattingClient, MattingError
from client.batch import timestamped_output_dir
from cvunet.files import atomic_write_bytes
from cvunet.imageops import (
    MEDIA_TYPES,
    OUTPUT_FORMATS,
    REFINE_MODES,
    ImageError,
    OutputOptions,
    composite_over_image,
    decode_image,
    encode_image,
)
from cvunet.refine import estimate_foreground
from ui.context import UiContext
from ui.history import Job, make_thumbnail

LOG = logging.getLogger(__name__)

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"]
OUTPUT_MODES = ("transparent", "color", "image")
#: The served network; the ensemble's version comes from Triton (see :func:`model_version`).
MODEL = "u2netp"
#: Previews are downscaled to this box: the browser never needs a 12-megapixel PNG to show a panel.
PREVIEW_BOX = (1200, 1200)
CHECKER_SQUARE = 16
RESULT_KEY, FAILURE_KEY = "single_result", "single_failure"

STRINGS = {
    "en": {
        "upload": "Image",
        "upload_help": "JPG, PNG, WebP, BMP, TIFF or GIF, up to {limit} MB. Drag and drop works.",
        "output": "Output",
        "mode_transparent": "Transparent",
        "mode_color": "Background colour",
        "mode_image": "Background image",
        "format": "Format",
        "bg_color": "Background colour",
        "bg_image": "Background image (scaled to cover the photo)",
        "save": "Save to output directory",
        "refine": "Edge refinement",
        "refine_help": "How the matte reaches full resolution; see README, Matte quality, for measurements.",
        "refine_none": "Standard (as rembg)",
        "refine_guided": "Guided filter",
        "refine_closed-form": "Closed-form (slower)",
        "refine_refiner": "Project-trained refiner (experimental)",
        "decontaminate": "Remove background colour from edges (slower)",
        "decontaminate_help": "Estimates the subject's own colours in hair and soft edges, so the old background does not tint them.",
        "start": "Start processing",
        "processing": "Removing the background…",
        "choose_file": "Choose an image first.",
        "too_large": "{name} is {size:.1f} MB; the limit is {limit} MB.",
        "need_background": "choose a background image, or another output option",
        "background_unreadable": "background image: {reason}",
        "result_title": "Result: {name}",
        "time": "Processing time",
        "size": "Image size",
        "saved_to": "Saved to {path}",
        "panel_result": "Result (transparent areas shown as a checkerboard)",
        "panel_alpha": "Alpha matte",
        "panel_compare": "Original and result",
        "original": "Original",
        "result": "Result",
        "download_result": "Download result ({format})",
        "download_alpha": "Download alpha (PNG)",
    },
    "zh": {
        "upload": "图片",
        "upload_help": "支持 JPG、PNG、WebP、BMP、TIFF、GIF，最大 {limit} MB，可直接拖放。",
        "output": "输出",
        "mode_transparent": "透明背景",
        "mode_color": "背景颜色",
        "mode_image": "背景图片",
        "format": "格式",
        "bg_color": "背景颜色",
        "bg_image": "背景图片（缩放以铺满原图）",
        "save": "保存到输出目录",
        "refine": "边缘细化",
        "refine_help": "抠图遮罩放大到原图分辨率的方式；各方式的测量结果见 README 的 Matte quality 一节。",
        "refine_none": "标准（与 rembg 相同）",
        "refine_guided": "导向滤波",
        "refine_closed-form": "闭式抠图（较慢）",
        "refine_refiner": "项目训练的细化网络（实验性）",
        "decontaminate": "去除边缘背景色（较慢）",
        "decontaminate_help": "估计头发和柔和边缘处主体自身的颜色，避免原背景颜色渗入。",
        "start": "开始处理",
        "processing": "正在抠图…",
        "choose_file": "请先选择图片。",
        "too_large": "{name} 大小为 {size:.1f} MB，超过上限 {limit} MB。",
        "need_background": "请选择背景图片，或选择其他输出方式",
        "background_unreadable": "背景图片：{reason}",
        "result_title": "结果：{name}",
        "time": "处理时间",
        "size": "图片尺寸",
        "saved_to": "已保存到 {path}",
        "panel_result": "结果（透明区域以棋盘格显示）",
        "panel_alpha": "Alpha 通道",
        "panel_compare": "原图与结果对比",
        "original": "原图",
        "result": "结果",
        "download_result": "下载结果（{format}）",
        "download_alpha": "下载 Alpha（PNG）",
    },
}


class UploadRefused(ValueError):
    """The upload or its options cannot be processed; the message is for the user."""


@dataclass(frozen=True)
class SingleOptions:
    mode: str = "transparent"  # one of OUTPUT_MODES
    format: str = "png"
    bg_color: str = "#ffffff"
    background: bytes | None = None
    background_name: str | None = None
    save: bool = False
    #: Estimate the foreground's own colours so the background does not tint hair and soft edges.
    decontaminate: bool = False
    refine: str = OutputOptions.refine

    def for_history(self) -> dict:
        options = {"output": self.mode, "format": self.format, "save": self.save}
        if self.decontaminate:
            options["decontaminate"] = True
        if self.refine != OutputOptions.refine:
            options["refine"] = self.refine
        if self.mode == "color":
            options["bg_color"] = self.bg_color
        if self.mode == "image":
            options["background"] = self.background_name
        return options


@dataclass(frozen=True)
class SingleResult:
    source_name: str
    size: tuple[int, int]
    format: str
    data: bytes  # the encoded result, as downloaded and saved
    alpha_png: bytes  # the full-size matte
    elapsed_ms: float  # the whole job: Triton, local composition, encoding and saving
    output_path: str | None
    #: Downscaled PNGs for display: "checkerboard", "alpha", "original", "result".
    previews: dict[str, bytes] = field(repr=False)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def download_name(self) -> str:
        return f"{Path(self.source_name).stem}-matted.{self.format}"


@st.cache_data(ttl=300, show_spinner=False)
def _served_version(url: str, _client: MattingClient) -> str:
    return ",".join(_client.model_metadata().get("versions") or []) or "unknown"


def model_version(context: UiContext) -> str:
    """The ensemble's version from Triton, asked at most every five minutes; "unknown" while it is down."""
    try:
        return _served_version(context.settings.triton_grpc_url, context.client)
    except Exception:  # noqa: BLE001 - a history row must not fail because metadata is unavailable
        return "unknown"


def failure_text(context: UiContext, exc: Exception) -> str:
    """The user's sentence for a failure: what is wrong with the file, or what the server said."""
    if isinstance(exc, (ImageError, UploadRefused)):
        return context.common("bad_image", reason=str(exc))
    return context.failure_message(exc)


def unique_path(path: Path) -> Path:
    """``path`` if nothing is there yet, else ``stem-2.ext``, ``stem-3.ext``…: outputs are never overwritten."""
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    return candidate


def over_checkerboard(image: Image.Image) -> Image.Image:
    """The image over light and dark grey squares, so transparency is visible on any page colour."""
    rgba = image.convert("RGBA")
    rows, columns = np.indices((rgba.height, rgba.width))
    light = (rows // CHECKER_SQUARE + columns // CHECKER_SQUARE) % 2 == 0
    board = Image.fromarray(np.where(light, 255, 204).astype(np.uint8), mode="L").convert("RGBA")
    return Image.alpha_composite(board, rgba).convert("RGB")


def _downscaled(image: Image.Image) -> Image.Image:
    preview = image.copy()
    preview.thumbnail(PREVIEW_BOX)
    return preview


def _declared_size(data: bytes) -> str:
    """The size the file header declares (no decoding), for the history row of a failed job."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return "{}×{}".format(*image.size)
    except Exception:  # noqa: BLE001 - an unreadable header is exactly what failed jobs often have
        return "-"


def _matte(context: UiContext, name: str, data: bytes, options: SingleOptions) -> tuple[SingleResult, Image.Image]:
    started = time.perf_counter()
    limit_mb = context.settings.max_upload_mb
    if len(data) > limit_mb * 1024 * 1024:
        raise UploadRefused(context.text(STRINGS, "too_large", name=name, size=len(data) / 1024 / 1024, limit=limit_mb))
    background = None
    if options.mode == "image":
        if not options.background:
            raise UploadRefused(context.text(STRINGS, "need_background"))
        try:
            background = decode_image(options.background)
        except ImageError as exc:
            raise UploadRefused(context.text(STRINGS, "background_unreadable", reason=exc)) from None

    foreground = "estimate" if options.decontaminate else None
    if options.mode == "image":
        # Only the matte is needed from the server; the picture is composed here.
        matted = context.client.remove_background(data, "alpha", "png", with_alpha=True, refine=options.refine)
    elif options.mode == "color":
        matted = context.client.remove_background(data, "composite", options.format, options.bg_color, with_alpha=True,
                                                  foreground=foreground, refine=options.refine)
    else:
        matted = context.client.remove_background(data, "rgba", options.format, with_alpha=True, foreground=foreground,
                                                  refine=options.refine)
    original = decode_image(data)  # the same upright RGB pixels the server matted
    if background is not None:
        if options.decontaminate:
            original = estimate_foreground(original, matted.alpha)
        result_image = composite_over_image(original, matted.alpha, background)
        result_data = encode_image(result_image, options.format)
    else:
        result_data = matted.data
        result_image = Image.open(io.BytesIO(result_data))
        result_image.load()
    matte = Image.fromarray(matted.alpha, mode="L")

    output_path = None
    if options.save:
        target = unique_path(timestamped_output_dir(context.settings.outputs_dir) / f"result.{options.format}")
        atomic_write_bytes(target, result_data)
        output_path = str(target)
    result_preview = _downscaled(result_image)
    previews = {
        "checkerboard": encode_image(over_checkerboard(result_preview), "png"),
        "alpha": encode_image(_downscaled(matte), "png"),
        "original": encode_image(_downscaled(original), "png"),
        "result": encode_image(result_preview, "png"),
    }
    result = SingleResult(
        source_name=name, size=original.size, format=options.format, data=result_data,
        alpha_png=encode_image(matte, "png"), elapsed_ms=(time.perf_counter() - started) * 1000,
        output_path=output_path, previews=previews,
    )
    return result, result_image


def process_upload(context: UiContext, name: str, data: bytes, options: SingleOptions) -> SingleResult:
    """Matte one uploaded file and record the job in the history, ok or failed; failures are re-raised."""
    started = time.perf_counter()
    model = f"{MODEL} + refiner" if options.refine == "refiner" else MODEL
    job = partial(Job, kind="single", sources=[name], options=options.for_history(), model=model,
                  model_version=model_version(context))
    try:
        result, result_image = _matte(context, name, data, options)
    except Exception as exc:
        context.history.add(job(image_size=_declared_size(data), duration_ms=(time.perf_counter() - started) * 1000,
                                status="failed", error=str(exc)))
        raise
    context.history.add(job(image_size="{}×{}".format(*result.size), duration_ms=result.elapsed_ms, status="ok",
                            output_path=result.output_path, thumbnail=make_thumbnail(result_image)))
    return result


def _options(context: UiContext) -> SingleOptions:
    text = partial(context.text, STRINGS)
    mode = st.radio(text("output"), OUTPUT_MODES, format_func=lambda value: text(f"mode_{value}"), horizontal=True,
                    key="single_mode")
    format = st.radio(text("format"), OUTPUT_FORMATS, format_func=str.upper, horizontal=True, key="single_format")
    bg_color, background = "#ffffff", None
    if mode == "color":
        bg_color = st.color_picker(text("bg_color"), "#ffffff", key="single_bg_color")
    if mode == "image":
        background = st.file_uploader(text("bg_image"), type=UPLOAD_TYPES, key="single_background",
                                      max_upload_size=context.settings.max_upload_mb)
    refine = st.selectbox(text("refine"), REFINE_MODES, index=REFINE_MODES.index(OutputOptions.refine),
                          format_func=lambda value: text(f"refine_{value}"), key="single_refine", help=text("refine_help"))
    decontaminate = st.checkbox(text("decontaminate"), key="single_decontaminate", help=text("decontaminate_help"))
    save = st.checkbox(text("save"), key="single_save")
    return SingleOptions(mode=mode, format=format, bg_color=bg_color,
                         background=background.getvalue() if background else None,
                         background_name=background.name if background else None, save=save,
                         decontaminate=decontaminate, refine=refine)


def _show_result(context: UiContext, result: SingleResult) -> None:
    text = partial(context.text, STRINGS)
    st.subheader(text("result_title", name=result.source_name))
    time_column, size_column = st.columns(2)
    time_column.metric(text("time"), f"{result.elapsed_ms:.0f} ms")
    size_column.metric(text("size"), "{}×{}".format(*result.size))
    if result.output_path:
        st.success(text("saved_to", path=result.output_path))
    result_column, alpha_column = st.columns(2)
    result_column.image(result.previews["checkerboard"], caption=text("panel_result"), width="stretch")
    alpha_column.image(result.previews["alpha"], caption=text("panel_alpha"), width="stretch")
    st.markdown(f"**{text('panel_compare')}**")
    original_column, after_column = st.columns(2)
    original_column.image(result.previews["original"], caption=text("original"), width="stretch")
    after_column.image(result.previews["result"], caption=text("result"), width="stretch")
    result_button, alpha_button = st.columns(2)
    result_button.download_button(text("download_result", format=result.format.upper()), result.data,
                                  file_name=result.download_name, mime=result.media_type, on_click="ignore",
                                  key="single_download_result")
    alpha_button.download_button(text("download_alpha"), result.alpha_png,
                                 file_name=f"{Path(result.source_name).stem}-alpha.png", mime="image/png",
                                 on_click="ignore", key="single_download_alpha")


def render(context: UiContext) -> None:
    text = partial(context.text, STRINGS)
    upload_column, options_column = st.columns(2)
    with upload_column:
        upload = st.file_uploader(text("upload"), type=UPLOAD_TYPES, key="single_upload",
                                  max_upload_size=context.settings.max_upload_mb,
                                  help=text("upload_help", limit=context.settings.max_upload_mb))
    with options_column:
        options = _options(context)
    if st.button(text("start"), type="primary", key="single_start"):
        if upload is None:
            st.warning(text("choose_file"))
        else:
            with st.spinner(text("processing")):
                try:
                    st.session_state[RESULT_KEY] = process_upload(context, upload.name, upload.getvalue(), options)
                    st.session_state.pop(FAILURE_KEY, None)
                except Exception as exc:  # noqa: BLE001 - shown as a sentence, never a traceback
                    if not isinstance(exc, (MattingError, ImageError, UploadRefused)):
                        LOG.exception("single-image job failed")
                    st.session_state.pop(RESULT_KEY, None)
                    st.session_state[FAILURE_KEY] = exc
    if FAILURE_KEY in st.session_state:
        st.error(failure_text(context, st.session_state[FAILURE_KEY]))
    if RESULT_KEY in st.session_state:
        _show_result(context, st.session_state[RESULT_KEY])
