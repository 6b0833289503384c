"""Shared fixtures: a real embedded Triton serving the default repository, for the whole session."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from cvunet.embedded_triton import EmbeddedTriton, Ports
from cvunet.paths import MODEL_REPOSITORY, PROJECT_ROOT

ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def start_triton(repository: Path, name: str) -> EmbeddedTriton:
    return EmbeddedTriton(repository, ports=Ports.free(), log_path=ARTIFACTS / f"triton-{name}.log").start()


@pytest.fixture(scope="session")
def triton() -> EmbeddedTriton:
    if not (MODEL_REPOSITORY / "u2netp" / "1" / "model.onnx").exists():
        pytest.fail("the default repository has no weights: run the tests with `make test`")
    server = start_triton(MODEL_REPOSITORY, "default")
    yield server
    server.stop()


@pytest.fixture
def ui_env(triton, tmp_path, monkeypatch):
    """Environment for the dashboard: the session Triton, and private roots, outputs and history."""
    data, outputs = tmp_path / "data", tmp_path / "outputs"
    data.mkdir()
    outputs.mkdir()
    monkeypatch.setenv("TRITON_GRPC_URL", triton.grpc_url)
    monkeypatch.setenv("TRITON_METRICS_URL", triton.metrics_url)
    monkeypatch.setenv("CVUNET_UI_ROOTS", os.pathsep.join([str(data), str(outputs)]))
    monkeypatch.setenv("CVUNET_OUTPUTS_DIR", str(outputs))
    monkeypatch.setenv("CVUNET_HISTORY_DB", str(tmp_path / "history.sqlite3"))
    return SimpleNamespace(data=data, outputs=outputs, history_db=tmp_path / "history.sqlite3", triton=triton)


@pytest.fixture
def app_test(ui_env):
    """A fresh AppTest of the dashboard, already run once (English selected)."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(PROJECT_ROOT / "ui" / "app.py"), default_timeout=180)
    app.session_state["language"] = "en"
    app.run()
    return app


def start_printing(command: list[str], until: str) -> tuple[subprocess.Popen, str]:
    """Start a long-running command and return it with what it printed up to the line holding ``until``
    (or up to its exit: the caller's assertions then show what went wrong)."""
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    while not any(until in line for line in lines):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
    return process, "".join(lines)
