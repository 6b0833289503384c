"""Shared fixtures: a real embedded Triton serving the default repository, for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvunet.embedded_triton import EmbeddedTriton, Ports, free_port
from cvunet.paths import MODEL_REPOSITORY, PROJECT_ROOT

ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def free_ports() -> Ports:
    return Ports(free_port(), free_port(), free_port())


def start_triton(repository: Path, name: str) -> EmbeddedTriton:
    return EmbeddedTriton(repository, ports=free_ports(), log_path=ARTIFACTS / f"triton-{name}.log").start()


@pytest.fixture(scope="session")
def triton() -> EmbeddedTriton:
    if not (MODEL_REPOSITORY / "u2netp" / "1" / "model.onnx").exists():
        pytest.fail("the default repository has no weights: run the tests with `make test`")
    server = start_triton(MODEL_REPOSITORY, "default")
    yield server
    server.stop()
