"""The ONNX files a repository serves: checked (loads, right signature, runs a batch of 2), named as
the configs name their tensors, and produced by our exporter from the U²-Net family's PyTorch ports
or a CV-UNet checkpoint (or copied from an export of one).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx

from matting.contract import EXPORTED_BY, FINE_TUNED, SOURCE_SHA256
from matting.files import atomic_write_bytes
from serving.repository.configs import ModelIO, network_io
from serving.weights import PINNED, pretrained_checkpoint, sha256_of


def onnx_input_shapes(path: Path) -> list[list[int | str]]:
    """The input shapes of a loadable, valid ONNX file (symbolic dims as their names)."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the file is unusable
        raise ValueError(f"{path} is not a valid ONNX model: {exc}") from None
    return [[dim.dim_value or dim.dim_param for dim in tensor.type.tensor_type.shape.dim] for tensor in model.graph.input]


def square_size(shape: list[int | str], channels: int) -> int | None:
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
    size = square_size(shapes[0], 3) if len(shapes) == 1 else None
    if size is None:
        raise ValueError(f"{path}: expected one input N×3×S×S with a fixed square size S, got {shapes}")
    _check_runs_batched(path, [(3, size, size)], (1, size, size))
    return size


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


def exported_from(path: Path) -> dict[str, str]:
    """What an ONNX file records about its origin (matting.contract.EXPORTED_BY, SOURCE_SHA256, FINE_TUNED)."""
    model = onnx.load(str(path), load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props if prop.key in (EXPORTED_BY, SOURCE_SHA256, FINE_TUNED)}


def pretrained_export(network: str) -> Path:
    """``.state/weights/<network>.export.onnx``: our verified export of the pinned network's port, made
    once (U²-Net's takes a minute) and reused while it records the pinned file and is newer than the port."""
    from cvunet.export_onnx import EXPORTER, export_onnx
    from cvunet.u2net import load_pretrained

    checkpoint = pretrained_checkpoint(network)
    cached = checkpoint.with_suffix(".export.onnx")
    if (cached.exists() and cached.stat().st_mtime >= checkpoint.stat().st_mtime
            and exported_from(cached) == {EXPORTED_BY: EXPORTER, SOURCE_SHA256: PINNED[network].sha256}):
        return cached
    export_onnx(load_pretrained(checkpoint), cached)
    return cached


def serving_onnx(network: str, onnx_path: Path | None, checkpoint: Path | None, workdir: Path) -> Path:
    """Produce in ``workdir`` the ONNX file served for ``network``: dynamic batch, standard tensor names.

    U²-Net and U²-Netp are served as our export of their PyTorch ports (cvunet.u2net), from the pinned
    weights, with ``onnx_path`` from another copy of the published file, or with ``checkpoint`` from a
    port fine-tuned by cvunet.train; CV-UNet from a checkpoint (exported here) or an export of one.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / "model.onnx"
    if checkpoint is not None:
        from cvunet.checkpoints import load_network, network_name
        from cvunet.export_onnx import export_onnx

        model = load_network(checkpoint)
        if network_name(model) != network:
            raise ValueError(f"{checkpoint} holds a {network_name(model)} network, not {network}")
        export_onnx(model, target)
    elif network in PINNED and onnx_path is not None:
        from cvunet.export_onnx import export_onnx
        from cvunet.u2net import U2Net, port_onnx_weights

        model = port_onnx_weights(U2Net(network), onnx_path)
        model.source_sha256 = sha256_of(onnx_path)
        export_onnx(model, target)
    elif network in PINNED:
        shutil.copyfile(pretrained_export(network), target)
    elif onnx_path is not None:
        shutil.copyfile(onnx_path, target)
    else:
        raise ValueError(
            "CV-UNet has no pretrained weights: pass --checkpoint (trained CV-UNet) or --onnx (its export); "
            "an untrained network is never served"
        )
    standardise_io_names(target, network_io(onnx_input_size(target)))
    return target
