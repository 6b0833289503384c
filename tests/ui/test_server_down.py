"""While Triton does not answer (the stack is restarting it), the dashboard says so plainly, in both
languages, and shows no traceback."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from launch.processes import free_ports
from matting.paths import PROJECT_ROOT


def test_the_dashboard_says_the_service_is_restarting(tmp_path, monkeypatch):
    grpc_port, metrics_port = free_ports(2)
    monkeypatch.setenv("TRITON_GRPC_URL", f"127.0.0.1:{grpc_port}")
    monkeypatch.setenv("TRITON_METRICS_URL", f"http://127.0.0.1:{metrics_port}/metrics")
    monkeypatch.setenv("CVUNET_UI_ROOTS", str(tmp_path))
    monkeypatch.setenv("CVUNET_OUTPUTS_DIR", str(tmp_path))
    monkeypatch.setenv("CVUNET_HISTORY_DB", str(tmp_path / "history.sqlite3"))
    monkeypatch.setenv("CVUNET_UI_VIDEO_JOBS_DIR", str(tmp_path / "video-jobs"))
    app = AppTest.from_file(str(PROJECT_ROOT / "ui" / "app.py"), default_timeout=120)
    app.session_state["language"] = "en"
    app.run()
    assert not app.exception
    assert app.warning[0].value.startswith("The matting service is restarting.")
    app.session_state["language"] = "zh"
    app.run()
    assert not app.exception
    assert app.warning[0].value.startswith("抠图服务正在重启。")
