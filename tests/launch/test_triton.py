"""The launcher: clear failures (port taken, weights missing, model broken) and a clean stop."""

from __future__ import annotations

import shutil
import signal
import socket
import sys

import pytest

from launch.options import Ports
from launch.processes import free_port
from launch.triton import EmbeddedTriton, TritonStartError
from matting.paths import MODEL_REPOSITORY
from serving.repository import build_repository
from tests.support import ARTIFACTS, start_printing


def test_port_in_use_is_reported_before_starting():
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        port = occupied.getsockname()[1]
        server = EmbeddedTriton(MODEL_REPOSITORY, ports=Ports(free_port(), port, free_port()))
        with pytest.raises(TritonStartError, match=f"port {port} \\(GRPC\\) on 127.0.0.1 is already in use"):
            server.start()
        assert server.process is None


def test_missing_weights_are_reported(tmp_path):
    build_repository(tmp_path, "u2netp", with_weights=False)
    with pytest.raises(TritonStartError, match="network weights missing: .*model.onnx; run `make export`"):
        EmbeddedTriton(tmp_path, ports=Ports.free()).start()


def test_not_a_repository_is_reported(tmp_path):
    with pytest.raises(TritonStartError, match="not a matting model repository"):
        EmbeddedTriton(tmp_path, ports=Ports.free()).start()


def test_model_that_fails_to_load_is_named(tmp_path):
    build_repository(tmp_path, "u2netp", with_weights=False, alongside=())
    (tmp_path / "u2netp" / "1" / "model.onnx").write_bytes(b"\x00 these are not weights")
    server = EmbeddedTriton(tmp_path, ports=Ports.free(), log_path=ARTIFACTS / "triton-broken-model.log")
    with pytest.raises(TritonStartError, match="exited with code 1 while starting(.|\n)*failed to load 'u2netp'"):
        server.start()
    assert server.process.poll() is not None


def test_command_line_serves_until_sigterm(tmp_path):
    ports = Ports.free()
    repository = tmp_path / "repository"
    shutil.copytree(MODEL_REPOSITORY, repository)
    command = [sys.executable, "-m", "launch.triton", "--repository", str(repository),
               "--http-port", str(ports.http), "--grpc-port", str(ports.grpc), "--metrics-port", str(ports.metrics)]
    process, printed = start_printing(command, until="ensemble   matting")
    try:
        assert f"HTTP/REST  http://127.0.0.1:{ports.http}" in printed, printed
        assert EmbeddedTriton(repository, ports=ports).is_ready()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "stopping Triton" in output
    assert not EmbeddedTriton(repository, ports=ports).is_ready()
