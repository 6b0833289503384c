"""What every tab needs: settings, the chosen language, the Triton client, the history store, the
video jobs, and one way of turning failures into friendly messages (never a traceback)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from client import MattingClient, MattingError, ServerError
from client.video_jobs import VideoJob, VideoJobs
from matting.codec import DEFAULT_MAX_PIXELS, ImageError
from matting.contract import IMAGE_SUFFIXES
from matting.layouts import LayoutError
from matting.options import OptionsError, OutputOptions
from matting.previews import visible_thumbnail_of_file
from matting.video import VideoError, VideoLimits
from ui import i18n
from ui.reasons import reason_key
from ui.history import HistoryStore, Job
from ui.settings import UiSettings

LOG = logging.getLogger(__name__)


#: What the dashboard's uploaders accept (Streamlit wants suffixes without the dot).
UPLOAD_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]


@st.cache_resource
def _client(url: str) -> MattingClient:
    return MattingClient(url)


@st.cache_resource
def _history(path: str, limit: int) -> HistoryStore:
    return HistoryStore(path, limit)


@st.cache_data(ttl=300, show_spinner=False)
def _served_model(url: str, ensemble: str) -> tuple[str, str]:
    """Keyed by the ensemble, the only part of the options that decides the network."""
    return _client(url).served_model(ensemble)


def video_limits(max_video_mb: int) -> VideoLimits:
    """What a video may be: matting.video's duration and size limits, and the dashboard's upload limit."""
    return VideoLimits(max_bytes=max_video_mb * 1024 * 1024)


def video_size(job: VideoJob) -> str:
    """A video row's recorded size, "1920×1080 · 250" (frames), worded by the History tab like the rest."""
    return f"{job.width}×{job.height} · {job.frames_total}"


def record_video_job(history: HistoryStore, client: MattingClient, jobs: VideoJobs, job: VideoJob) -> None:
    """A finished (done or failed) video job as a History row; called from the jobs' worker thread, so
    it is recorded whether or not a page is open."""
    try:
        model, version = client.served_model(OutputOptions.parse(kind="alpha", model=job.model).ensemble)
    except Exception:  # noqa: BLE001 - a history row must not be lost because metadata is unavailable
        model, version = job.model or "unknown", "unknown"
    preview, result = jobs.preview_path(job.id), jobs.result_path(job.id)
    try:
        thumbnail = visible_thumbnail_of_file(preview) if preview else None
    except OSError:  # removed meanwhile, or unreadable: a row without a picture
        LOG.warning("no thumbnail for video job %s", job.id, exc_info=True)
        thumbnail = None
    options = {"format": job.format, "model": job.model, "bg_color": job.bg_color}
    history.add(Job(kind="video", sources=[job.filename], image_size=video_size(job),
                    options={key: value for key, value in options.items() if value is not None},
                    model=model, model_version=version,
                    duration_ms=((job.finished_at or job.created_at) - job.created_at) * 1000,
                    status="ok" if job.status == "done" else "failed",
                    output_path=str(result) if result else None, error=job.error, thumbnail=thumbnail))


@st.cache_resource(show_spinner=False, on_release=VideoJobs.close)
def _video_jobs(root: str, url: str, history_db: str, history_limit: int, max_video_mb: int) -> VideoJobs:
    """One per jobs folder and server, started once per process: its worker runs the jobs (and records
    them in the history) whether or not a page is open."""
    history, client = _history(history_db, history_limit), _client(url)
    jobs = VideoJobs(Path(root), url, limits=video_limits(max_video_mb),
                     on_finished=lambda job: record_video_job(history, client, jobs, job))
    jobs.start()
    return jobs


def clear_served_model() -> None:
    """After a model swap: the next job asks the server again."""
    _served_model.clear()


@dataclass
class UiContext:
    settings: UiSettings
    language: str

    @property
    def client(self) -> MattingClient:
        return _client(self.settings.triton_grpc_url)

    @property
    def history(self) -> HistoryStore:
        return _history(str(self.settings.history_db), self.settings.history_limit)

    @property
    def video_jobs(self) -> VideoJobs:
        settings = self.settings
        return _video_jobs(str(settings.video_jobs_dir), settings.triton_grpc_url, str(settings.history_db),
                           settings.history_limit, settings.max_video_mb)

    def served_model(self, options: OutputOptions) -> tuple[str, str]:
        """(networks, version) serving ``options``, as Triton says, asked at most every five minutes;
        ("unknown", "unknown") while it cannot say."""
        try:
            return _served_model(self.settings.triton_grpc_url, options.ensemble)
        except Exception:  # noqa: BLE001 - a history row must not fail because metadata is unavailable
            return "unknown", "unknown"

    def text(self, table: dict[str, dict[str, str]], key: str, **values) -> str:
        return i18n.text(table, self.language, key, **values)

    def common(self, key: str, **values) -> str:
        return i18n.text(i18n.COMMON, self.language, key, **values)

    def reason(self, message: str, video: bool = False) -> str:
        """The plain sentence for a refusal the server (or the library) explained as ``message``; ``video``
        for a video's (an unknown reason then does not ask for another photo)."""
        limits = video_limits(self.settings.max_video_mb)
        return self.common(reason_key(message, video), megapixels=f"{DEFAULT_MAX_PIXELS / 1e6:.0f}",
                           limit=self.settings.max_upload_mb, video_mb=self.settings.max_video_mb,
                           minutes=f"{limits.max_duration_s / 60:g}", video_size=f"{limits.max_width}×{limits.max_height}")

    def failure_message(self, exc: Exception) -> str:
        """A sentence for the user: bad input, a server fault, server down, or anything else (logged by Streamlit)."""
        if isinstance(exc, MattingError) and exc.bad_input or isinstance(exc, (ImageError, OptionsError, LayoutError)):
            return self.common("bad_image", reason=self.reason(str(exc)))
        if isinstance(exc, VideoError):
            return self.common("bad_image", reason=self.reason(str(exc), video=True))
        if isinstance(exc, ServerError):
            return self.common("server_fault")
        if isinstance(exc, MattingError):
            return self.common("server_down")
        return self.common("unexpected")

    def show_failure(self, exc: Exception) -> None:
        st.error(self.failure_message(exc))
