"""The Advanced tab: server and model status, weights, environment, metrics, and a refused import
(serving.admin's own tests cover imports and restores against real servers)."""

from __future__ import annotations

import onnx

from matting import contract
from serving.admin_key import KEY_FILE_ENV
from serving.weights import PINNED
from tests.support import repository_snapshot

ADVANCED_TAB = 3
U2NET_SHA256 = PINNED["u2net"].sha256

def test_advanced_tab_shows_server_models_weights_and_environment(app_test):
    tab = app_test.tabs[ADVANCED_TAB]
    assert not app_test.exception
    assert "Triton 2.51.0 is live and ready." in [success.value for success in tab.success]
    models = tab.dataframe[0].value.set_index("Model")
    assert {"matting", "matting_u2net", "matting_u2netp", "preprocess", "postprocess", "u2net", "u2netp"} <= set(models.index)
    assert models.loc[["matting", "matting_u2netp", "preprocess", "postprocess", "u2net", "u2netp"], "Ready"].all()
    assert models.loc["u2netp", "Backend / platform"] == "python"
    assert models.loc["matting", "Backend / platform"] == "ensemble"
    assert models.loc["u2netp", "Instances"] == "2"
    assert any(U2NET_SHA256 in success.value and "matches the pinned" in success.value for success in tab.success)
    assert "The served file is our export of u2net, ported from the pinned file." in [success.value for success in tab.success]
    environment = dict(tab.dataframe[1].value.values.tolist())
    assert "CPUExecutionProvider" in environment["ONNX Runtime providers"]
    assert environment["Triton server"] == "2.51.0"
    assert environment["NumPy"].startswith("1.")
    metrics = tab.dataframe[2].value.set_index("Model")
    assert "matting" in metrics.index
    assert len(tab.get("vega_lite_chart")) == 1


def test_without_the_admin_key_the_tab_shows_no_models_but_a_refusal(app_test, monkeypatch, tmp_path):
    """The model table comes from Triton's repository index, which only the key opens (the test above has it)."""
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "no-such.key"))
    app_test.run()
    tab = app_test.tabs[ADVANCED_TAB]
    assert not app_test.exception
    assert "Triton 2.51.0 is live and ready." in [success.value for success in tab.success]
    assert any("This protocol is restricted" in warning.value for warning in tab.warning), [w.value for w in tab.warning]
    assert "Model" not in tab.dataframe[0].value.columns


def test_advanced_tab_in_chinese(app_test):
    app_test.session_state["language"] = "zh"
    app_test.run()
    assert not app_test.exception
    assert "Triton 2.51.0 运行正常，已就绪。" in [success.value for success in app_test.tabs[ADVANCED_TAB].success]


def test_verify_default_weights_button(app_test):
    app_test.tabs[ADVANCED_TAB].button(key="advanced_fetch_default").click().run()
    assert any(success.value.startswith("Verified:") and U2NET_SHA256 in success.value
               for success in app_test.tabs[ADVANCED_TAB].success)


def test_refresh_builds_a_metrics_time_series(app_test):
    app_test.tabs[ADVANCED_TAB].button(key="advanced_refresh_metrics").click().run()
    assert len(app_test.session_state["advanced_metrics_samples"]) >= 2


def test_import_refusal_in_the_tab(app_test, repository_copy, monkeypatch):
    monkeypatch.setenv("CVUNET_REPOSITORY", str(repository_copy))
    before = repository_snapshot(repository_copy)
    app_test.tabs[ADVANCED_TAB].file_uploader(key="advanced_import_file").upload("broken.onnx", b"garbage")
    app_test.run()
    app_test.tabs[ADVANCED_TAB].button(key="advanced_import").click().run()
    assert not app_test.exception
    errors = [error.value for error in app_test.tabs[ADVANCED_TAB].error]
    assert any(error.startswith("Not imported: broken.onnx is not a valid ONNX model") for error in errors), errors
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
