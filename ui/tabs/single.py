"""The single-image tab: upload a photo, matte it on Triton, look at the cut-out, the matte and a
before/after view, download them or save them under the outputs folder.

The work is in :func:`process_upload` (no widgets), so it is testable on its own; every job, ok or
failed, is recorded in the history. The last result lives in ``st.session_state`` because a download
click or any other widget reruns the script.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import streamlit as st

from client import MattingError
from matting.codec import declared_size
from matting.files import atomic_write_bytes, timestamped_output_dir, unique_path
from matting.options import FORMATS, MEDIA_TYPES, REFINE_MODES, OptionsError, OutputOptions
from matting.previews import matte_png, result_previews
from ui.context import UPLOAD_TYPES, UiContext
from ui.history import Job
from ui.widgets import model_choice

LOG = logging.getLogger(__name__)

#: The dashboard's words for the output → the OutputOptions kind each one asks for.
OUTPUT_MODES = {"transparent": "rgba", "color": "composite", "image": "composite"}
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
        "flip": "Also matte the mirrored photo and average (better matte, twice the network time)",
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
        "flip": "同时处理镜像照片并取平均（抠图更准，网络耗时约翻倍）",
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
class SingleRequest:
    """The form: ``options`` for the server, plus what only the dashboard knows (its output mode, the
    background picture, whether to save)."""

    options: OutputOptions
    mode: str = "transparent"  # one of OUTPUT_MODES
    background: bytes | None = None
    background_name: str | None = None
    save: bool = False

    @classmethod
    def from_form(cls, mode: str = "transparent", format: str = "png", bg_color: str = "#ffffff",
                  decontaminate: bool = False, refine: str = OutputOptions.refine, background: bytes | None = None,
                  background_name: str | None = None, save: bool = False, model: str | None = None,
                  flip: bool = False) -> SingleRequest:
        options = OutputOptions.parse(kind=OUTPUT_MODES[mode], format=format, bg_color=bg_color,
                                      foreground="estimate" if decontaminate else None, refine=refine, model=model,
                                      tta="flip" if flip else None)
        return cls(options, mode, background if mode == "image" else None, background_name if mode == "image" else None, save)

    def for_history(self) -> dict:
        options = {"output": self.mode, "format": self.options.format, "save": self.save}
        if self.options.foreground == "estimate":
            options["decontaminate"] = True
        if self.options.tta != OutputOptions.tta:
            options["tta"] = self.options.tta
        if self.options.refine != OutputOptions.refine:
            options["refine"] = self.options.refine
        if self.mode == "color":
            options["bg_color"] = self.options.bg_color_hex
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
    elapsed_ms: float  # the whole job: Triton, previews and saving
    output_path: str | None
    #: Downscaled PNGs for display (matting.previews.result_previews).
    previews: dict[str, bytes] = field(repr=False)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def download_name(self) -> str:
        return f"{Path(self.source_name).stem}-matted.{self.format}"


def failure_text(context: UiContext, exc: Exception) -> str:
    """The user's sentence for a failure: what is wrong with the file, or what the server said."""
    if isinstance(exc, (UploadRefused, OptionsError)):
        return context.common("bad_image", reason=str(exc))
    return context.failure_message(exc)


def _declared_size(data: bytes) -> str:
    size = declared_size(data)
    return "{}×{}".format(*size) if size else "-"


def _matte(context: UiContext, name: str, data: bytes, request: SingleRequest) -> SingleResult:
    started = time.perf_counter()
    limit_mb = context.settings.max_upload_mb
    if len(data) > limit_mb * 1024 * 1024:
        raise UploadRefused(context.text(STRINGS, "too_large", name=name, size=len(data) / 1024 / 1024, limit=limit_mb))
    if request.mode == "image" and not request.background:
        raise UploadRefused(context.text(STRINGS, "need_background"))
    matted = context.client.remove_background(data, request.options, request.background)
    output_path = None
    if request.save:
        target = unique_path(timestamped_output_dir(context.settings.outputs_dir) / f"result.{request.options.format}")
        atomic_write_bytes(target, matted.data)
        output_path = str(target)
    height, width = matted.alpha.shape
    return SingleResult(
        source_name=name, size=(width, height), format=request.options.format, data=matted.data,
        alpha_png=matte_png(matted.alpha), elapsed_ms=(time.perf_counter() - started) * 1000,
        output_path=output_path, previews=result_previews(data, matted.data, matted.alpha),
    )


def process_upload(context: UiContext, name: str, data: bytes, request: SingleRequest) -> SingleResult:
    """Matte one uploaded file and record the job in the history, ok or failed; failures are re-raised."""
    started = time.perf_counter()
    model, version = context.served_model(request.options)
    job = partial(Job, kind="single", sources=[name], options=request.for_history(), model=model, model_version=version)
    try:
        result = _matte(context, name, data, request)
    except Exception as exc:
        context.history.add(job(image_size=_declared_size(data), duration_ms=(time.perf_counter() - started) * 1000,
                                status="failed", error=str(exc)))
        raise
    context.history.add(job(image_size="{}×{}".format(*result.size), duration_ms=result.elapsed_ms, status="ok",
                            output_path=result.output_path, thumbnail=result.previews["thumbnail"]))
    return result


def _request(context: UiContext) -> SingleRequest:
    text = partial(context.text, STRINGS)
    model = model_choice(context, "single_model_choice")
    mode = st.radio(text("output"), OUTPUT_MODES, format_func=lambda value: text(f"mode_{value}"), horizontal=True,
                    key="single_mode")
    format = st.radio(text("format"), FORMATS, format_func=str.upper, horizontal=True, key="single_format")
    bg_color, background = "#ffffff", None
    if mode == "color":
        bg_color = st.color_picker(text("bg_color"), "#ffffff", key="single_bg_color")
    if mode == "image":
        background = st.file_uploader(text("bg_image"), type=UPLOAD_TYPES, key="single_background",
                                      max_upload_size=context.settings.max_upload_mb)
    refine = st.selectbox(text("refine"), REFINE_MODES, index=REFINE_MODES.index(OutputOptions.refine),
                          format_func=lambda value: text(f"refine_{value}"), key="single_refine", help=text("refine_help"))
    flip = st.checkbox(text("flip"), key="single_flip")
    decontaminate = st.checkbox(text("decontaminate"), key="single_decontaminate", help=text("decontaminate_help"))
    save = st.checkbox(text("save"), key="single_save")
    return SingleRequest.from_form(mode, format, bg_color, decontaminate, refine,
                                   background.getvalue() if background else None,
                                   background.name if background else None, save, model, flip)


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
        request = _request(context)
    if st.button(text("start"), type="primary", key="single_start"):
        if upload is None:
            st.warning(text("choose_file"))
        else:
            with st.spinner(text("processing")):
                try:
                    st.session_state[RESULT_KEY] = process_upload(context, upload.name, upload.getvalue(), request)
                    st.session_state.pop(FAILURE_KEY, None)
                except Exception as exc:  # noqa: BLE001 - shown as a sentence, never a traceback
                    if not isinstance(exc, (MattingError, UploadRefused)):
                        LOG.exception("single-image job failed")
                    st.session_state.pop(RESULT_KEY, None)
                    st.session_state[FAILURE_KEY] = exc
    if FAILURE_KEY in st.session_state:
        st.error(failure_text(context, st.session_state[FAILURE_KEY]))
    if RESULT_KEY in st.session_state:
        _show_result(context, st.session_state[RESULT_KEY])
