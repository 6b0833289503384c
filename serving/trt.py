"""ONNX → TensorRT FP16 plan, built on the target GPU at deploy time.

    python -m serving.trt --repository model_repository_gpu [--max-batch 8] [--workspace-gb 4]

Plans are specific to the GPU model and the TensorRT version, so they are never shipped: the
docker-compose ``engine`` service runs this inside NVIDIA's Triton image before Triton starts. For
every network in the repository (U²-Net, U²-Netp or CV-UNet) it reads ``<net>/1/model.onnx``
and writes ``<net>/1/model.plan`` with one optimisation profile over batch 1..max for every input at
its fixed size. The same with trtexec:

    trtexec --onnx=<net>/1/model.onnx --saveEngine=<net>/1/model.plan --fp16 \\
            --minShapes=network_input:1x3xSxS --optShapes=network_input:4x3xSxS --maxShapes=network_input:8x3xSxS
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from matting.files import atomic_write_bytes
from matting.networks import NETWORKS
from serving.repository.build import GPU_REPOSITORY
from serving.repository.onnx_files import onnx_input_shapes


class TensorRTUnavailable(RuntimeError):
    """TensorRT or a CUDA GPU is missing here; plans are built on the target GPU host."""


def _tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise TensorRTUnavailable(
            "TensorRT is not installed here. Build plans on the GPU host: `make compose-up` runs this step in "
            "NVIDIA's Triton image (service `engine`), or run trtexec as shown in `python -m serving.trt --help`"
        ) from None
    return tensorrt


def build_plan(onnx_path: Path, plan_path: Path, max_batch: int = 8, workspace_gb: float = 4.0) -> Path:
    """Parse ``onnx_path``, build an FP16 engine for batch 1..``max_batch`` and write it atomically."""
    trt = _tensorrt()
    shapes = onnx_input_shapes(onnx_path)
    if any(not all(isinstance(dim, int) for dim in shape[1:]) for shape in shapes):
        raise ValueError(f"{onnx_path}: every input needs a fixed size apart from the batch, got {shapes}")
    logger = trt.Logger(trt.Logger.WARNING)
    try:
        builder = trt.Builder(logger)
    except (RuntimeError, TypeError) as exc:
        raise TensorRTUnavailable(f"TensorRT found no usable CUDA GPU: {exc}") from None
    if not builder.platform_has_fast_fp16:
        raise TensorRTUnavailable("this GPU has no fast FP16; build with trtexec without --fp16 instead")
    # TensorRT 10 (Triton 24.10) networks are always explicit-batch; older releases need the flag.
    explicit_batch = 0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(explicit_batch)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(index)) for index in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        sample = tuple(tensor.shape)[1:]
        profile.set_shape(tensor.name, (1, *sample), (max(1, max_batch // 2), *sample), (max_batch, *sample))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path} (see the log above)")
    atomic_write_bytes(plan_path, bytes(serialized))
    return plan_path


def build_repository_plans(repository: Path, max_batch: int = 8, workspace_gb: float = 4.0) -> list[Path]:
    onnx_files = [repository / name / "1" / "model.onnx" for name in NETWORKS if (repository / name / "1" / "model.onnx").exists()]
    if not onnx_files:
        raise FileNotFoundError(f"no network ONNX file in {repository}: run `python -m serving.repository --target gpu` first")
    return [build_plan(path, path.with_name("model.plan"), max_batch, workspace_gb) for path in onnx_files]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, default=GPU_REPOSITORY)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--workspace-gb", type=float, default=4.0)
    args = parser.parse_args(argv)
    try:
        plans = build_repository_plans(args.repository, args.max_batch, args.workspace_gb)
    except (TensorRTUnavailable, FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(f"built {plan}" for plan in plans))
    return 0


if __name__ == "__main__":
    sys.exit(main())
