"""Installing, importing and restoring networks on a running Triton, with rollback.

Imports never touch the real model_repository/: they work on copies, and the successful one runs
against its own Triton.
"""

from __future__ import annotations

import re

import pytest
import torch
import tritonclient.grpc as triton_grpc

from client import MattingClient
from cvunet.model import build_cvunet, save_checkpoint
from cvunet.u2net import U2Net, save_pretrained
from launch.processes import free_port
from matting.options import OutputOptions
from serving.admin import ModelImportError, import_network, restore_default
from serving.admin_key import control_client
from serving.repository import served_network
from tests import support
from tests.support import repository_snapshot, start_triton, tiny_cvunet_config


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> bytes:
    torch.manual_seed(0)
    return save_checkpoint(build_cvunet(tiny_cvunet_config()), tmp_path_factory.mktemp("checkpoint") / "tiny.pt", note="test").read_bytes()


@pytest.mark.parametrize(("filename", "data", "reason"), [
    ("model.onnx", b"not an onnx model", "model.onnx is not a valid ONNX model"),
    ("model.pt", b"not a checkpoint", "model.pt is not a CV-UNet checkpoint"),
    ("notes.txt", b"hello", "neither a CV-UNet checkpoint (.pt, .pth) nor an ONNX export (.onnx)"),
])
def test_import_refuses_invalid_files_and_leaves_the_repository_alone(triton, repository_copy, filename, data, reason):
    before = repository_snapshot(repository_copy)
    control = triton_grpc.InferenceServerClient(triton.grpc_url)
    with pytest.raises(ModelImportError, match=re.escape(reason)) as refused:
        import_network(repository_copy, control, filename, data)
    assert "/tmp" not in str(refused.value), "the message must name the upload, not a scratch path"
    assert repository_snapshot(repository_copy) == before
    assert control.is_model_ready("matting") and control.is_model_ready("u2netp")


def test_import_sends_a_fine_tuned_u2net_to_make_export(repository_copy, tmp_path):
    checkpoint = save_pretrained(U2Net("u2netp"), tmp_path / "mine.pt", source_sha256="ab" * 32, fine_tuned="1 steps on photos")
    before = repository_snapshot(repository_copy)
    unreachable = triton_grpc.InferenceServerClient(f"127.0.0.1:{free_port()}")
    with pytest.raises(ModelImportError, match=re.escape("mine.pt holds a fine-tuned U²-Net: serve it with `make export")):
        import_network(repository_copy, unreachable, "mine.pt", checkpoint.read_bytes())
    assert repository_snapshot(repository_copy) == before


def test_import_puts_the_repository_back_when_triton_cannot_load(repository_copy, tiny_checkpoint):
    before = repository_snapshot(repository_copy)
    unreachable = f"127.0.0.1:{free_port()}"
    with pytest.raises(ModelImportError, match="Triton could not load cvunet"):
        import_network(repository_copy, triton_grpc.InferenceServerClient(unreachable),
                       "tiny.pt", tiny_checkpoint)
    assert repository_snapshot(repository_copy) == before


def test_import_serves_a_cvunet_checkpoint_then_restores_the_default(repository_copy, tiny_checkpoint):
    server = start_triton(repository_copy, "import")
    try:
        control = control_client(server.grpc_url, server.admin_key_file)
        image = support.encode(support.photo((200, 150)), "JPEG")

        served = import_network(repository_copy, control, "tiny.pt", tiny_checkpoint)
        assert served == str(repository_copy / "cvunet" / "1" / "model.onnx")
        assert served_network(repository_copy) == "cvunet" and not (repository_copy / "u2netp").exists()
        assert control.is_model_ready("cvunet") and control.is_model_ready("matting")
        assert not control.is_model_ready("u2netp") and not control.is_model_ready("u2net")
        assert not control.is_model_ready("matting_u2net"), "what the repository no longer holds is unloaded"
        with MattingClient(server.grpc_url) as client:
            assert client.remove_background(image).alpha.shape == (150, 200)
            assert client.served_model() == ("cvunet", "1"), "what the history records comes from the server"

        restore_default(repository_copy, control)
        assert served_network(repository_copy) == "u2net"
        assert control.is_model_ready("u2net") and control.is_model_ready("u2netp") and not control.is_model_ready("cvunet")
        assert control.is_model_ready("matting_u2net") and control.is_model_ready("matting_u2netp")
        with MattingClient(server.grpc_url) as client:
            assert client.remove_background(image).alpha.shape == (150, 200)
            assert client.remove_background(image, OutputOptions(model="u2netp")).alpha.shape == (150, 200)
            assert client.served_model() == ("u2net", "1")
    finally:
        server.stop()
