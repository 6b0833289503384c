"""The 历史记录 / History tab: past jobs (newest first) with filters, re-download and clearing.

Outputs are read only when the user clicks a download button (deferred data), so listing many
batch jobs never zips folders on every rerun.
"""

from __future__ import annotations

import base64
import mimetypes
import sqlite3
from datetime import datetime
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from ui.archive import zip_folder
from ui.history import Job

STRINGS = {
    "en": {
        "heading": "Job history",
        "filter_kind": "Kind",
        "filter_status": "Status",
        "filter_text": "Search source names",
        "kind_all": "All",
        "kind_single": "Single image",
        "kind_batch": "Batch",
        "status_all": "All",
        "status_ok": "OK",
        "status_partial": "Partly failed",
        "status_failed": "Failed",
        "stored": "{count} jobs stored; only the newest {limit} are kept.",
        "no_jobs": "No jobs yet: processed images and batches appear here.",
        "no_match": "No job matches these filters.",
        "col_time": "Time",
        "col_kind": "Kind",
        "col_sources": "Sources",
        "col_size": "Image size",
        "col_options": "Options",
        "col_model": "Model",
        "col_duration": "Duration (ms)",
        "col_status": "Status",
        "col_output": "Output",
        "col_preview": "Preview",
        "details": "Job details",
        "choose_job": "Job",
        "more_sources": "… (+{count} more)",
        "model_version": "{model} (version {version})",
        "detail_line": "**{time}** · {kind} · {status} · {duration:.0f} ms · {model}",
        "detail_options": "Options: {options} · image size: {size}",
        "detail_sources": "Sources: {sources}",
        "detail_error": "Error: {error}",
        "no_preview": "No preview stored for this job.",
        "download_file": "Download {name}",
        "download_zip": "Download {name}.zip",
        "output_gone": "The output {path} no longer exists (moved or deleted), so it cannot be downloaded again.",
        "no_output": "This job wrote no output.",
        "clear_heading": "Clear history",
        "confirm_clear": "I'm sure: delete all {count} jobs from the history (output files are kept)",
        "clear": "Clear history",
        "cleared": "History cleared.",
    },
    "zh": {
        "heading": "任务历史",
        "filter_kind": "类型",
        "filter_status": "状态",
        "filter_text": "按源文件名搜索",
        "kind_all": "全部",
        "kind_single": "单图",
        "kind_batch": "批量",
        "status_all": "全部",
        "status_ok": "成功",
        "status_partial": "部分失败",
        "status_failed": "失败",
        "stored": "共保存 {count} 条任务，仅保留最新的 {limit} 条。",
        "no_jobs": "暂无任务：处理过的图片和批量任务会显示在这里。",
        "no_match": "没有符合筛选条件的任务。",
        "col_time": "时间",
        "col_kind": "类型",
        "col_sources": "源文件",
        "col_size": "图片尺寸",
        "col_options": "选项",
        "col_model": "模型",
        "col_duration": "耗时 (ms)",
        "col_status": "状态",
        "col_output": "输出",
        "col_preview": "预览",
        "details": "任务详情",
        "choose_job": "任务",
        "more_sources": "…（另外 {count} 个）",
        "model_version": "{model}（版本 {version}）",
        "detail_line": "**{time}** · {kind} · {status} · {duration:.0f} ms · {model}",
        "detail_options": "选项：{options} · 图片尺寸：{size}",
        "detail_sources": "源文件：{sources}",
        "detail_error": "错误：{error}",
        "no_preview": "该任务没有保存预览图。",
        "download_file": "下载 {name}",
        "download_zip": "下载 {name}.zip",
        "output_gone": "输出 {path} 已不存在（被移动或删除），无法再次下载。",
        "no_output": "该任务没有输出文件。",
        "clear_heading": "清空历史",
        "confirm_clear": "我确定：从历史中删除全部 {count} 条任务（输出文件保留）",
        "clear": "清空历史",
        "cleared": "历史已清空。",
    },
}

KINDS = ("all", "single", "batch")
STATUSES = ("all", "ok", "partial", "failed")
SHOWN_SOURCES = 3


def local_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _thumbnail_url(thumbnail: bytes | None) -> str | None:
    return f"data:image/png;base64,{base64.b64encode(thumbnail).decode()}" if thumbnail else None


def render(context) -> None:
    def say(key: str, **values) -> str:
        return context.text(STRINGS, key, **values)

    st.subheader(say("heading"))
    kind_column, status_column, text_column = st.columns([1, 1, 2])
    kind = kind_column.selectbox(say("filter_kind"), KINDS, format_func=lambda value: say(f"kind_{value}"), key="history_kind")
    status = status_column.selectbox(say("filter_status"), STATUSES, format_func=lambda value: say(f"status_{value}"),
                                     key="history_status")
    text = text_column.text_input(say("filter_text"), key="history_text")

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
        _job_table(jobs, say)
        _job_details(jobs, say)
    _clear_history(history, total, say)


def _sources_text(job: Job, say) -> str:
    shown = ", ".join(job.sources[:SHOWN_SOURCES])
    hidden = len(job.sources) - SHOWN_SOURCES
    return f"{shown} {say('more_sources', count=hidden)}" if hidden > 0 else shown


def _options_text(job: Job) -> str:
    return ", ".join(f"{name}={value}" for name, value in job.options.items()) or "—"


def _job_table(jobs: list[Job], say) -> None:
    rows = [{
        say("col_preview"): _thumbnail_url(job.thumbnail),
        say("col_time"): local_time(job.created_at),
        say("col_kind"): say(f"kind_{job.kind}"),
        say("col_sources"): _sources_text(job, say),
        say("col_size"): job.image_size,
        say("col_options"): _options_text(job),
        say("col_model"): say("model_version", model=job.model, version=job.model_version),
        say("col_duration"): round(job.duration_ms),
        say("col_status"): say(f"status_{job.status}"),
        say("col_output"): job.output_path or "—",
    } for job in jobs]
    st.dataframe(pd.DataFrame(rows), hide_index=True,
                 column_config={say("col_preview"): st.column_config.ImageColumn(say("col_preview"))})


def _job_details(jobs: list[Job], say) -> None:
    st.markdown(f"#### {say('details')}")
    by_id = {job.id: job for job in jobs}

    def label(job_id: int) -> str:
        return f"#{job_id} · {local_time(by_id[job_id].created_at)} · {_sources_text(by_id[job_id], say)}"

    job = by_id[st.selectbox(say("choose_job"), list(by_id), format_func=label, key="history_job")]
    preview, facts = st.columns([1, 3])
    if job.thumbnail:
        preview.image(job.thumbnail)
    else:
        preview.caption(say("no_preview"))
    facts.markdown(say("detail_line", time=local_time(job.created_at), kind=say(f"kind_{job.kind}"),
                       status=say(f"status_{job.status}"), duration=job.duration_ms,
                       model=say("model_version", model=job.model, version=job.model_version)))
    facts.caption(say("detail_options", options=_options_text(job), size=job.image_size))
    facts.caption(say("detail_sources", sources=", ".join(job.sources)))
    if job.error:
        facts.warning(say("detail_error", error=job.error))
    with facts:
        _download(job, say)


def _download(job: Job, say) -> None:
    if not job.output_path:
        st.caption(say("no_output"))
        return
    output = Path(job.output_path)
    if output.is_file():
        st.download_button(say("download_file", name=output.name), data=output.read_bytes, file_name=output.name,
                           mime=mimetypes.guess_type(output.name)[0] or "application/octet-stream",
                           key=f"history_download_{job.id}", on_click="ignore")
    elif output.is_dir():
        st.download_button(say("download_zip", name=output.name), data=partial(zip_folder, output),
                           file_name=f"{output.name}.zip", mime="application/zip",
                           key=f"history_download_{job.id}", on_click="ignore")
    else:
        st.warning(say("output_gone", path=output))


def _clear_history(history, total: int, say) -> None:
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
