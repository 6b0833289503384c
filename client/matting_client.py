"""``MattingClient``: one object over tritonclient's gRPC (default) or HTTP client.

It sends the encoded image bytes untouched (the server decodes them) with the request's
``OutputOptions`` to the ensemble that serves them, and returns the encoded result and the matte.
Failures come back as one of three :class:`MattingError` kinds, because callers act differently on each:
:class:`RequestError` (the image or an option was refused: report it, never retry), :class:`ServerUnavailable`
(no answer: retry, or try another server) and :class:`ServerError` (the server answered with a fault of its own).
"""

from __future__ import annotations

import re
import time
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
        for name, value in options.as_strings().items():
            option = self._triton.InferInput(name, [1, 1], "BYTES")
            option.set_data_from_numpy(np.array([[value.encode()]], dtype=object))
            inputs.append(option)
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

    def _as_dict(self, metadata) -> dict:
        if isinstance(metadata, dict):
            return metadata
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(metadata, preserving_proto_field_name=True)


def _server_message(exc: Exception) -> str:
    """The server's explanation without tritonclient's status prefix and the ensemble name."""
    message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
    return re.sub(r"in ensemble '[^']*', ", "", message or str(exc)).strip()
