"""docker-compose.yml checked structurally (no Docker engine runs here): the services, their start
order, health checks, the GPU reservations and loopback-only published ports; and Triton's command line run
by bash, as the container runs it, with the administration key from the secret."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from matting.paths import PROJECT_ROOT
from serving.admin_key import KEY_FILE_ENV, restriction_options

SECRET = "/run/secrets/triton_admin_key"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_services_start_in_order(compose):
    services = compose["services"]
    assert set(services) == {"engine", "triton", "api", "ui"}
    assert services["triton"]["depends_on"] == {"engine": {"condition": "service_completed_successfully"}}
    for client in ("api", "ui"):
        assert services[client]["depends_on"] == {"triton": {"condition": "service_healthy"}}


def test_engine_builds_plans_on_the_gpu_before_triton(compose):
    command = " ".join(compose["services"]["engine"]["command"])
    assert command.index("serving.weights") < command.index("--target gpu") < command.index("serving.trt")


@pytest.mark.parametrize("service", ["engine", "triton"])
def test_gpu_services_reserve_a_gpu(compose, service):
    [device] = compose["services"][service]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_triton_health_shared_memory_and_repository(compose):
    triton = compose["services"]["triton"]
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    size = re.fullmatch(r"(\d+)([gm])b", triton["shm_size"])
    assert size and int(size.group(1)) * (1024 if size.group(2) == "g" else 1) >= 1024
    assert "models:/models" in triton["volumes"] and "--model-repository=/models" in " ".join(triton["command"])


def run_in_container(command: list[str], tmp_path: Path, key: str | None) -> subprocess.CompletedProcess:
    """Run a compose command whose program is `bash -c`: compose's `$$` escapes undone, the secret at a
    temporary path (absent when ``key`` is None), and a stand-in `tritonserver` that prints its arguments."""
    program, flag, script = command
    secret = tmp_path / "secret"
    if key is not None:
        secret.write_text(key + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "tritonserver").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (bin_dir / "tritonserver").chmod(0o755)
    script = script.replace("$$", "$").replace(SECRET, str(secret))
    return subprocess.run([program, flag, script], cwd=tmp_path, env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)


def test_triton_locks_its_administration_with_the_key_from_the_secret(compose, tmp_path):
    triton = compose["services"]["triton"]
    assert triton["secrets"] == ["triton_admin_key"]
    started = run_in_container(triton["command"], tmp_path, "k3y-from-the-secret")
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines() == ["--model-repository=/models", "--model-control-mode=explicit", "--load-model=*",
                                           "--metrics-config=summary_latencies=true", *restriction_options("k3y-from-the-secret")], "the embedded server's options"


@pytest.mark.parametrize("key", [None, ""])
def test_triton_refuses_to_start_without_a_key(compose, tmp_path, key):
    refused = run_in_container(compose["services"]["triton"]["command"], tmp_path, key)
    assert refused.returncode == 1 and "triton_admin_key is missing or empty" in refused.stderr
    assert refused.stdout == "", "tritonserver was not started"


def test_the_key_is_a_secret_outside_git_and_reaches_the_dashboard_only(compose):
    path = compose["secrets"]["triton_admin_key"]["file"]
    ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=PROJECT_ROOT)
    assert ignored.returncode == 0, f"{path} must be ignored by git"
    ui = compose["services"]["ui"]
    assert ui["secrets"] == ["triton_admin_key"] and ui["environment"][KEY_FILE_ENV] == SECRET
    assert "secrets" not in compose["services"]["api"], "the REST API only runs inference"


def test_ports_are_published_on_loopback_only(compose):
    published = [port for service in compose["services"].values() for port in service.get("ports", [])]
    assert published and all(port.startswith("127.0.0.1:") for port in published), published


def test_triton_image_matches_server_2_51_and_keeps_numpy_1():
    dockerfile = (PROJECT_ROOT / "deploy" / "triton.Dockerfile").read_text()
    assert "FROM nvcr.io/nvidia/tritonserver:24.10-py3" in dockerfile
    pins = (PROJECT_ROOT / "deploy" / "requirements-triton.txt").read_text()
    assert re.search(r"^numpy==1\.", pins, re.MULTILINE)
