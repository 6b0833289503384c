"""`make run`'s stack: Triton, the REST API and the dashboard come up together, print their URLs and stop together."""

from __future__ import annotations

import signal
import sys

import httpx
import pytest
from PIL import Image

from launch.options import Ports
from launch.processes import free_port
from launch.triton import EmbeddedTriton
from matting.paths import MODEL_REPOSITORY
from tests import support
from tests.support import start_printing


def test_stack_serves_dashboard_rest_and_triton_until_sigterm(tmp_path):
    ports, rest_port, ui_port = Ports.free(), free_port(), free_port()
    command = [sys.executable, "-m", "launch.stack", "--rest-port", str(rest_port), "--ui-port", str(ui_port),
               "--http-port", str(ports.http),
               "--grpc-port", str(ports.grpc), "--metrics-port", str(ports.metrics)]
    process, printed = start_printing(command, until="Ctrl-C stops everything")
    try:
        assert f"REST API        http://127.0.0.1:{rest_port}/api/matting" in printed, printed
        assert f"Triton HTTP     http://127.0.0.1:{ports.http}" in printed, printed
        assert f"Dashboard       http://127.0.0.1:{ui_port}" in printed, printed
        assert httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=10).text == "ok"
        response = httpx.post(f"http://127.0.0.1:{rest_port}/api/matting", timeout=120,
                              files={"image": ("photo.jpg", support.PHOTO.read_bytes(), "image/jpeg")})
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        (tmp_path / "result.png").write_bytes(response.content)
        with Image.open(tmp_path / "result.png") as result:
            assert (result.mode, result.size) == ("RGBA", (850, 601))
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
    assert not EmbeddedTriton(MODEL_REPOSITORY, ports=ports).is_ready()
    for url in (f"http://127.0.0.1:{rest_port}/healthz", f"http://127.0.0.1:{ui_port}/_stcore/health"):
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2)
