"""``MattingClient``: one object over tritonclient's gRPC (default) or HTTP client.

It sends the encoded image bytes untouched (the server decodes them) and returns the encoded result
and the matte. Server-side errors come back as :class:`MattingError` with the server's message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cvunet.imageops import MEDIA_TYPES

MODEL_NAME = "matting"
#: The ensemble with the project-trained refiner after U²-Netp (``refine="refiner"``).
REFINED_MODEL_NAME = "matting_refined"
DEFAULT_URLS = {"grpc": "127.0.0.1:8001", "http": "127.0.0.1:8000"}
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
    def __init__(self, url: str | None = None, protocol: str = "grpc", model: str = MODEL_NAME, timeout: float = 120.0):
        if protocol not in DEFAULT_URLS:
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        self.protocol = protocol
        self.url = url or DEFAULT_URLS[protocol]
        self.model = model
        self.timeout = timeout
        if protocol == "grpc":
            import tritonclient.grpc as triton
        else:
            import tritonclient.http as triton
        self._triton = triton
        options = {"network_timeout": timeout, "connection_timeout": timeout} if protocol == "http" else {}
        self._client = triton.InferenceServerClient(self.url, **options)

    def is_ready(self) -> bool:
        """True when the server and the ensemble answer ready; False when unreachable."""
        try:
            return self._client.is_server_ready() and self._client.is_model_ready(self.model)
        except Exception:  # noqa: BLE001 - any transport failure means "not ready"
            return False

    def server_metadata(self) -> dict:
        return self._as_dict(self._client.get_server_metadata())

    def model_metadata(self) -> dict:
        return self._as_dict(self._client.get_model_metadata(self.model))

    def remove_background(self, image: bytes, kind: str = "rgba", format: str = "png", bg_color: str | None = None,
                          with_alpha: bool = True, foreground: str | None = None, refine: str | None = None) -> MattingResult:
        """Matte one encoded image. ``kind``: rgba | alpha | composite; ``format``: png | webp;
        ``foreground``: original | estimate (remove background colour from soft edges); ``refine``:
        none | guided | closed-form | refiner (cvunet.imageops.REFINE_MODES; refiner selects the
        ``matting_refined`` ensemble).

        ``with_alpha=False`` skips transferring the H×W matte (``result.alpha`` is then None).
        """
        if not image:
            raise MattingError("empty input: the file has 0 bytes", bad_input=True)
        triton = self._triton
        encoded = triton.InferInput("image", [1, len(image)], "UINT8")
        encoded.set_data_from_numpy(np.frombuffer(image, dtype=np.uint8)[np.newaxis])
        inputs = [encoded]
        options = (("kind", kind), ("format", format), ("bg_color", bg_color), ("foreground", foreground), ("refine", refine))
        for name, value in options:
            if value:
                option = triton.InferInput(name, [1, 1], "BYTES")
                option.set_data_from_numpy(np.array([[value.encode()]], dtype=object))
                inputs.append(option)
        outputs = [triton.InferRequestedOutput(name) for name in ("result", "alpha")[: 2 if with_alpha else 1]]
        model = REFINED_MODEL_NAME if refine == "refiner" else self.model
        started = time.perf_counter()
        try:
            if self.protocol == "grpc":
                response = self._client.infer(model, inputs, outputs=outputs, client_timeout=self.timeout)
            else:
                response = self._client.infer(model, inputs, outputs=outputs)
        except Exception as exc:  # noqa: BLE001 - tritonclient raises its own and transport errors
            status = str(exc.status()) if callable(getattr(exc, "status", None)) else ""
            raise MattingError(_server_message(exc), bad_input=status in BAD_INPUT_STATUSES) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        return MattingResult(
            data=response.as_numpy("result")[0].tobytes(),
            alpha=response.as_numpy("alpha")[0] if with_alpha else None,
            media_type=MEDIA_TYPES.get(format, "image/png"),
            elapsed_ms=elapsed_ms,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MattingClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _as_dict(self, metadata) -> dict:
        if isinstance(metadata, dict):
            return metadata
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(metadata, preserving_proto_field_name=True)


def _server_message(exc: Exception) -> str:
    """The server's explanation without tritonclient's status prefix and the ensemble name."""
    message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
    message = message or str(exc)
    for model in (MODEL_NAME, REFINED_MODEL_NAME):
        message = message.replace(f"in ensemble '{model}', ", "")
    return message.strip()
