"""``MattingClient``: one object over tritonclient's gRPC (default) or HTTP client.

It sends the encoded image bytes untouched (the server decodes them) with the request's
``OutputOptions`` to the ensemble that serves them, and returns the encoded result and the matte;
:meth:`MattingClient.stream` sends video frames over gRPC streaming to ``matting_stream`` instead.
Failures come back as one of three :class:`MattingError` kinds, because callers act differently on each:
:class:`RequestError` (the image or an option was refused: report it, never retry), :class:`ServerUnavailable`
(no answer: retry, or try another server) and :class:`ServerError` (the server answered with a fault of its own).
"""

from __future__ import annotations

import itertools
import queue
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from matting import contract
from matting.options import OutputOptions

#: Triton statuses (gRPC status codes, HTTP status codes as tritonclient reports them) by what they mean.
REQUEST_ERROR_STATUSES = {"StatusCode.INVALID_ARGUMENT", "400"}
#: Nobody answered in time or the server cannot take requests now: a transport failure, a server that is
#: starting or stopping, a model that is not loaded, a request that ran past the client's timeout.
UNAVAILABLE_STATUSES = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED",
                        "502", "503", "504"}


#: gRPC waits up to 2 minutes between attempts to reconnect to a server that went away, so a restarted
#: Triton would get requests only that much later; a loopback or cluster connection can retry every 2 s.
MAX_RECONNECT_BACKOFF_MS = 2000


def grpc_channel_args() -> list[tuple[str, int]]:
    """The channel of every gRPC client of Triton here: tritonclient's message size limits (its keepalive
    defaults are gRPC's own), reconnecting sooner (MAX_RECONNECT_BACKOFF_MS)."""
    from tritonclient.grpc import MAX_GRPC_MESSAGE_SIZE

    return [("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS)]


class MattingError(RuntimeError):
    """The request failed; ``str()`` says why (the server's explanation when it gave one).

    ``bad_input`` is True for a :class:`RequestError`: the image or an option was rejected.
    """

    bad_input = False


class RequestError(MattingError):
    """The server refused this request's image or options (gRPC INVALID_ARGUMENT, HTTP 400): sending it
    again, to any server, gets the same answer."""

    bad_input = True


class ServerUnavailable(MattingError):
    """No answer: connection refused or lost, the server or model not ready, the timeout passed. Worth
    retrying, on this server later or on another one now."""


class ServerError(MattingError):
    """The server answered with a fault of its own (INTERNAL and the like): reported, not retried."""


def classify(exc: Exception) -> MattingError:
    """The MattingError for what tritonclient raised: its status decides the kind; an exception without
    a status is a transport failure (refused or broken connection), hence unavailable."""
    status = str(exc.status()) if callable(getattr(exc, "status", None)) else ""
    message = _server_message(exc)
    if status in REQUEST_ERROR_STATUSES:
        return RequestError(message)
    if not status or status == "None" or status in UNAVAILABLE_STATUSES:
        return ServerUnavailable(message)
    return ServerError(message)


@dataclass(frozen=True)
class MattingResult:
    data: bytes
    alpha: np.ndarray | None
    media_type: str
    elapsed_ms: float


@dataclass(frozen=True)
class FrameResult:
    """One streamed frame's answer: its matte (uint8 H×W) and, unless ``kind`` is alpha, the RGBA cut-out
    (H×W×4) or the composite (H×W×3)."""

    alpha: np.ndarray
    image: np.ndarray | None


#: Frames a stream sends ahead of the answers: what the server may batch (its max_batch_size).
STREAM_IN_FLIGHT = 8
#: How the server's own faults start (serving.requests.INTERNAL_MESSAGE); the stream tells them apart by it.
SERVER_FAULT_TEXT = "internal server error"


def stream_error(exc: Exception) -> MattingError:
    """The MattingError for a stream's error. A failed stream has its gRPC status (classify); a frame's answer
    on a working stream has only its text: Triton 2.51 does not send its status there, and its
    ``triton_grpc_error`` mode, which would, crashes the server with a decoupled python model (seen here).
    The stream model answers everything but a frame's own fault with the server-fault text."""
    if callable(getattr(exc, "status", None)) and exc.status() is not None:
        return classify(exc)
    message = _server_message(exc)
    return ServerError(message) if message.startswith(SERVER_FAULT_TEXT) else RequestError(message)


class MattingClient:
    def __init__(self, url: str | None = None, protocol: str = "grpc", timeout: float = 120.0):
        if protocol not in contract.DEFAULT_TRITON_URLS:
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        self.protocol = protocol
        self.url = url or contract.DEFAULT_TRITON_URLS[protocol]
        self.timeout = timeout
        if protocol == "grpc":
            import tritonclient.grpc as triton
        else:
            import tritonclient.http as triton
        self._triton = triton
        if protocol == "http":
            options = {"network_timeout": timeout, "connection_timeout": timeout}
        else:
            options = {"channel_args": grpc_channel_args()}
        self._client = triton.InferenceServerClient(self.url, **options)

    def is_ready(self) -> bool:
        """True when the server and the ``matting`` ensemble answer ready; False when unreachable."""
        try:
            return self._client.is_server_ready() and self._client.is_model_ready(contract.ENSEMBLE)
        except Exception:  # noqa: BLE001 - any transport failure means "not ready"
            return False

    def server_metadata(self) -> dict:
        return self._as_dict(self._client.get_server_metadata())

    def model_metadata(self, ensemble: str = contract.ENSEMBLE) -> dict:
        return self._as_dict(self._client.get_model_metadata(ensemble))

    def served_model(self, ensemble: str = contract.ENSEMBLE) -> tuple[str, str]:
        """(network, version) that ``ensemble`` (e.g. ``options.ensemble``) runs, as the server says: e.g. ("u2net", "1")."""
        config = self._as_dict(self._client.get_model_config(ensemble))
        config = config.get("config", config)
        steps = [step["model_name"] for step in config.get("ensemble_scheduling", {}).get("step", [])]
        networks = dict.fromkeys(name for name in steps if name not in (contract.PREPROCESS, contract.POSTPROCESS))
        versions = self.model_metadata(ensemble).get("versions") or []
        return " + ".join(networks) or "unknown", ",".join(versions) or "unknown"

    def remove_background(self, image: bytes, options: OutputOptions = OutputOptions(), background: bytes | None = None,
                          with_alpha: bool = True) -> MattingResult:
        """Matte one encoded image as ``options`` ask (built with ``OutputOptions.parse``).

        ``background``: an encoded picture the server composites onto (``options.kind`` composite).
        ``with_alpha=False`` skips transferring the H×W matte (``result.alpha`` is then None).
        """
        if not image:
            raise RequestError("empty input: the file has 0 bytes")
        inputs = [self._bytes_input(contract.IMAGE, image)]
        if background is not None:
            inputs.append(self._bytes_input(contract.BACKGROUND_IMAGE, background))
        inputs.extend(self._scalar_input(name, value.encode(), "BYTES") for name, value in options.as_strings().items())
        names = (contract.RESULT, contract.ALPHA)[: 2 if with_alpha else 1]
        outputs = [self._triton.InferRequestedOutput(name) for name in names]
        started = time.perf_counter()
        try:
            if self.protocol == "grpc":
                response = self._client.infer(options.ensemble, inputs, outputs=outputs, client_timeout=self.timeout)
            else:
                response = self._client.infer(options.ensemble, inputs, outputs=outputs)
        except Exception as exc:  # noqa: BLE001 - tritonclient raises its own and transport errors
            raise classify(exc) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        return MattingResult(
            data=response.as_numpy(contract.RESULT)[0].tobytes(),
            alpha=response.as_numpy(contract.ALPHA)[0] if with_alpha else None,
            media_type=options.media_type,
            elapsed_ms=elapsed_ms,
        )

    def stream(self, frames: Iterable[np.ndarray], options: OutputOptions = OutputOptions(), smooth: bool = False,
               in_flight: int = STREAM_IN_FLIGHT) -> Iterator[FrameResult]:
        """Matte RGB frames (uint8 H×W×3) through ``matting_stream`` over gRPC streaming: one FrameResult per
        frame, in frame order.

        Frames are sent as they come, up to ``in_flight`` ahead of the answers, so the server batches them.
        ``options``: model, kind, bg_color, foreground and refine as for images (format does not apply: frames
        come back raw); ``smooth``: temporal smoothing of the matte. The first failure raises its
        MattingError, in frame order (the server answers a stream's frames in the order they came), and ends
        the stream; closing the generator early cancels the frames in flight. Each call has its own connection
        (tritonclient holds one stream per client), so several calls at once are several streams.
        """
        if self.protocol != "grpc":
            raise ValueError("streaming needs the gRPC protocol")
        if options.tta != "none":
            raise RequestError(f"the video stream does not run tta={options.tta}")
        arrived: queue.Queue = queue.Queue()
        client = self._triton.InferenceServerClient(self.url, channel_args=grpc_channel_args())
        common = self._stream_inputs(options, smooth)
        outputs = [self._triton.InferRequestedOutput(name)
                   for name in (contract.ALPHA, contract.RESULT)[: 1 if options.kind == "alpha" else 2]]
        frames = iter(frames)
        #: Frames answered (or refused here) but not yet yielded, by index.
        pending: dict[int, FrameResult | MattingError] = {}
        sent = yielded = 0
        finished = refused = False
        try:
            self._check_stream_ready(client)
            client.start_stream(lambda result, error: arrived.put((result, error)))
            while True:
                for frame in itertools.islice(frames, 0 if refused else in_flight - (sent - yielded)):
                    try:
                        frame_inputs = self._frame_inputs(frame, sent)
                    except RequestError as exc:  # raised in its place, once the frames before it are yielded
                        pending[sent], refused = exc, True
                    else:
                        client.async_stream_infer(contract.STREAM, [*common, *frame_inputs], outputs=outputs,
                                                  request_id=str(sent))
                    sent += 1
                while yielded in pending:
                    answer = pending.pop(yielded)
                    if isinstance(answer, MattingError):
                        raise answer
                    yield answer
                    yielded += 1
                if yielded == sent:
                    finished = True
                    return
                try:
                    result, error = arrived.get(timeout=self.timeout)
                except queue.Empty:
                    raise ServerUnavailable(f"no answer from {self.url} within {self.timeout:g} s") from None
                if error is not None:
                    raise stream_error(error) from error
                alpha = result.as_numpy(contract.ALPHA)[0]
                image = result.as_numpy(contract.RESULT)[0] if options.kind != "alpha" else None
                pending[int(result.get_response().id)] = FrameResult(alpha, image)
        finally:
            client.stop_stream(cancel_requests=not finished)
            client.close()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MattingClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _bytes_input(self, name: str, data: bytes):
        tensor = self._triton.InferInput(name, [1, len(data)], "UINT8")
        tensor.set_data_from_numpy(np.frombuffer(data, dtype=np.uint8)[np.newaxis])
        return tensor

    def _check_stream_ready(self, client) -> None:
        """Raises ServerUnavailable unless the stream model is loaded: a stream to a model that is not would
        answer every frame with bare text, read as a refusal."""
        try:
            ready = client.is_model_ready(contract.STREAM)
        except Exception as exc:  # noqa: BLE001 - tritonclient raises its own and transport errors
            raise classify(exc) from exc
        if not ready:
            raise ServerUnavailable(f"{self.url} does not serve {contract.STREAM} now")

    def _scalar_input(self, name: str, value, datatype: str):
        """A [1, 1] tensor: one value of a request of batch size 1."""
        tensor = self._triton.InferInput(name, [1, 1], datatype)
        tensor.set_data_from_numpy(np.array([[value]], dtype=object if datatype == "BYTES" else None))
        return tensor

    def _stream_inputs(self, options: OutputOptions, smooth: bool) -> list:
        """What every frame of one stream sends besides itself: its options, its smoothing and its identity."""
        values = {name: value for name, value in options.as_strings().items() if name in contract.STREAM_OPTION_INPUTS}
        if options.model is not None:
            values["model"] = options.model
        return [*(self._scalar_input(name, value.encode(), "BYTES") for name, value in values.items()),
                self._scalar_input(contract.SMOOTH, smooth, "BOOL"),
                self._scalar_input(contract.STREAM_ID, uuid.uuid4().hex.encode(), "BYTES")]

    def _frame_inputs(self, frame: np.ndarray, index: int) -> list:
        """The frame and its index; a frame that is not uint8 H×W×C is refused here, as Triton would refuse it
        (but without its status on a stream)."""
        pixels = np.ascontiguousarray(frame)
        if pixels.dtype != np.uint8 or pixels.ndim != 3:
            raise RequestError(f"frame {index}: a frame is uint8 H×W×3 RGB, "
                               f"not {pixels.dtype} of shape {list(pixels.shape)}")
        tensor = self._triton.InferInput(contract.FRAME, [1, *pixels.shape], "UINT8")
        tensor.set_data_from_numpy(pixels[np.newaxis])
        return [tensor, self._scalar_input(contract.FRAME_INDEX, index, "INT64")]

    def _as_dict(self, metadata) -> dict:
        if isinstance(metadata, dict):
            return metadata
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(metadata, preserving_proto_field_name=True)


def _server_message(exc: Exception) -> str:
    """The server's explanation without tritonclient's status prefix and the ensemble name."""
    message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
    return re.sub(r"in ensemble '[^']*', ", "", message or str(exc)).strip()
