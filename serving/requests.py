"""What every python model of the repository reads from its config and requests, and how it answers a
failure: a request's own fault (its image, an option, a frame) is INVALID_ARG with a message for the user;
anything else is INTERNAL with one fixed message, its details in Triton's log."""

from __future__ import annotations

import triton_python_backend_utils as pb_utils

from matting.codec import ImageError
from matting.options import OptionsError, check_length

USER_ERRORS = (ImageError, OptionsError)
#: What the caller reads when the server failed (client.matting_client.SERVER_FAULT_TEXT is its start).
INTERNAL_MESSAGE = "internal server error while processing the image (details are in the server log)"


def model_parameters(config: dict) -> dict[str, str]:
    """The ``parameters`` of a model's config (serving.repository.configs writes them) as strings."""
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def error_response(exc: Exception, logger) -> pb_utils.InferenceResponse:
    """User errors become INVALID_ARG (gRPC INVALID_ARGUMENT, HTTP 400); anything else is logged as INTERNAL."""
    if isinstance(exc, USER_ERRORS):
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG))
    logger.log_error(f"internal error: {exc!r}")
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(INTERNAL_MESSAGE, pb_utils.TritonError.INTERNAL))


def optional_string(request, name: str) -> str | None:
    """An option tensor's one value, its length checked before it is decoded; None when not sent."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    value = tensor.as_numpy().reshape(-1)
    if value.size != 1:
        raise OptionsError(f"{name} must hold exactly one value, got {value.size}")
    item = value[0]
    check_length(name, item)
    return item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)


def optional_scalar(request, name: str):
    """The one value of an optional scalar input (BOOL, INT64); None when not sent."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().reshape(-1)[0].item()
