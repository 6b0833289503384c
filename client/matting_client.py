"""``MattingClient``: one object over tritonclient's gRPC (default) or HTTP client.

It sends the encoded image bytes untouched (the server decodes them) with the request's
``OutputOptions`` to the ensemble that serves them, and returns the encoded result and the matte.
Server-side errors come back as :class:`MattingError` with the server's message.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from matting import contract
from matting.options import OutputOptions

BAD_INPUT_STATUSES = {"StatusCode.INVALID_ARGUMENT", "400"}


class MattingError(RuntimeError):
    """The server refused or failed the request; ``str()`` is the server's explanation.

    ``bad_input`` is True when the image or an option was rejected (gRPC INVALID_ARGUMENT, HTTP 400),
    False for server or transport failures worth retrying.
    """

    def __init__(self, message: str, bad_input: bool = False):
        super().__init__(message)
        self.bad_input = bad_input


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
        options = {"network_timeout": timeout, "connection_timeout": timeout} if protocol == "http" else {}
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
            raise MattingError("empty input: the file has 0 bytes", bad_input=True)
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
            status = str(exc.status()) if callable(getattr(exc, "status", None)) else ""
            raise MattingError(_server_message(exc), bad_input=status in BAD_INPUT_STATUSES) from exc
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
