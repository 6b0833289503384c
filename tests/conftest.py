"""Shared fixtures: a real embedded Triton serving the default repository, for the whole session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from launch.triton import EmbeddedTriton
from matting.contract import DEFAULT_NETWORK
from matting.paths import MODEL_REPOSITORY, PROJECT_ROOT
from serving.admin_key import KEY_FILE_ENV
from tests.support import start_triton


@pytest.fixture(scope="session")
def triton() -> EmbeddedTriton:
    if not (MODEL_REPOSITORY / DEFAULT_NETWORK / "1" / "model.onnx").exists():
        pytest.fail("the default repository has no weights: run the tests with `make test`")
    server = start_triton(MODEL_REPOSITORY, "default")
    yield server
    server.stop()


@pytest.fixture
def ui_env(triton, tmp_path, monkeypatch):
    """Environment for the dashboard: the session Triton, and private roots, outputs, history and video jobs."""
    data, outputs = tmp_path / "data", tmp_path / "outputs"
    data.mkdir()
    outputs.mkdir()
    monkeypatch.setenv("TRITON_GRPC_URL", triton.grpc_url)
    monkeypatch.setenv("TRITON_METRICS_URL", triton.metrics_url)
    monkeypatch.setenv(KEY_FILE_ENV, str(triton.admin_key_file))
    monkeypatch.setenv("CVUNET_UI_ROOTS", os.pathsep.join([str(data), str(outputs)]))
    monkeypatch.setenv("CVUNET_OUTPUTS_DIR", str(outputs))
    monkeypatch.setenv("CVUNET_HISTORY_DB", str(tmp_path / "history.sqlite3"))
    monkeypatch.setenv("CVUNET_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("CVUNET_UI_VIDEO_JOBS_DIR", str(tmp_path / "video-jobs"))
    return SimpleNamespace(data=data, outputs=outputs, history_db=tmp_path / "history.sqlite3",
                           results=tmp_path / "results", video_jobs=tmp_path / "video-jobs", triton=triton)


@pytest.fixture
def app_test(ui_env):
    """A fresh AppTest of the dashboard, already run once (English selected)."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(PROJECT_ROOT / "ui" / "app.py"), default_timeout=180)
    app.session_state["language"] = "en"
    app.run()
    return app


@pytest.fixture
def repository_copy(tmp_path) -> Path:
    return Path(shutil.copytree(MODEL_REPOSITORY, tmp_path / "model_repository", ignore=shutil.ignore_patterns("__pycache__")))
