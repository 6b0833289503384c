"""The names client and server agree on, each defined once: models, tensors, options, suffixes, addresses.

Everything that crosses the wire (KServe v2 over gRPC or HTTP) is named here, so the repository
builder, the Triton steps, the clients, the REST app and the dashboard cannot drift apart.
"""

from __future__ import annotations

# The Triton models of the served repository.
#: preprocess → the default network → postprocess.
ENSEMBLE = "matting"
PREPROCESS = "preprocess"
POSTPROCESS = "postprocess"
#: The pretrained networks served side by side, chosen per request with the ``model`` option (like
#: rembg's ``-m``): U²-Netp is fast, U²-Net is the quality model.
PRETRAINED_NETWORKS = ("u2net", "u2netp")
#: What ``matting`` runs when a request names no model: the better matte (README, "Matte quality").
DEFAULT_NETWORK = "u2net"

# The ensembles' tensors.
IMAGE = "image"  # UINT8 [-1]: the encoded photo, untouched
BACKGROUND_IMAGE = "bg_image"  # UINT8 [-1], optional: an encoded picture to composite onto
RESULT = "result"  # UINT8 [-1]: the encoded output
ALPHA = "alpha"  # UINT8 [H, W]: the full-resolution matte
#: The per-request options, each an optional BYTES [1] input; values are parsed by matting.options.
OPTION_INPUTS = ("kind", "format", "bg_color", "foreground", "refine")

# The video stream: a decoupled model served over gRPC bidirectional streaming. Each request is one raw frame
# with the options below; its one response holds ALPHA and, unless kind=alpha, RESULT as raw pixels
# (UINT8 [H, W, 4] for rgba, [H, W, 3] for composite).
STREAM = "matting_stream"
FRAME = "frame"  # UINT8 [H, W, 3]: one RGB frame, not encoded (encoding every frame would cost more than it saves)
STREAM_ID = "stream_id"  # BYTES [1], optional: which stream the frame belongs to (temporal smoothing is per stream)
FRAME_INDEX = "frame_index"  # INT64 [1], optional: the frame's place in its stream
SMOOTH = "smooth"  # BOOL [1], optional: temporal smoothing of the matte (off when not sent)
#: The stream's options, each an optional BYTES [1] input parsed by matting.options; ``model`` is an input
#: here (one stream model serves every network) and ``format`` does not apply (frames come back raw).
STREAM_OPTION_INPUTS = ("model", "kind", "bg_color", "foreground", "refine")

# Tensors between the steps.
NETWORK_INPUT = "network_input"
NETWORK_OUTPUT = "network_output"
#: The mirrored photo's input and output, for flip test-time augmentation (``tta=flip``).
NETWORK_INPUT_MIRRORED = "network_input_mirrored"
NETWORK_OUTPUT_MIRRORED = "network_output_mirrored"

# What a served ONNX file records about its origin (metadata properties written by cvunet.export_onnx).
EXPORTED_BY = "exported_by"
SOURCE_SHA256 = "source_sha256"
#: Set when the exported weights were fine-tuned from that source (cvunet.train --init): how.
FINE_TUNED = "fine_tuned"

#: Files the clients and the dashboard treat as images (any case); the server decodes these formats only
#: (matting.codec.SUPPORTED_FORMATS).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")

# Where things listen by default: loopback only.
DEFAULT_HOST = "127.0.0.1"
TRITON_HTTP_PORT = 8000
TRITON_GRPC_PORT = 8001
TRITON_METRICS_PORT = 8002
REST_PORT = 8080
UI_PORT = 7860
DEFAULT_TRITON_URLS = {"grpc": f"{DEFAULT_HOST}:{TRITON_GRPC_PORT}", "http": f"{DEFAULT_HOST}:{TRITON_HTTP_PORT}"}
DEFAULT_METRICS_URL = f"http://{DEFAULT_HOST}:{TRITON_METRICS_PORT}/metrics"


def network_ensemble(network: str) -> str:
    """The ensemble that runs ``network``: preprocess → network → postprocess."""
    return f"{ENSEMBLE}_{network}"


def flipped_ensemble(ensemble: str) -> str:
    """The ensemble that runs ``ensemble``'s network on the photo and on its mirror image and averages the mattes."""
    return f"{ensemble}_flip"


def ensemble_for(model: str | None, tta: str = "none") -> str:
    """The ensemble that serves a request for ``model`` (validated; None means the server's default
    network) with test-time augmentation ``tta`` (none | flip)."""
    ensemble = ENSEMBLE if model is None else network_ensemble(model)
    return flipped_ensemble(ensemble) if tta == "flip" else ensemble
