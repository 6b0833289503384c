"""The REST app: ``POST /api/matting`` (multipart field ``image``) → the cut-out, video jobs under
``/api/matting/video``, and ``GET /healthz``.

A thin layer over :class:`client.MattingClient` (gRPC): the Triton ensemble decodes and checks the
image, so this app only bounds the upload, validates the options early (lengths first) and turns every
failure into ``{"error": "..."}`` — 400 for the caller's mistakes (a bad option, or an image or option
the server refused), 413 for oversize uploads, 503 when Triton cannot answer, 500 when it answered with
a fault of its own. The endpoints are plain ``def``s: FastAPI runs them in its thread pool, so a slow
inference never blocks other requests.

A video is too long for one request: ``POST /api/matting/video`` streams the upload to disk, checks it and
answers 202 with a job id; :class:`client.video_jobs.VideoJobs` mattes the jobs one at a time in a thread,
keeping their state on disk (a restart resumes them), and removes finished ones after ``video_keep_s``.
``GET /api/matting/video/{id}`` reports a job, ``…/{id}/result`` returns its file once done (409 before)
and ``…/{id}/preview`` its first frame.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from client import MattingClient, MattingError, RequestError, ServerUnavailable
from client.video_jobs import DEFAULT_KEEP_S, VideoJob, VideoJobs
from matting import contract
from matting.codec import ImageError
from matting.options import MEDIA_TYPES, OptionsError, OutputOptions
from matting.paths import STATE_DIR
from matting.video import VideoError, VideoLimits

DEFAULT_TRITON_URL = contract.DEFAULT_TRITON_URLS["grpc"]
DEFAULT_MAX_UPLOAD_BYTES = 25_000_000
DEFAULT_MAX_VIDEO_UPLOAD_BYTES = 500_000_000
DEFAULT_VIDEO_JOBS_DIR = STATE_DIR / "api" / "video-jobs"
VIDEO_PATH = "/api/matting/video"
#: What each video output format's result is sent as.
VIDEO_MEDIA_TYPES = {"webm": "video/webm", "mov": "video/quicktime", "mp4": "video/mp4", "png": "application/zip"}

#: Room for the multipart envelope (boundary lines, part headers, the option fields) on top of the
#: files, so that an image of exactly the limit still gets through the request-body check. The limit
#: holds for the whole upload: the photo and an optional background picture together.
MULTIPART_ALLOWANCE_BYTES = 64 * 1024

UNAVAILABLE = "the inference server is unavailable; try again later"
IMAGE_FIELD_HELP = "send the photo as a multipart/form-data file field, e.g. curl -F \"image=@photo.jpg\" <server>/api/matting"
VIDEO_FIELD_HELP = "send the video as a multipart/form-data file field, e.g. curl -F \"video=@clip.mp4\" <server>/api/matting/video"
FIELD_HELP = {"image": IMAGE_FIELD_HELP, "video": VIDEO_FIELD_HELP}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Where Triton is, where to listen, how big an upload may be, and where video jobs are kept and for how
    long after they finish; ``from_env`` reads the environment."""

    triton_url: str = DEFAULT_TRITON_URL
    host: str = contract.DEFAULT_HOST
    port: int = contract.REST_PORT
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_video_upload_bytes: int = DEFAULT_MAX_VIDEO_UPLOAD_BYTES
    video_jobs_dir: Path = DEFAULT_VIDEO_JOBS_DIR
    video_keep_s: int = DEFAULT_KEEP_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """TRITON_GRPC_URL, REST_HOST, REST_PORT, CVUNET_MAX_UPLOAD_BYTES, CVUNET_MAX_VIDEO_UPLOAD_BYTES,
        CVUNET_VIDEO_JOBS_DIR, CVUNET_VIDEO_KEEP_S; unset means the default."""
        return cls(
            triton_url=environ.get("TRITON_GRPC_URL") or DEFAULT_TRITON_URL,
            host=environ.get("REST_HOST") or contract.DEFAULT_HOST,
            port=_int_setting(environ, "REST_PORT", contract.REST_PORT, minimum=0),
            max_upload_bytes=_int_setting(environ, "CVUNET_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, minimum=1),
            max_video_upload_bytes=_int_setting(environ, "CVUNET_MAX_VIDEO_UPLOAD_BYTES", DEFAULT_MAX_VIDEO_UPLOAD_BYTES,
                                                minimum=1),
            video_jobs_dir=Path(environ.get("CVUNET_VIDEO_JOBS_DIR") or DEFAULT_VIDEO_JOBS_DIR).resolve(),
            video_keep_s=_int_setting(environ, "CVUNET_VIDEO_KEEP_S", DEFAULT_KEEP_S, minimum=0),
        )


def _int_setting(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    text = environ.get(name) or str(default)
    if not text.strip().isdigit() or int(text) < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, not {text!r}")
    return int(text)


@dataclass(frozen=True)
class UploadLimit:
    """How big one endpoint's upload may be, and what the upload is called in the 413 message."""

    max_bytes: int
    what: str = "image"


class UploadTooLarge(HTTPException):
    """Raised from inside ``receive``: FastAPI's form parser passes HTTPExceptions on unchanged."""

    def __init__(self, limit: UploadLimit):
        super().__init__(413, f"upload too large: the {limit.what} may be at most {limit.max_bytes:,} bytes "
                              f"({limit.max_bytes / 1e6:g} MB)")


class UploadSizeLimit:
    """ASGI middleware that stops oversize request bodies before they are buffered.

    The limit is ``path_limits[path]`` for the paths named there (the video upload), ``max_upload_bytes``
    (images) elsewhere. A declared Content-Length over the limit fails the first read, before any byte is
    taken; a chunked (or understated) body fails as soon as the bytes received pass the limit.
    """

    def __init__(self, app: ASGIApp, max_upload_bytes: int, path_limits: Mapping[str, UploadLimit] | None = None):
        self.app = app
        self.default_limit = UploadLimit(max_upload_bytes)
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.default_limit)
        max_body_bytes = limit.max_bytes + MULTIPART_ALLOWANCE_BYTES
        declared = Headers(scope=scope).get("content-length", "")
        declared_too_large = declared.isdigit() and int(declared) > max_body_bytes
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            if declared_too_large:
                raise UploadTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body_bytes:
                    raise UploadTooLarge(limit)
            return message

        await self.app(scope, receive_within_limit, send)


def error_response(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


def _validation_message(errors: list[dict]) -> str:
    """One sentence for FastAPI's 422 details; a missing or non-file ``image`` or ``video`` gets curl usage."""
    for error in errors:
        name = tuple(error.get("loc", ()))[-1:]
        if name and name[0] in FIELD_HELP:
            problem = f"missing the '{name[0]}' field" if error.get("type") == "missing" else f"the '{name[0]}' field must be a file"
            return f"{problem}: {FIELD_HELP[name[0]]}"
    return "invalid request: " + "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ())[1:]) or 'body'}: {error.get('msg', 'invalid')}" for error in errors
    )


def _read_upload(upload: UploadFile, field: str, max_upload_bytes: int) -> bytes:
    data = upload.file.read(max_upload_bytes + 1)
    if len(data) > max_upload_bytes:
        raise UploadTooLarge(UploadLimit(max_upload_bytes))
    if not data:
        raise HTTPException(400, f"empty upload: the '{field}' file has 0 bytes")
    return data


def create_app(settings: Settings = Settings()) -> FastAPI:
    """The app; its one MattingClient (thread-safe gRPC) and its video jobs' worker are started at startup
    and stopped at shutdown."""
    max_upload_bytes = settings.max_upload_bytes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with MattingClient(settings.triton_url) as matting:
            video_jobs = VideoJobs(settings.video_jobs_dir, settings.triton_url, settings.video_keep_s,
                                   VideoLimits(max_bytes=settings.max_video_upload_bytes))
            video_jobs.start()
            app.state.matting, app.state.video_jobs = matting, video_jobs
            try:
                yield
            finally:
                video_jobs.close()

    app = FastAPI(title="CV-UNet matting", summary="Background removal served by Triton", lifespan=lifespan)
    app.add_middleware(UploadSizeLimit, max_upload_bytes=max_upload_bytes,
                       path_limits={VIDEO_PATH: UploadLimit(settings.max_video_upload_bytes, "video")})

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _validation_message(exc.errors()))

    @app.exception_handler(Exception)
    def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal server error")

    @app.post("/api/matting", response_class=Response,
              responses={200: {"content": {media_type: {} for media_type in MEDIA_TYPES.values()}}})
    def remove_background(
        request: Request,
        image: Annotated[UploadFile, File(description="the photo: JPEG, PNG, WebP, BMP, TIFF or GIF")],
        kind: Annotated[str | None, Form(description="rgba (default) | alpha | composite")] = None,
        output_format: Annotated[str | None, Form(alias="format", description="png (default) | webp")] = None,
        bg_color: Annotated[str | None, Form(description="composite background: '#RRGGBB', a name or 'R,G,B'")] = None,
        foreground: Annotated[str | None, Form(description="original (default) | estimate: no background colour in soft edges")] = None,
        refine: Annotated[str | None, Form(description="none (default) | guided | closed-form: how the matte reaches full size")] = None,
        model: Annotated[str | None, Form(description="u2netp (fast) | u2net (quality); default: the server's")] = None,
        tta: Annotated[str | None, Form(description="none (default) | flip: a better matte for twice the network time")] = None,
        bg_image: Annotated[UploadFile | None, File(description="composite onto this picture (kind=composite), scaled to cover the photo")] = None,
    ) -> Response:
        """Remove the background of ``image``; by default an RGBA PNG cut-out."""
        started = time.perf_counter()
        try:
            options = OutputOptions.parse(kind, output_format, bg_color, foreground, refine, model, tta)
        except OptionsError as exc:
            raise HTTPException(400, str(exc)) from None
        data = _read_upload(image, "image", max_upload_bytes)
        background = _read_upload(bg_image, "bg_image", max_upload_bytes) if bg_image is not None else None
        try:
            result = request.app.state.matting.remove_background(data, options, background, with_alpha=False)
        except RequestError as exc:
            raise HTTPException(400, str(exc)) from None
        except ServerUnavailable as exc:
            log.warning("Triton did not answer: %s", exc)
            raise HTTPException(503, UNAVAILABLE) from None
        except MattingError as exc:
            log.error("Triton failed a request: %s", exc)
            raise HTTPException(500, str(exc)) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Response(result.data, media_type=options.media_type, headers={"X-Processing-Ms": f"{elapsed_ms:.1f}"})

    @app.post(VIDEO_PATH, status_code=202)
    def submit_video(
        request: Request,
        video: Annotated[UploadFile, File(description="the video: MP4, MOV, WebM, MKV or GIF")],
        output_format: Annotated[str | None, Form(alias="format", description="webm (default, VP9 with alpha) | mov (ProRes "
                                                  "4444 with alpha) | mp4 (H.264 composite) | png (a zip of RGBA frames)")] = None,
        model: Annotated[str | None, Form(description="u2netp (fast) | u2net (quality); default: the server's")] = None,
        bg_color: Annotated[str | None, Form(description="mp4: the colour behind the subject (default white)")] = None,
        bg_image: Annotated[UploadFile | None, File(description="mp4: a picture behind the subject, scaled to cover the frame")] = None,
    ) -> JSONResponse:
        """Queue a video for matting: 202 with the job's id and where to poll it."""
        if video.size is not None and video.size > settings.max_video_upload_bytes:  # within the multipart allowance
            raise UploadTooLarge(UploadLimit(settings.max_video_upload_bytes, "video"))
        background = _read_upload(bg_image, "bg_image", max_upload_bytes) if bg_image is not None else None
        try:
            job = request.app.state.video_jobs.submit(video.file, video.filename or "", output_format or "", model,
                                                      bg_color, background)
        except (VideoError, OptionsError, ImageError) as exc:
            raise HTTPException(400, str(exc)) from None
        body = {"id": job.id, "status": job.status, "status_url": _job_url(request, job.id),
                "result_url": _job_url(request, job.id, "result")}
        return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})

    @app.get(VIDEO_PATH + "/{job_id}")
    def video_job(request: Request, job_id: str) -> JSONResponse:
        """The job's status and progress; ``result_url`` once it is done, ``expires_at`` once it finished."""
        return JSONResponse(_job_report(request, _known_job(request, job_id)))

    @app.get(VIDEO_PATH + "/{job_id}/result", response_class=FileResponse,
             responses={200: {"content": {media_type: {} for media_type in VIDEO_MEDIA_TYPES.values()}}})
    def video_result(request: Request, job_id: str) -> FileResponse:
        """The finished file (a zip of PNG frames for format png); 409 until the job is done."""
        job = _known_job(request, job_id)
        path = request.app.state.video_jobs.result_path(job_id)
        if path is None:
            raise HTTPException(409, _not_ready(job))
        return FileResponse(path, media_type=VIDEO_MEDIA_TYPES[job.format], filename=job.result_name)

    @app.get(VIDEO_PATH + "/{job_id}/preview", response_class=FileResponse, responses={200: {"content": {"image/png": {}}}})
    def video_preview(request: Request, job_id: str) -> FileResponse:
        """The first frame matted as the job asks, as PNG; 409 until the job has started."""
        job = _known_job(request, job_id)
        path = request.app.state.video_jobs.preview_path(job_id)
        if path is None:
            raise HTTPException(409, f"job {job.id} has no preview yet: it is written when the job starts ({job.status} now)")
        return FileResponse(path, media_type="image/png")

    @app.get("/healthz")
    def healthz(request: Request) -> JSONResponse:
        """Ready only when Triton and the matting ensemble answer, so a load balancer can route on it."""
        if request.app.state.matting.is_ready():
            return JSONResponse({"status": "ok", "triton": "ready"})
        return JSONResponse({"status": "unavailable", "triton": "not ready", "error": UNAVAILABLE}, status_code=503)

    return app


def _job_url(request: Request, job_id: str, *parts: str) -> str:
    return "/".join([str(request.base_url).rstrip("/") + VIDEO_PATH, job_id, *parts])


def _known_job(request: Request, job_id: str) -> VideoJob:
    job = request.app.state.video_jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no video job {job_id[:40]!r}: unknown, or removed after it expired")
    return job


def _not_ready(job: VideoJob) -> str:
    if job.status == "failed":
        return f"job {job.id} failed: {job.error}"
    return f"job {job.id} is {job.status} ({job.progress:.0%} done): the result is there once its status is done"


def _job_report(request: Request, job: VideoJob) -> dict:
    """What GET …/{id} answers: the job as stored, its progress, and its URLs."""
    keep_s = request.app.state.video_jobs.keep_s
    report = {"id": job.id, "status": job.status, "progress": round(job.progress, 4), "frames_done": job.frames_done,
              "frames_total": job.frames_total, "fps": job.fps, "width": job.width, "height": job.height,
              "filename": job.filename, "format": job.format, "model": job.model, "bg_color": job.bg_color,
              "error": job.error, "created_at": job.created_at, "finished_at": job.finished_at,
              "expires_at": job.finished_at + keep_s if job.finished_at is not None else None,
              "status_url": _job_url(request, job.id), "preview_url": _job_url(request, job.id, "preview")}
    if job.status == "done":
        report["result_url"] = _job_url(request, job.id, "result")
        report["result_name"] = job.result_name
    return report
