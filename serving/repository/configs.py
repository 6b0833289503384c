"""Triton configs of the matting repository, built as ``ModelConfig`` protobufs so they are valid by
construction: the python steps, the network (CPU: python step over ONNX Runtime; GPU: TensorRT plan
or ONNX Runtime + TensorRT), and the two ensembles. Tensor and model names come from matting.contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from matting import contract

STEP_CLASSES = {contract.PREPROCESS: "PreprocessStep", contract.POSTPROCESS: "PostprocessStep"}
NETWORK_STEP_CLASS = "OnnxNetworkStep"


@dataclass(frozen=True)
class ModelIO:
    """A network's tensors as (name, dims without the batch dimension); the ONNX file uses the same names."""

    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    outputs: tuple[tuple[str, tuple[int, ...]], ...]


def network_io(size: int) -> ModelIO:
    return ModelIO(inputs=((contract.NETWORK_INPUT, (3, size, size)),), outputs=((contract.NETWORK_OUTPUT, (1, size, size)),))


@dataclass(frozen=True)
class RepositorySettings:
    """Scheduling knobs; the defaults are what measured best on a 2-core CPU (see README "Performance").

    One network instance using every core: a lone request gets the whole machine, a full queue keeps
    ~97 % of the throughput of two single-threaded instances, and each network is held in memory once.
    Dynamic batching stays off: a batch of 8 at 320² holds 8 images' activations at once (~2.7 GB for
    U²-Net)."""

    max_batch_size: int = 8
    dynamic_batching: bool = False
    network_instances: int = 1
    step_instances: int = 2
    #: 0: the cores divided among the network instances.
    intra_op_threads: int = 0
    #: The most video frames the stream model sends a network at once (CPU): a network's arena keeps the working
    #: memory of the largest batch it ran, and on CPU a batch is no faster (bench.video_throughput: U²-Net's
    #: peak 1156 / 1510 / 3792 MB at 1 / 2 / 8, 0.92 / 0.87 / 0.87 frames/s). The GPU repository sends up to
    #: ``max_batch_size``.
    stream_network_batch: int = 1


def _tensor(name: str, dtype: int, dims: list[int], optional: bool = False) -> mc.ModelInput:
    return mc.ModelInput(name=name, data_type=dtype, dims=dims, optional=optional)


def _output(name: str, dtype: int, dims: list[int]) -> mc.ModelOutput:
    return mc.ModelOutput(name=name, data_type=dtype, dims=dims)


def _request_inputs() -> list[mc.ModelInput]:
    """What a client may send: the photo, an optional background picture and the optional options.

    The photo is needed, but declared optional: Triton 2.51 counts an ensemble's inputs without checking
    which ones came, so a request without ``image`` would end in "unexpected deadlock"; this way it
    reaches the preprocess step, which refuses it with INVALID_ARGUMENT."""
    return [_tensor(contract.IMAGE, mc.TYPE_UINT8, [-1], optional=True),
            _tensor(contract.BACKGROUND_IMAGE, mc.TYPE_UINT8, [-1], optional=True),
            *(_tensor(name, mc.TYPE_STRING, [1], optional=True) for name in contract.OPTION_INPUTS)]


def _request_outputs() -> list[mc.ModelOutput]:
    return [_output(contract.RESULT, mc.TYPE_UINT8, [-1]), _output(contract.ALPHA, mc.TYPE_UINT8, [-1, -1])]


def _python_config(name: str, settings: RepositorySettings, instances: int, parameters: dict[str, str]) -> mc.ModelConfig:
    config = mc.ModelConfig(name=name, backend="python", max_batch_size=settings.max_batch_size)
    config.instance_group.add(count=instances, kind=mc.ModelInstanceGroup.KIND_CPU)
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return config


def _step_parameters(network: str, size: int) -> dict[str, str]:
    return {"network": network, "input_size": str(size)}


def preprocess_config(network: str, size: int, settings: RepositorySettings) -> mc.ModelConfig:
    """Prepares the input of ``network`` and of every network whose preparation is the same; gets every
    request input, so a bad option or combination is refused before the network runs."""
    config = _python_config(contract.PREPROCESS, settings, settings.step_instances, _step_parameters(network, size))
    config.input.extend(_request_inputs())
    config.output.extend([_output(contract.NETWORK_INPUT, mc.TYPE_FP32, [3, size, size]),
                          _output(contract.NETWORK_INPUT_MIRRORED, mc.TYPE_FP32, [3, size, size])])
    return config


def _add_zero_warmup(config: mc.ModelConfig, io: ModelIO) -> None:
    """Triton runs one batch of zeros through the network at load, so the first user request is not slow."""
    warmup = config.model_warmup.add(name="zeros", batch_size=1)
    for name, dims in io.inputs:
        warmup.inputs[name].data_type = mc.TYPE_FP32
        warmup.inputs[name].dims.extend(dims)
        warmup.inputs[name].zero_data = True


def _add_io(config: mc.ModelConfig, io: ModelIO) -> None:
    config.input.extend(_tensor(name, mc.TYPE_FP32, list(dims)) for name, dims in io.inputs)
    config.output.extend(_output(name, mc.TYPE_FP32, list(dims)) for name, dims in io.outputs)


def read_config(path: Path) -> mc.ModelConfig:
    """A ``config.pbtxt`` parsed back into Triton's ModelConfig (fails on anything Triton would reject)."""
    return text_format.Parse(Path(path).read_text(), mc.ModelConfig())


def network_config(network: str, io: ModelIO, settings: RepositorySettings) -> mc.ModelConfig:
    """CPU target: a python step running ONNX Runtime (the embedded server has only that backend)."""
    config = _python_config(network, settings, settings.network_instances, {"intra_op_threads": str(settings.intra_op_threads)})
    _add_io(config, io)
    if settings.dynamic_batching:
        config.dynamic_batching.SetInParent()
    _add_zero_warmup(config, io)
    return config


def gpu_network_configs(network: str, io: ModelIO, settings: RepositorySettings) -> tuple[mc.ModelConfig, mc.ModelConfig]:
    """GPU target: the TensorRT plan (built on the target GPU by serving.trt) as ``config.pbtxt``,
    and ONNX Runtime with its TensorRT accelerator in FP16 as the alternative ``configs/onnxruntime.pbtxt``
    (``tritonserver --model-config-name=onnxruntime``) for hosts where no plan was built."""
    configs = []
    for platform in ("tensorrt_plan", "onnxruntime_onnx"):
        config = mc.ModelConfig(name=network, platform=platform, max_batch_size=settings.max_batch_size)
        _add_io(config, io)
        config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_GPU)
        config.dynamic_batching.max_queue_delay_microseconds = 2000
        _add_zero_warmup(config, io)
        if platform == "onnxruntime_onnx":
            accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
            accelerator.parameters["precision_mode"] = "FP16"
            accelerator.parameters["max_workspace_size_bytes"] = str(2 << 30)
        configs.append(config)
    return configs[0], configs[1]


def postprocess_config(network: str, size: int, settings: RepositorySettings) -> mc.ModelConfig:
    """Takes the output of ``network`` or of any network read the same way, and the request's inputs."""
    config = _python_config(contract.POSTPROCESS, settings, settings.step_instances, _step_parameters(network, size))
    config.input.extend([_tensor(contract.NETWORK_OUTPUT, mc.TYPE_FP32, [1, size, size]),
                         _tensor(contract.NETWORK_OUTPUT_MIRRORED, mc.TYPE_FP32, [1, size, size], optional=True),
                         _tensor(contract.IMAGE, mc.TYPE_UINT8, [-1])])
    config.input.extend(_request_inputs()[1:])
    config.output.extend(_request_outputs())
    return config


def ensemble_config(name: str, network: str, settings: RepositorySettings, flipped: bool = False) -> mc.ModelConfig:
    """preprocess → network → postprocess; ``flipped`` runs the network a second time on the mirrored
    photo and postprocess averages the two mattes (flip test-time augmentation)."""
    config = mc.ModelConfig(name=name, platform="ensemble", max_batch_size=settings.max_batch_size)
    config.input.extend(_request_inputs())
    config.output.extend(_request_outputs())
    steps = config.ensemble_scheduling.step
    preprocess = steps.add(model_name=contract.PREPROCESS, model_version=-1)
    preprocess.input_map.update({tensor.name: tensor.name for tensor in _request_inputs()})
    preprocess.output_map[contract.NETWORK_INPUT] = contract.NETWORK_INPUT
    net = steps.add(model_name=network, model_version=-1)
    net.input_map[contract.NETWORK_INPUT] = contract.NETWORK_INPUT
    net.output_map[contract.NETWORK_OUTPUT] = contract.NETWORK_OUTPUT
    if flipped:
        preprocess.output_map[contract.NETWORK_INPUT_MIRRORED] = contract.NETWORK_INPUT_MIRRORED
        mirrored = steps.add(model_name=network, model_version=-1)
        mirrored.input_map[contract.NETWORK_INPUT] = contract.NETWORK_INPUT_MIRRORED
        mirrored.output_map[contract.NETWORK_OUTPUT] = contract.NETWORK_OUTPUT_MIRRORED
    postprocess = steps.add(model_name=contract.POSTPROCESS, model_version=-1)
    postprocess.input_map[contract.IMAGE] = contract.IMAGE
    postprocess.input_map[contract.NETWORK_OUTPUT] = contract.NETWORK_OUTPUT
    if flipped:
        postprocess.input_map[contract.NETWORK_OUTPUT_MIRRORED] = contract.NETWORK_OUTPUT_MIRRORED
    postprocess.input_map.update({name: name for name in (contract.BACKGROUND_IMAGE, *contract.OPTION_INPUTS)})
    postprocess.output_map.update({contract.RESULT: contract.RESULT, contract.ALPHA: contract.ALPHA})
    return config


def stream_config(network: str, served: list[str], size: int, settings: RepositorySettings,
                  network_batch: int) -> mc.ModelConfig:
    """The video stream (serving.stream): decoupled, so that gRPC streaming carries its answers; dynamic
    batching, so that the frames queued while it works (of one or several streams, at most ``max_batch_size``)
    reach a network together, in requests of at most ``network_batch`` frames; one instance, which sees each
    stream's frames in order (temporal smoothing keeps state per stream). ``network`` runs when a frame
    names no ``model``; ``served`` are those it may name."""
    config = _python_config(contract.STREAM, settings, 1, {**_step_parameters(network, size), "networks": ",".join(served),
                                                           "network_batch": str(network_batch)})
    config.model_transaction_policy.decoupled = True
    config.dynamic_batching.SetInParent()
    # Frames of any size batch together (each request keeps its own tensor in the python backend); any channel
    # count gets through, so that the model can say what is wrong with a frame.
    config.input.add(name=contract.FRAME, data_type=mc.TYPE_UINT8, dims=[-1, -1, -1], allow_ragged_batch=True)
    config.input.extend([_tensor(contract.STREAM_ID, mc.TYPE_STRING, [1], optional=True),
                         _tensor(contract.FRAME_INDEX, mc.TYPE_INT64, [1], optional=True),
                         _tensor(contract.SMOOTH, mc.TYPE_BOOL, [1], optional=True),
                         *(_tensor(name, mc.TYPE_STRING, [1], optional=True) for name in contract.STREAM_OPTION_INPUTS)])
    config.output.extend([_output(contract.ALPHA, mc.TYPE_UINT8, [-1, -1]),
                          _output(contract.RESULT, mc.TYPE_UINT8, [-1, -1, -1])])
    return config


def step_shim(step: str, class_name: str, module: str = "serving.steps") -> str:
    return (
        f'"""Triton python model `{step}` of the matting repository (written by serving.repository)."""\n\n'
        "# Imported first: under the embedded server this puts the project and its packages on sys.path.\n"
        "import triton_python_backend_utils  # noqa: F401\n\n"
        f"from {module} import {class_name} as TritonPythonModel  # noqa: F401,E402\n"
    )

