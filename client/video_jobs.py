"""Video jobs kept on disk: one folder per job under a root (the upload, job.json, the result, a preview),
run one at a time by a worker thread through the Triton stream model, so they survive a restart.

A job folder (named by the job's id, 32 hex digits) holds ``source/<the upload's name>``, ``job.json``
(the :class:`VideoJob`, written atomically), ``background`` (the mp4 background picture, when given),
``preview.png`` and the result ``result.<format>`` (a PNG sequence is zipped into ``result.zip``), with its
``.parts/`` while it runs: :func:`matting.video.matte_video` resumes those segments after a restart. A job
is built in a hidden ``.incoming-<id>`` folder and renamed into place once its upload is checked, so a
refused or half-received upload leaves no job behind.

A server that does not answer is no fault of the job: it goes back to the queue and is tried again later.
A video or option the server refuses fails the job with the reason; no failure stops the worker. One
process runs a root's jobs (its start() takes over the jobs a stopped one left running).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from client.matting_client import MattingClient, MattingError, ServerUnavailable
from client.video import server_matte
from matting.codec import ImageError, decode_image, encode_image
from matting.files import atomic_write_bytes, sibling_temp_path
from matting.options import OptionsError, OutputOptions, check_length, parse_color
from matting.video import OUTPUT_FORMATS, Composite, VideoError, VideoLimits, matte_video, probe, read_frames

JOB_STATUSES = ("queued", "running", "done", "failed")
#: Finished jobs (their files) are removed this long after they finish.
DEFAULT_KEEP_S = 24 * 3600
DEFAULT_FORMAT = "webm"
#: How often at most the running job's progress is written to job.json.
PROGRESS_WRITE_S = 0.5
#: How long the worker waits before trying again after the server did not answer.
RETRY_S = 5.0
#: How often an idle worker removes expired jobs.
CLEANUP_EVERY_S = 60.0
#: A job folder still being received after this long was left by a process that stopped mid-upload.
STALE_INCOMING_S = 3600.0
#: How long close() waits for the current batch of frames; the worker is a daemon thread, so a process
#: exiting does not wait longer, and the job stays resumable either way.
CLOSE_WAIT_S = 30.0
COPY_CHUNK_BYTES = 1024 * 1024
MAX_FILENAME_CHARS = 120
UNAVAILABLE_NOTE = "the inference server did not answer; the job waits and is tried again"

JOB_ID = re.compile(r"[0-9a-f]{32}")
INCOMING_PREFIX = ".incoming-"
MANIFEST = "job.json"
PREVIEW = "preview.png"
BACKGROUND = "background"
SOURCE_DIR = "source"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoJob:
    id: str
    status: str
    #: The uploaded file's name, made safe (no folders, no odd characters): shown, and the result's name.
    filename: str
    #: webm | mov | mp4 | png (png: the result is a .zip of RGBA PNG frames)
    format: str
    #: None: the server's default network.
    model: str | None
    #: mp4 only: the colour behind the subject.
    bg_color: str | None
    frames_done: int
    frames_total: int
    fps: float
    width: int
    height: int
    created_at: float
    #: When it last began running (a restart resumes it later): frames/s and the time left count from here.
    started_at: float | None
    finished_at: float | None
    #: Why the job failed, in a plain sentence; on a queued job, why it waits (the server did not answer).
    error: str | None

    @property
    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0

    @property
    def result_name(self) -> str:
        stem = Path(self.filename).stem or "video"
        return f"{stem}-matted-frames.zip" if self.format == "png" else f"{stem}-matted.{self.format}"


class _Stopped(Exception):
    """Raised from the progress callback when close() asks the worker to stop between batches."""


def _safe_filename(filename: str) -> str:
    """The base name of an uploaded file with anything but letters (any script: 商品视频.mp4 stays as it is),
    digits and ``._-()`` replaced, no leading dots and at most MAX_FILENAME_CHARS (the suffix kept)."""
    name = re.sub(r"[^\w.\-()]", "_", Path(filename.replace("\\", "/")).name).lstrip(".")
    if len(name) > MAX_FILENAME_CHARS:
        suffix = Path(name).suffix[:10]
        name = name[: MAX_FILENAME_CHARS - len(suffix)] + suffix
    return name or "video"


def _copy_bounded(source: BinaryIO, target: Path, max_bytes: int, name: str) -> None:
    """Copy the upload to ``target`` in chunks, refusing it as soon as it passes ``max_bytes``."""
    copied = 0
    with open(target, "wb") as file:
        while chunk := source.read(COPY_CHUNK_BYTES):
            copied += len(chunk)
            if copied > max_bytes:
                raise VideoError(f"{name} is over {max_bytes:,} bytes, the limit")
            file.write(chunk)


class VideoJobs:
    def __init__(self, root: Path, triton_url: str, keep_s: float = DEFAULT_KEEP_S,
                 limits: VideoLimits = VideoLimits(), on_finished: Callable[[VideoJob], None] | None = None):
        self.root = Path(root)
        self.triton_url = triton_url
        self.keep_s = keep_s
        self.limits = limits
        self.on_finished = on_finished
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        #: The running job as the worker last updated it: fresher than its job.json, written at most 2×/s.
        self._running: VideoJob | None = None
        self._worker: threading.Thread | None = None

    # -- the public side ------------------------------------------------------------------------------

    def start(self) -> None:
        """Removes expired jobs, re-queues the queued and running ones found on disk (a running one was
        stopped by a restart: its segments are resumed) and starts the worker thread."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.remove_expired()
        for job in self.jobs():
            if job.status == "running":
                self._save(dataclasses.replace(job, status="queued"))
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="video-jobs", daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Stops the worker after the frame it is on; the job it ran stays resumable (its finished segments are kept)."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(CLOSE_WAIT_S)
            self._worker = None

    def submit(self, video: BinaryIO, filename: str, format: str, model: str | None = None,
               bg_color: str | None = None, bg_image: bytes | None = None) -> VideoJob:
        """Queue a job for the upload ``video`` (a file object, copied in chunks). The options and the
        video (matting.video.probe, within the limits) are checked first: bad input raises OptionsError,
        VideoError or ImageError and leaves nothing behind."""
        format, model, bg_color = self._checked_options(format, model, bg_color, bg_image)
        job_id = uuid.uuid4().hex
        name = _safe_filename(filename or "")
        incoming = self.root / f"{INCOMING_PREFIX}{job_id}"
        try:
            (incoming / SOURCE_DIR).mkdir(parents=True)
            upload = incoming / SOURCE_DIR / name
            _copy_bounded(video, upload, self.limits.max_bytes, name)
            info = probe(upload, self.limits)
            if bg_image is not None:
                (incoming / BACKGROUND).write_bytes(bg_image)
            job = VideoJob(job_id, "queued", name, format, model, bg_color, 0, info.frames, float(info.fps),
                           info.width, info.height, time.time(), None, None, None)
            atomic_write_bytes(incoming / MANIFEST, self._manifest(job))
            os.replace(incoming, self.root / job_id)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        self._wake.set()
        return job

    def get(self, job_id: str) -> VideoJob | None:
        """The job, or None for an unknown or malformed id (an id is never used as a path unchecked)."""
        if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
            return None
        with self._lock:
            if self._running is not None and self._running.id == job_id:
                return self._running
        return self._load(self.root / job_id)

    def jobs(self) -> list[VideoJob]:
        """Every job, newest first."""
        folders = [path for path in self.root.iterdir() if JOB_ID.fullmatch(path.name)] if self.root.is_dir() else []
        found = [job for job in (self.get(path.name) for path in folders) if job is not None]
        return sorted(found, key=lambda job: job.created_at, reverse=True)

    def result_path(self, job_id: str) -> Path | None:
        """The finished file; None until the job is done."""
        job = self.get(job_id)
        if job is None or job.status != "done":
            return None
        path = self._result_file(job)
        return path if path.is_file() else None

    def preview_path(self, job_id: str) -> Path | None:
        """The first frame's cut-out (the composite for mp4) as PNG, written when the job starts running."""
        if self.get(job_id) is None:
            return None
        path = self.root / job_id / PREVIEW
        return path if path.is_file() else None

    def remove_expired(self, now: float | None = None) -> list[str]:
        """Removes the jobs that finished (done or failed) ``keep_s`` ago or more, and uploads left half
        received by a stopped process; returns the ids of the jobs removed."""
        now = time.time() if now is None else now
        removed = []
        for job in self.jobs():
            if job.finished_at is not None and job.finished_at + self.keep_s <= now:
                shutil.rmtree(self.root / job.id, ignore_errors=True)
                removed.append(job.id)
        for incoming in self.root.glob(f"{INCOMING_PREFIX}*"):
            try:
                stale = incoming.stat().st_mtime + STALE_INCOMING_S <= now
            except FileNotFoundError:
                continue
            if stale:
                shutil.rmtree(incoming, ignore_errors=True)
        if removed:
            log.info("removed %d expired video job(s)", len(removed))
        return removed

    # -- on disk --------------------------------------------------------------------------------------

    @staticmethod
    def _checked_options(format: str, model: str | None, bg_color: str | None,
                         bg_image: bytes | None) -> tuple[str, str | None, str | None]:
        """(format, model, bg_color) as stored; raises OptionsError or ImageError."""
        check_length("format", format)
        format = (format or DEFAULT_FORMAT).strip().lower()
        if format not in OUTPUT_FORMATS:
            raise OptionsError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {format[:40]!r}")
        model = OutputOptions.parse(model=model).model
        bg_color = bg_color.strip() if bg_color and bg_color.strip() else None
        if (bg_color or bg_image is not None) and format != "mp4":
            raise OptionsError(f"bg_color and bg_image are for mp4 output (a composite); {format} keeps the alpha")
        if bg_color:
            bg_color = OutputOptions.parse(kind="composite", bg_color=bg_color).bg_color_hex
        if bg_image is not None:
            decode_image(bg_image)  # raises ImageError for what is no picture
        return format, model, bg_color

    @staticmethod
    def _manifest(job: VideoJob) -> bytes:
        return json.dumps(dataclasses.asdict(job), indent=1).encode()

    def _load(self, folder: Path) -> VideoJob | None:
        try:
            fields = json.loads((folder / MANIFEST).read_text())
            return VideoJob(**{field.name: fields[field.name] for field in dataclasses.fields(VideoJob)})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the video job in %s: unreadable %s (%s)", folder, MANIFEST, exc)
            return None

    def _save(self, job: VideoJob) -> None:
        atomic_write_bytes(self.root / job.id / MANIFEST, self._manifest(job))

    def _result_file(self, job: VideoJob) -> Path:
        return self.root / job.id / ("result.zip" if job.format == "png" else f"result.{job.format}")

    # -- the worker -----------------------------------------------------------------------------------

    def _work(self) -> None:
        cleaned_at = time.monotonic()
        with MattingClient(self.triton_url) as client:
            while not self._stop.is_set():
                try:
                    waiting = [job for job in self.jobs() if job.status in ("queued", "running")]
                except OSError as exc:  # the root went away or cannot be read: wait, do not die
                    log.error("cannot read the video jobs in %s: %s", self.root, exc)
                    self._stop.wait(RETRY_S)
                    continue
                if time.monotonic() - cleaned_at >= CLEANUP_EVERY_S:
                    self._remove_expired_safely()
                    cleaned_at = time.monotonic()
                if not waiting:
                    self._wake.wait(CLEANUP_EVERY_S)
                    self._wake.clear()
                    continue
                if not self._run(client, min(waiting, key=lambda job: job.created_at)):
                    self._stop.wait(RETRY_S)

    def _remove_expired_safely(self) -> None:
        try:
            self.remove_expired()
        except OSError as exc:
            log.warning("could not remove expired video jobs: %s", exc)

    def _run(self, client: MattingClient, job: VideoJob) -> bool:
        """Run one job to its end (done or failed); False when it went back to the queue because the
        server did not answer, or because close() stopped it."""
        job = dataclasses.replace(job, status="running", frames_done=0, error=None, started_at=time.time())
        self._update(job)
        try:
            self._make_preview(client, job)
            self._make_result(client, job)
        except _Stopped:
            return False
        except ServerUnavailable as exc:
            log.warning("video job %s waits: %s", job.id, exc)
            self._update(dataclasses.replace(self._running, status="queued", error=UNAVAILABLE_NOTE), running=False)
            return False
        except (MattingError, VideoError, ImageError, OptionsError) as exc:
            self._finish(dataclasses.replace(self._running, status="failed", error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - one job's fault (a full disk…) must not stop the worker
            log.error("video job %s failed", job.id, exc_info=exc)
            self._finish(dataclasses.replace(self._running, status="failed", error=f"the job failed: {exc}"))
        else:
            self._finish(dataclasses.replace(self._running, status="done", frames_done=job.frames_total, error=None))
        return True

    def _update(self, job: VideoJob, running: bool = True) -> None:
        self._save(job)
        with self._lock:
            self._running = job if running else None

    def _finish(self, job: VideoJob) -> None:
        job = dataclasses.replace(job, finished_at=time.time())
        self._update(job, running=False)
        if self.on_finished is not None:
            try:
                self.on_finished(job)
            except Exception as exc:  # noqa: BLE001 - the caller's hook must not stop the worker
                log.error("on_finished failed for video job %s", job.id, exc_info=exc)

    def _source(self, job: VideoJob) -> Path:
        return self.root / job.id / SOURCE_DIR / job.filename

    def _composite(self, job: VideoJob) -> Composite:
        background = self.root / job.id / BACKGROUND
        return Composite(parse_color(job.bg_color) if job.bg_color else Composite.color,
                         decode_image(background.read_bytes()) if background.is_file() else None)

    def _make_preview(self, client: MattingClient, job: VideoJob) -> None:
        """The first frame, matted as the job asks (the cut-out, or the mp4's composite), as preview.png."""
        preview = self.root / job.id / PREVIEW
        if preview.is_file():
            return
        with closing(read_frames(self._source(job))) as frames:
            first = next(frames, None)
        if first is None:
            raise VideoError(f"{job.filename} has no video frames")
        background = self.root / job.id / BACKGROUND
        if job.format == "mp4":
            options = OutputOptions.parse(kind="composite", bg_color=job.bg_color, model=job.model)
        else:
            options = OutputOptions.parse(kind="rgba", model=job.model)
        result = client.remove_background(encode_image(Image.fromarray(first), "png"), options,
                                          background.read_bytes() if background.is_file() else None, with_alpha=False)
        atomic_write_bytes(preview, result.data)

    def _make_result(self, client: MattingClient, job: VideoJob) -> None:
        """The result file; a job stopped after matte_video finished (its output in place) only completes
        the bookkeeping."""
        result = self._result_file(job)
        output = result.with_name("frames") if job.format == "png" else result
        if not result.is_file():
            if not output.exists():
                options = OutputOptions.parse(kind="alpha", model=job.model)
                matte_video(self._source(job), output, server_matte(client, options), job.format, self._composite(job),
                            self.limits, matte_name=options.ensemble, progress=self._progress_recorder())
            if job.format == "png":
                _zip_frames(output, result)
        if job.format == "png":
            shutil.rmtree(output, ignore_errors=True)
        shutil.rmtree(output.with_name(output.name + ".parts"), ignore_errors=True)

    def _progress_recorder(self) -> Callable[[int], None]:
        """matte_video's progress callback: counts the frames into the running job, writes job.json at most
        every PROGRESS_WRITE_S, and stops the job (resumable) between batches once close() was called."""
        written_at = time.monotonic()

        def progress(frames: int) -> None:
            nonlocal written_at
            with self._lock:
                self._running = current = dataclasses.replace(self._running, frames_done=self._running.frames_done + frames)
            if time.monotonic() - written_at >= PROGRESS_WRITE_S:
                self._save(current)
                written_at = time.monotonic()
            if self._stop.is_set():
                raise _Stopped

        return progress


def _zip_frames(frames: Path, target: Path) -> None:
    """The PNG frames in one zip at ``target``, atomically; stored, not deflated (PNG is compressed already)."""
    temp = sibling_temp_path(target)
    try:
        with zipfile.ZipFile(temp, "w", zipfile.ZIP_STORED) as archive:
            for frame in sorted(frames.iterdir()):
                archive.write(frame, frame.name)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
