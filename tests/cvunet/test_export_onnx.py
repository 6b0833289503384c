"""PyTorch -> ONNX export: graph interface, numerical agreement, atomic writes and the CLI."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from cvunet.model import CVUNetConfig, build_cvunet, save_checkpoint
from cvunet.export_onnx import ExportVerificationError, export_onnx
from matting.paths import PROJECT_ROOT
from tests.support import tiny_cvunet_config

TINY = tiny_cvunet_config()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = build_cvunet(TINY).eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    report = export_onnx(model, path, batch_verify=3)
    return model, path, report


def test_report_describes_the_export(exported):
    model, path, report = exported
    assert report["path"] == str(path)
    assert report["opset"] >= 17
    assert report["max_abs_diff"] <= 1e-4
    assert (report["input_size"], report["in_channels"]) == (64, 3)
    assert report["parameters"] == sum(p.numel() for p in model.parameters())


def test_graph_has_named_io_with_symbolic_batch(exported):
    _, path, _ = exported
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    assert (graph_input.name, graph_output.name) == ("input", "alpha")
    input_dims = graph_input.type.tensor_type.shape.dim
    output_dims = graph_output.type.tensor_type.shape.dim
    assert input_dims[0].dim_param == "batch" and output_dims[0].dim_param == "batch"
    assert [d.dim_value for d in input_dims[1:]] == [3, 64, 64]
    assert [d.dim_value for d in output_dims[1:]] == [1, 64, 64]


def test_config_is_stored_as_metadata(exported):
    _, path, _ = exported
    metadata = {prop.key: prop.value for prop in onnx.load(path).metadata_props}
    assert CVUNetConfig.from_dict(json.loads(metadata["cvunet_config"])) == TINY


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_runtime_matches_pytorch(exported, batch):
    model, path, _ = exported
    inputs = torch.randn(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        expected = model(inputs).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(["alpha"], {"input": inputs.numpy()})
    assert actual.shape == (batch, 1, 64, 64)
    assert np.max(np.abs(actual - expected)) <= 1e-4


def test_failed_verification_leaves_no_file(tmp_path):
    with pytest.raises(ExportVerificationError, match="differs from PyTorch"):
        export_onnx(build_cvunet(TINY), tmp_path / "rejected.onnx", atol=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_opset_below_18_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_onnx(build_cvunet(TINY), tmp_path / "old.onnx", opset=16)


def test_cli_exports_a_checkpoint(tmp_path):
    config = dataclasses.replace(TINY, in_channels=4)
    checkpoint = save_checkpoint(build_cvunet(config), tmp_path / "refiner.pt")
    out = tmp_path / "models" / "refiner.onnx"
    result = subprocess.run(
        [sys.executable, "-m", "cvunet.export_onnx", "--checkpoint", str(checkpoint), "--out", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "untrained" not in result.stderr
    report = json.loads(result.stdout)
    assert report["path"] == str(out) and report["in_channels"] == 4
    assert report["max_abs_diff"] <= 1e-4
    assert onnx.load(out).graph.input[0].type.tensor_type.shape.dim[1].dim_value == 4
