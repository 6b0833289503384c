"""Write the Triton model repository for a chosen network.

    python -m export.build_repository                          # U²-Netp (default, pretrained) + the project's refiner
    python -m export.build_repository --no-refiner             # U²-Netp only
    python -m export.build_repository --network cvunet --checkpoint run/best.pt
    python -m export.build_repository --network cvunet --onnx cvunet.onnx --out /tmp/repo

The repository is the ensemble ``matting`` = ``preprocess`` → ``<network>`` → ``postprocess``. Serving
U²-Netp, it also holds the project-trained refiner (cvunet.paths.REFINER_MODEL, or ``--refiner``)
and the ensemble ``matting_refined`` = ``preprocess`` → ``u2netp`` → ``refiner`` → ``postprocess``.
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
from cvunet.paths import MODEL_REPOSITORY, PROJECT_ROOT, REFINER_MODEL
from cvunet.weights import U2NETP_PATH, fetch_u2netp

ENSEMBLE = "matting"
REFINED_ENSEMBLE = "matting_refined"
REFINER = "refiner"
#: The refiner corrects this network's mattes (it was trained on its outputs).
REFINER_COARSE_NETWORK = "u2netp"
GPU_REPOSITORY = PROJECT_ROOT / "model_repository_gpu"
STEP_CLASSES = {"preprocess": "PreprocessStep", "postprocess": "PostprocessStep"}
NETWORK_STEP_CLASS = "OnnxNetworkStep"
OPTION_INPUTS = ("kind", "format", "bg_color", "foreground", "refine")
TARGETS = ("cpu", "gpu")


@dataclass(frozen=True)
class ModelIO:
    """A network's tensors as (name, dims without the batch dimension); the ONNX file uses the same names."""

    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    outputs: tuple[tuple[str, tuple[int, ...]], ...]


def network_io(size: int) -> ModelIO:
    return ModelIO(inputs=(("network_input", (3, size, size)),), outputs=(("network_output", (1, size, size)),))


def refiner_io(size: int, coarse_size: int) -> ModelIO:
    return ModelIO(
        inputs=(("refiner_input", (3, size, size)), ("coarse_output", (1, coarse_size, coarse_size))),
        outputs=(("refined_alpha", (1, size, size)),),
    )


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


def _step_parameters(network: str, size: int, refiner_size: int | None) -> dict[str, str]:
    parameters = {"network": network, "input_size": str(size)}
    if refiner_size:
        parameters["refiner_input_size"] = str(refiner_size)
    return parameters


def preprocess_config(network: str, size: int, settings: RepositorySettings, refiner_size: int | None = None) -> mc.ModelConfig:
    """With a refiner it also prepares the refiner's RGB input, when the ensemble asks for it."""
    config = _python_config("preprocess", settings, settings.step_instances, _step_parameters(network, size, refiner_size))
    config.input.append(_tensor("image", mc.TYPE_UINT8, [-1]))
    config.output.append(_output("network_input", mc.TYPE_FP32, [3, size, size]))
    if refiner_size:
        config.output.append(_output("refiner_input", mc.TYPE_FP32, [3, refiner_size, refiner_size]))
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
    """GPU target: the TensorRT plan (built on the target GPU by export.build_trt) as ``config.pbtxt``,
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


def postprocess_config(network: str, size: int, settings: RepositorySettings, refiner_size: int | None = None) -> mc.ModelConfig:
    """Takes the network's output, or with a refiner either that or the refined matte (one per ensemble)."""
    config = _python_config("postprocess", settings, settings.step_instances, _step_parameters(network, size, refiner_size))
    config.input.extend([_tensor("network_output", mc.TYPE_FP32, [1, size, size], optional=bool(refiner_size)),
                         _tensor("image", mc.TYPE_UINT8, [-1])])
    if refiner_size:
        config.input.append(_tensor("refined_alpha", mc.TYPE_FP32, [1, refiner_size, refiner_size], optional=True))
    config.input.extend(_tensor(name, mc.TYPE_STRING, [1], optional=True) for name in OPTION_INPUTS)
    config.output.extend([_output("result", mc.TYPE_UINT8, [-1]), _output("alpha", mc.TYPE_UINT8, [-1, -1])])
    return config


def ensemble_config(network: str, settings: RepositorySettings, refined: bool = False) -> mc.ModelConfig:
    """``matting`` (preprocess → network → postprocess), or with ``refined`` ``matting_refined`` (the
    refiner between the network and postprocess)."""
    config = mc.ModelConfig(name=REFINED_ENSEMBLE if refined else ENSEMBLE, platform="ensemble", max_batch_size=settings.max_batch_size)
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
    if refined:
        preprocess.output_map["refiner_input"] = "refiner_input"
        refiner = steps.add(model_name=REFINER, model_version=-1)
        refiner.input_map.update({"refiner_input": "refiner_input", "coarse_output": "network_output"})
        refiner.output_map["refined_alpha"] = "refined_alpha"
    postprocess = steps.add(model_name="postprocess", model_version=-1)
    postprocess.input_map["image"] = "image"
    postprocess.input_map.update({"refined_alpha": "refined_alpha"} if refined else {"network_output": "network_output"})
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


def onnx_input_shapes(path: Path) -> list[list[int | str]]:
    """The input shapes of a loadable, valid ONNX file (symbolic dims as their names)."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the file is unusable
        raise ValueError(f"{path} is not a valid ONNX model: {exc}") from None
    return [[dim.dim_value or dim.dim_param for dim in tensor.type.tensor_type.shape.dim] for tensor in model.graph.input]


def _square_size(shape: list[int | str], channels: int) -> int | None:
    if len(shape) == 4 and shape[1] == channels and shape[2] == shape[3] and isinstance(shape[2], int):
        return shape[2]
    return None


def _check_runs_batched(path: Path, inputs: list[tuple[int, ...]], output: tuple[int, ...]) -> None:
    """Run a batch of 2 zeros (dim 0 must be dynamic) and check the first output's shape."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {tensor.name: np.zeros((2, *shape), np.float32) for tensor, shape in zip(session.get_inputs(), inputs)}
    try:
        result = session.run(None, feeds)[0]
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise ValueError(f"{path} does not run on a batch of 2 (dim 0 must be dynamic): {exc}") from None
    if result.shape != (2, *output):
        raise ValueError(f"{path}: output shape for a batch of 2 is {result.shape}, expected {(2, *output)}")


def onnx_input_size(path: Path) -> int:
    """Validate a network ONNX file for serving and return its square input size.

    Refuses files that do not load, have the wrong signature, or fail to run a batch of 2.
    """
    shapes = onnx_input_shapes(path)
    size = _square_size(shapes[0], 3) if len(shapes) == 1 else None
    if size is None:
        raise ValueError(f"{path}: expected one input N×3×S×S with a fixed square size S, got {shapes}")
    _check_runs_batched(path, [(3, size, size)], (1, size, size))
    return size


def refiner_sizes(path: Path) -> tuple[int, int]:
    """Validate a served refiner ONNX file (RGB N×3×S×S, coarse output N×1×C×C → N×1×S×S); return (S, C)."""
    shapes = onnx_input_shapes(path)
    size, coarse = (_square_size(shapes[0], 3), _square_size(shapes[1], 1)) if len(shapes) == 2 else (None, None)
    if size is None or coarse is None:
        raise ValueError(f"{path}: a refiner takes N×3×S×S RGB and an N×1×C×C coarse output, got {shapes}")
    _check_runs_batched(path, [(3, size, size), (1, coarse, coarse)], (1, size, size))
    return size, coarse


def standardise_io_names(path: Path, io: ModelIO) -> None:
    """Name the file's tensors as the configs do (``network_input``/``network_output`` for a network):
    a TensorRT plan's bindings keep the ONNX names, and Triton matches config names against them."""
    model = onnx.load(str(path))
    renames = {tensor.name: name for tensor, (name, _) in zip(model.graph.input, io.inputs)}
    renames |= {tensor.name: name for tensor, (name, _) in zip(model.graph.output, io.outputs)}
    for node in model.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for tensor in [*model.graph.input, *model.graph.output]:
        tensor.name = renames.get(tensor.name, tensor.name)
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
    standardise_io_names(target, network_io(onnx_input_size(target)))
    return target


def serving_refiner_onnx(refiner: Path, coarse_size: int, workdir: Path) -> tuple[Path, int]:
    """Produce in ``workdir`` the refiner's served ONNX file from a checkpoint (exported as
    cvunet.model.CoarseMaskRefiner, verified against PyTorch) or from such an export; return it and
    its RGB input size."""
    target = workdir / "refiner.onnx"
    if refiner.suffix == ".onnx":
        shutil.copyfile(refiner, target)
    else:
        from cvunet.model import CoarseMaskRefiner, load_checkpoint
        from export.export_onnx import export_onnx

        export_onnx(CoarseMaskRefiner(load_checkpoint(refiner), coarse_size), target)
    size, coarse = refiner_sizes(target)
    if coarse != coarse_size:
        raise ValueError(f"{refiner} expects a {coarse}² coarse output, the network gives {coarse_size}²")
    standardise_io_names(target, refiner_io(size, coarse))
    return target, size


def configured_refiner_size(refiner: Path) -> int:
    """The refiner's input size without exporting it (for a configs-only repository)."""
    if refiner.suffix == ".onnx":
        return refiner_sizes(refiner)[0]
    import torch

    return int(torch.load(refiner, map_location="cpu", weights_only=True)["config"]["input_size"])


def build_repository(
    out: Path = MODEL_REPOSITORY,
    network: str = "u2netp",
    onnx_path: Path | None = None,
    checkpoint: Path | None = None,
    settings: RepositorySettings = RepositorySettings(),
    with_weights: bool = True,
    target: str = "cpu",
    refiner: Path | None = REFINER_MODEL,
) -> Path:
    """Write ``out`` as the repository serving ``network`` on ``target`` (cpu | gpu); return ``out``.

    With ``with_weights=False`` only configs and shims are written (the committed default repository).
    The gpu target keeps ``model.onnx`` beside where the TensorRT plan goes: ``export.build_trt`` turns
    it into ``model.plan`` on the target GPU at deploy time. ``refiner`` (a checkpoint or its served
    export) adds the ``matting_refined`` ensemble; the default, the committed refiner, applies to
    U²-Netp only, since it learnt U²-Netp's mistakes.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    network_spec(network)  # unknown names fail here, before anything is written
    if refiner is not None and network != REFINER_COARSE_NETWORK:
        if refiner != REFINER_MODEL:
            raise ValueError(f"the refiner corrects {REFINER_COARSE_NETWORK}'s mattes; it cannot follow {network}")
        refiner = None
    out = Path(out)
    with tempfile.TemporaryDirectory() as workdir:
        size = NETWORKS[network].input_size
        weights = refiner_weights = refiner_size = None
        if with_weights:
            weights = serving_onnx(network, onnx_path, checkpoint, Path(workdir))  # validated there
            size = _square_size(onnx_input_shapes(weights)[0], 3)
            if refiner is not None:
                refiner_weights, refiner_size = serving_refiner_onnx(Path(refiner), size, Path(workdir))
        elif refiner is not None:
            refiner_size = configured_refiner_size(Path(refiner))
        networks = {network: network_io(size)}
        if refiner_size:
            networks[REFINER] = refiner_io(refiner_size, size)
        configs = {"preprocess": preprocess_config(network, size, settings, refiner_size)}
        alternatives = {}
        for name, io in networks.items():
            if target == "gpu":
                configs[name], alternatives[name] = gpu_network_configs(name, io, settings)
            else:
                configs[name] = network_config(name, io, settings)
        configs["postprocess"] = postprocess_config(network, size, settings, refiner_size)
        configs[ENSEMBLE] = ensemble_config(network, settings)
        if refiner_size:
            configs[REFINED_ENSEMBLE] = ensemble_config(network, settings, refined=True)
        for stale in ({*NETWORKS, REFINER, REFINED_ENSEMBLE} - set(configs)):
            shutil.rmtree(out / stale, ignore_errors=True)
        for name, config in configs.items():
            atomic_write_bytes(out / name / "config.pbtxt", text_format.MessageToString(config).encode())
        for name, alternative in alternatives.items():
            atomic_write_bytes(out / name / "configs" / "onnxruntime.pbtxt", text_format.MessageToString(alternative).encode())
        shims = dict(STEP_CLASSES)
        if target == "cpu":
            shims.update({name: NETWORK_STEP_CLASS for name in networks})
        for step, class_name in shims.items():
            atomic_write_bytes(out / step / "1" / "model.py", _shim(step, class_name).encode())
        for ensemble in {ENSEMBLE, REFINED_ENSEMBLE} & set(configs):
            (out / ensemble / "1").mkdir(parents=True, exist_ok=True)
        for name, file in ((network, weights), (REFINER, refiner_weights)):
            if file is not None:
                atomic_write_bytes(out / name / "1" / "model.onnx", file.read_bytes())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Triton model repository for the matting ensemble.")
    parser.add_argument("--network", choices=sorted(NETWORKS), default="u2netp")
    parser.add_argument("--target", choices=TARGETS, default="cpu",
                        help="cpu: embedded Triton, python backend + ONNX Runtime; gpu: TensorRT plan (or ORT + TensorRT)")
    parser.add_argument("--onnx", type=Path, help="network ONNX file (u2netp: instead of the fetched weights)")
    parser.add_argument("--checkpoint", type=Path, help="trained CV-UNet checkpoint to export and serve")
    refiners = parser.add_mutually_exclusive_group()
    refiners.add_argument("--refiner", type=Path, default=REFINER_MODEL,
                          help="refiner checkpoint (cvunet.train) or its export for the matting_refined ensemble "
                               "(u2netp only; default: the committed project-trained refiner)")
    refiners.add_argument("--no-refiner", action="store_true", help="serve U²-Netp without the refiner ensemble")
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
                               args.onnx, args.checkpoint, settings, with_weights=not args.configs_only, target=args.target,
                               refiner=None if args.no_refiner else args.refiner)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"repository": str(out), "network": args.network, "target": args.target}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
