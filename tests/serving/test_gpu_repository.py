"""The GPU target's repository, checked here without a GPU: valid Triton configs, consistent ensemble
wiring, the ONNX Runtime alternative, and a clear refusal to build plans where TensorRT is missing."""

from __future__ import annotations

import subprocess
import sys

import onnx
import pytest

from matting.paths import PROJECT_ROOT
from serving.repository import build_repository, read_config
from tests.support import check_ensemble_wiring


@pytest.fixture(scope="module")
def gpu_repository(tmp_path_factory):
    return build_repository(tmp_path_factory.mktemp("gpu"), "u2netp", target="gpu")


def test_network_is_a_tensorrt_plan_on_the_gpu_with_dynamic_batching(gpu_repository):
    assert check_ensemble_wiring(gpu_repository) == ["preprocess", "u2netp", "postprocess"]
    network = read_config(gpu_repository / "u2netp" / "config.pbtxt")
    assert network.platform == "tensorrt_plan" and not network.backend
    assert [group.kind for group in network.instance_group] == [network.instance_group[0].KIND_GPU]
    assert network.HasField("dynamic_batching") and network.max_batch_size == 8
    assert not (gpu_repository / "u2netp" / "1" / "model.py").exists(), "no python shim for a TensorRT model"
    for step in ("preprocess", "postprocess"):
        config = read_config(gpu_repository / step / "config.pbtxt")
        assert config.backend == "python" and config.instance_group[0].kind == config.instance_group[0].KIND_CPU


def test_onnxruntime_alternative_uses_tensorrt_fp16(gpu_repository):
    alternative = read_config(gpu_repository / "u2netp" / "configs" / "onnxruntime.pbtxt")
    assert alternative.platform == "onnxruntime_onnx"
    [accelerator] = alternative.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    main = read_config(gpu_repository / "u2netp" / "config.pbtxt")
    assert list(alternative.input) == list(main.input) and list(alternative.output) == list(main.output)


@pytest.mark.parametrize("network", ["u2net", "u2netp"])
def test_onnx_tensor_names_match_the_configs(gpu_repository, network):
    """TensorRT keeps the ONNX tensor names as bindings, and Triton matches config names against them."""
    model = onnx.load(str(gpu_repository / network / "1" / "model.onnx"))
    config = read_config(gpu_repository / network / "config.pbtxt")
    assert [tensor.name for tensor in model.graph.input] == [tensor.name for tensor in config.input]
    assert [tensor.name for tensor in model.graph.output] == [tensor.name for tensor in config.output]


def test_plan_building_says_what_is_missing_without_tensorrt(gpu_repository):
    done = subprocess.run([sys.executable, "-m", "serving.trt", "--repository", str(gpu_repository)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 1
    assert "TensorRT is not installed here" in done.stderr and "trtexec" in done.stderr
    assert not list(gpu_repository.glob("*/1/model.plan"))
