"""The single-image tab: drop (or paste) a photo and the result appears, no button to press.

The server is asked once per photo (and model) for the cut-out; the chosen output — transparent,
a colour, a picture, the white product shot, the ID photo — is made from it below the UI
(matting.recipes), so changing it shows the new result at once. Every result is kept for
re-download from the history. The work is in :func:`serve_cutout` and :func:`make_result` (no
widgets), so it is testable on its own; the last cut-out and result live in ``st.session_state``
because every click reruns the script.
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

from client import MattingError
from matting.codec import ImageError, declared_size
from matting.layouts import LayoutError
from matting.options import OutputOptions
from matting.previews import BACKDROPS, actual_pixels, matte_png, on_backdrop, result_previews
from matting.recipes import Recipe
from ui.compare import BACKDROP_CSS, before_after
from ui.context import UPLOAD_TYPES, UiContext
from ui.history import Job
from ui.kept_results import KeptResults
from ui.reasons import engineer_text
from ui.state import sticky
from ui.widgets import recipe_form

LOG = logging.getLogger(__name__)

CUTOUT_KEY, RESULT_KEY, FAILURE_KEY = "single_cutout", "single_result", "single_failure"

STRINGS = {
    "en": {
        "upload": "Drop a photo here, paste one (Ctrl+V) or choose a file",
        "waiting": "Your result appears here as soon as a photo is added.",
        "processing": "Removing the background…",
        "facts": "**{name}** · {width} × {height} px · {seconds:.1f} s",
        "backdrop": "Show transparent areas on",
        "backdrop_checkerboard": "Checkerboard",
        "backdrop_white": "White",
        "backdrop_black": "Black",
        "backdrop_colour": "Colour…",
        "backdrop_pick": "Backdrop colour",
        "checkerboard_note": "The checkerboard marks transparent areas; it is not part of the image.",
        "before": "Original",
        "after": "Result",
        "handle": "Drag to compare the original and the result",
        "download_result": "Download result ({format})",
        "download_alpha": "Download mask (PNG)",
        "ending_transparent": "cutout",
        "ending_color": "background",
        "ending_image": "background",
        "ending_product": "product",
        "ending_id": "id-photo",
        "ending_mask": "mask",
        "zoom": "Check edges at 100 %",
        "zoom_x": "Left ↔ right",
        "zoom_y": "Top ↕ bottom",
    },
    "zh": {
        "upload": "把照片拖到这里、直接粘贴（Ctrl+V），或点击选择",
        "waiting": "添加照片后，结果会立即显示在这里。",
        "processing": "正在抠图…",
        "facts": "**{name}** · {width} × {height} 像素 · {seconds:.1f} 秒",
        "backdrop": "透明区域显示为",
        "backdrop_checkerboard": "棋盘格",
        "backdrop_white": "白色",
        "backdrop_black": "黑色",
        "backdrop_colour": "自选颜色…",
        "backdrop_pick": "背景颜色",
        "checkerboard_note": "棋盘格表示透明区域，不会出现在下载的图片中。",
        "before": "原图",
        "after": "结果",
        "handle": "拖动对比原图和结果",
        "download_result": "下载结果（{format}）",
        "download_alpha": "下载蒙版（PNG）",
        "ending_transparent": "抠图",
        "ending_color": "换背景",
        "ending_image": "换背景",
        "ending_product": "白底主图",
        "ending_id": "证件照",
        "ending_mask": "蒙版",
        "zoom": "100% 查看边缘细节",
        "zoom_x": "左 ↔ 右",
        "zoom_y": "上 ↕ 下",
    },
}


class UploadRefused(ImageError):
    """The upload cannot be processed; the message is for engineers (ui.reasons words it for the user)."""


@dataclass(frozen=True)
class Cutout:
    """What the server returned for one upload and one request (model, decontamination)."""

    upload_id: str
    source_name: str
    options: OutputOptions
    photo: bytes = field(repr=False)
    served: bytes = field(repr=False)  # the RGBA cut-out as PNG
    elapsed_ms: float


@dataclass(frozen=True)
class SingleResult:
    cutout: Cutout
    recipe: Recipe
    image: Image.Image = field(repr=False)  # full resolution, for the 100 % view
    data: bytes = field(repr=False)  # the encoded result, as downloaded and kept
    alpha_png: bytes = field(repr=False)
    elapsed_ms: float  # the server's time plus making this result
    kept: Path
    #: Downscaled PNGs for display (matting.previews.result_previews).
    previews: dict[str, bytes] = field(repr=False)
    #: Named after the source in the page's language: "商品图.jpg" → "商品图-白底主图.jpg", "商品图-蒙版.png".
    download_name: str
    alpha_name: str


def _declared_size(data: bytes) -> str:
    size = declared_size(data)
    return "{}×{}".format(*size) if size else "-"


def _job(context: UiContext, cutout_options: OutputOptions, name: str, recipe: Recipe, **values) -> Job:
    model, version = context.served_model(cutout_options)
    return Job(kind="single", sources=[name], options=recipe.for_history(), model=model, model_version=version, **values)


def serve_cutout(context: UiContext, upload_id: str, name: str, data: bytes, recipe: Recipe) -> Cutout:
    """Ask the server for the photo's cut-out; a refusal or failure is recorded in the history and re-raised."""
    started = time.perf_counter()
    options = recipe.request_options()
    try:
        limit_mb = context.settings.max_upload_mb
        if len(data) > limit_mb * 1024 * 1024:
            raise UploadRefused(f"file too large: {len(data) / 1024 / 1024:.1f} MB, the limit is {limit_mb} MB")
        served = context.client.remove_background(data, options)
    except Exception as exc:
        context.history.add(_job(context, options, name, recipe, image_size=_declared_size(data), status="failed",
                                 duration_ms=(time.perf_counter() - started) * 1000, error=engineer_text(exc)))
        raise
    return Cutout(upload_id, name, options, data, served.data, (time.perf_counter() - started) * 1000)


def make_result(context: UiContext, cutout: Cutout, recipe: Recipe) -> SingleResult:
    """The recipe's result from the cut-out, kept for re-download and recorded in the history."""
    started = time.perf_counter()
    with Image.open(io.BytesIO(cutout.served)) as served:
        image = recipe.make(served.convert("RGBA"))
        alpha = np.asarray(served.getchannel("A"))
    data = recipe.encode(image)
    alpha_png = matte_png(alpha)
    previews = result_previews(cutout.photo, image)
    elapsed_ms = cutout.elapsed_ms + (time.perf_counter() - started) * 1000
    stem = Path(cutout.source_name).stem.lstrip(".") or "photo"  # kept files are never hidden files
    download_name = f"{stem}-{context.text(STRINGS, f'ending_{recipe.mode}')}.{recipe.suffix}"
    alpha_name = f"{stem}-{context.text(STRINGS, 'ending_mask')}.png"
    kept = KeptResults(context.settings.results_dir, context.settings.results_limit).keep(
        {download_name: data, alpha_name: alpha_png})
    context.history.add(_job(context, cutout.options, cutout.source_name, recipe, image_size="{}×{}".format(*image.size),
                             duration_ms=elapsed_ms, status="ok", output_path=str(kept),
                             thumbnail=previews["thumbnail"]))
    return SingleResult(cutout, recipe, image, data, alpha_png, elapsed_ms, kept, previews, download_name, alpha_name)


def _current(context: UiContext, upload, recipe: Recipe) -> SingleResult:
    """The result for this upload and recipe: kept from an earlier run, or made now (asking the server only
    when the photo or the request changed). A failure is kept with its upload, so it shows until the
    photo changes, and never next to another photo's result."""
    upload_id = upload.file_id
    cutout = st.session_state.get(CUTOUT_KEY)
    failure = st.session_state.get(FAILURE_KEY)
    if failure and failure[0] == (upload_id, recipe.request_options()):
        raise failure[1]
    if not cutout or (cutout.upload_id, cutout.options) != (upload_id, recipe.request_options()):
        st.session_state.pop(RESULT_KEY, None)
        with st.spinner(context.text(STRINGS, "processing")):
            try:
                cutout = serve_cutout(context, upload_id, upload.name, upload.getvalue(), recipe)
            except Exception as exc:
                st.session_state[FAILURE_KEY] = ((upload_id, recipe.request_options()), exc)
                st.session_state.pop(CUTOUT_KEY, None)
                raise
        st.session_state[CUTOUT_KEY] = cutout
    result = st.session_state.get(RESULT_KEY)
    if not result or result.cutout is not cutout or result.recipe != recipe:
        result = st.session_state[RESULT_KEY] = make_result(context, cutout, recipe)
    return result


def _backdrop(context: UiContext) -> str:
    """Checkerboard / white / black / a colour behind a transparent result (view only, never downloaded)."""
    text = partial(context.text, STRINGS)
    choice = sticky(st.pills, "single_backdrop", context.language, "checkerboard", text("backdrop"),
                    options=[*BACKDROPS, "colour"], format_func=lambda name: text(f"backdrop_{name}"),
                    selection_mode="single", required=True)
    if choice == "colour":
        return sticky(st.color_picker, "single_backdrop_colour", context.language, "#3a7bd5", text("backdrop_pick"))
    return choice


def _show_result(context: UiContext, result: SingleResult) -> None:
    text = partial(context.text, STRINGS)
    width, height = result.image.size
    st.markdown(text("facts", name=result.cutout.source_name, width=width, height=height,
                     seconds=result.elapsed_ms / 1000))
    transparent = result.recipe.mode == "transparent"
    viewer = st.container(key="single-viewer")
    result_button, alpha_button = st.columns(2)
    result_button.download_button(text("download_result", format=result.recipe.suffix.upper()), result.data,
                                  file_name=result.download_name, mime=result.recipe.media_type, on_click="ignore",
                                  key="single_download_result", type="primary", width="stretch")
    alpha_button.download_button(text("download_alpha"), result.alpha_png, file_name=result.alpha_name,
                                 mime="image/png", on_click="ignore", key="single_download_alpha", width="stretch")
    backdrop = _backdrop(context) if transparent else "white"
    if transparent and backdrop == "checkerboard":
        st.caption(text("checkerboard_note"))
    with viewer:  # drawn above the downloads, once the backdrop below is known
        if result.recipe.mode in ("product", "id"):
            st.image(result.previews["result"], width="content")  # framed by ui/assets/page.css
        else:
            before_after(result.previews["original"], result.previews["result"], (width, height),
                         BACKDROP_CSS.get(backdrop, backdrop), {key: text(key) for key in ("before", "after", "handle")},
                         key="single_compare")
    with st.expander(text("zoom")):
        x = sticky(st.slider, "single_zoom_x", context.language, 50, text("zoom_x"), min_value=0, max_value=100)
        y = sticky(st.slider, "single_zoom_y", context.language, 50, text("zoom_y"), min_value=0, max_value=100)
        st.image(on_backdrop(actual_pixels(result.image, (x / 100, y / 100)), backdrop), width="content")


def render(context: UiContext) -> None:
    text = partial(context.text, STRINGS)
    form_column, result_column = st.columns([2, 3], gap="large")
    with form_column:
        with st.container(key="paste-target"):
            upload = st.file_uploader(text("upload"), type=UPLOAD_TYPES, key="single_upload",
                                      max_upload_size=context.settings.max_upload_mb)
        recipe = recipe_form(context, "single")
    with result_column:
        if upload is None:
            for key in (CUTOUT_KEY, RESULT_KEY, FAILURE_KEY):
                st.session_state.pop(key, None)
            st.info(text("waiting"))
            return
        if recipe is None:
            return
        try:
            result = _current(context, upload, recipe)
        except Exception as exc:  # noqa: BLE001 - shown as a sentence, never a traceback
            if not isinstance(exc, (MattingError, ImageError, LayoutError)):
                LOG.exception("single-image job failed")
            st.error(context.failure_message(exc))
            return
        _show_result(context, result)
