"""Triton's administrative protocols are locked with the key launch.triton writes at start (the session's real
Triton 2.51): without it, load and unload are refused over HTTP and gRPC, cross-site requests included, and
the models stay ready; inference, health, metadata and model configs need no key."""

from __future__ import annotations

import base64
import json
import stat

import httpx
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from client import MattingClient
from matting import contract
from serving.admin_key import control_client, headers, read_key
from tests import support

MODELS = (contract.ENSEMBLE, "u2net", "u2netp", contract.PREPROCESS, contract.POSTPROCESS)


def assert_all_ready(triton) -> None:
    with triton_grpc.InferenceServerClient(triton.grpc_url) as health:
        assert all(health.is_model_ready(name) for name in MODELS)


def test_the_key_file_is_private_and_random(triton):
    mode = triton.admin_key_file.stat().st_mode
    assert stat.S_IMODE(mode) == 0o600, oct(mode)
    assert len(read_key(triton.admin_key_file)) >= 40


@pytest.mark.parametrize("action", ["unload", "load"])
def test_a_cross_site_request_is_refused(triton, action):
    """What a web page can send without a preflight: a text/plain POST from another origin."""
    response = httpx.post(f"{triton.http_url}/v2/repository/models/{contract.ENSEMBLE}/{action}", content=b"",
                          headers={"Origin": "http://evil.example", "Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 403 and "restricted" in response.text
    assert_all_ready(triton)


def test_a_load_carrying_its_own_code_is_refused(triton, tmp_path):
    marker = tmp_path / "the-code-ran"
    code = f"open({str(marker)!r}, 'w').close()\nclass TritonPythonModel:\n    def execute(self, requests):\n        return []\n"
    config = {"name": "intruder", "backend": "python", "input": [], "output": []}
    body = {"parameters": {"config": json.dumps(config), "file:1/model.py": base64.b64encode(code.encode()).decode()}}
    response = httpx.post(f"{triton.http_url}/v2/repository/models/intruder/load", json=body, timeout=30,
                          headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert not marker.exists()
    with triton_grpc.InferenceServerClient(triton.grpc_url) as health:
        assert not health.is_model_ready("intruder")


@pytest.mark.parametrize("key", [None, "a-wrong-key"])
def test_unload_and_load_without_the_key_are_refused_over_http(triton, key):
    sent = headers(key, "http") if key else None
    with triton_http.InferenceServerClient(triton.http_url.removeprefix("http://")) as control:
        for call in (control.unload_model, control.load_model):
            with pytest.raises(InferenceServerException, match="This API is restricted") as refused:
                call(contract.ENSEMBLE, headers=sent)
            assert refused.value.status() == "403"
    assert_all_ready(triton)


@pytest.mark.parametrize("key", [None, "a-wrong-key"])
def test_unload_and_load_without_the_key_are_refused_over_grpc(triton, key):
    """Triton 2.51 answers UNAVAILABLE (not PERMISSION_DENIED) for a restricted gRPC protocol."""
    sent = headers(key) if key else None
    with triton_grpc.InferenceServerClient(triton.grpc_url) as control:
        for call in (control.unload_model, control.load_model):
            with pytest.raises(InferenceServerException, match="This protocol is restricted") as refused:
                call(contract.ENSEMBLE, headers=sent)
            assert refused.value.status() == "StatusCode.UNAVAILABLE"
    assert_all_ready(triton)


def test_the_key_opens_the_repository_api(triton):
    with control_client(triton.grpc_url, triton.admin_key_file) as control:
        names = {model["name"] for model in control.get_model_repository_index(as_json=True)["models"]}
    assert set(MODELS) <= names
    response = httpx.post(f"{triton.http_url}/v2/repository/index", headers=headers(read_key(triton.admin_key_file), "http"),
                          timeout=10)
    assert response.status_code == 200 and set(MODELS) <= {model["name"] for model in response.json()}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_inference_health_metadata_and_configs_need_no_key(triton, protocol):
    url = triton.grpc_url if protocol == "grpc" else triton.http_url.removeprefix("http://")
    with MattingClient(url, protocol=protocol) as client:
        assert client.is_ready()
        assert client.server_metadata()["version"] == "2.51.0"
        assert client.served_model() == ("u2net", "1")
        assert client.remove_background(support.encode(support.photo((160, 120)), "JPEG")).alpha.shape == (120, 160)
