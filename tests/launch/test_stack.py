"""`make run`'s stack: Triton, the REST API and the dashboard come up together and print their URLs; a
service killed with SIGKILL is restarted while the others keep serving, leaving nothing behind; SIGTERM
stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from PIL import Image

from launch.options import Ports
from launch.processes import free_port, group_members
from launch.triton import SHARED_MEMORY, EmbeddedTriton
from matting.paths import MODEL_REPOSITORY
from serving.admin_key import control_client
from tests import support
from tests.support import start_printing

#: From SIGKILL to serving again: the issue asks for less than a minute (Triton alone loads in ~20 s here).
RECOVERY_LIMIT_S = 60


def child_running(stack: subprocess.Popen, marker: str) -> psutil.Process:
    """The stack's child whose command line holds ``marker``."""
    [child] = [child for child in psutil.Process(stack.pid).children() if marker in " ".join(child.cmdline())]
    return child


def matting(rest_url: str) -> httpx.Response:
    return httpx.post(f"{rest_url}/api/matting", timeout=120,
                      files={"image": ("photo.jpg", support.PHOTO.read_bytes(), "image/jpeg")})


def wait_healthy(url: str, limit_s: float) -> float:
    """Seconds until ``url`` answered 200; fails after ``limit_s``."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer 200 within {limit_s} s")


def test_stack_serves_recovers_from_killed_services_and_stops_on_sigterm(tmp_path):
    ports, rest_port, ui_port = Ports.free(), free_port(), free_port()
    rest_url, ui_health = f"http://127.0.0.1:{rest_port}", f"http://127.0.0.1:{ui_port}/_stcore/health"
    command = [sys.executable, "-m", "launch.stack", "--rest-port", str(rest_port), "--ui-port", str(ui_port),
               "--http-port", str(ports.http),
               "--grpc-port", str(ports.grpc), "--metrics-port", str(ports.metrics)]
    triton = EmbeddedTriton(MODEL_REPOSITORY, ports=ports)
    stale = SHARED_MEMORY / f"{triton.shared_memory_prefix}left-by-a-crash"
    stale.write_bytes(b"")
    process, printed = start_printing(command, until="Ctrl-C stops everything")
    groups: set[int] = set()
    try:
        assert not stale.exists(), "a crashed predecessor's shared memory is removed at start"
        assert f"REST API        http://127.0.0.1:{rest_port}/api/matting" in printed, printed
        assert f"Triton HTTP     http://127.0.0.1:{ports.http}" in printed, printed
        assert f"Dashboard       http://127.0.0.1:{ui_port}" in printed, printed
        assert httpx.get(ui_health, timeout=10).text == "ok"
        response = matting(rest_url)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        (tmp_path / "result.png").write_bytes(response.content)
        with Image.open(tmp_path / "result.png") as result:
            assert (result.mode, result.size) == ("RGBA", (850, 601))

        # kill -9 of tritonserver: REST answers 503 meanwhile, the stack restarts Triton, nothing of the old one stays.
        server = child_running(process, "tritonserver")
        stubs = group_members(server.pid)
        assert len(stubs) > 2, "the python stubs run in tritonserver's process group"
        segments = set(SHARED_MEMORY.glob(f"{triton.shared_memory_prefix}*"))
        assert segments, "the server's shared memory is named after its HTTP port"
        killed = time.monotonic()
        os.kill(server.pid, signal.SIGKILL)
        down = matting(rest_url)
        assert down.status_code == 503 and "unavailable" in down.json()["error"], down.text
        assert httpx.get(f"{rest_url}/healthz", timeout=10).status_code == 503
        assert httpx.get(ui_health, timeout=10).text == "ok", "the dashboard keeps serving"
        wait_healthy(f"{rest_url}/healthz", RECOVERY_LIMIT_S)
        recovered_s = time.monotonic() - killed
        print(f"REST API healthy again {recovered_s:.1f} s after SIGKILL of tritonserver")
        assert matting(rest_url).status_code == 200
        assert not any(stub.is_running() and stub.status() != psutil.STATUS_ZOMBIE for stub in stubs), "orphaned stubs"
        assert not segments & set(SHARED_MEMORY.glob(f"{triton.shared_memory_prefix}*")), "stale shared memory"
        with control_client(triton.grpc_url, triton.admin_key_file) as control:
            assert control.get_model_repository_index(as_json=True)["models"], "the dashboard's key file follows the restart"

        # kill -9 of the REST API: restarted, with Triton serving all along.
        os.kill(child_running(process, "-m api").pid, signal.SIGKILL)
        wait_healthy(f"{rest_url}/healthz", 30)
        assert matting(rest_url).status_code == 200
        groups = {child.pid for child in psutil.Process(process.pid).children()}
    finally:
        stale.unlink(missing_ok=True)
        process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
    assert time.monotonic() - stopping < 30, "SIGTERM stops everything within seconds"
    assert "tritonserver stopped unexpectedly (exit code -9); restarting it in 1 s" in output, output
    assert "the REST API stopped unexpectedly (exit code -9); restarting it in 1 s" in output, output
    assert output.count("restarted and serving again") == 2, output
    assert len(groups) == 3 and not any(group_members(group) for group in groups), "every child's group is stopped"
    assert not EmbeddedTriton(MODEL_REPOSITORY, ports=ports).is_ready()
    for url in (f"{rest_url}/healthz", ui_health):
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2)
    assert recovered_s < RECOVERY_LIMIT_S
