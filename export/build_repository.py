"""Write the Triton model repository for a chosen network.

    python -m export.build_repository                          # U²-Netp (default, pretrained)
    python -m export.build_repository --network cvunet --checkpoint run/best.pt
    python -m export.build_repository --network cvunet --onnx cvunet.onnx --out /tmp/repo

The repository is the ensemble ``matting`` = ``preprocess`` → ``<network>`` → ``postprocess``.
Configs are built as Triton ``ModelConfig`` protobufs and written in text format, so they are valid
by construction; the python steps are two-line shims over :mod:`cvunet.triton_steps`. CV-UNet has
no pretrained weights: it is served only from an explicit checkpoint or ONNX file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from cvunet.files import atomic_write_bytes
from cvunet.networks import NETWORKS, network_spec
from cvunet.paths import MODEL_REPOSITORY, PROJECT_ROOT
from cvunet.weights import U2NETP_PATH, fetch_u2netp

ENSEMBLE = "matting"
GPU_REPOSITORY = PROJECT_ROOT / "model_repository_gpu"
STEP_CLASSES = {"preprocess": "PreprocessStep", "postprocess": "PostprocessStep"}
NETWORK_STEP_CLASS = "OnnxNetworkStep"
OPTION_INPUTS = ("kind", "format", "bg_color", "foreground")
TARGETS = ("cpu", "gpu")


@dataclass(frozen=True)
class RepositorySettings:
    """Scheduling knobs; the defaults are what measured best on a 2-core CPU (see README)."""

    max_batch_size: int = 8
    dynamic_batching: bool = False
    network_instances: int = 2
    step_instances: int = 2
    #: 0: the cores divided among the network instances.
    intra_op_threads: int = 0


def _tensor(name: str, dtype: int, dims: list[int], optional: bool = False) -> mc.ModelInput:
    return mc.ModelInput(name=name, data_type=dtype, dims=dims, optional=optional)


def _output(name: str, dtype: int, dims: list[int]) -> mc.ModelOutput:
    return mc.ModelOutput(name=name, data_type=dtype, dims=dims)


def _python_config(name: str, settings: RepositorySettings, instances: int, parameters: dict[str, str]) -> mc.ModelConfig:
    config = mc.ModelConfig(name=name, backend="python", max_batch_size=settings.max_batch_size)
    config.instance_group.add(count=instances, kind=mc.ModelInstanceGroup.KIND_CPU)
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return config


def preprocess_config(network: str, size: int, settings: RepositorySettings) -> mc.ModelConfig:
    config = _python_config("preprocess", settings, settings.step_instances, {"network": network, "input_size": str(size)})
    config.input.append(_tensor("image", mc.TYPE_UINT8, [-1]))
    config.output.append(_output("network_input", mc.TYPE_FP32, [3, size, size]))
    return config


def _add_zero_warmup(config: mc.ModelConfig, size: int) -> None:
    """Triton runs one batch of zeros through the network at load, so the first user request is not slow."""
    warmup = config.model_warmup.add(name="zeros", batch_size=1)
    warmup.inputs["network_input"].data_type = mc.TYPE_FP32
    warmup.inputs["network_input"].dims.extend([3, size, size])
    warmup.inputs["network_input"].zero_data = True


def read_config(path: Path) -> mc.ModelConfig:
    """A ``config.pbtxt`` parsed back into Triton's ModelConfig (fails on anything Triton would reject)."""
    return text_format.Parse(Path(path).read_text(), mc.ModelConfig())


def network_config(network: str, size: int, settings: RepositorySettings) -> mc.ModelConfig:
    """CPU target: a python step running ONNX Runtime (the embedded server has only that backend)."""
    config = _python_config(network, settings, settings.network_instances, {"intra_op_threads": str(settings.intra_op_threads)})
    config.input.append(_tensor("network_input", mc.TYPE_FP32, [3, size, size]))
    config.output.append(_output("network_output", mc.TYPE_FP32, [1, size, size]))
    if settings.dynamic_batching:
        config.dynamic_batching.SetInParent()
    _add_zero_warmup(config, size)
    return config


def gpu_network_configs(network: str, size: int, settings: RepositorySettings) -> tuple[mc.ModelConfig, mc.ModelConfig]:
    """GPU target: the TensorRT plan (built on the target GPU by export.build_trt) as ``config.pbtxt``,
    and ONNX Runtime with its TensorRT accelerator in FP16 as the alternative ``configs/onnxruntime.pbtxt``
    (``tritonserver --model-config-name=onnxruntime``) for hosts where no plan was built."""
    configs = []
    for platform in ("tensorrt_plan", "onnxruntime_onnx"):
        config = mc.ModelConfig(name=network, platform=platform, max_batch_size=settings.max_batch_size)
        config.input.append(_tensor("network_input", mc.TYPE_FP32, [3, size, size]))
        config.output.append(_output("network_output", mc.TYPE_FP32, [1, size, size]))
        config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_GPU)
        config.dynamic_batching.max_queue_delay_microseconds = 2000
        _add_zero_warmup(config, size)
        if platform == "onnxruntime_onnx":
            accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
            accelerator.parameters["precision_mode"] = "FP16"
            accelerator.parameters["max_workspace_size_bytes"] = str(2 << 30)
        configs.append(config)
    return configs[0], configs[1]


def postprocess_config(network: str, size: int, settings: RepositorySettings) -> mc.ModelConfig:
    config = _python_config("postprocess", settings, settings.step_instances, {"network": network, "input_size": str(size)})
    config.input.extend([_tensor("network_output", mc.TYPE_FP32, [1, size, size]), _tensor("image", mc.TYPE_UINT8, [-1])])
    config.input.extend(_tensor(name, mc.TYPE_STRING, [1], optional=True) for name in OPTION_INPUTS)
    config.output.extend([_output("result", mc.TYPE_UINT8, [-1]), _output("alpha", mc.TYPE_UINT8, [-1, -1])])
    return config


def ensemble_config(network: str, settings: RepositorySettings) -> mc.ModelConfig:
    config = mc.ModelConfig(name=ENSEMBLE, platform="ensemble", max_batch_size=settings.max_batch_size)
    config.input.append(_tensor("image", mc.TYPE_UINT8, [-1]))
    config.input.extend(_tensor(name, mc.TYPE_STRING, [1], optional=True) for name in OPTION_INPUTS)
    config.output.extend([_output("result", mc.TYPE_UINT8, [-1]), _output("alpha", mc.TYPE_UINT8, [-1, -1])])
    steps = config.ensemble_scheduling.step
    preprocess = steps.add(model_name="preprocess", model_version=-1)
    preprocess.input_map["image"] = "image"
    preprocess.output_map["network_input"] = "network_input"
    net = steps.add(model_name=network, model_version=-1)
    net.input_map["network_input"] = "network_input"
    net.output_map["network_output"] = "network_output"
    postprocess = steps.add(model_name="postprocess", model_version=-1)
    postprocess.input_map.update({"network_output": "network_output", "image": "image"})
    postprocess.input_map.update({name: name for name in OPTION_INPUTS})
    postprocess.output_map.update({"result": "result", "alpha": "alpha"})
    return config


def _shim(step: str, class_name: str) -> str:
    return (
        f'"""Triton python step `{step}` of the matting ensemble (written by export.build_repository)."""\n\n'
        "# Imported first: under the embedded server this puts the project and its packages on sys.path.\n"
        "import triton_python_backend_utils  # noqa: F401\n\n"
        f"from cvunet.triton_steps import {class_name} as TritonPythonModel  # noqa: F401,E402\n"
    )


def onnx_input_size(path: Path) -> int:
    """Validate a network ONNX file for serving and return its square input size.

    Refuses files that do not load, have the wrong signature, or fail to run a batch of 2.
    """
    import onnxruntime as ort

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the file is unusable
        raise ValueError(f"{path} is not a valid ONNX model: {exc}") from None
    shapes = [[dim.dim_value or dim.dim_param for dim in tensor.type.tensor_type.shape.dim] for tensor in model.graph.input]
    if len(shapes) != 1 or len(shapes[0]) != 4 or shapes[0][1] != 3 or shapes[0][2] != shapes[0][3] or not isinstance(shapes[0][2], int):
        raise ValueError(f"{path}: expected one input N×3×S×S with a fixed square size S, got {shapes}")
    size = shapes[0][2]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    try:
        output = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 3, size, size), np.float32)})[0]
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise ValueError(f"{path} does not run on a batch of 2 (dim 0 must be dynamic): {exc}") from None
    if output.shape != (2, 1, size, size):
        raise ValueError(f"{path}: output shape for a batch of 2 is {output.shape}, expected (2, 1, {size}, {size})")
    return size


def standardise_io_names(path: Path) -> None:
    """Name the network's tensors ``network_input``/``network_output``, as every config refers to them:
    a TensorRT plan's bindings keep the ONNX names, and Triton matches config names against them."""
    model = onnx.load(str(path))
    renames = {model.graph.input[0].name: "network_input", model.graph.output[0].name: "network_output"}
    for node in model.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    model.graph.input[0].name, model.graph.output[0].name = "network_input", "network_output"
    atomic_write_bytes(path, model.SerializeToString())


def serving_onnx(network: str, onnx_path: Path | None, checkpoint: Path | None, workdir: Path) -> Path:
    """Produce in ``workdir`` the ONNX file served for ``network``: dynamic batch, standard tensor names."""
    target = workdir / "model.onnx"
    if network == "u2netp":
        from export.u2netp import make_batch_dynamic

        make_batch_dynamic(onnx_path or fetch_u2netp(U2NETP_PATH), target)
    elif checkpoint is not None:
        from cvunet.model import load_checkpoint
        from export.export_onnx import export_onnx

        export_onnx(load_checkpoint(checkpoint), target)
    elif onnx_path is not None:
        shutil.copyfile(onnx_path, target)
    else:
        raise ValueError(
            "CV-UNet has no pretrained weights: pass --checkpoint (trained CV-UNet) or --onnx (its export); "
            "an untrained network is never served"
        )
    standardise_io_names(target)
    return target


def build_repository(
    out: Path = MODEL_REPOSITORY,
    network: str = "u2netp",
    onnx_path: Path | None = None,
    checkpoint: Path | None = None,
    settings: RepositorySettings = RepositorySettings(),
    with_weights: bool = True,
    target: str = "cpu",
) -> Path:
    """Write ``out`` as the repository serving ``network`` on ``target`` (cpu | gpu); return ``out``.

    With ``with_weights=False`` only configs and shims are written (the committed default repository).
    The gpu target keeps ``model.onnx`` beside where the TensorRT plan goes: ``export.build_trt`` turns
    it into ``model.plan`` on the target GPU at deploy time.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    network_spec(network)  # unknown names fail here, before anything is written
    out = Path(out)
    with tempfile.TemporaryDirectory() as workdir:
        size = NETWORKS[network].input_size
        weights = None
        if with_weights:
            weights = serving_onnx(network, onnx_path, checkpoint, Path(workdir))
            size = onnx_input_size(weights)
        if target == "gpu":
            network_main, network_alternative = gpu_network_configs(network, size, settings)
        else:
            network_main, network_alternative = network_config(network, size, settings), None
        configs = {
            "preprocess": preprocess_config(network, size, settings),
            network: network_main,
            "postprocess": postprocess_config(network, size, settings),
            ENSEMBLE: ensemble_config(network, settings),
        }
        for stale in set(NETWORKS) - {network}:
            shutil.rmtree(out / stale, ignore_errors=True)
        for name, config in configs.items():
            atomic_write_bytes(out / name / "config.pbtxt", text_format.MessageToString(config).encode())
        if network_alternative is not None:
            atomic_write_bytes(out / network / "configs" / "onnxruntime.pbtxt", text_format.MessageToString(network_alternative).encode())
        shims = {**STEP_CLASSES, network: NETWORK_STEP_CLASS} if target == "cpu" else dict(STEP_CLASSES)
        for step, class_name in shims.items():
            atomic_write_bytes(out / step / "1" / "model.py", _shim(step, class_name).encode())
        (out / ENSEMBLE / "1").mkdir(parents=True, exist_ok=True)
        if weights is not None:
            atomic_write_bytes(out / network / "1" / "model.onnx", weights.read_bytes())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Triton model repository for the matting ensemble.")
    parser.add_argument("--network", choices=sorted(NETWORKS), default="u2netp")
    parser.add_argument("--target", choices=TARGETS, default="cpu",
                        help="cpu: embedded Triton, python backend + ONNX Runtime; gpu: TensorRT plan (or ORT + TensorRT)")
    parser.add_argument("--onnx", type=Path, help="network ONNX file (u2netp: instead of the fetched weights)")
    parser.add_argument("--checkpoint", type=Path, help="trained CV-UNet checkpoint to export and serve")
    parser.add_argument("--out", type=Path, help=f"default {MODEL_REPOSITORY} (cpu), {GPU_REPOSITORY} (gpu)")
    parser.add_argument("--configs-only", action="store_true", help="write configs and step shims, no weights")
    parser.add_argument("--max-batch-size", type=int, default=RepositorySettings.max_batch_size)
    parser.add_argument("--dynamic-batching", action="store_true", help="let Triton batch network requests")
    parser.add_argument("--network-instances", type=int, default=RepositorySettings.network_instances)
    parser.add_argument("--step-instances", type=int, default=RepositorySettings.step_instances)
    parser.add_argument("--intra-op-threads", type=int, default=RepositorySettings.intra_op_threads, help="0 = cores ÷ network instances")
    args = parser.parse_args(argv)
    settings = RepositorySettings(
        max_batch_size=args.max_batch_size,
        dynamic_batching=args.dynamic_batching,
        network_instances=args.network_instances,
        step_instances=args.step_instances,
        intra_op_threads=args.intra_op_threads,
    )
    try:
        out = build_repository(args.out or (GPU_REPOSITORY if args.target == "gpu" else MODEL_REPOSITORY), args.network,
                               args.onnx, args.checkpoint, settings, with_weights=not args.configs_only, target=args.target)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"repository": str(out), "network": args.network, "target": args.target}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
