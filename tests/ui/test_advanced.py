"""The Advanced tab: the status line, charts of rates between readings, server and model status, weights,
environment, a refused import and a restore that waits for confirmation (serving.admin's own tests cover
imports and restores against real servers; tests/serving/test_metrics_rates.py the rate maths)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import onnx
import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1.errors import AppTestError

from client import MattingClient
from matting import contract
from serving.admin_key import KEY_FILE_ENV
from serving.metrics_rates import SUCCESS
from serving.weights import PINNED
from tests import support
from tests.support import repository_snapshot
from ui.tabs.advanced import CONFIRM_KEY, MIN_SAMPLE_SPACING_S, SAMPLES_KEY

ADVANCED_TAB = 4
U2NET_SHA256 = PINNED["u2net"].sha256
DEFAULT_PIPELINE = "matting (default)"


def table_with(tab, column: str):
    """The tab's table that has ``column`` (tables have no keys to address them by)."""
    return next(frame.value for frame in tab.dataframe if column in frame.value.columns)


def chart_rows(chart) -> pd.DataFrame:
    """The rows a chart draws (Streamlit sends them as Arrow bytes)."""
    return convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)


def next_reading(app) -> None:
    """Rerun the page once the next reading will be kept (readings closer than the spacing are dropped)."""
    last = app.session_state[SAMPLES_KEY].samples[-1].taken_at
    time.sleep(max(0.0, last + MIN_SAMPLE_SPACING_S + 0.1 - time.time()))
    app.run()


def test_advanced_tab_shows_status_server_models_weights_and_environment(app_test):
    tab = app_test.tabs[ADVANCED_TAB]
    assert not app_test.exception
    successes = [success.value for success in tab.success]
    assert successes[0] == "Running normally: photos are processed as they arrive."
    assert "Triton 2.51.0 is live and ready." in successes
    models = table_with(tab, "Model").set_index("Model")
    assert {"matting", "matting_u2net", "matting_u2netp", "preprocess", "postprocess", "u2net", "u2netp"} <= set(models.index)
    assert models.loc[["matting", "matting_u2netp", "preprocess", "postprocess", "u2net", "u2netp"], "Ready"].all()
    assert set(models["State"]) == {"loaded"}
    assert models.loc["u2netp", "Backend / platform"] == "python"
    assert models.loc["matting", "Backend / platform"] == "ensemble"
    assert models.loc["u2netp", "Instances"] == "1"
    assert models.loc["u2netp", "Role"] == "Fast network"
    assert models.loc["matting_u2net", "Role"] == "Fine"
    assert any(U2NET_SHA256 in success.value and "matches the pinned" in success.value for success in tab.success)
    assert "The served file is our export of u2net, ported from the pinned file." in successes
    environment = dict(table_with(tab, "Item").values.tolist())
    assert "CPUExecutionProvider" in environment["ONNX Runtime providers"]
    assert environment["Triton server"] == "2.51.0"
    assert environment["NumPy"].startswith("1.")
    glossary = tab.expander[0]
    assert glossary.label == "What the names on this page mean"
    explained = glossary.markdown[0].value
    assert "**preprocess (preparing)**: decodes the photo and prepares the network input" in explained
    assert "**matting_u2net (Fine)**: the whole pipeline for Fine: preprocess → u2net → postprocess." in explained
    assert "it runs u2net (Fine network) now" in explained
    assert "Queue time: how long a photo waited" in explained


def test_charts_show_rates_between_readings_not_running_totals(app_test, ui_env):
    requests = 2
    with MattingClient(ui_env.triton.grpc_url) as client:
        for _ in range(requests):
            client.remove_background(support.encode(support.photo((120, 90)), "JPEG"), with_alpha=False)
    next_reading(app_test)
    assert not app_test.exception
    first, second = app_test.session_state[SAMPLES_KEY].samples
    assert second.models["matting"][SUCCESS] - first.models["matting"][SUCCESS] == requests
    rate = requests / (second.taken_at - first.taken_at)
    tab = app_test.tabs[ADVANCED_TAB]
    recent = table_with(tab, "Pipeline").set_index("Pipeline").loc[DEFAULT_PIPELINE]
    assert recent["Requests / s"] == pytest.approx(rate)
    assert recent["Failures / s"] == 0
    assert 0 < recent["Average time (ms)"] < 60_000
    charts = tab.get("vega_lite_chart")
    assert len(charts) == 4, "requests, time per photo, queue and time per step"
    assert "Time per photo: median (p50) and 95th percentile (p95)" in [markdown.value.strip("*") for markdown in tab.markdown], \
        "make run starts Triton with latency summaries"
    assert any(caption.value.startswith("No failed requests in the last 10 minutes") for caption in tab.caption)
    assert chart_rows(charts[0]).set_index("Model").loc[DEFAULT_PIPELINE, "per second"] == pytest.approx(rate)

    next_reading(app_test)
    third = app_test.session_state[SAMPLES_KEY].samples[-1]
    tab = app_test.tabs[ADVANCED_TAB]
    assert tab.success[0].value.startswith("Running normally")
    recent = table_with(tab, "Pipeline").set_index("Pipeline").loc[DEFAULT_PIPELINE]
    assert recent["Requests / s"] == pytest.approx(requests / (third.taken_at - first.taken_at)), "over the last minute"
    per_second = chart_rows(tab.get("vega_lite_chart")[0]).query("Model == @DEFAULT_PIPELINE")["per second"]
    assert per_second.tolist() == [pytest.approx(rate), 0], "a running total would have stayed up"


def test_queued_photos_make_the_status_busy(app_test, ui_env):
    """Eight photos at once on two u2net instances: six wait, then the interval shows how long they waited."""
    photo = support.encode(support.photo((120, 90)), "JPEG")

    def send() -> None:
        with MattingClient(ui_env.triton.grpc_url) as client:
            client.remove_background(photo, with_alpha=False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        sent = [pool.submit(send) for _ in range(8)]
        time.sleep(1)
        next_reading(app_test)
        status = app_test.tabs[ADVANCED_TAB].warning[0].value
        assert status.startswith("Busy: photos are queuing ("), status
        for request in sent:
            request.result()
    next_reading(app_test)
    status = app_test.tabs[ADVANCED_TAB].warning[0].value
    assert status.startswith("Busy: photos are queuing (0 waiting now; up to ") and " ms average wait" in status, status
    next_reading(app_test)
    assert app_test.tabs[ADVANCED_TAB].success[0].value.startswith("Running normally"), "idle again"


def test_the_first_reading_waits_for_a_second_one(app_test):
    assert len(app_test.session_state[SAMPLES_KEY].samples) == 1
    assert "The charts start after the next reading (one every 5 s)." in [info.value for info in app_test.tabs[ADVANCED_TAB].info]


def test_without_the_admin_key_the_tab_shows_no_models_but_says_why(app_test, monkeypatch, tmp_path):
    """The model table comes from Triton's repository index, which only the key opens (the test above has it)."""
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "no-such.key"))
    app_test.run()
    tab = app_test.tabs[ADVANCED_TAB]
    assert not app_test.exception
    assert "Triton 2.51.0 is live and ready." in [success.value for success in tab.success]
    warnings = [warning.value for warning in tab.warning]
    assert any(warning.startswith("The model list needs the server's administration key") and "no-such.key" in warning
               for warning in warnings), warnings
    assert not any("Model" in frame.value.columns for frame in tab.dataframe)


def test_advanced_tab_in_chinese(app_test):
    app_test.session_state["language"] = "zh"
    app_test.run()
    assert not app_test.exception
    tab = app_test.tabs[ADVANCED_TAB]
    successes = [success.value for success in tab.success]
    assert successes[0] == "服务正常：照片到达后立即处理。"
    assert "Triton 2.51.0 运行正常，已就绪。" in successes
    assert tab.expander[0].label == "本页名称说明"
    assert "**matting_u2netp（快速）**：快速模式的完整流程" in tab.expander[0].markdown[0].value
    models = table_with(tab, "模型").set_index("模型")
    assert set(models["状态"]) == {"已加载"}
    assert models.loc["u2net", "作用"] == "精细网络"
    assert tab.checkbox(key=CONFIRM_KEY).label == "我确定：用默认模型替换当前服务的网络"


def test_restoring_the_defaults_waits_for_confirmation(app_test, repository_copy, monkeypatch):
    """The button stays disabled until "I'm sure" is ticked (Streamlit refuses a disabled button's press,
    in the browser and on the server), and the page says what a restore does."""
    monkeypatch.setenv("CVUNET_REPOSITORY", str(repository_copy))
    (repository_copy / "u2netp" / "1" / "model.onnx").write_bytes(b"changed by hand: a restore would replace it")
    before = repository_snapshot(repository_copy)
    app_test.run()
    tab = app_test.tabs[ADVANCED_TAB]
    assert tab.button(key="advanced_restore").disabled
    assert any(caption.value.startswith("Serves U²-Net (Fine, the default) and U²-Netp (Fast) again") for caption in tab.caption)
    with pytest.raises(AppTestError, match="disabled"):
        tab.button(key="advanced_restore").click()
    app_test.run()
    assert not app_test.exception
    assert repository_snapshot(repository_copy) == before

    app_test.tabs[ADVANCED_TAB].checkbox(key=CONFIRM_KEY).check().run()
    assert not app_test.tabs[ADVANCED_TAB].button(key="advanced_restore").disabled
    assert repository_snapshot(repository_copy) == before, "ticking alone changes nothing"


def test_verify_default_weights_button(app_test):
    app_test.tabs[ADVANCED_TAB].button(key="advanced_fetch_default").click().run()
    assert any(success.value.startswith("Verified:") and U2NET_SHA256 in success.value
               for success in app_test.tabs[ADVANCED_TAB].success)


def test_import_refusal_in_the_tab(app_test, repository_copy, monkeypatch):
    monkeypatch.setenv("CVUNET_REPOSITORY", str(repository_copy))
    before = repository_snapshot(repository_copy)
    app_test.tabs[ADVANCED_TAB].file_uploader(key="advanced_import_file").upload("broken.onnx", b"garbage")
    app_test.run()
    app_test.tabs[ADVANCED_TAB].button(key="advanced_import").click().run()
    assert not app_test.exception
    errors = [error.value for error in app_test.tabs[ADVANCED_TAB].error]
    assert any(error.startswith("Not imported: broken.onnx could not be checked or loaded as a matting network")
               for error in errors), errors
    assert repository_snapshot(repository_copy) == before


def test_a_fine_tuned_export_is_named_as_such(app_test, repository_copy, monkeypatch):
    served = repository_copy / "u2net" / "1" / "model.onnx"
    model = onnx.load(str(served))
    model.metadata_props.add(key=contract.FINE_TUNED, value="500 steps on photos")
    onnx.save(model, str(served))
    monkeypatch.setenv("CVUNET_REPOSITORY", str(repository_copy))
    app_test.run()
    assert not app_test.exception
    infos = [info.value for info in app_test.tabs[ADVANCED_TAB].info]
    assert "The served file is our export of u2net fine-tuned from the pinned weights (500 steps on photos)." in infos
