"""The batch tab: every image of a folder (typed, and confined to the allowed roots) or of a
multi-file upload, through :func:`client.batch.run_batch`, into a fresh ``outputs_YYYYMMDDHHMMSS``
folder; then the summary, the failures and a ZIP of the outputs.

The last batch lives in ``st.session_state`` so the download button and other reruns keep it.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from client.batch import DEFAULT_CONCURRENCY, BatchSettings, run_batch
from client.report import BatchReport
from matting.files import find_images, timestamped_output_dir, unique_path
from matting.options import FORMATS, KINDS, OutputOptions
from matting.previews import thumbnail_of_file
from ui.archive import zip_folder
from ui.context import UPLOAD_TYPES, UiContext
from ui.history import Job
from ui.paths import PathNotAllowed, resolve_in_roots
from ui.widgets import model_choice

LOG = logging.getLogger(__name__)

SOURCES = ("folder", "upload")
#: A history row lists at most this many source names; the report.json in the output folder has them all.
HISTORY_SOURCES = 50
MAX_CONCURRENCY = 32
OUTCOME_KEY = "batch_outcome"

STRINGS = {
    "en": {
        "source": "Images from",
        "source_folder": "A folder",
        "source_upload": "Uploaded files",
        "folder": "Folder path",
        "folder_help": "Absolute, or relative to the project. Allowed: {roots}",
        "recursive": "Include sub-folders",
        "files": "Images",
        "files_help": "JPG, PNG, WebP, BMP, TIFF or GIF, up to {limit} MB each.",
        "kind": "Output",
        "kind_rgba": "Transparent (RGBA)",
        "kind_alpha": "Alpha matte",
        "kind_composite": "Background colour",
        "bg_color": "Background colour",
        "format": "Format",
        "concurrency": "Requests in flight",
        "start": "Start batch",
        "enter_folder": "Enter a folder path first.",
        "choose_files": "Choose some images first.",
        "path_refused": "This folder is not allowed: {reason}",
        "not_a_folder": "{path} is not a folder.",
        "outputs_refused": "The output folder is outside the allowed folders: {reason}",
        "no_images": "No JPG, PNG, WebP, BMP, TIFF or GIF images in {path}.",
        "too_large": "Skipped, over {limit} MB: {names}",
        "progress": "{done} / {total} images",
        "summary": "Summary",
        "total": "Total",
        "success": "Success",
        "failed": "Failed",
        "average": "Average time",
        "output_dir": "Output folder: `{path}`",
        "failures": "Failed files",
        "column_file": "File",
        "column_reason": "Reason",
        "download_zip": "Download all outputs (ZIP)",
    },
    "zh": {
        "source": "图片来源",
        "source_folder": "文件夹",
        "source_upload": "上传文件",
        "folder": "文件夹路径",
        "folder_help": "绝对路径，或相对于项目目录的路径。允许的目录：{roots}",
        "recursive": "包含子文件夹",
        "files": "图片",
        "files_help": "支持 JPG、PNG、WebP、BMP、TIFF、GIF，每个文件最大 {limit} MB。",
        "kind": "输出",
        "kind_rgba": "透明背景（RGBA）",
        "kind_alpha": "Alpha 通道",
        "kind_composite": "背景颜色",
        "bg_color": "背景颜色",
        "format": "格式",
        "concurrency": "并发请求数",
        "start": "开始批量处理",
        "enter_folder": "请先输入文件夹路径。",
        "choose_files": "请先选择图片。",
        "path_refused": "不允许访问该文件夹：{reason}",
        "not_a_folder": "{path} 不是文件夹。",
        "outputs_refused": "输出文件夹不在允许的目录内：{reason}",
        "no_images": "{path} 中没有 JPG、PNG、WebP、BMP、TIFF 或 GIF 图片。",
        "too_large": "已跳过超过 {limit} MB 的文件：{names}",
        "progress": "{done} / {total} 张图片",
        "summary": "汇总",
        "total": "总数",
        "success": "成功",
        "failed": "失败",
        "average": "平均耗时",
        "output_dir": "输出文件夹：`{path}`",
        "failures": "失败的文件",
        "column_file": "文件",
        "column_reason": "原因",
        "download_zip": "下载全部结果（ZIP）",
    },
}


@dataclass(frozen=True)
class BatchRequest:
    """What the form asked for, independent of where the images come from."""

    options: OutputOptions
    concurrency: int
    recursive: bool = False

    def for_history(self, source: str) -> dict:
        options = {"source": source, "kind": self.options.kind, "format": self.options.format,
                   "concurrency": self.concurrency, "recursive": self.recursive}
        if self.options.kind == "composite":
            options["bg_color"] = self.options.bg_color_hex
        return options


def batch_status(report: BatchReport) -> str:
    counts = report.counts
    if not counts["failed"]:
        return "ok"
    return "failed" if not counts["ok"] + counts["skipped"] else "partial"


def _first_output_thumbnail(report: BatchReport) -> bytes | None:
    for outcome in report.outcomes:
        if outcome.status == "ok" and outcome.output:
            return thumbnail_of_file(Path(outcome.output))
    return None


def record_batch(context: UiContext, request: BatchRequest, source: str, sources: list[str], output_dir: Path,
                 report: BatchReport | None, error: str | None = None) -> None:
    """One history row per batch; without a report the whole batch failed with ``error``."""
    failures = [outcome for outcome in report.outcomes if outcome.status == "failed"] if report else []
    model, version = context.served_model(request.options)
    context.history.add(Job(
        kind="batch",
        sources=sources[:HISTORY_SOURCES],
        image_size=f"{len(sources)} images",
        options=request.for_history(source),
        model=model,
        model_version=version,
        duration_ms=report.elapsed_s * 1000 if report else 0.0,
        status=batch_status(report) if report else "failed",
        output_path=str(output_dir),
        error=error or "; ".join(f"{outcome.file}: {outcome.error}" for outcome in failures[:5]) or None,
        thumbnail=_first_output_thumbnail(report) if report else None,
    ))


def run_folder(context: UiContext, input_dir: Path, request: BatchRequest, source: str) -> BatchReport | None:
    """Process ``input_dir`` into a fresh output folder with a progress bar, and record the job.

    Returns None, after saying why, when there is nothing to do or the output folder is not allowed.
    """
    text = partial(context.text, STRINGS)
    output_dir = unique_path(timestamped_output_dir(context.settings.outputs_dir))
    try:
        resolve_in_roots(str(output_dir), context.settings.allowed_roots)
    except PathNotAllowed as exc:
        st.error(text("outputs_refused", reason=exc))
        return None
    sources = [str(path.relative_to(input_dir)) for path in find_images(input_dir, request.recursive, confine=True)]
    if not sources:
        st.warning(text("no_images", path=input_dir))
        return None
    bar = st.progress(0.0, text=text("progress", done=0, total=len(sources)))

    def show_progress(outcome, done: int, total: int) -> None:
        bar.progress(done / total, text=text("progress", done=done, total=total))

    try:
        report = run_batch(input_dir, output_dir, url=context.settings.triton_grpc_url,
                           settings=BatchSettings(request.options, concurrency=request.concurrency), recursive=request.recursive,
                           progress=False, on_outcome=show_progress, confine=True)
    except Exception as exc:
        record_batch(context, request, source, sources, output_dir, None, error=str(exc))
        raise
    record_batch(context, request, source, sources, output_dir, report)
    return report


def _folder_batch(context: UiContext, folder_text: str, request: BatchRequest) -> BatchReport | None:
    text = partial(context.text, STRINGS)
    if not folder_text.strip():
        st.warning(text("enter_folder"))
        return None
    try:
        input_dir = resolve_in_roots(folder_text, context.settings.allowed_roots)
    except PathNotAllowed as exc:
        st.error(text("path_refused", reason=exc))
        return None
    if not input_dir.is_dir():
        st.error(text("not_a_folder", path=input_dir))
        return None
    return run_folder(context, input_dir, request, "folder")


def _upload_batch(context: UiContext, uploads: list, request: BatchRequest) -> BatchReport | None:
    """Write the uploads into a temporary folder (names stripped of any directories) and process that."""
    text = partial(context.text, STRINGS)
    if not uploads:
        st.warning(text("choose_files"))
        return None
    limit_mb = context.settings.max_upload_mb
    accepted = [upload for upload in uploads if upload.size <= limit_mb * 1024 * 1024]
    if len(accepted) < len(uploads):
        names = ", ".join(upload.name for upload in uploads if upload not in accepted)
        st.warning(text("too_large", limit=limit_mb, names=names))
    with tempfile.TemporaryDirectory(prefix="cvunet-uploads-") as folder:
        for upload in accepted:
            unique_path(Path(folder) / Path(upload.name).name).write_bytes(upload.getvalue())
        return run_folder(context, Path(folder), request, "upload")


def _form(context: UiContext) -> tuple[str, str, list, BatchRequest]:
    text = partial(context.text, STRINGS)
    source_column, options_column = st.columns(2)
    folder_text, uploads, recursive = "", [], False
    with source_column:
        source = st.radio(text("source"), SOURCES, format_func=lambda value: text(f"source_{value}"), horizontal=True,
                          key="batch_source")
        if source == "folder":
            roots = ", ".join(str(root) for root in context.settings.allowed_roots)
            folder_text = st.text_input(text("folder"), key="batch_folder", placeholder="data/photos",
                                        help=text("folder_help", roots=roots))
            recursive = st.checkbox(text("recursive"), key="batch_recursive")
        else:
            uploads = st.file_uploader(text("files"), type=UPLOAD_TYPES, accept_multiple_files=True,
                                       key="batch_uploads", max_upload_size=context.settings.max_upload_mb,
                                       help=text("files_help", limit=context.settings.max_upload_mb))
    with options_column:
        model = model_choice(context, "batch_model_choice")
        kind = st.radio(text("kind"), KINDS, format_func=lambda value: text(f"kind_{value}"), horizontal=True,
                        key="batch_kind")
        bg_color = st.color_picker(text("bg_color"), "#ffffff", key="batch_bg_color") if kind == "composite" else None
        format = st.radio(text("format"), FORMATS, format_func=str.upper, horizontal=True, key="batch_format")
        concurrency = st.number_input(text("concurrency"), min_value=1, max_value=MAX_CONCURRENCY,
                                      value=DEFAULT_CONCURRENCY, step=1, key="batch_concurrency")
    request = BatchRequest(OutputOptions.parse(kind, format, bg_color, model=model), int(concurrency), recursive)
    return source, folder_text, uploads or [], request


def _show_report(context: UiContext, report: BatchReport) -> None:
    text = partial(context.text, STRINGS)
    counts, average = report.counts, report.average_ms
    st.subheader(text("summary"))
    total, success, failed, average_time = st.columns(4)
    total.metric(text("total"), len(report.outcomes))
    success.metric(text("success"), counts["ok"] + counts["skipped"])
    failed.metric(text("failed"), counts["failed"])
    average_time.metric(text("average"), f"{average:.0f} ms" if average is not None else "-")
    st.markdown(text("output_dir", path=report.output_dir))
    failures = [outcome for outcome in report.outcomes if outcome.status == "failed"]
    if failures:
        st.markdown(f"**{text('failures')}**")
        table = pd.DataFrame({text("column_file"): [outcome.file for outcome in failures],
                              text("column_reason"): [outcome.error for outcome in failures]})
        st.dataframe(table, hide_index=True)
    output_dir = Path(report.output_dir)
    st.download_button(text("download_zip"), partial(zip_folder, output_dir), file_name=f"{output_dir.name}.zip",
                       mime="application/zip", on_click="ignore", key="batch_download_zip")


def render(context: UiContext) -> None:
    source, folder_text, uploads, request = _form(context)
    if st.button(context.text(STRINGS, "start"), type="primary", key="batch_start"):
        st.session_state.pop(OUTCOME_KEY, None)
        try:
            if source == "folder":
                report = _folder_batch(context, folder_text, request)
            else:
                report = _upload_batch(context, uploads, request)
        except Exception as exc:  # noqa: BLE001 - shown as a sentence, never a traceback
            LOG.exception("batch failed")
            context.show_failure(exc)
            report = None
        if report is not None:
            st.session_state[OUTCOME_KEY] = report
    if OUTCOME_KEY in st.session_state:
        _show_report(context, st.session_state[OUTCOME_KEY])
