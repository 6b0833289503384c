"""The Triton python model ``matting_stream``: video frames in over gRPC bidirectional streaming, one
matte (and the RGBA cut-out or composite frame when asked) out per frame.

The model is decoupled: each frame is answered through its own response sender, with the FINAL flag,
in the order the frames came (on a gRPC stream an error reaches the client without its request id or
status, so the client places it by that order). Its one instance gets from the dynamic batcher whatever
queued while it was busy (consecutive frames of one or of several streams); their network inputs are
stacked per network and run as one request to that network's model (BLS): the network sees the batch,
and the served networks stay loaded once, with their tuned threads, instead of a second ONNX Runtime
session here. Preparation and the full-resolution matte are those of single images (matting.networks,
matting.refine, matting.compose). A frame's own fault (its shape, size or options) is answered
INVALID_ARG and the other frames carry on; a frame whose stream was cancelled is dropped unanswered.

Temporal smoothing (``smooth``, off by default: see matting.temporal) keeps, per ``stream_id``, the last
frame's smoothed low-resolution matte. One instance sees a stream's frames in order, so that state is
exact; a stream's state is dropped once it sent no frame for STREAM_IDLE_S (a stream that ended, or a
client that went away) or when more than MAX_STREAMS are kept (the least recently used go first).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import triton_python_backend_utils as pb_utils
from PIL import Image

from matting import contract
from matting.codec import ImageError
from matting.compose import compose
from matting.networks import network_spec, normalised_output, prepare_input
from matting.options import OptionsError, OutputOptions
from matting.refine import full_resolution_matte
from matting.temporal import motion, motion_guide, smoothed_matte
from matting.video import VideoLimits
from serving.requests import error_response, model_parameters, optional_scalar, optional_string

#: A stream that sent no frame for this long has ended or its client went away: its smoothing state goes.
STREAM_IDLE_S = 30.0
#: Smoothing states kept at most (about 0.8 MB each at 320²).
MAX_STREAMS = 64
#: The largest frame taken, as for video files (orientation-free: 2160×3840 is within 3840×2160).
FRAME_LIMITS = VideoLimits()
FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


@dataclass(frozen=True)
class Frame:
    """One request, read and checked: what the network and the answer need."""

    pixels: np.ndarray
    options: OutputOptions
    network: str
    network_input: np.ndarray
    #: Whether the RGBA or composite frame goes back beside the matte.
    with_result: bool
    stream_id: str | None
    index: int | None
    smooth: bool


@dataclass(frozen=True)
class StreamState:
    """What smoothing a stream's next frame needs from its last one."""

    index: int
    network: str
    matte: np.ndarray
    guide: np.ndarray
    seen: float


def _frame_pixels(request) -> np.ndarray:
    """The request's frame as H×W×3 uint8, refused with a message that says what was sent instead."""
    pixels = pb_utils.get_input_tensor_by_name(request, contract.FRAME).as_numpy()
    if pixels.ndim != 4 or pixels.shape[0] != 1:
        raise ImageError(f"send one frame per request as H×W×3 RGB, not a tensor of shape {list(pixels.shape)}")
    pixels = pixels[0]
    height, width, channels = pixels.shape
    if channels != 3:
        raise ImageError(f"a frame is H×W×3 RGB; this one has {channels} channels")
    if not height or not width:
        raise ImageError(f"empty frame: {width}×{height}")
    if not FRAME_LIMITS.allows(width, height):
        raise ImageError(f"the frame is {width}×{height}; the limit is {FRAME_LIMITS.max_width}×{FRAME_LIMITS.max_height}")
    return pixels


class StreamStep:
    """Frames of any number of streams → their mattes, answered one by one; see the module's docstring."""

    def initialize(self, args):
        self.logger = pb_utils.Logger
        parameters = model_parameters(json.loads(args["model_config"]))
        self.spec = network_spec(parameters["network"], int(parameters["input_size"]))
        self.default_network = parameters["network"]
        self.networks = parameters["networks"].split(",")
        #: The most frames one network request carries: a network's memory grows with its largest batch.
        self.network_batch = int(parameters["network_batch"])
        #: stream_id → its StreamState, least recently used first.
        self.streams: dict[str, StreamState] = {}

    def execute(self, requests):
        senders, frames = [], []
        for request in requests:
            sender = request.get_response_sender()
            if request.is_cancelled():  # its client went away while it queued: no work, no answer
                sender.send(flags=FINAL)
                continue
            try:
                frame = self._read(request)
            except Exception as exc:  # noqa: BLE001 - every failure becomes this frame's error
                frame = exc
            senders.append(sender)
            frames.append(frame)
        # In arrival order: the client places an error, which reaches it without its request id, by that order.
        for sender, frame, output in zip(senders, frames, self._network_outputs(frames)):
            try:
                if isinstance(output, Exception):
                    raise output
                response = self._answer(frame, output)
            except Exception as exc:  # noqa: BLE001 - every failure becomes this frame's error
                response = error_response(exc, self.logger)
            sender.send(response, flags=FINAL)
        self._forget_old_streams()
        return None

    def _read(self, request) -> Frame:
        options = OutputOptions.parse(**{name: optional_string(request, name) for name in contract.STREAM_OPTION_INPUTS})
        network = options.model or self.default_network
        if network not in self.networks:
            raise OptionsError(f"model {network} is not served here; this server serves {', '.join(self.networks)}")
        stream_id = optional_string(request, contract.STREAM_ID)
        index = optional_scalar(request, contract.FRAME_INDEX)
        smooth = bool(optional_scalar(request, contract.SMOOTH))
        if smooth and (not stream_id or index is None):
            raise OptionsError(f"smoothing needs the frame's {contract.STREAM_ID} and {contract.FRAME_INDEX}")
        pixels = _frame_pixels(request)
        with_result = options.kind != "alpha" and contract.RESULT in request.requested_output_names()
        return Frame(pixels, options, network, prepare_input(Image.fromarray(pixels), self.spec), with_result,
                     stream_id, index, smooth)

    def _network_outputs(self, frames: list[Frame | Exception]) -> list[np.ndarray | Exception]:
        """Each frame's network output, from one batched request per network; for a frame refused while read,
        its exception, and where a network's request failed, the exception its frames are answered with."""
        outputs = list(frames)
        networks = [frame.network if isinstance(frame, Frame) else None for frame in frames]
        for network in dict.fromkeys(filter(None, networks)):
            positions = [position for position, name in enumerate(networks) if name == network]
            batch = np.stack([frames[position].network_input for position in positions])
            try:
                results = np.concatenate([self._run_network(network, batch[start:start + self.network_batch])
                                          for start in range(0, len(batch), self.network_batch)])
            except Exception as exc:  # noqa: BLE001 - its frames are answered with it, the others carry on
                results = [exc] * len(positions)
            for position, result in zip(positions, results):
                outputs[position] = result
        return outputs

    def _run_network(self, network: str, batch: np.ndarray) -> np.ndarray:
        """N×3×S×S inputs → N×1×S×S outputs, through the network's model (BLS)."""
        request = pb_utils.InferenceRequest(model_name=network, inputs=[pb_utils.Tensor(contract.NETWORK_INPUT, batch)],
                                            requested_output_names=[contract.NETWORK_OUTPUT])
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"{network}: {response.error().message()}")
        return pb_utils.get_output_tensor_by_name(response, contract.NETWORK_OUTPUT).as_numpy()

    def _answer(self, frame: Frame, network_output: np.ndarray) -> pb_utils.InferenceResponse:
        matte = normalised_output(network_output, self.spec)
        if frame.smooth:
            matte = self._smoothed(frame, matte)
        image = Image.fromarray(frame.pixels)
        alpha = full_resolution_matte(image, matte, frame.options.refine)
        tensors = [pb_utils.Tensor(contract.ALPHA, alpha[np.newaxis])]
        if frame.with_result:
            result = np.asarray(compose(image, alpha, frame.options))
            tensors.append(pb_utils.Tensor(contract.RESULT, result[np.newaxis]))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def _smoothed(self, frame: Frame, matte: np.ndarray) -> np.ndarray:
        """The matte averaged with its stream's previous one where the frame did not move; the stream's state
        restarts when a frame is missing (an earlier one failed) or the network changed."""
        guide = motion_guide(frame.pixels, self.spec.input_size)
        previous = self.streams.pop(frame.stream_id, None)
        if previous is not None and previous.index == frame.index - 1 and previous.network == frame.network:
            matte = smoothed_matte(matte, previous.matte, motion(guide, previous.guide, matte, previous.matte))
        self.streams[frame.stream_id] = StreamState(frame.index, frame.network, matte, guide, time.monotonic())
        return matte

    def _forget_old_streams(self) -> None:
        now = time.monotonic()
        while self.streams:
            stream_id, state = next(iter(self.streams.items()))
            if now - state.seen < STREAM_IDLE_S and len(self.streams) <= MAX_STREAMS:
                break
            del self.streams[stream_id]
