"""The 历史记录 / History tab: past jobs (newest first) in a compact table, the selected job's details
below it, every job downloadable again (a video's result while the server keeps it), filters, and clearing.

Rows hold what the tabs recorded (engineer text for errors, option keys and values); this tab only
words them for the user: options in the chosen language (unknown keys and values from older versions
are left out, never printed raw), errors as the plain sentence of ui.reasons. Outputs are read only
when the user clicks a download button (deferred data), so listing many batch jobs never zips folders
on every rerun.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
import sqlite3
from datetime import datetime
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from matting.files import is_image_name
from matting.layouts import ID_BACKGROUNDS, ID_SIZES, PRODUCT_SIDES
from matting.options import MODELS
from matting.previews import HEX_COLOUR
from matting.recipes import MODES
from client.video_jobs import DEFAULT_KEEP_S as VIDEO_KEEP_S
from ui.archive import zip_folder
from ui.history import Job
from ui.state import sticky
from ui.widgets import FORMAT_NAMES, SWATCHES, VIDEO_FORMATS
from ui.widgets import STRINGS as FORM_STRINGS

STRINGS = {
    "en": {
        "heading": "Job history",
        "filter_kind": "Kind",
        "filter_status": "Status",
        "filter_text": "Search file names",
        "kind_all": "All",
        "kind_single": "Single",
        "kind_batch": "Batch",
        "kind_video": "Video",
        "status_all": "All",
        "status_ok": "Done",
        "status_partial": "Partly failed",
        "status_failed": "Failed",
        "stored": "{count} jobs stored; only the newest {limit} are kept. Click a row for its details and downloads.",
        "no_jobs": "No jobs yet: processed images and batches appear here.",
        "no_match": "No job matches these filters.",
        "col_preview": "Preview",
        "col_time": "Time",
        "col_kind": "Kind",
        "col_sources": "Files",
        "col_status": "Status",
        "col_model": "Model",
        "col_duration": "Time taken (s)",
        "col_options": "Options",
        "more_sources": "{shown} and {count} more",
        "images": "{count} images",
        "model_unknown": "Unknown",
        "details": "Job details",
        "detail_heading": "{time} · {sources}",
        "detail_line": "{status} · {kind} · {seconds:.1f} s · {model}",
        "model_version": "{model}, version {version}",
        "detail_size": "Image size: {size}",
        "detail_video_size": "Video: {size} px · {frames} frames",
        "detail_sources": "Files: {sources}",
        "detail_options": "Options: {options}",
        "default_options": "default",
        "detail_error": "Why it failed: {reason}",
        "detail_failures": "These files failed:",
        "failure_line": "- {file}: {reason}",
        "no_preview": "No preview stored for this job.",
        "download_file": "Download {name}",
        "download_zip": "Download all results ({name}.zip)",
        "output_gone_kept": "This result is no longer kept: only the newest {limit} single-image results are kept. Process the photo again to get it.",
        "output_gone": "The result is no longer where it was saved (it was moved or deleted), so it cannot be downloaded again.",
        "output_gone_video": "This result is no longer kept: video results stay on the server for {hours} hours. Process the video again to get it.",
        "no_output": "This job produced no result to download.",
        "clear_heading": "Clear history",
        "confirm_clear": "I'm sure: delete all {count} jobs from the history (result files stay on the server)",
        "clear": "Clear history",
        "cleared": "History cleared.",
        "opt_kind_rgba": "Transparent background",
        "opt_kind_alpha": "Black-and-white mask",
        "opt_kind_composite": "Colour background",
        "opt_source_folder": "from a folder",
        "opt_source_upload": "uploaded files",
        "opt_source_zip": "from a ZIP",
        "opt_decontaminate": "edge colours cleaned",
        "opt_shadow": "soft shadow",
        "opt_recursive": "with subfolders",
        "opt_bg_swatch": "{colour} background",
        "opt_bg_hex": "background {colour}",
        "opt_background": "background {value}",
        "opt_padding": "{value:.0f}% margin",
    },
    "zh": {
        "heading": "任务历史",
        "filter_kind": "类型",
        "filter_status": "状态",
        "filter_text": "按文件名搜索",
        "kind_all": "全部",
        "kind_single": "单图",
        "kind_batch": "批量",
        "kind_video": "视频",
        "status_all": "全部",
        "status_ok": "成功",
        "status_partial": "部分失败",
        "status_failed": "失败",
        "stored": "共保存 {count} 条任务，仅保留最新的 {limit} 条。点击表格中的一行查看详情和下载。",
        "no_jobs": "暂无任务：处理过的图片和批量任务会显示在这里。",
        "no_match": "没有符合筛选条件的任务。",
        "col_preview": "预览",
        "col_time": "时间",
        "col_kind": "类型",
        "col_sources": "文件",
        "col_status": "状态",
        "col_model": "模型",
        "col_duration": "耗时（秒）",
        "col_options": "选项",
        "more_sources": "{shown} 等 {total} 个文件",
        "images": "{count} 张图片",
        "model_unknown": "未知",
        "details": "任务详情",
        "detail_heading": "{time} · {sources}",
        "detail_line": "{status} · {kind} · {seconds:.1f} 秒 · {model}",
        "model_version": "{model}，版本 {version}",
        "detail_size": "图片尺寸：{size}",
        "detail_video_size": "视频：{size} 像素 · {frames} 帧",
        "detail_sources": "文件：{sources}",
        "detail_options": "选项：{options}",
        "default_options": "默认",
        "detail_error": "失败原因：{reason}",
        "detail_failures": "以下文件处理失败：",
        "failure_line": "- {file}：{reason}",
        "no_preview": "该任务没有保存预览图。",
        "download_file": "下载 {name}",
        "download_zip": "下载全部结果（{name}.zip）",
        "output_gone_kept": "该结果已不再保留：单图结果只保留最新的 {limit} 个。如需要，请重新处理这张照片。",
        "output_gone": "结果文件已不在原来的位置（被移动或删除），无法再次下载。",
        "output_gone_video": "该结果已不再保留：视频结果只在服务器上保留 {hours} 小时。如需要，请重新处理这个视频。",
        "no_output": "该任务没有生成可下载的结果。",
        "clear_heading": "清空历史",
        "confirm_clear": "我确定：从历史中删除全部 {count} 条任务（结果文件仍保留在服务器上）",
        "clear": "清空历史",
        "cleared": "历史已清空。",
        "opt_kind_rgba": "透明背景",
        "opt_kind_alpha": "黑白蒙版",
        "opt_kind_composite": "纯色背景",
        "opt_source_folder": "来自文件夹",
        "opt_source_upload": "上传的文件",
        "opt_source_zip": "来自 ZIP 压缩包",
        "opt_decontaminate": "去除边缘杂色",
        "opt_shadow": "柔和阴影",
        "opt_recursive": "包含子文件夹",
        "opt_bg_swatch": "{colour}背景",
        "opt_bg_hex": "背景色 {colour}",
        "opt_background": "背景图 {value}",
        "opt_padding": "留白 {value:.0f}%",
    },
}

KINDS = ("all", "single", "batch", "video")
STATUSES = ("all", "ok", "partial", "failed")
#: Text symbols, not emoji: the table is drawn on a canvas with the page's fonts, where an emoji can be a box.
STATUS_ICONS = {"ok": "✓", "partial": "⚠", "failed": "✗"}
#: Source names shown in a table cell; the details list every stored one.
SHOWN_SOURCES = 2
#: Where a batch's photos came from (its ``source`` option).
SOURCES = ("folder", "upload", "zip")
#: Old rows' output kinds (before the presets), worded here; today's modes are worded by ui.widgets.
OLD_KINDS = ("rgba", "alpha", "composite")
#: Options shown only when on.
FLAG_OPTIONS = ("shadow", "decontaminate", "recursive")
#: Options whose words are left out of the table's summary line (the model has its own column).
DETAIL_ONLY_OPTIONS = ("model", "source", "background")
#: A single job's recorded image size, "850×601" ("-" when the file could not be read).
PIXEL_SIZE = re.compile(r"\d+×\d+")
#: A video job's recorded size: "1920×1080 · 250" (frames).
VIDEO_SIZE = re.compile(r"(\d+×\d+) · (\d+)")
#: Table column widths in pixels: together they fit a 1440 px wide window, the status whole.
COLUMN_WIDTHS = {"preview": 56, "time": 130, "kind": 60, "sources": 210, "status": 120, "model": 130, "duration": 90,
                 "options": 400}


def local_time(timestamp: float, seconds: bool = True) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _thumbnail_url(thumbnail: bytes | None) -> str | None:
    return f"data:image/png;base64,{base64.b64encode(thumbnail).decode()}" if thumbnail else None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def option_words(options: dict, context, kind: str = "single") -> dict[str, str]:
    """Each option the user would recognise → its words in the page's language, in summary order, in
    the words of the form that set it (ui.widgets) where it has them.

    Keys this version does not show (concurrency, save, refine, tta of older rows) and values it does
    not know are left out: a row from another version must not put engineer words on the page.
    """
    say, form = partial(context.text, STRINGS), partial(context.text, FORM_STRINGS)
    words = {}
    if options.get("output") in MODES:
        words["output"] = form(f"mode_{options['output']}")
    elif options.get("kind") in OLD_KINDS:
        words["output"] = say(f"opt_kind_{options['kind']}")
    if options.get("id_size") in ID_SIZES:
        words["id_size"] = form(f"id_size_{options['id_size']}")
    if options.get("id_background") in ID_BACKGROUNDS:
        words["id_background"] = form(f"id_background_{options['id_background']}")
    if options.get("product_side") in PRODUCT_SIDES:
        words["product_side"] = form("side_value", side=options["product_side"])
    if _number(options.get("padding")) and 0 <= options["padding"] <= 1:
        words["padding"] = say("opt_padding", value=options["padding"] * 100)
    if isinstance(options.get("bg_color"), str) and HEX_COLOUR.fullmatch(options["bg_color"]):
        colour = options["bg_color"].lower()
        swatch = next((name for name, hex_colour in SWATCHES.items() if hex_colour == colour), None)
        words["bg_color"] = say("opt_bg_swatch", colour=form(f"swatch_{swatch}")) if swatch else say("opt_bg_hex", colour=colour)
    if isinstance(options.get("background"), str) and options["background"]:
        words["background"] = say("opt_background", value=options["background"])
    for key in FLAG_OPTIONS:
        if options.get(key) is True:
            words[key] = say(f"opt_{key}")
    if kind == "video":
        if options.get("format") in VIDEO_FORMATS:
            words["format"] = context.text(FORM_STRINGS, f"video_format_{options['format']}")
    elif options.get("format") in FORMAT_NAMES:
        words["format"] = FORMAT_NAMES[options["format"]]
    if options.get("model") in MODELS:
        words["model"] = context.common(f"model_{options['model']}")
    if options.get("source") in SOURCES:
        words["source"] = say(f"opt_source_{options['source']}")
    return words


def options_summary(options: dict, context, kind: str = "single") -> str:
    """The table's one short line: what the result looks like, without the model (its own column)."""
    words = option_words(options, context, kind)
    return " · ".join(word for key, word in words.items() if key not in DETAIL_ONLY_OPTIONS)


def status_words(status: str, say) -> str:
    return f"{STATUS_ICONS.get(status, '')} {say(f'status_{status}')}".strip()


def model_words(model: str, context) -> str:
    """精细（U²-Net）/ 快速（U²-Netp）for the pretrained networks; another name as it is."""
    if model in MODELS:
        return context.common(f"model_{model}")
    return context.text(STRINGS, "model_unknown") if model == "unknown" else model


def image_count(job: Job) -> int:
    """A batch's number of images, recorded as its size ("12"; "12 images" in older rows): the row lists
    only the first sources."""
    match = re.match(r"(\d+)", job.image_size)
    return int(match.group(1)) if match else len(job.sources)


def sources_text(job: Job, say, shown: int = SHOWN_SOURCES) -> str:
    total = image_count(job) if job.kind == "batch" else len(job.sources)
    names = ", ".join(job.sources[:shown])
    return say("more_sources", shown=names, count=total - shown, total=total) if total > shown else names


def failure_reasons(job: Job, reason) -> list[tuple[str | None, str]]:
    """(file, plain reason) for each failure in ``job.error``: a batch records "a.jpg: message; b.jpg:
    message", anything else one message (file None). ``reason`` words an engineer message."""
    if job.kind == "batch":
        pairs = [part.partition(": ") for part in job.error.split("; ")]
        if all(separator and is_image_name(Path(file)) for file, separator, _ in pairs):
            return [(file, reason(message)) for file, _, message in pairs]
    return [(None, reason(job.error))]


def render(context) -> None:
    say = partial(context.text, STRINGS)
    st.subheader(say("heading"))
    kind_column, status_column, text_column = st.columns([1, 1, 2])
    with kind_column:
        kind = sticky(st.selectbox, "history_kind", context.language, "all", say("filter_kind"), options=KINDS,
                      format_func=lambda value: say(f"kind_{value}"))
    with status_column:
        status = sticky(st.selectbox, "history_status", context.language, "all", say("filter_status"), options=STATUSES,
                        format_func=lambda value: say(f"status_{value}"))
    with text_column:
        text = sticky(st.text_input, "history_text", context.language, "", say("filter_text"))

    history = context.history
    try:
        total = history.count()
        jobs = history.list(kind=None if kind == "all" else kind, status=None if status == "all" else status,
                            text=text.strip() or None)
    except sqlite3.Error as exc:
        context.show_failure(exc)
        return
    st.caption(say("stored", count=total, limit=context.settings.history_limit))
    if not jobs:
        st.info(say("no_jobs") if total == 0 else say("no_match"))
    else:
        job = _job_table(jobs, context, say)
        _job_details(job, context, say)
    _clear_history(history, total, say)


def table_key(jobs: list[Job]) -> str:
    """A selection is a row position, so the table's key changes with the jobs it lists: a new job or
    another filter starts unselected (the newest job's details) instead of pointing at another job."""
    listed = ",".join(str(job.id) for job in jobs)
    return f"history_table.{hashlib.sha1(listed.encode()).hexdigest()[:12]}"


def _job_table(jobs: list[Job], context, say) -> Job:
    """The table, one row per job; returns the selected job, or the newest when none is selected."""
    rows = [{
        "preview": _thumbnail_url(job.thumbnail),
        "time": local_time(job.created_at, seconds=False),
        "kind": say(f"kind_{job.kind}"),
        "sources": sources_text(job, say),
        "status": status_words(job.status, say),
        "model": model_words(job.model, context),
        "duration": round(job.duration_ms / 1000, 1),
        "options": options_summary(job.options, context, job.kind),
    } for job in jobs]
    text_columns = {name: st.column_config.TextColumn(say(f"col_{name}"), width=COLUMN_WIDTHS.get(name))
                    for name in ("time", "kind", "sources", "status", "model", "options")}
    event = st.dataframe(
        pd.DataFrame(rows), hide_index=True, width="stretch", placeholder="", row_height=44,
        on_select="rerun", selection_mode="single-row", key=table_key(jobs),
        column_config={
            **text_columns,
            "preview": st.column_config.ImageColumn(say("col_preview"), width=COLUMN_WIDTHS["preview"]),
            "duration": st.column_config.NumberColumn(say("col_duration"), width=COLUMN_WIDTHS["duration"],
                                                      format="%.1f"),
        })
    selected = event.selection.rows
    return jobs[selected[0]] if selected and selected[0] < len(jobs) else jobs[0]


def _job_details(job: Job, context, say) -> None:
    st.markdown(f"#### {say('details')}")
    st.markdown(f"**{say('detail_heading', time=local_time(job.created_at), sources=sources_text(job, say))}**")
    preview, facts = st.columns([1, 3])
    if job.thumbnail:
        preview.image(job.thumbnail)
    else:
        preview.caption(say("no_preview"))
    with facts:
        model = model_words(job.model, context)
        if job.model_version not in ("", "unknown"):
            model = say("model_version", model=model, version=job.model_version)
        st.markdown(say("detail_line", status=status_words(job.status, say), kind=say(f"kind_{job.kind}"),
                        seconds=job.duration_ms / 1000, model=model))
        video_size = VIDEO_SIZE.fullmatch(job.image_size)
        if job.kind == "batch":
            st.caption(say("detail_size", size=say("images", count=image_count(job))))
        elif job.kind == "video" and video_size:
            st.caption(say("detail_video_size", size=video_size.group(1), frames=video_size.group(2)))
        elif PIXEL_SIZE.fullmatch(job.image_size):
            st.caption(say("detail_size", size=f"{job.image_size} px"))
        st.caption(say("detail_sources", sources=sources_text(job, say, shown=len(job.sources))))
        words = option_words(job.options, context, job.kind)
        st.caption(say("detail_options", options=" · ".join(words.values()) or say("default_options")))
        if job.error:
            _failure(job, context, say)
        _downloads(job, context, say)


def _failure(job: Job, context, say) -> None:
    reasons = failure_reasons(job, partial(context.reason, video=job.kind == "video"))
    if reasons[0][0] is None:
        st.warning(say("detail_error", reason=reasons[0][1]))
    else:
        lines = [say("failure_line", file=file, reason=reason) for file, reason in reasons]
        st.warning("\n".join([say("detail_failures"), *lines]))


def _downloads(job: Job, context, say) -> None:
    """A single job: one button per kept file, under its own (source-derived) name; a batch: a ZIP."""
    if not job.output_path:
        st.caption(say("no_output"))
        return
    output = Path(job.output_path)
    if output.is_dir() and job.kind == "batch":
        st.download_button(say("download_zip", name=output.name), data=partial(zip_folder, output),
                           file_name=f"{output.name}.zip", mime="application/zip",
                           key=f"history_download_{job.id}", on_click="ignore")
        return
    files = _result_files(output)
    for index, path in enumerate(files):
        name = _download_name(job, path, context)
        st.download_button(say("download_file", name=name), data=path.read_bytes, file_name=name,
                           mime=mimetypes.guess_type(name)[0] or "application/octet-stream",
                           key=f"history_download_{job.id}_{index}", on_click="ignore")
    if not files:
        if job.kind == "video":
            st.warning(say("output_gone_video", hours=f"{VIDEO_KEEP_S / 3600:g}"))
        elif output.is_relative_to(context.settings.results_dir):
            st.warning(say("output_gone_kept", limit=context.settings.results_limit))
        else:
            st.warning(say("output_gone"))


def _download_name(job: Job, path: Path, context) -> str:
    """A video's result is kept as ``result.<format>`` in its job's folder (named by the job's id); it
    downloads under the name the Video tab gives it ("clip-matted.webm") while the job is kept."""
    if job.kind == "video" and (video := context.video_jobs.get(path.parent.name)):
        return video.result_name
    return path.name


def _result_files(output: Path) -> list[Path]:
    """A single job's files: the kept folder's (temp files of a write in progress left out), or the one
    file an older version saved; none when the output is gone."""
    if output.is_dir():
        return sorted(path for path in output.iterdir() if path.is_file() and not path.name.startswith("."))
    return [output] if output.is_file() else []


def _clear_history(history, total: int, say) -> None:
    """Clearing forgets the jobs only: kept single-image results and batch outputs stay on disk (the
    kept ones are pruned to the newest N by themselves), as the confirmation says."""
    if st.session_state.pop("history_cleared", False):
        st.success(say("cleared"))
    if total == 0:
        return
    st.markdown(f"#### {say('clear_heading')}")
    sure = st.checkbox(say("confirm_clear", count=total), key="history_confirm_clear")
    st.button(say("clear"), disabled=not sure, key="history_clear", on_click=_clear, args=(history,))


def _clear(history) -> None:
    """A callback, so the table of the same run is already empty and the confirmation can be reset."""
    history.clear()
    st.session_state["history_confirm_clear"] = False
    st.session_state["history_cleared"] = True
