"""The Advanced tab: server and model status, weights, environment, metrics, and network import.

Imports never touch the real model_repository/: they work on copies, and the successful one runs
against its own Triton.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import urllib.request
from pathlib import Path

import pytest
import torch
import tritonclient.grpc as triton_grpc

from client import MattingClient
from cvunet.embedded_triton import free_port
from cvunet.model import build_cvunet, save_checkpoint
from cvunet.paths import MODEL_REPOSITORY
from cvunet.weights import U2NETP_SHA256
from tests import image_cases
from tests.conftest import start_triton
from tests.test_cvunet_served import TINY
from ui.settings import UiSettings
from ui.tabs.advanced import ModelImportError, import_network, parse_metrics, restore_default, served_network

ADVANCED_TAB = 3

METRICS_TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="matting",version="1"} 3
nv_inference_request_success{model="matting",version="2"} 2
nv_inference_request_failure{model="matting",reason="BACKEND",version="1"} 1
nv_inference_count{model="u2netp",version="1"} 7
nv_inference_queue_duration_us{model="u2netp",version="1"} 1.5e3
nv_inference_compute_infer_duration_us{model="u2netp",version="1"} 42000
nv_gpu_utilization{gpu_uuid="GPU-0"} 0.5
nv_inference_count 9
not a metric line
"""


def repository_snapshot(repository: Path) -> dict[str, bytes]:
    return {str(path.relative_to(repository)): path.read_bytes() for path in sorted(repository.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts}


@pytest.fixture
def repository_copy(tmp_path) -> Path:
    return Path(shutil.copytree(MODEL_REPOSITORY, tmp_path / "model_repository", ignore=shutil.ignore_patterns("__pycache__")))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> bytes:
    torch.manual_seed(0)
    return save_checkpoint(build_cvunet(TINY), tmp_path_factory.mktemp("checkpoint") / "tiny.pt", note="test").read_bytes()


def settings_for(repository: Path, grpc_url: str) -> UiSettings:
    return dataclasses.replace(UiSettings.from_env(), repository=repository, triton_grpc_url=grpc_url)


def test_parse_metrics_sums_versions_and_keeps_only_tracked_model_metrics():
    metrics = parse_metrics(METRICS_TEXT)
    assert set(metrics) == {"matting", "u2netp"}
    assert metrics["matting"]["nv_inference_request_success"] == 5
    assert metrics["matting"]["nv_inference_count"] == 0
    assert metrics["u2netp"] == {"nv_inference_request_success": 0, "nv_inference_count": 7,
                                 "nv_inference_queue_duration_us": 1500, "nv_inference_compute_infer_duration_us": 42000}
    assert parse_metrics("") == {}


def test_parse_metrics_on_the_served_metrics(triton):
    with MattingClient(triton.grpc_url) as client:
        client.remove_background(image_cases.encode(image_cases.photo((120, 90)), "JPEG"), with_alpha=False)
    with urllib.request.urlopen(triton.metrics_url, timeout=10) as response:
        metrics = parse_metrics(response.read().decode())
    assert {"matting", "preprocess", "u2netp", "postprocess"} <= set(metrics)
    assert metrics["matting"]["nv_inference_request_success"] >= 1
    assert metrics["u2netp"]["nv_inference_compute_infer_duration_us"] > 0


def test_advanced_tab_shows_server_models_weights_and_environment(app_test):
    tab = app_test.tabs[ADVANCED_TAB]
    assert not app_test.exception
    assert "Triton 2.51.0 is live and ready." in [success.value for success in tab.success]
    models = tab.dataframe[0].value.set_index("Model")
    assert {"matting", "preprocess", "postprocess", "u2netp"} <= set(models.index)
    assert models.loc[["matting", "preprocess", "postprocess", "u2netp"], "Ready"].all()
    assert models.loc["u2netp", "Backend / platform"] == "python"
    assert models.loc["matting", "Backend / platform"] == "ensemble"
    assert models.loc["u2netp", "Instances"] == "2"
    assert any(U2NETP_SHA256 in success.value and "matches the pinned" in success.value for success in tab.success)
    assert "The served file is the pinned U²-Netp with a dynamic batch dimension." in [success.value for success in tab.success]
    environment = dict(tab.dataframe[1].value.values.tolist())
    assert "CPUExecutionProvider" in environment["ONNX Runtime providers"]
    assert environment["Triton server"] == "2.51.0"
    assert environment["NumPy"].startswith("1.")
    metrics = tab.dataframe[2].value.set_index("Model")
    assert "matting" in metrics.index
    assert len(tab.get("vega_lite_chart")) == 1


def test_advanced_tab_in_chinese(app_test):
    app_test.session_state["language"] = "zh"
    app_test.run()
    assert not app_test.exception
    assert "Triton 2.51.0 运行正常，已就绪。" in [success.value for success in app_test.tabs[ADVANCED_TAB].success]


def test_verify_default_weights_button(app_test):
    app_test.tabs[ADVANCED_TAB].button(key="advanced_fetch_default").click().run()
    assert any(success.value.startswith("Verified:") and U2NETP_SHA256 in success.value
               for success in app_test.tabs[ADVANCED_TAB].success)


def test_refresh_builds_a_metrics_time_series(app_test):
    app_test.tabs[ADVANCED_TAB].button(key="advanced_refresh_metrics").click().run()
    assert len(app_test.session_state["advanced_metrics_samples"]) >= 2


@pytest.mark.parametrize(("filename", "data", "reason"), [
    ("model.onnx", b"not an onnx model", "model.onnx is not a valid ONNX model"),
    ("model.pt", b"not a checkpoint", "model.pt is not a CV-UNet checkpoint"),
    ("notes.txt", b"hello", "neither a CV-UNet checkpoint (.pt, .pth) nor an ONNX export (.onnx)"),
])
def test_import_refuses_invalid_files_and_leaves_the_repository_alone(triton, repository_copy, filename, data, reason):
    before = repository_snapshot(repository_copy)
    control = triton_grpc.InferenceServerClient(triton.grpc_url)
    with pytest.raises(ModelImportError, match=re.escape(reason)) as refused:
        import_network(settings_for(repository_copy, triton.grpc_url), control, filename, data)
    assert "/tmp" not in str(refused.value), "the message must name the upload, not a scratch path"
    assert repository_snapshot(repository_copy) == before
    assert control.is_model_ready("matting") and control.is_model_ready("u2netp")


def test_import_puts_the_repository_back_when_triton_cannot_load(repository_copy, tiny_checkpoint):
    before = repository_snapshot(repository_copy)
    unreachable = f"127.0.0.1:{free_port()}"
    with pytest.raises(ModelImportError, match="Triton could not load cvunet"):
        import_network(settings_for(repository_copy, unreachable), triton_grpc.InferenceServerClient(unreachable),
                       "tiny.pt", tiny_checkpoint)
    assert repository_snapshot(repository_copy) == before


def test_import_refusal_in_the_tab(app_test, repository_copy, monkeypatch):
    monkeypatch.setenv("CVUNET_REPOSITORY", str(repository_copy))
    before = repository_snapshot(repository_copy)
    app_test.tabs[ADVANCED_TAB].file_uploader(key="advanced_import_file").upload("broken.onnx", b"garbage")
    app_test.run()
    app_test.tabs[ADVANCED_TAB].button(key="advanced_import").click().run()
    assert not app_test.exception
    errors = [error.value for error in app_test.tabs[ADVANCED_TAB].error]
    assert any(error.startswith("Not imported: broken.onnx is not a valid ONNX model") for error in errors), errors
    assert repository_snapshot(repository_copy) == before


def test_import_serves_a_cvunet_checkpoint_then_restores_the_default(repository_copy, tiny_checkpoint):
    server = start_triton(repository_copy, "import")
    try:
        settings = settings_for(repository_copy, server.grpc_url)
        control = triton_grpc.InferenceServerClient(server.grpc_url)
        image = image_cases.encode(image_cases.photo((200, 150)), "JPEG")

        served = import_network(settings, control, "tiny.pt", tiny_checkpoint)
        assert served == str(repository_copy / "cvunet" / "1" / "model.onnx")
        assert served_network(repository_copy) == "cvunet" and not (repository_copy / "u2netp").exists()
        assert control.is_model_ready("cvunet") and control.is_model_ready("matting")
        assert not control.is_model_ready("u2netp")
        assert not control.is_model_ready("matting_refined") and not control.is_model_ready("refiner"), \
            "the refiner follows U²-Netp only"
        with MattingClient(server.grpc_url) as client:
            assert client.remove_background(image).alpha.shape == (150, 200)

        restore_default(settings, control)
        assert served_network(repository_copy) == "u2netp"
        assert control.is_model_ready("u2netp") and not control.is_model_ready("cvunet")
        assert control.is_model_ready("matting_refined")
        with MattingClient(server.grpc_url) as client:
            assert client.remove_background(image).alpha.shape == (150, 200)
            assert client.remove_background(image, refine="refiner").alpha.shape == (150, 200)
    finally:
        server.stop()
