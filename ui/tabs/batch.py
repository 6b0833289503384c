"""The 批量处理 / Batch tab: photos dropped here (several, or ZIPs) or a folder picked from those under
the allowed roots, each made by the same recipe as a single image (:func:`ui.widgets.recipe_form`),
through :func:`client.batch.run_batch` into a fresh ``outputs_YYYYMMDDHHMMSS`` folder: original names,
sub-folders mirrored. A gallery fills in as results arrive (a card per photo: thumbnail, status, the
error in plain words, a retry), then the summary and a ZIP of everything.

The last batch lives in ``st.session_state``; a new batch or another source clears it. Uploads are
gathered into a temporary folder that lives as long as their batch, so a failed photo can be retried.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import streamlit as st

from client.batch import BatchSettings, process_file, run_batch
from client.pool import PooledClient, server_urls
from client.report import REPORT_NAME, BatchReport, FileOutcome
from matting.codec import ImageError, decode_image
from matting.files import atomic_write_bytes, find_images, output_paths, timestamped_output_dir, unique_path
from matting.previews import visible_thumbnail_of_file
from matting.recipes import Recipe
from ui.archive import zip_folder
from ui.context import UPLOAD_TYPES, UiContext
from ui.history import Job
from ui.paths import PathNotAllowed, resolve_in_roots
from ui.reasons import engineer_text
from ui.sources import MAX_ZIP_MEMBERS, MAX_ZIP_TOTAL_BYTES, FolderChoice, Gathered, folder_choices, gather_uploads
from ui.state import sticky
from ui.widgets import duration_text, markdown_escaped, recipe_form

LOG = logging.getLogger(__name__)

SOURCES = ("upload", "folder")
#: A history row lists at most this many source names; the report.json in the output folder has them all.
HISTORY_SOURCES = 50
#: One upload (a ZIP of a shop's photos) may be this large; a single photo still has the usual limit.
MAX_ZIP_UPLOAD_MB = 500
#: Cards per gallery page: enough to scan at once, few enough that a page of thumbnails loads quickly.
GALLERY_PAGE = 60
#: A card's width: seven to a row on a desktop, two on a phone (the row wraps).
CARD_WIDTH = 160
#: A card's status before the photo's name: marks every system font has (emoji fonts are missing on
#: many servers and kiosk browsers, which then show empty boxes).
MARKS = {"ok": ":green[✔]", "skipped": ":green[✔]", "failed": ":red[✘]", "waiting": ":gray[○]"}
RUN_KEY = "batch_run"

STRINGS = {
    "en": {
        "source": "Photos from",
        "source_upload": "Upload photos or ZIP files",
        "source_folder": "A folder on the server",
        "files": "Photos or ZIP files",
        "files_help": "JPG, PNG, WebP, BMP, TIFF or GIF up to {limit} MB each; ZIP files up to {zip_limit} MB, "
                      "their folders kept in the results.",
        "folder": "Folder",
        "folder_option": "{label} ({photos})",
        "folder_option_below": "{label} ({photos}; {below} with sub-folders)",
        "photos": "{count} photos",
        "photos_one": "{count} photo",
        "roots": "Folders listed from: {roots}. Copy photos into a folder there to see it in this list.",
        "no_folders": "No folder with photos yet under {roots}. Copy photos into a folder there, or upload them.",
        "recursive": "Include sub-folders",
        "start": "Start batch",
        "choose_files": "Choose photos or ZIP files first.",
        "choose_folder": "Choose a folder first.",
        "bad_background": "The background picture cannot be read. Choose another picture (JPG or PNG).",
        "folder_gone": "The folder {name} is no longer there (moved or deleted). Choose another one.",
        "folder_refused": "The folder {name} is outside the folders this service may read. Choose one from the list.",
        "outputs_refused": "The results folder {path} is outside the folders this service may write to. "
                           "Ask whoever set up this service to allow it.",
        "no_photos_folder": "No JPG, PNG, WebP, BMP, TIFF or GIF photos in {name}.",
        "no_photos_upload": "None of the uploaded files is a photo we can process.",
        "skipped": "Left out, not photos: {names}",
        "unsafe": "Left out, names in the ZIP that point outside it: {names}",
        "too_large": "Left out, over {limit} MB: {names}",
        "unreadable": "Left out, damaged or password-protected in the ZIP: {names}",
        "archive_damaged": "{name} cannot be opened as a ZIP file (damaged or another format). Make the ZIP again and retry.",
        "archive_too_many": "{name} holds more than {count} files. Split it into smaller ZIP files.",
        "archive_too_big": "{name} unpacks to more than {size} GB. Split it into smaller ZIP files.",
        "progress_start": "0 / {total} photos · starting…",
        "progress": "{done} / {total} photos · {elapsed} so far · about {left} left · {rate:.1f} photos per minute",
        "summary": "Summary",
        "total": "Photos",
        "done": "Done",
        "failed": "Failed",
        "time": "Total time",
        "rate": "Photos per minute",
        "output_dir": "Results saved in `{path}`",
        "download_zip": "Download all results (ZIP)",
        "only_failed": "Only the failed photos ({count})",
        "page": "Page",
        "page_of": "{number} of {pages}",
        "retry": "Retry",
        "retrying": "Trying {name} again…",
    },
    "zh": {
        "source": "图片来源",
        "source_upload": "上传图片或 ZIP 压缩包",
        "source_folder": "服务器上的文件夹",
        "files": "图片或 ZIP 压缩包",
        "files_help": "支持 JPG、PNG、WebP、BMP、TIFF、GIF，每张最大 {limit} MB；ZIP 压缩包最大 {zip_limit} MB，"
                      "结果中保留其中的文件夹。",
        "folder": "文件夹",
        "folder_option": "{label}（{photos}）",
        "folder_option_below": "{label}（{photos}；含子文件夹共 {below} 张）",
        "photos": "{count} 张",
        "photos_one": "{count} 张",
        "roots": "列出的文件夹来自：{roots}。把照片复制到其中的文件夹，即可在列表中看到。",
        "no_folders": "{roots} 下还没有含照片的文件夹。请把照片复制到其中的文件夹，或直接上传。",
        "recursive": "包含子文件夹",
        "start": "开始批量处理",
        "choose_files": "请先选择图片或 ZIP 压缩包。",
        "choose_folder": "请先选择文件夹。",
        "bad_background": "背景图片无法读取。请换一张图片（JPG 或 PNG）。",
        "folder_gone": "文件夹 {name} 已不存在（被移动或删除）。请选择其他文件夹。",
        "folder_refused": "文件夹 {name} 不在本服务可读取的范围内。请从列表中选择。",
        "outputs_refused": "结果文件夹 {path} 不在本服务可写入的范围内。请联系部署本服务的人员开放该目录。",
        "no_photos_folder": "{name} 中没有 JPG、PNG、WebP、BMP、TIFF 或 GIF 照片。",
        "no_photos_upload": "上传的文件中没有可以处理的照片。",
        "skipped": "已跳过（不是图片）：{names}",
        "unsafe": "已跳过（ZIP 中指向压缩包外的文件名）：{names}",
        "too_large": "已跳过（超过 {limit} MB）：{names}",
        "unreadable": "已跳过（ZIP 中损坏或加密的文件）：{names}",
        "archive_damaged": "{name} 无法作为 ZIP 文件打开（已损坏或不是 ZIP 格式）。请重新压缩后再试。",
        "archive_too_many": "{name} 中的文件超过 {count} 个。请分成几个较小的 ZIP 压缩包。",
        "archive_too_big": "{name} 解压后超过 {size} GB。请分成几个较小的 ZIP 压缩包。",
        "progress_start": "0 / {total} 张 · 正在开始…",
        "progress": "{done} / {total} 张 · 已用 {elapsed} · 预计还需 {left} · 每分钟 {rate:.1f} 张",
        "summary": "汇总",
        "total": "照片总数",
        "done": "成功",
        "failed": "失败",
        "time": "总耗时",
        "rate": "每分钟张数",
        "output_dir": "结果已保存到 `{path}`",
        "download_zip": "下载全部结果（ZIP）",
        "only_failed": "只看失败的照片（{count} 张）",
        "page": "页码",
        "page_of": "第 {number} 页，共 {pages} 页",
        "retry": "重试",
        "retrying": "正在重新处理 {name}…",
    },
}


@dataclass(frozen=True)
class Picked:
    """The photos the form points at: uploads, or a folder (with or without its sub-folders)."""

    source: str
    uploads: tuple = ()
    folder: FolderChoice | None = None
    recursive: bool = False


@dataclass
class BatchRun:
    """One batch and what the page needs to show it again and retry its failures."""

    source: str
    recipe: Recipe
    settings: BatchSettings
    input_dir: Path
    output_dir: Path
    recursive: bool
    #: Every photo of the batch (relative to ``input_dir``) → its output, as run_batch names it.
    targets: dict[str, Path]
    gathered: Gathered | None = None
    #: The folder holding the uploads, removed with the batch (or when the session ends).
    uploads: tempfile.TemporaryDirectory | None = None
    report: BatchReport | None = None
    thumbnails: dict[str, bytes | None] = field(default_factory=dict)

    def thumbnail(self, outcome: FileOutcome) -> bytes | None:
        """The card's picture of a result, made once: transparent results over a checkerboard."""
        if outcome.file not in self.thumbnails:
            self.thumbnails[outcome.file] = _card_thumbnail(Path(outcome.output)) if outcome.output else None
        return self.thumbnails[outcome.file]

    def close(self) -> None:
        if self.uploads is not None:
            self.uploads.cleanup()


def _card_thumbnail(path: Path) -> bytes | None:
    try:
        return visible_thumbnail_of_file(path)
    except OSError:  # the output was moved or deleted meanwhile: a card without a picture
        LOG.warning("no thumbnail for %s", path, exc_info=True)
        return None


def _clear_run() -> None:
    run = st.session_state.pop(RUN_KEY, None)
    if run is not None:
        run.close()


def plain_error(context: UiContext, message: str) -> str:
    """A failed file's error in the user's words (the engine's text goes to the log and the history)."""
    return context.common("bad_image", reason=context.reason(message))


def photos_per_minute(photos: int, seconds: float) -> float:
    return photos / seconds * 60 if seconds > 0 else 0.0


@st.cache_data(ttl=10, show_spinner=False)
def _folders(roots: tuple[Path, ...]) -> list[FolderChoice]:
    """Walked at most every ten seconds: every widget click reruns the page."""
    return folder_choices(roots)


def _folder_label(context: UiContext, choice: FolderChoice) -> str:
    photos = context.text(STRINGS, "photos_one" if choice.photos == 1 else "photos", count=choice.photos)
    if choice.photos_below != choice.photos:
        return context.text(STRINGS, "folder_option_below", label=choice.label, photos=photos, below=choice.photos_below)
    return context.text(STRINGS, "folder_option", label=choice.label, photos=photos)


def _pick_folder(context: UiContext) -> Picked:
    text, language = partial(context.text, STRINGS), context.language
    roots = ", ".join(f"`{root}`" for root in context.settings.allowed_roots)
    choices = {str(choice.path): choice for choice in _folders(context.settings.allowed_roots)}
    if not choices:
        st.info(text("no_folders", roots=roots))
        return Picked("folder")
    first_with_photos = next((path for path, choice in choices.items() if choice.photos), next(iter(choices)))
    path = sticky(st.selectbox, "batch_folder", language, first_with_photos, text("folder"), options=list(choices),
                  format_func=lambda value: _folder_label(context, choices[value]))
    st.caption(text("roots", roots=roots))
    recursive = sticky(st.checkbox, "batch_recursive", language, False, text("recursive"))
    return Picked("folder", folder=choices[path], recursive=recursive)


def _pick_uploads(context: UiContext) -> Picked:
    text = partial(context.text, STRINGS)
    uploads = st.file_uploader(text("files"), type=[*UPLOAD_TYPES, "zip"], accept_multiple_files=True,
                               key="batch_uploads", max_upload_size=MAX_ZIP_UPLOAD_MB)
    st.caption(text("files_help", limit=context.settings.max_upload_mb, zip_limit=MAX_ZIP_UPLOAD_MB))
    return Picked("upload", uploads=tuple(uploads or ()))


def _input_folder(context: UiContext, picked: Picked) -> tuple[Path, Gathered | None, tempfile.TemporaryDirectory | None] | None:
    """Where the batch reads its photos; None after saying why there is nothing to read."""
    text = partial(context.text, STRINGS)
    if picked.source == "upload":
        if not picked.uploads:
            st.warning(text("choose_files"))
            return None
        holder = tempfile.TemporaryDirectory(prefix="cvunet-batch-")
        gathered = gather_uploads([(upload.name, upload.getvalue()) for upload in picked.uploads], Path(holder.name),
                                  context.settings.max_upload_mb * 1024 * 1024)
        return Path(holder.name), gathered, holder
    if picked.folder is None:
        st.warning(text("choose_folder"))
        return None
    try:
        folder = resolve_in_roots(str(picked.folder.path), context.settings.allowed_roots)
    except PathNotAllowed:
        st.error(text("folder_refused", name=picked.folder.label))
        return None
    if not folder.is_dir():
        st.error(text("folder_gone", name=picked.folder.label))
        return None
    return folder, None, None


def _prepare(context: UiContext, picked: Picked, recipe: Recipe) -> BatchRun | None:
    """The batch to run, its photos listed; None after saying why it cannot start."""
    text = partial(context.text, STRINGS)
    if recipe.background is not None:
        try:
            decode_image(recipe.background)
        except ImageError:  # else every photo would fail, each blamed for the background's fault
            LOG.warning("batch: unreadable background picture %s", recipe.background_name, exc_info=True)
            st.error(text("bad_background"))
            return None
    output_dir = unique_path(timestamped_output_dir(context.settings.outputs_dir))
    try:
        resolve_in_roots(str(output_dir), context.settings.allowed_roots)
    except PathNotAllowed:
        st.error(text("outputs_refused", path=output_dir))
        return None
    found = _input_folder(context, picked)
    if found is None:
        return None
    input_dir, gathered, holder = found
    recursive = picked.recursive or picked.source == "upload"
    settings = BatchSettings(recipe.request_options(), finish=recipe.finish, suffix=recipe.suffix)
    sources = find_images(input_dir, recursive, exclude=output_dir, confine=True)
    targets = output_paths(sources, input_dir, output_dir, recipe.suffix)
    run = BatchRun(picked.source, recipe, settings, input_dir, output_dir, recursive,
                   {str(source.relative_to(input_dir)): target for source, target in targets.items()},
                   gathered, holder)
    if not sources:
        _show_left_out(context, run)
        st.warning(text("no_photos_upload") if picked.source == "upload" else text("no_photos_folder", name=picked.folder.label))
        run.close()
        return None
    return run


def _execute(context: UiContext, run: BatchRun) -> None:
    """Run the batch with a progress line and the first gallery page filling in, then record it."""
    text = partial(context.text, STRINGS)
    names = list(run.targets)
    _show_left_out(context, run)
    bar = st.progress(0.0, text=text("progress_start", total=len(names)))
    slots = {}
    with st.container(horizontal=True, key="batch_gallery_live"):
        for name in names[:GALLERY_PAGE]:
            with st.container(border=True, width=CARD_WIDTH):
                slots[name] = st.empty()
                slots[name].markdown(card_line("waiting", name))
    started = time.perf_counter()

    def show(outcome: FileOutcome, done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        rate = photos_per_minute(done, elapsed)
        left = elapsed / done * (total - done)
        bar.progress(done / total, text=text("progress", done=done, total=total, elapsed=duration_text(context, elapsed),
                                             left=duration_text(context, left), rate=rate))
        if outcome.status == "failed":
            LOG.warning("batch: %s failed: %s", outcome.file, outcome.error)
        if outcome.file in slots:
            with slots[outcome.file].container():
                _card(context, run, outcome, with_retry=False)

    try:
        run.report = run_batch(run.input_dir, run.output_dir, url=context.settings.triton_grpc_url, settings=run.settings,
                               recursive=run.recursive, progress=False, on_outcome=show, confine=True)
    except Exception as exc:
        record_batch(context, run, error=engineer_text(exc))
        run.close()
        raise
    record_batch(context, run)


def batch_status(report: BatchReport) -> str:
    counts = report.counts
    if not counts["failed"]:
        return "ok"
    return "failed" if not counts["ok"] + counts["skipped"] else "partial"


def record_batch(context: UiContext, run: BatchRun, error: str | None = None) -> None:
    """One history row per batch, errors as engineer text ("a.jpg: message; …", the History tab words
    them); without a report the whole batch failed with ``error``."""
    report, names = run.report, list(run.targets)
    failures = [outcome for outcome in report.outcomes if outcome.status == "failed"] if report else []
    finished = [outcome for outcome in report.outcomes if outcome.output] if report else []
    model, version = context.served_model(run.settings.options)
    context.history.add(Job(
        kind="batch",
        sources=names[:HISTORY_SOURCES],
        image_size=str(len(names)),
        options={**run.recipe.for_history(), "source": run.source, "recursive": run.recursive},
        model=model,
        model_version=version,
        duration_ms=report.elapsed_s * 1000 if report else 0.0,
        status=batch_status(report) if report else "failed",
        output_path=str(run.output_dir),
        error=error or "; ".join(f"{outcome.file}: {outcome.error}" for outcome in failures[:5]) or None,
        thumbnail=run.thumbnail(finished[0]) if finished else None,
    ))


def retry_file(context: UiContext, run: BatchRun, name: str) -> None:
    """Process ``name`` again into its place in the batch's folder, through the same engine as the batch,
    and update the report (on the page and in report.json)."""
    report = run.report
    matting = PooledClient(server_urls(context.settings.triton_grpc_url), retries=run.settings.retries,
                           backoff_s=run.settings.backoff_s, cooldown_s=run.settings.cooldown_s)
    outcome = process_file(matting, run.input_dir / name, name, run.targets[name], run.settings)
    if outcome.status == "failed":
        LOG.warning("batch retry: %s failed again: %s", name, outcome.error)
    report.outcomes = [outcome if old.file == name else old for old in report.outcomes]
    run.thumbnails.pop(name, None)
    atomic_write_bytes(run.output_dir / REPORT_NAME, report.to_json().encode())


def _show_left_out(context: UiContext, run: BatchRun) -> None:
    """What the batch does not process, and why: not photos, unsafe or damaged ZIP members, too large."""
    text = partial(context.text, STRINGS)
    gathered = run.gathered
    skipped = (gathered.skipped if gathered else []) + (run.report.unsupported if run.report else [])
    if skipped:
        st.info(text("skipped", names=", ".join(skipped)))
    if not gathered:
        return
    for name, reason in gathered.refused_archives.items():
        st.warning(text(f"archive_{reason}", name=name, count=MAX_ZIP_MEMBERS, size=MAX_ZIP_TOTAL_BYTES // 1024**3))
    if gathered.unsafe:
        st.warning(text("unsafe", names=", ".join(gathered.unsafe)))
    if gathered.too_large:
        st.warning(text("too_large", limit=context.settings.max_upload_mb, names=", ".join(gathered.too_large)))
    if gathered.unreadable:
        st.warning(text("unreadable", names=", ".join(gathered.unreadable)))


def card_line(status: str, name: str) -> str:
    """The status mark and the photo's name, as Markdown (the name escaped: it is shown as it is)."""
    return MARKS[status] + " " + markdown_escaped(name)


def _card(context: UiContext, run: BatchRun, outcome: FileOutcome, with_retry: bool) -> None:
    """One photo: its result's thumbnail, its name with ✅ or ❌, and for a failure the reason and a retry."""
    text = partial(context.text, STRINGS)
    if outcome.status == "failed":
        st.markdown(card_line("failed", outcome.file))
        st.caption(plain_error(context, outcome.error))
        if with_retry and st.button(text("retry"), key=f"batch_retry:{outcome.file}"):
            with st.spinner(text("retrying", name=outcome.file)):
                retry_file(context, run, outcome.file)
            st.rerun()
        return
    thumbnail = run.thumbnail(outcome)
    if thumbnail:
        st.image(thumbnail, width="stretch")
    st.markdown(card_line(outcome.status, outcome.file))


def _show_summary(context: UiContext, report: BatchReport) -> None:
    text = partial(context.text, STRINGS)
    counts = report.counts
    st.subheader(text("summary"))
    total, done, failed, elapsed, rate = st.columns(5)
    total.metric(text("total"), len(report.outcomes))
    done.metric(text("done"), counts["ok"] + counts["skipped"])
    failed.metric(text("failed"), counts["failed"])
    elapsed.metric(text("time"), duration_text(context, report.elapsed_s))
    rate.metric(text("rate"), f"{photos_per_minute(len(report.outcomes), report.elapsed_s):.1f}")
    output_dir = Path(report.output_dir)
    st.markdown(text("output_dir", path=output_dir))
    st.download_button(text("download_zip"), partial(zip_folder, output_dir), file_name=f"{output_dir.name}.zip",
                       mime="application/zip", on_click="ignore", key="batch_download_zip")


def _show_gallery(context: UiContext, run: BatchRun) -> None:
    text, language = partial(context.text, STRINGS), context.language
    outcomes = run.report.outcomes
    failures = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failures and sticky(st.checkbox, "batch_only_failed", language, False, text("only_failed", count=len(failures))):
        outcomes = failures
    pages = math.ceil(len(outcomes) / GALLERY_PAGE)
    page = 1
    if pages > 1:
        page = sticky(st.selectbox, "batch_page", language, 1, text("page"), options=list(range(1, pages + 1)),
                      format_func=lambda number: text("page_of", number=number, pages=pages))
    with st.container(horizontal=True, key="batch_gallery"):
        for outcome in outcomes[(page - 1) * GALLERY_PAGE:page * GALLERY_PAGE]:
            with st.container(border=True, width=CARD_WIDTH):
                _card(context, run, outcome, with_retry=True)


def render(context: UiContext) -> None:
    text, language = partial(context.text, STRINGS), context.language
    source_column, options_column = st.columns(2)
    with source_column:
        source = sticky(st.radio, "batch_source", language, SOURCES[0], text("source"), options=SOURCES,
                        format_func=lambda value: text(f"source_{value}"), horizontal=True)
        run = st.session_state.get(RUN_KEY)
        if run is not None and run.source != source:
            _clear_run()
        picked = _pick_uploads(context) if source == "upload" else _pick_folder(context)
    with options_column:
        recipe = recipe_form(context, "batch")
    if st.button(text("start"), type="primary", key="batch_start", disabled=recipe is None):
        _clear_run()
        try:
            run = _prepare(context, picked, recipe)
            if run is not None:
                _execute(context, run)
        except Exception as exc:  # noqa: BLE001 - shown as a sentence, never a traceback
            LOG.exception("batch failed")
            context.show_failure(exc)
            run = None
        if run is not None:
            st.session_state[RUN_KEY] = run
            st.rerun()
    run = st.session_state.get(RUN_KEY)
    if run is not None:
        _show_left_out(context, run)
        _show_summary(context, run.report)
        _show_gallery(context, run)
