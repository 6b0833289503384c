"""The single-image tab through Streamlit's AppTest against the real Triton: files are set on the
uploader with ``FileUploader.set_value((name, bytes, mime))`` and the button is clicked, as a user would."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests import support
from ui.history import HistoryStore

RESULT_CAPTIONS = {"Result (transparent areas shown as a checkerboard)", "Alpha matte", "Original", "Result"}


def photo_jpeg(size=(160, 120)) -> bytes:
    return support.encode(support.photo(size), "JPEG", quality=90)


def process(app, name: str, data: bytes, mime: str = "image/jpeg"):
    app.file_uploader(key="single_upload").set_value((name, data, mime))
    app.button(key="single_start").click()
    return app.run()


def single_tab(app):
    """The tab's own elements: the other tabs may show errors, images or metrics of their own."""
    return app.tabs[0]


def captions(app) -> set[str]:
    return {caption for image in single_tab(app).image for caption in image.captions}


def metrics(app) -> dict[str, str]:
    return {metric.label: metric.value for metric in single_tab(app).metric}


def history_jobs(ui_env) -> list:
    return HistoryStore(ui_env.history_db).list()


def test_photo_is_matted_shown_downloadable_and_recorded(app_test, ui_env):
    app = process(app_test, "photo.jpg", photo_jpeg())

    assert not app.exception and not single_tab(app).error
    assert RESULT_CAPTIONS <= captions(app)
    assert metrics(app)["Image size"] == "160×120"
    assert metrics(app)["Processing time"].endswith(" ms")
    assert {button.label for button in single_tab(app).download_button} >= {"Download result (PNG)", "Download alpha (PNG)"}
    result = app.session_state["single_result"]
    cutout = Image.open(io.BytesIO(result.data))
    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", (160, 120))
    assert result.media_type == "image/png"
    matte = Image.open(io.BytesIO(result.alpha_png))
    assert (matte.mode, matte.size) == ("L", (160, 120))

    [job] = history_jobs(ui_env)
    assert (job.kind, job.status, job.sources, job.image_size) == ("single", "ok", ["photo.jpg"], "160×120")
    assert (job.model, job.model_version) == ("u2net", "1"), "the default network, as the server reports it"
    assert job.options == {"output": "transparent", "format": "png", "save": False}
    assert job.thumbnail and job.output_path is None and job.duration_ms > 0

    app.run()  # any other interaction reruns the script: the result stays
    assert RESULT_CAPTIONS <= captions(app)
    assert len(history_jobs(ui_env)) == 1


def test_save_writes_result_under_outputs_and_never_overwrites(app_test, ui_env):
    app_test.checkbox(key="single_save").check()
    first = process(app_test, "photo.jpg", photo_jpeg()).session_state["single_result"].output_path
    second = process(app_test, "photo.jpg", photo_jpeg()).session_state["single_result"].output_path

    assert not app_test.exception
    saved = sorted(ui_env.outputs.glob("outputs_*/result*.png"))
    assert sorted(map(str, saved)) == sorted([first, second]) and first != second
    assert {path.name for path in saved} <= {"result.png", "result-2.png"}, "a second save in the same second gets -2"
    assert Image.open(saved[0]).size == (160, 120)
    assert any(second in message.value for message in single_tab(app_test).success)
    assert history_jobs(ui_env)[0].output_path == second


def test_background_colour_as_webp(app_test, ui_env):
    app_test.radio(key="single_mode").set_value("color")
    app_test.radio(key="single_format").set_value("webp")
    app_test.run()
    app_test.color_picker(key="single_bg_color").pick("#00ff00")
    app = process(app_test, "photo.jpg", photo_jpeg())

    assert not app.exception and not single_tab(app).error
    result = app.session_state["single_result"]
    image = Image.open(io.BytesIO(result.data))
    assert (image.format, image.mode, result.media_type) == ("WEBP", "RGB", "image/webp")
    assert history_jobs(ui_env)[0].options == {"output": "color", "format": "webp", "save": False, "bg_color": "#00ff00"}


def test_background_image_is_composed_over_the_uploaded_picture(app_test, ui_env):
    app_test.radio(key="single_mode").set_value("image")
    app_test.run()
    background = support.encode(Image.new("RGB", (40, 30), (0, 0, 255)), "PNG")
    app_test.file_uploader(key="single_background").set_value(("blue.png", background, "image/png"))
    app = process(app_test, "photo.jpg", photo_jpeg())

    assert not app.exception and not single_tab(app).error
    image = Image.open(io.BytesIO(app.session_state["single_result"].data))
    assert (image.mode, image.size) == ("RGB", (160, 120))
    assert image.getpixel((0, 0))[2] > 200, "the photo's corner is background, replaced by the blue picture"
    assert history_jobs(ui_env)[0].options["background"] == "blue.png"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [("broken.jpg", support.truncated_jpeg(), "This file cannot be processed"),
     ("notes.png", b"this is not an image", "This file cannot be processed")],
    ids=["truncated-jpeg", "text-file"],
)
def test_bad_file_gets_a_friendly_error_and_a_failed_history_row(app_test, ui_env, name, data, message):
    app = process(app_test, name, data)

    assert not app.exception
    [error] = single_tab(app).error
    assert error.value.startswith(message) and "Traceback" not in error.value
    assert not captions(app) & RESULT_CAPTIONS
    [job] = history_jobs(ui_env)
    assert (job.status, job.sources, job.thumbnail) == ("failed", [name], None)
    assert job.error


def test_file_over_the_upload_limit_is_refused_before_triton(app_test, ui_env, monkeypatch):
    monkeypatch.setenv("CVUNET_UI_MAX_UPLOAD_MB", "1")
    app_test.run()
    app = process(app_test, "huge.jpg", photo_jpeg() + bytes(1024 * 1024))

    assert not app.exception
    [error] = single_tab(app).error
    assert "the limit is 1 MB" in error.value
    assert history_jobs(ui_env)[0].status == "failed"


def test_chinese_labels(app_test):
    app_test.session_state["language"] = "zh"
    app_test.run()

    assert not app_test.exception
    assert "单图处理" in [tab.label for tab in app_test.tabs]
    assert app_test.button(key="single_start").label == "开始处理"
    assert app_test.checkbox(key="single_save").label == "保存到输出目录"


def test_decontaminate_and_flip_options_are_sent_and_recorded(app_test, ui_env):
    app_test.checkbox(key="single_decontaminate").check()
    app_test.checkbox(key="single_flip").check()
    app = process(app_test, "photo.jpg", photo_jpeg())
    assert not app.exception and not single_tab(app).error
    assert RESULT_CAPTIONS <= captions(app)
    [job] = history_jobs(ui_env)
    assert job.status == "ok" and job.options["decontaminate"] is True and job.options["tta"] == "flip"


def test_fast_model_choice_is_served_recorded_and_timed(app_test, ui_env):
    assert app_test.radio(key="single_model_choice").value == "u2net", "the quality network by default"
    app_test.radio(key="single_model_choice").set_value("u2netp")
    app = process(app_test, "photo.jpg", photo_jpeg())

    assert not app.exception and not single_tab(app).error
    [job] = history_jobs(ui_env)
    assert (job.model, job.status) == ("u2netp", "ok"), "the network the server ran"
    app.run()
    assert any("Fast (U²-Netp): " in caption.value and "s per photo lately" in caption.value
               for caption in single_tab(app).caption)
