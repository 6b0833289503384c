"""Prepare the pinned U²-Netp ONNX file for Triton: dynamic batch, one output.

The published file fixes batch 1 and exposes seven side outputs; only the fused first output is the
matte. Its resizes take their sizes from runtime shapes, so declaring dim 0 symbolic is enough for
ONNX Runtime (and TensorRT) to batch it.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from cvunet.files import atomic_write_bytes


def make_batch_dynamic(source: Path, destination: Path) -> Path:
    model = onnx.load(str(source))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.output[1:]
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    # Shapes inferred for batch 1 would contradict the symbolic batch; ORT re-infers them.
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    atomic_write_bytes(Path(destination), model.SerializeToString())
    return Path(destination)
