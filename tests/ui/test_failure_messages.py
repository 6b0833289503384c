"""How the dashboard words each kind of failure (pure logic: the client's error kinds → a sentence)."""

from __future__ import annotations

import pytest

from client import RequestError, ServerError, ServerUnavailable
from ui.context import UiContext
from ui.settings import UiSettings


@pytest.mark.parametrize(("language", "error", "expected"), [
    ("en", RequestError("webp holds at most 16383 pixels a side"), "This file cannot be processed: webp holds at most 16383 pixels a side"),
    ("en", ServerError("internal server error"), "The server failed on this photo (a fault on our side, written to its log). Try again, or try another photo."),
    ("zh", ServerError("internal server error"), "服务器处理这张照片时出错（是我们这边的问题，已记入服务器日志）。请重试，或换一张照片。"),
    ("zh", ServerUnavailable("connection refused"), "推理服务器 127.0.0.1:1 暂无响应：正在重启，或尚未启动（`make run` 可启动）。请稍后再试。"),
])
def test_each_kind_of_failure_gets_its_own_sentence(monkeypatch, language, error, expected):
    monkeypatch.setenv("TRITON_GRPC_URL", "127.0.0.1:1")
    assert UiContext(UiSettings.from_env(), language).failure_message(error) == expected
