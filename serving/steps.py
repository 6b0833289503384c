"""The Triton python-backend steps of the ``matting`` ensembles: tensors in, tensors out, nothing else.

Each ``model_repository/<step>/1/model.py`` re-exports one class from here as ``TritonPythonModel``.
The image logic lives in :mod:`matting` (codec, options, networks, refine, compose). A request's own
fault (its image, an option, a combination) gets INVALID_ARG with a message for the user, found by the
preprocess step before the network runs wherever the request alone tells; only a failure of ours is
INTERNAL. Either way the other requests of the batch and the server carry on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from matting import contract
from matting.codec import ImageError, decode_image, encode_image, open_image
from matting.compose import compose
from matting.networks import draft_size, network_spec, normalised_output, prepare_input
from matting.options import OptionsError, OutputOptions
from matting.refine import full_resolution_matte
from serving.requests import error_response, model_parameters, optional_string

def _request_options(request) -> OutputOptions:
    return OutputOptions.parse(**{name: optional_string(request, name) for name in contract.OPTION_INPUTS})


def _encoded(request, name: str) -> bytes | None:
    """The bytes of an encoded-picture input (one per request); None when not sent."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    encoded = tensor.as_numpy()
    if encoded.shape[0] != 1:
        raise OptionsError(f"send one {name} per request (got a batch of {encoded.shape[0]}); the server batches requests itself")
    return encoded[0].tobytes()


class PreprocessStep:
    """Encoded image bytes → network input (1×3×S×S), and the mirrored photo's when the ensemble asks for
    it (flip test-time augmentation). Every request input comes here first, so bad options, a missing
    or bad image, a background picture without kind=composite and an image the output format cannot
    hold are refused before the network runs (cheapest checks first).

    Large JPEGs are decoded at reduced scale (the network sees 320²); postprocess decodes the full
    image itself, which costs less than passing ~36 MB of pixels per 12-megapixel photo between steps.
    """

    def initialize(self, args):
        self.logger = pb_utils.Logger
        parameters = model_parameters(json.loads(args["model_config"]))
        self.spec = network_spec(parameters["network"], int(parameters["input_size"]))
        self.draft = draft_size(self.spec)

    def execute(self, requests):
        return [self._process(request) for request in requests]

    def _process(self, request):
        try:
            options = _request_options(request)
            encoded = _encoded(request, contract.IMAGE)
            if encoded is None:
                raise OptionsError(f"the request has no '{contract.IMAGE}' input: send the encoded photo as UINT8 bytes")
            _check_background(_encoded(request, contract.BACKGROUND_IMAGE), options)
            image = decode_image(encoded, draft_size=self.draft, output_format=options.format)
            network_input = prepare_input(image, self.spec)[np.newaxis]
            outputs = [pb_utils.Tensor(contract.NETWORK_INPUT, network_input)]
            if contract.NETWORK_INPUT_MIRRORED in request.requested_output_names():
                mirrored = np.ascontiguousarray(network_input[..., ::-1])  # the input of the mirrored photo
                outputs.append(pb_utils.Tensor(contract.NETWORK_INPUT_MIRRORED, mirrored))
            return pb_utils.InferenceResponse(output_tensors=outputs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes this request's error
            return error_response(exc, self.logger)


def _return_freed_heap() -> None:
    """Hands the heap glibc keeps after a session load back to the system: ONNX Runtime parses the
    file and copies its weights out of the parsed copy, and the freed ~220 MB of a U²-Net load would
    otherwise stay in this process for good (measured; see README "Memory"). No-op off glibc."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _fair_thread_count(config: dict) -> int:
    """The cores divided among this model's instances, so that instances busy at once do not fight
    over cores (see README "Performance" for the instance count)."""
    instances = sum(group.get("count", 1) for group in config.get("instance_group", [])) or 1
    return max(1, (os.cpu_count() or 1) // instances)


class OnnxNetworkStep:
    """Runs a network's ONNX file with ONNX Runtime; concatenates whatever the scheduler batched.

    The config's tensors are named as the file's (serving.repository makes sure of it)."""

    def initialize(self, args):
        import onnxruntime as ort

        config = json.loads(args["model_config"])
        parameters = model_parameters(config)
        model_path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(parameters.get("intra_op_threads", "0")) or _fair_thread_count(config)
        options.inter_op_num_threads = 1
        # Idle ORT threads otherwise spin and steal the cores the pre/post steps need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The memory pattern plans each run as one block that the arena then keeps for good: ~600 MB for
        # U²-Net at 320² where allocating tensor by tensor from the arena peaks at ~320 MB, as fast (see README).
        options.enable_mem_pattern = False
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        _return_freed_heap()
        self.input_names = [tensor.name for tensor in self.session.get_inputs()]
        self.output_names = [tensor.name for tensor in self.session.get_outputs()]

    def execute(self, requests):
        per_request = [
            [pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.input_names] for request in requests
        ]
        feeds = {name: np.concatenate([inputs[index] for inputs in per_request]) for index, name in enumerate(self.input_names)}
        outputs = self.session.run(self.output_names, feeds)
        responses, start = [], 0
        for inputs in per_request:
            stop = start + len(inputs[0])
            tensors = [
                pb_utils.Tensor(name, np.ascontiguousarray(output[start:stop], dtype=np.float32))
                for name, output in zip(self.output_names, outputs)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start = stop
        return responses


class PostprocessStep:
    """Network output (averaged with the mirrored photo's, un-mirrored, under flip test-time augmentation)
    + encoded image → encoded result (rgba | alpha | composite, png | webp) and the full-resolution
    matte, upsampled as the ``refine`` option asks."""

    def initialize(self, args):
        self.logger = pb_utils.Logger
        parameters = model_parameters(json.loads(args["model_config"]))
        self.spec = network_spec(parameters["network"], int(parameters["input_size"]))

    def execute(self, requests):
        return [self._process(request) for request in requests]

    def _process(self, request):
        try:
            options = _request_options(request)
            network_output = pb_utils.get_input_tensor_by_name(request, contract.NETWORK_OUTPUT).as_numpy()[0]
            matte = normalised_output(network_output, self.spec)
            mirrored = pb_utils.get_input_tensor_by_name(request, contract.NETWORK_OUTPUT_MIRRORED)
            if mirrored is not None:
                matte = (matte + normalised_output(mirrored.as_numpy()[0], self.spec)[:, ::-1]) / 2
            background = _background(_encoded(request, contract.BACKGROUND_IMAGE))
            image = decode_image(_encoded(request, contract.IMAGE))
            alpha = full_resolution_matte(image, matte, options.refine)
            encoded = encode_image(compose(image, alpha, options, background), options.format)
            return pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor(contract.RESULT, np.frombuffer(encoded, dtype=np.uint8)[np.newaxis]),
                    pb_utils.Tensor(contract.ALPHA, alpha[np.newaxis]),
                ]
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes this request's error
            return error_response(exc, self.logger)


def _check_background(data: bytes | None, options: OutputOptions) -> None:
    """A background picture, when sent, needs kind=composite and a readable header."""
    if data is None:
        return
    if options.kind != "composite":
        raise OptionsError(f"a background image needs kind=composite, not kind={options.kind}")
    try:
        open_image(data).close()
    except ImageError as exc:
        raise ImageError(f"background image: {exc}") from None


def _background(data: bytes | None):
    """The decoded background picture, when the request sends one (preprocess checked the combination)."""
    if data is None:
        return None
    try:
        return decode_image(data)
    except ImageError as exc:
        raise ImageError(f"background image: {exc}") from None
