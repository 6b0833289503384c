"""The 视频抠图 / Video tab: upload a short clip, choose the output (transparent WebM or MOV, an MP4 on a
colour or a picture, or PNG frames) and start; every frame is matted in the background by
:class:`client.video_jobs.VideoJobs` (one job at a time, kept on disk), while this tab polls the job's
progress, shows the first frame's preview as soon as it exists, then the download and a player.

The page may be closed meanwhile: the jobs live on the server, so the recent ones are listed from there,
and each finished job is recorded in the History by ui.context, not by this page.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

import streamlit as st
from PIL import Image

from client.video_jobs import DEFAULT_KEEP_S, VideoJob
from matting.codec import ImageError, encode_image
from matting.options import OptionsError
from matting.previews import PREVIEW_BOX, over_checkerboard
from matting.video import VideoError
from ui.context import UPLOAD_TYPES, UiContext, video_limits
from ui.state import sticky
from ui.widgets import VIDEO_FORMATS, colour_choice, duration_text, markdown_escaped, model_choice
from ui.widgets import STRINGS as FORM_STRINGS

LOG = logging.getLogger(__name__)

#: What the uploader takes (matting.video reads these containers).
VIDEO_TYPES = ["mp4", "mov", "webm", "mkv", "gif"]
ACTIVE = ("queued", "running")
#: How often the job panel asks for progress while a job is queued or running.
POLL_S = 1.0
#: Jobs listed under the one shown in full (the server keeps every job for DEFAULT_KEEP_S).
RECENT_JOBS = 10
#: Browsers play these (WebM with its alpha); a larger result is only offered for download, since the
#: player loads the whole file into the page.
PLAYABLE = ("webm", "mp4")
PLAYER_MAX_BYTES = 100 * 1024 * 1024
#: Narrower clips play at their own width; wider ones fill the column.
PLAYER_MAX_WIDTH = 640
MEDIA_TYPES = {"webm": "video/webm", "mov": "video/quicktime", "mp4": "video/mp4", "png": "application/zip"}
DOWNLOAD_TYPES = {"webm": "WebM", "mov": "MOV", "mp4": "MP4", "png": "ZIP"}
#: The id of the job shown in full: the one last started (or picked) on this page; and whether the last
#: poll found every job finished.
SHOWN_KEY, SETTLED_KEY = "video_shown_job", "video_settled"

STRINGS = {
    "en": {
        "upload": "Video (MP4, MOV, WebM, MKV or GIF)",
        "limits": "Up to {minutes} minutes, {size} pixels and {mb} MB. Every frame is matted; the sound is kept "
                  "(a PNG sequence has none).",
        "output": "Make",
        "format_webm": "Transparent WebM (VP9, for web pages and video editors)",
        "format_mov": "Transparent MOV (ProRes 4444, for professional editing)",
        "format_mp4": "MP4 on white or a colour (H.264, ready to publish: product videos)",
        "format_png": "PNG sequence (ZIP)",
        "background": "Or a background picture (optional, scaled to cover the frame)",
        "start": "Start",
        "checking": "Checking the video…",
        "choose_video": "Upload a video first.",
        "bad_background": "The background picture cannot be read. Choose another picture (JPG or PNG).",
        "started": "Started: {name}. Progress is shown on the right; you may leave this page and come back.",
        "waiting": "Upload a video, choose what to make and press Start: the progress and a preview appear here. "
                   "The work goes on on the server, so you may leave this page and come back later.",
        "facts": "**{name}** · {width} × {height} px · {frames} frames · {output}",
        "queued": "Waiting: {ahead} video(s) before this one.",
        "queued_next": "Starting…",
        "server_waiting": "The matting service is not answering; the video waits and goes on by itself once it is back.",
        "progress_start": "0 / {total} frames · starting…",
        "progress": "{done} / {total} frames · {rate:.1f} frames/s · about {left} left",
        "done": "Done in {duration}.",
        "failed": "This video was not processed: {reason}",
        "preview": "First frame",
        "checkerboard_note": "The checkerboard marks transparent areas; it is not part of the video.",
        "download": "Download result ({type})",
        "too_large_to_play": "The result is large: download it to watch it.",
        "no_player": "Browsers cannot play this format: download it and open it in your video editor.",
        "recent": "Recent videos",
        "recent_note": "Results stay on the server for {hours} hours, then they are removed; the History keeps the job.",
        "status_queued": "Waiting",
        "status_running": "{percent}% done",
        "status_done": "Done",
        "status_failed": "Failed",
        "show": "Show",
    },
    "zh": {
        "upload": "视频（MP4、MOV、WebM、MKV 或 GIF）",
        "limits": "最长 {minutes} 分钟，画面最大 {size} 像素，文件最大 {mb} MB。每一帧都会抠图，声音保留（PNG 序列没有声音）。",
        "output": "制作",
        "format_webm": "透明背景 WebM（VP9，网页/剪辑软件）",
        "format_mov": "透明背景 MOV（ProRes 4444，专业剪辑）",
        "format_mp4": "白底/彩色背景 MP4（H.264，适合直接发布，电商主图视频）",
        "format_png": "PNG 序列（ZIP）",
        "background": "或使用背景图片（可选，自动缩放铺满画面）",
        "start": "开始处理",
        "checking": "正在检查视频…",
        "choose_video": "请先上传一个视频。",
        "bad_background": "背景图片无法读取。请换一张图片（JPG 或 PNG）。",
        "started": "已开始处理 {name}。进度显示在右侧；可以离开本页，稍后回来查看。",
        "waiting": "上传视频、选好要制作的效果后点击“开始处理”，进度和预览会显示在这里。处理在服务器上进行，可以离开本页，稍后回来查看。",
        "facts": "**{name}** · {width} × {height} 像素 · {frames} 帧 · {output}",
        "queued": "排队中：前面还有 {ahead} 个视频。",
        "queued_next": "即将开始…",
        "server_waiting": "抠图服务暂无响应；视频在排队，服务恢复后会自动继续。",
        "progress_start": "0 / {total} 帧 · 正在开始…",
        "progress": "{done} / {total} 帧 · 每秒 {rate:.1f} 帧 · 预计还需 {left}",
        "done": "处理完成，用时 {duration}。",
        "failed": "这个视频没有处理成功：{reason}",
        "preview": "第一帧预览",
        "checkerboard_note": "棋盘格表示透明区域，不会出现在视频中。",
        "download": "下载结果（{type}）",
        "too_large_to_play": "结果文件较大，请下载后观看。",
        "no_player": "浏览器无法播放这种格式：请下载后用剪辑软件打开。",
        "recent": "最近的视频",
        "recent_note": "结果在服务器上保留 {hours} 小时，之后自动删除；历史记录中仍保留任务信息。",
        "status_queued": "排队中",
        "status_running": "已完成 {percent}%",
        "status_done": "已完成",
        "status_failed": "失败",
        "show": "查看",
    },
}


@dataclass(frozen=True)
class VideoRequest:
    """The form's choices: what VideoJobs.submit takes besides the upload."""

    format: str
    model: str
    bg_color: str | None = None
    bg_image: bytes | None = None


def _form(context: UiContext) -> VideoRequest:
    text = partial(context.text, STRINGS)
    model = model_choice(context, "video_model")
    format = sticky(st.radio, "video_format", context.language, VIDEO_FORMATS[0], text("output"), options=VIDEO_FORMATS,
                    format_func=lambda value: text(f"format_{value}"))
    if format != "mp4":
        return VideoRequest(format, model)
    colour = colour_choice(context, "video")
    picture = st.file_uploader(text("background"), type=UPLOAD_TYPES, key="video_background",
                               max_upload_size=context.settings.max_upload_mb)
    if picture is not None:  # the picture covers the whole frame: the colour would not show
        return VideoRequest(format, model, bg_image=picture.getvalue())
    return VideoRequest(format, model, bg_color=colour)


def _submit(context: UiContext, upload, request: VideoRequest) -> None:
    """Queue the job (the upload is checked first: a bad one is refused here, in a plain sentence)."""
    text = partial(context.text, STRINGS)
    if upload is None:
        st.warning(text("choose_video"))
        return
    upload.seek(0)
    try:
        with st.spinner(text("checking")):
            job = context.video_jobs.submit(upload, upload.name, request.format, request.model, request.bg_color,
                                            request.bg_image)
    except ImageError:  # only the background picture is decoded as an image
        st.error(text("bad_background"))
        return
    except (VideoError, OptionsError) as exc:
        LOG.info("video refused: %s", exc)
        context.show_failure(exc)
        return
    except Exception as exc:  # noqa: BLE001 - shown as a sentence, never a traceback
        LOG.exception("video job could not be queued")
        context.show_failure(exc)
        return
    st.session_state[SHOWN_KEY] = job.id
    st.success(text("started", name=upload.name))


@st.cache_data(max_entries=16, show_spinner=False)
def _preview_png(path: str, modified_ns: int) -> bytes:
    """The preview downscaled over the checkerboard (a cut-out melts into the page otherwise); made once
    per file version, not at every poll."""
    with Image.open(path) as image:
        image.thumbnail(PREVIEW_BOX)
        return encode_image(over_checkerboard(image), "png")


def progress_line(context: UiContext, job: VideoJob, now: float) -> str:
    """Frames done of all, the frames per second so far and the time left at that pace."""
    text = partial(context.text, STRINGS)
    if not job.frames_done:
        return text("progress_start", total=job.frames_total)
    rate = job.frames_done / max(now - (job.started_at or job.created_at), 1e-3)
    return text("progress", done=job.frames_done, total=job.frames_total, rate=rate,
                left=duration_text(context, max(job.frames_total - job.frames_done, 0) / rate))


def _queued(context: UiContext, job: VideoJob, jobs: list[VideoJob]) -> None:
    text = partial(context.text, STRINGS)
    ahead = sum(1 for other in jobs if other.status in ACTIVE and other.created_at < job.created_at)
    st.progress(0.0, text=text("queued", ahead=ahead) if ahead else text("queued_next"))
    if job.error:  # on a queued job: why it waits
        st.info(text("server_waiting"))


def _result(context: UiContext, job: VideoJob) -> bool:
    """The download (read when clicked), and the player where a browser plays the format; True when the
    player is shown."""
    text = partial(context.text, STRINGS)
    path = context.video_jobs.result_path(job.id)
    if path is None:  # removed between the listing and now
        return False
    st.download_button(text("download", type=DOWNLOAD_TYPES[job.format]), data=path.read_bytes,
                       file_name=job.result_name, mime=MEDIA_TYPES[job.format], on_click="ignore",
                       key=f"video_download_{job.id}", type="primary")
    if job.format not in PLAYABLE:
        st.caption(text("no_player"))
        return False
    if path.stat().st_size > PLAYER_MAX_BYTES:
        st.caption(text("too_large_to_play"))
        return False
    # A small clip at its own size: stretched to the column it would only look blurred.
    st.video(str(path), format=MEDIA_TYPES[job.format], width=job.width if job.width < PLAYER_MAX_WIDTH else "stretch")
    return True


def _preview(context: UiContext, job: VideoJob) -> None:
    text = partial(context.text, STRINGS)
    path = context.video_jobs.preview_path(job.id)
    if path is None:
        return
    try:
        picture = _preview_png(str(path), path.stat().st_mtime_ns)
    except OSError:  # removed meanwhile: the next poll shows what is there
        return
    st.image(picture, caption=text("preview"), width="content")
    if job.format != "mp4":
        st.caption(text("checkerboard_note"))


def _job_in_full(context: UiContext, job: VideoJob, jobs: list[VideoJob]) -> None:
    text, form = partial(context.text, STRINGS), partial(context.text, FORM_STRINGS)
    st.markdown(text("facts", name=markdown_escaped(job.filename), width=job.width, height=job.height,
                     frames=job.frames_total, output=form(f"video_format_{job.format}")))
    played = False
    if job.status == "queued":
        _queued(context, job, jobs)
    elif job.status == "running":
        st.progress(job.progress, text=progress_line(context, job, time.time()))
    elif job.status == "failed":
        st.error(text("failed", reason=context.reason(job.error or "", video=True)))
    else:
        st.success(text("done", duration=duration_text(context, (job.finished_at or job.created_at) - job.created_at)))
        played = _result(context, job)
    if not played:
        _preview(context, job)


def _status(context: UiContext, job: VideoJob) -> str:
    return context.text(STRINGS, f"status_{job.status}", percent=int(job.progress * 100))


def _job_line(context: UiContext, job: VideoJob) -> None:
    """A recent job in one line: its name, output and status, and a button to show it in full."""
    text, form = partial(context.text, STRINGS), partial(context.text, FORM_STRINGS)
    with st.container(border=True):
        name_column, show_column = st.columns([4, 1], vertical_alignment="center")
        name_column.markdown(f"**{markdown_escaped(job.filename)}** · {form(f'video_format_{job.format}')} · {_status(context, job)}")
        show_column.button(text("show"), key=f"video_show_{job.id}", on_click=_show, args=(job.id,))


def _show(job_id: str) -> None:
    st.session_state[SHOWN_KEY] = job_id


def _jobs_panel(context: UiContext, polling: bool) -> None:
    """The job shown in full (the one last started here, else the newest) and the other recent ones.
    Run as a fragment: polled every POLL_S while ``polling``. Once two polls in a row found every job
    finished, the whole page runs again: that stops the polling and shows the History row, which the
    worker writes just after the job's status (hence the second poll)."""
    text = partial(context.text, STRINGS)
    jobs = context.video_jobs.jobs()
    settled = polling and not any(job.status in ACTIVE for job in jobs)
    if settled and st.session_state.pop(SETTLED_KEY, False):
        st.rerun()
    st.session_state[SETTLED_KEY] = settled
    shown = context.video_jobs.get(st.session_state.get(SHOWN_KEY, "")) or (jobs[0] if jobs else None)
    if shown is None:
        st.info(text("waiting"))
        return
    _job_in_full(context, shown, jobs)
    others = [job for job in jobs[:RECENT_JOBS] if job.id != shown.id]
    if others:
        st.markdown(f"#### {text('recent')}")
        st.caption(text("recent_note", hours=f"{DEFAULT_KEEP_S / 3600:g}"))
        for job in others:
            _job_line(context, job)


def render(context: UiContext) -> None:
    text = partial(context.text, STRINGS)
    limits = video_limits(context.settings.max_video_mb)
    form_column, job_column = st.columns([2, 3], gap="large")
    with form_column:
        upload = st.file_uploader(text("upload"), type=VIDEO_TYPES, key="video_upload",
                                  max_upload_size=context.settings.max_video_mb)
        st.caption(text("limits", minutes=f"{limits.max_duration_s / 60:g}", mb=context.settings.max_video_mb,
                        size=f"{limits.max_width}×{limits.max_height}"))
        request = _form(context)
        if st.button(text("start"), type="primary", key="video_start"):
            _submit(context, upload, request)
    with job_column:
        polling = any(job.status in ACTIVE for job in context.video_jobs.jobs())
        st.fragment(_jobs_panel, run_every=POLL_S if polling else None)(context, polling)
