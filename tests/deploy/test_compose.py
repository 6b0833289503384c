"""docker-compose.yml checked structurally (no Docker engine runs here): the services, their start
order, health checks, the GPU reservations and loopback-only published ports."""

from __future__ import annotations

import re

import pytest
import yaml

from matting.paths import PROJECT_ROOT


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
    assert "models:/models" in triton["volumes"] and "--model-repository=/models" in triton["command"]


def test_ports_are_published_on_loopback_only(compose):
    published = [port for service in compose["services"].values() for port in service.get("ports", [])]
    assert published and all(port.startswith("127.0.0.1:") for port in published), published


def test_triton_image_matches_server_2_51_and_keeps_numpy_1():
    dockerfile = (PROJECT_ROOT / "deploy" / "triton.Dockerfile").read_text()
    assert "FROM nvcr.io/nvidia/tritonserver:24.10-py3" in dockerfile
    pins = (PROJECT_ROOT / "deploy" / "requirements-triton.txt").read_text()
    assert re.search(r"^numpy==1\.", pins, re.MULTILINE)
