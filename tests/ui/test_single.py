"""The single-image tab through Streamlit's AppTest against the real Triton: a file set on the uploader
(``FileUploader.set_value((name, bytes, mime))``) is processed at once, as in the browser."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests import support
from ui.history import HistoryStore
from ui.state import widget_key


def photo_jpeg(size=(160, 120)) -> bytes:
    return support.encode(support.photo(size), "JPEG", quality=90)


def upload(app, name: str, data: bytes, mime: str = "image/jpeg"):
    app.file_uploader(key="single_upload").set_value((name, data, mime))
    return app.run()


def choose(app, widget: str, name: str, value, language: str = "en"):
    getattr(app, widget)(key=widget_key(name, language)).set_value(value)
    return app.run()


def single_tab(app):
    """The tab's own elements: the other tabs may show errors, images or metrics of their own."""
    return app.tabs[0]


def result_of(app):
    return app.session_state["single_result"]


def history_jobs(ui_env) -> list:
    return HistoryStore(ui_env.history_db).list()


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_photo_is_matted_on_upload_shown_downloadable_kept_and_recorded(app_test, ui_env):
    app = upload(app_test, "商品 photo.jpg", photo_jpeg())

    assert not app.exception and not single_tab(app).error
    result = result_of(app)
    cutout = opened(result.data)
    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", (160, 120))
    assert {button.label for button in single_tab(app).download_button} == {"Download result (PNG)", "Download mask (PNG)"}
    assert result.download_name == "商品 photo-cutout.png" and result.alpha_name == "商品 photo-mask.png"
    assert sorted(path.name for path in result.kept.iterdir()) == ["商品 photo-cutout.png", "商品 photo-mask.png"]
    assert result.kept.is_relative_to(ui_env.results)
    assert (result.kept / result.download_name).read_bytes() == result.data

    [job] = history_jobs(ui_env)
    assert (job.kind, job.status, job.sources, job.image_size) == ("single", "ok", ["商品 photo.jpg"], "160×120")
    assert (job.model, job.model_version) == ("u2net", "1"), "the default network, as the server reports it"
    assert job.options == {"output": "transparent", "format": "png", "model": "u2net"}
    assert job.thumbnail and job.output_path == str(result.kept) and job.duration_ms > 0

    app.run()  # any other interaction reruns the script: the result stays, nothing is recorded twice
    assert result_of(app).kept == result.kept and len(history_jobs(ui_env)) == 1


def test_changing_the_output_re_composes_without_asking_the_server_again(app_test, ui_env):
    app = upload(app_test, "photo.jpg", photo_jpeg())
    served = app.session_state["single_cutout"].elapsed_ms
    app = choose(app, "radio", "single_mode", "color")
    app = choose(app, "pills", "single_swatch", "black")

    assert not app.exception and not single_tab(app).error
    assert app.session_state["single_cutout"].elapsed_ms == served, "the same cut-out, not a second request"
    image = opened(result_of(app).data)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (160, 120))
    assert max(image.getpixel((0, 0))) < 40, "the corner is background, now black"
    assert history_jobs(ui_env)[0].options == {"output": "color", "format": "jpeg", "model": "u2net",
                                               "bg_color": "#000000"}


@pytest.mark.parametrize(("side", "padding"), [(800, 8), (1200, 20)])
def test_white_product_shot_is_square_at_the_chosen_side(app_test, side, padding):
    app = choose(app_test, "radio", "single_mode", "product")
    app = choose(app, "radio", "single_side", side)
    app = choose(app, "slider", "single_padding", padding)
    app = upload(app, "shoe.jpg", photo_jpeg())

    assert not app.exception and not single_tab(app).error
    image = opened(result_of(app).data)
    assert (image.format, image.size, image.info["dpi"]) == ("JPEG", (side, side), pytest.approx((300, 300)))
    assert image.getpixel((2, 2)) >= (250, 250, 250), "white around the product"
    assert result_of(app).download_name == "shoe-product.jpg"


@pytest.mark.parametrize(("size", "pixels", "background"), [("1inch", (295, 413), "blue"), ("2inch", (413, 579), "red")])
def test_id_photo_has_the_standard_pixel_size_and_background(app_test, size, pixels, background):
    app = choose(app_test, "radio", "single_mode", "id")
    app = choose(app, "radio", "single_id_size", size)
    app = choose(app, "radio", "single_id_background", background)
    app = upload(app, "me.jpg", photo_jpeg((240, 320)))

    assert not app.exception and not single_tab(app).error
    image = opened(result_of(app).data)
    assert (image.size, image.info["dpi"]) == (pixels, pytest.approx((300, 300)))
    red, _, blue = image.convert("RGB").getpixel((1, 1))
    assert (blue > red) if background == "blue" else (red > blue)


def test_background_picture_is_composed_and_a_missing_one_is_asked_for_not_failed(app_test, ui_env):
    app = choose(app_test, "radio", "single_mode", "image")
    app = upload(app, "photo.jpg", photo_jpeg())
    assert not app.exception and not single_tab(app).error
    assert any("background picture" in info.value for info in single_tab(app).info)
    assert history_jobs(ui_env) == [], "nothing was processed, so nothing failed"

    background = support.encode(Image.new("RGB", (40, 30), (0, 0, 255)), "PNG")
    app.file_uploader(key="single_background").set_value(("blue.png", background, "image/png"))
    app = app.run()
    image = opened(result_of(app).data)
    assert (image.mode, image.size) == ("RGB", (160, 120))
    assert image.getpixel((0, 0))[2] > 200, "the photo's corner is background, replaced by the blue picture"
    assert history_jobs(ui_env)[0].options["background"] == "blue.png"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [("broken.jpg", support.truncated_jpeg(), "damaged"), ("notes.png", b"this is not an image", "not a picture")],
    ids=["truncated-jpeg", "text-file"],
)
def test_bad_file_gets_a_plain_error_then_a_good_file_shows_only_its_result(app_test, ui_env, name, data, reason):
    app = upload(app_test, name, data)

    assert not app.exception
    [error] = single_tab(app).error
    assert error.value.startswith("This file cannot be processed") and reason in error.value
    assert "Traceback" not in error.value and "header" not in error.value, "plain words, not the library's"
    [job] = history_jobs(ui_env)
    assert (job.status, job.sources, job.thumbnail) == ("failed", [name], None) and job.error

    app = upload(app, "photo.jpg", photo_jpeg())
    assert not single_tab(app).error, "the previous file's error is gone"
    assert result_of(app).cutout.source_name == "photo.jpg"


def test_file_over_the_upload_limit_is_refused_before_triton(app_test, ui_env, monkeypatch):
    monkeypatch.setenv("CVUNET_UI_MAX_UPLOAD_MB", "1")
    app_test.run()
    app = upload(app_test, "huge.jpg", photo_jpeg() + bytes(1024 * 1024))

    assert not app.exception
    [error] = single_tab(app).error
    assert "over the 1 MB upload limit" in error.value
    [job] = history_jobs(ui_env)
    assert job.status == "failed" and job.error.startswith("file too large")


def test_language_switch_keeps_every_choice(app_test):
    app = choose(app_test, "radio", "single_mode", "color")
    app = choose(app, "pills", "single_swatch", "white")
    app = choose(app, "radio", "single_format_jpeg", "png")
    app = choose(app, "radio", "single_model", "u2netp")
    app.session_state["language"] = "zh"
    app = app.run()

    assert not app.exception
    assert app.radio(key=widget_key("single_mode", "zh")).value == "color"
    assert app.radio(key=widget_key("single_mode", "zh")).label == "制作"
    assert app.pills(key=widget_key("single_swatch", "zh")).value == "white"
    assert app.radio(key=widget_key("single_format_jpeg", "zh")).value == "png"
    assert app.radio(key=widget_key("single_model", "zh")).value == "u2netp"
    assert "单图处理" in [tab.label for tab in app.tabs]


def test_fast_model_and_decontamination_are_served_recorded_and_timed(app_test, ui_env):
    assert app_test.radio(key=widget_key("single_model", "en")).value == "u2net", "the quality network by default"
    app = choose(app_test, "radio", "single_model", "u2netp")
    app = choose(app, "checkbox", "single_decontaminate", True)
    app = upload(app, "photo.jpg", photo_jpeg())

    assert not app.exception and not single_tab(app).error
    [job] = history_jobs(ui_env)
    assert (job.model, job.status, job.options["decontaminate"]) == ("u2netp", "ok", True)
    app.run()
    assert any("Fast (U²-Netp): " in caption.value and "s per photo lately" in caption.value
               for caption in single_tab(app).caption)
