"""The REST app: ``POST /api/matting`` (multipart field ``image``) → the cut-out, and ``GET /healthz``.

A thin layer over :class:`client.MattingClient` (gRPC): the Triton ensemble decodes and checks the
image, so this app only bounds the upload, validates the options early (lengths first) and turns every
failure into ``{"error": "..."}`` — 400 for the caller's mistakes (a bad option, or an image or option
the server refused), 413 for oversize uploads, 503 when Triton cannot answer, 500 when it answered with
a fault of its own. The endpoints are plain ``def``s: FastAPI runs them in its thread pool, so a slow
inference never blocks other requests.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from client import MattingClient, MattingError, RequestError, ServerUnavailable
from matting import contract
from matting.options import MEDIA_TYPES, OptionsError, OutputOptions

DEFAULT_TRITON_URL = contract.DEFAULT_TRITON_URLS["grpc"]
DEFAULT_MAX_UPLOAD_BYTES = 25_000_000

#: Room for the multipart envelope (boundary lines, part headers, the option fields) on top of the
#: files, so that an image of exactly the limit still gets through the request-body check. The limit
#: holds for the whole upload: the photo and an optional background picture together.
MULTIPART_ALLOWANCE_BYTES = 64 * 1024

UNAVAILABLE = "the inference server is unavailable; try again later"
IMAGE_FIELD_HELP = "send the photo as a multipart/form-data file field, e.g. curl -F \"image=@photo.jpg\" <server>/api/matting"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Where Triton is, where to listen and how big an upload may be; ``from_env`` reads the environment."""

    triton_url: str = DEFAULT_TRITON_URL
    host: str = contract.DEFAULT_HOST
    port: int = contract.REST_PORT
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """TRITON_GRPC_URL, REST_HOST, REST_PORT, CVUNET_MAX_UPLOAD_BYTES; unset means the default."""
        return cls(
            triton_url=environ.get("TRITON_GRPC_URL") or DEFAULT_TRITON_URL,
            host=environ.get("REST_HOST") or contract.DEFAULT_HOST,
            port=_int_setting(environ, "REST_PORT", contract.REST_PORT, minimum=0),
            max_upload_bytes=_int_setting(environ, "CVUNET_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, minimum=1),
        )


def _int_setting(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    text = environ.get(name) or str(default)
    if not text.strip().isdigit() or int(text) < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, not {text!r}")
    return int(text)


class UploadTooLarge(HTTPException):
    """Raised from inside ``receive``: FastAPI's form parser passes HTTPExceptions on unchanged."""

    def __init__(self, max_upload_bytes: int):
        super().__init__(413, f"upload too large: the image may be at most {max_upload_bytes:,} bytes "
                              f"({max_upload_bytes / 1e6:g} MB)")


class UploadSizeLimit:
    """ASGI middleware that stops oversize request bodies before they are buffered.

    A declared Content-Length over the limit fails the first read, before any byte is taken; a
    chunked (or understated) body fails as soon as the bytes received pass the limit.
    """

    def __init__(self, app: ASGIApp, max_upload_bytes: int):
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_body_bytes = max_upload_bytes + MULTIPART_ALLOWANCE_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        declared_too_large = declared.isdigit() and int(declared) > self.max_body_bytes
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            if declared_too_large:
                raise UploadTooLarge(self.max_upload_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise UploadTooLarge(self.max_upload_bytes)
            return message

        await self.app(scope, receive_within_limit, send)


def error_response(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


def _validation_message(errors: list[dict]) -> str:
    """One sentence for FastAPI's 422 details; a missing or non-file ``image`` gets curl usage."""
    for error in errors:
        if tuple(error.get("loc", ()))[-1:] == ("image",):
            problem = "missing the 'image' field" if error.get("type") == "missing" else "the 'image' field must be a file"
            return f"{problem}: {IMAGE_FIELD_HELP}"
    return "invalid request: " + "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ())[1:]) or 'body'}: {error.get('msg', 'invalid')}" for error in errors
    )


def _read_upload(upload: UploadFile, field: str, max_upload_bytes: int) -> bytes:
    data = upload.file.read(max_upload_bytes + 1)
    if len(data) > max_upload_bytes:
        raise UploadTooLarge(max_upload_bytes)
    if not data:
        raise HTTPException(400, f"empty upload: the '{field}' file has 0 bytes")
    return data


def create_app(triton_url: str, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> FastAPI:
    """The app; its one MattingClient (thread-safe gRPC) is opened at startup and closed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with MattingClient(triton_url) as matting:
            app.state.matting = matting
            yield

    app = FastAPI(title="CV-UNet matting", summary="Background removal served by Triton", lifespan=lifespan)
    app.add_middleware(UploadSizeLimit, max_upload_bytes=max_upload_bytes)

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

    @app.get("/healthz")
    def healthz(request: Request) -> JSONResponse:
        """Ready only when Triton and the matting ensemble answer, so a load balancer can route on it."""
        if request.app.state.matting.is_ready():
            return JSONResponse({"status": "ok", "triton": "ready"})
        return JSONResponse({"status": "unavailable", "triton": "not ready", "error": UNAVAILABLE}, status_code=503)

    return app
