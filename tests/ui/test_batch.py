"""The batch tab through Streamlit's AppTest against the real Triton: a folder typed into the path
input (confined to the allowed roots), or files set on the multi-file uploader."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests import support
from ui.history import HistoryStore

PHOTO_SIZES = [(160, 120), (120, 160), (96, 64)]
REFUSED = "This folder is not allowed"


def write_photos(folder: Path, broken: bool = True) -> Path:
    folder.mkdir(parents=True)
    for number, size in enumerate(PHOTO_SIZES):
        (folder / f"photo{number}.jpg").write_bytes(support.encode(support.photo(size), "JPEG", quality=90))
    if broken:
        (folder / "broken.jpg").write_bytes(support.truncated_jpeg())
    return folder


def run_folder(app, text: str):
    app.text_input(key="batch_folder").input(text)
    app.button(key="batch_start").click()
    return app.run()


def batch_tab(app):
    """The tab's own elements: the other tabs may show errors, tables or metrics of their own."""
    return app.tabs[1]


def metrics(app) -> dict[str, str]:
    return {metric.label: metric.value for metric in batch_tab(app).metric}


def test_folder_with_a_broken_file(app_test, ui_env):
    from ui.archive import zip_folder

    folder = write_photos(ui_env.data / "photos")
    app = run_folder(app_test, str(folder))

    assert not app.exception and not batch_tab(app).error
    summary = metrics(app)
    assert (summary["Total"], summary["Success"], summary["Failed"]) == ("4", "3", "1")
    assert summary["Average time"].endswith(" ms")
    [failures] = batch_tab(app).dataframe
    assert failures.value["File"].tolist() == ["broken.jpg"]
    assert "truncated" in failures.value["Reason"][0]
    assert batch_tab(app).progress[0].value == 100

    [output_dir] = ui_env.outputs.glob("outputs_*")
    outputs = {"photo0.png", "photo1.png", "photo2.png", "report.json"}
    assert {path.name for path in output_dir.iterdir()} == outputs
    assert any(str(output_dir) in markdown.value for markdown in batch_tab(app).markdown)
    assert app.download_button(key="batch_download_zip").label == "Download all outputs (ZIP)"
    with zipfile.ZipFile(io.BytesIO(zip_folder(output_dir))) as archive:
        assert set(archive.namelist()) == outputs

    [job] = HistoryStore(ui_env.history_db).list()
    assert (job.kind, job.status, job.image_size, job.output_path) == ("batch", "partial", "4 images", str(output_dir))
    assert job.sources == ["broken.jpg", "photo0.jpg", "photo1.jpg", "photo2.jpg"]
    assert job.options["kind"] == "rgba" and job.options["source"] == "folder"
    assert job.thumbnail and "broken.jpg" in job.error


def test_uploaded_files_as_alpha_webp(app_test, ui_env):
    app_test.radio(key="batch_source").set_value("upload")
    app_test.radio(key="batch_kind").set_value("alpha")
    app_test.radio(key="batch_format").set_value("webp")
    app_test.run()
    photos = [(name, support.encode(support.photo(size), "JPEG"), "image/jpeg")
              for name, size in (("a.jpg", (160, 120)), ("b.jpg", (96, 64)))]
    app_test.file_uploader(key="batch_uploads").set_value(photos)
    app_test.button(key="batch_start").click()
    app = app_test.run()

    assert not app.exception and not batch_tab(app).error
    assert (metrics(app)["Total"], metrics(app)["Failed"]) == ("2", "0")
    [output_dir] = ui_env.outputs.glob("outputs_*")
    assert {path.name for path in output_dir.iterdir()} == {"a.webp", "b.webp", "report.json"}
    [job] = HistoryStore(ui_env.history_db).list()
    assert (job.status, job.sources, job.options["source"]) == ("ok", ["a.jpg", "b.jpg"], "upload")


@pytest.mark.parametrize("escape", ["absolute", "dot-dot", "symlink"])
def test_paths_outside_the_roots_are_refused(app_test, ui_env, escape):
    outside = write_photos(ui_env.data.parent / "outside", broken=False)
    if escape == "symlink":
        (ui_env.data / "link").symlink_to(outside, target_is_directory=True)
    text = {"absolute": "/etc", "dot-dot": f"{ui_env.data}/../outside", "symlink": str(ui_env.data / "link")}[escape]
    app = run_folder(app_test, text)

    assert not app.exception
    [error] = batch_tab(app).error
    assert error.value.startswith(REFUSED) and "outside the allowed folders" in error.value
    assert not list(ui_env.outputs.iterdir())
    assert not metrics(app) and not batch_tab(app).progress
    assert HistoryStore(ui_env.history_db).count() == 0
