"""The batch tab through Streamlit's AppTest against the real Triton: a folder picked from the list of
those under the allowed roots, or photos and ZIPs dropped on the uploader; the gallery, its retry, the
summary, the ZIP of everything and the history row."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from PIL import Image

from client.report import REPORT_NAME
from tests import support
from ui.archive import zip_folder
from ui.history import HistoryStore
from ui.reasons import reason_key

PHOTO_SIZES = [(160, 120), (120, 160), (96, 64)]
DAMAGED = "This file cannot be processed: the file is damaged or was not copied completely."
#: A card's Markdown status mark → the status.
MARKS = {":green[✔]": "ok", ":red[✘]": "failed"}


def write_photos(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for number, size in enumerate(PHOTO_SIZES):
        (folder / f"photo{number}.jpg").write_bytes(support.encode(support.photo(size), "JPEG", quality=90))
    (folder / "broken.jpg").write_bytes(support.truncated_jpeg())
    (folder / "notes.txt").write_text("not a photo")
    return folder


def batch_tab(app):
    """The tab's own elements: the other tabs may show errors, images or metrics of their own."""
    return app.tabs[1]


def metrics(app) -> dict[str, str]:
    return {metric.label: metric.value for metric in batch_tab(app).metric}


def cards(app) -> list[tuple[str, str]]:
    """The gallery's cards as (status, name), in order."""
    lines = [element.value.partition(" ") for element in batch_tab(app).markdown]
    return [(MARKS[mark], name.replace("\\", "")) for mark, _, name in lines if mark in MARKS]


def tab_words(app) -> str:
    tab = batch_tab(app)
    return " ".join(element.value for kind in (tab.caption, tab.markdown, tab.info, tab.warning, tab.error, tab.text)
                    for element in kind)


def outputs_of(output_dir: Path) -> set[str]:
    return {path.relative_to(output_dir).as_posix() for path in output_dir.rglob("*") if path.is_file()}


def start(app):
    app.button(key="batch_start").click()
    return app.run()


def test_folder_from_the_list_gallery_retry_and_summary(app_test, ui_env):
    folder = write_photos(ui_env.data / "photos")
    app_test.radio(key="batch_source.en").set_value("folder").run()
    folder_list = app_test.selectbox(key="batch_folder.en")
    assert folder_list.options == ["data (0 photos; 4 with sub-folders)", "data/photos (4 photos)"], \
        "only folders with photos, each with its count"
    assert all(f"`{root}`" in tab_words(app_test) for root in (ui_env.data, ui_env.outputs)), "roots shown plainly"
    folder_list.set_value(str(folder))
    app = start(app_test)

    assert not app.exception and not batch_tab(app).error
    [output_dir] = ui_env.outputs.glob("outputs_*")
    assert outputs_of(output_dir) == {"photo0.png", "photo1.png", "photo2.png", REPORT_NAME}
    summary = metrics(app)
    assert (summary["Photos"], summary["Done"], summary["Failed"]) == ("4", "3", "1")
    elapsed = json.loads((output_dir / REPORT_NAME).read_text())["summary"]["elapsed_s"]
    assert summary["Photos per minute"] == f"{4 / elapsed * 60:.1f}", "photos per minute, not latency per request"
    assert summary["Total time"].endswith(" s")
    assert cards(app) == [("failed", "broken.jpg"), ("ok", "photo0.jpg"), ("ok", "photo1.jpg"), ("ok", "photo2.jpg")]
    thumbnails = batch_tab(app).image
    assert len(thumbnails) == 3
    words = tab_words(app)
    assert DAMAGED in words and "truncated" not in words, "the reason in plain words, never the library's"
    assert "Left out, not photos: notes.txt" in words
    assert app.download_button(key="batch_download_zip").label == "Download all results (ZIP)"
    with zipfile.ZipFile(io.BytesIO(zip_folder(output_dir))) as archive:
        assert set(archive.namelist()) == outputs_of(output_dir)

    [job] = HistoryStore(ui_env.history_db).list()
    assert (job.kind, job.status, job.image_size, job.output_path) == ("batch", "partial", "4", str(output_dir))
    assert job.sources == ["broken.jpg", "photo0.jpg", "photo1.jpg", "photo2.jpg"]
    assert job.options == {"output": "transparent", "format": "png", "model": "u2net", "source": "folder", "recursive": False}
    file, _, message = job.error.partition(": ")
    assert job.thumbnail and file == "broken.jpg" and reason_key(message) == "reason_damaged", "engineer text, worded by History"

    app.session_state["language"] = "zh"
    app = app.run()
    assert set(metrics(app)) == {"照片总数", "成功", "失败", "总耗时", "每分钟张数"}
    assert cards(app)[0] == ("failed", "broken.jpg") and "无法处理该文件：文件已损坏或没有复制完整" in tab_words(app)
    assert app.selectbox(key="batch_folder.zh").value == str(folder), "the choice survives a language switch"
    app.session_state["language"] = "en"
    app = app.run()

    (folder / "broken.jpg").write_bytes(support.encode(support.photo((96, 96)), "JPEG"))  # the user mended it
    app.button(key="batch_retry:broken.jpg").click()
    app = app.run()

    assert not app.exception
    assert cards(app) == [("ok", "broken.jpg"), ("ok", "photo0.jpg"), ("ok", "photo1.jpg"), ("ok", "photo2.jpg")]
    assert len(batch_tab(app).image) == 4 and (metrics(app)["Done"], metrics(app)["Failed"]) == ("4", "0")
    assert outputs_of(output_dir) == {"broken.png", "photo0.png", "photo1.png", "photo2.png", REPORT_NAME}, "same folder"
    saved = json.loads((output_dir / REPORT_NAME).read_text())
    assert (saved["summary"]["ok"], saved["summary"]["failed"]) == (4, 0)
    with Image.open(output_dir / "broken.png") as redone:
        assert (redone.mode, redone.size) == ("RGBA", (96, 96))


def test_zip_with_a_nested_folder_and_chinese_names_as_product_shots(app_test, ui_env):
    class WindowsInfo(zipfile.ZipInfo):
        """Stored as Windows in China stores names: GBK, without the UTF-8 flag."""

        def _encodeFilenameFlags(self):
            return self.filename.encode("gbk"), self.flag_bits

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("鞋子/商品 1.jpg", support.encode(support.photo((120, 160)), "JPEG"))
        archive.writestr(WindowsInfo("封面.jpg"), support.encode(support.photo((160, 120)), "JPEG"))
        archive.writestr(WindowsInfo("说明.txt"), "not a photo")
    uploads = [("商品图.zip", buffer.getvalue(), "application/zip"),
               ("loose.png", support.encode(support.photo((96, 64)), "PNG"), "image/png")]
    app_test.radio(key="batch_mode.en").set_value("product").run()
    app_test.file_uploader(key="batch_uploads").set_value(uploads)
    app = start(app_test)

    assert not app.exception and not batch_tab(app).error
    [output_dir] = ui_env.outputs.glob("outputs_*")
    assert outputs_of(output_dir) == {"鞋子/商品 1.jpg", "封面.jpg", "loose.jpg", REPORT_NAME}
    for name in ("鞋子/商品 1.jpg", "封面.jpg", "loose.jpg"):
        with Image.open(output_dir / name) as shot:
            assert (shot.format, shot.size) == ("JPEG", (800, 800)), name
    assert cards(app) == [("ok", "loose.png"), ("ok", "封面.jpg"), ("ok", "鞋子/商品 1.jpg")]
    assert len(batch_tab(app).image) == 3
    assert "Left out, not photos: 商品图.zip/说明.txt" in tab_words(app)
    [job] = HistoryStore(ui_env.history_db).list()
    assert (job.status, job.image_size, job.options["output"], job.options["source"]) == ("ok", "3", "product", "upload")
    [gathered] = [Path(run.input_dir) for run in [app.session_state["batch_run"]]]
    assert gathered.is_dir()

    app.radio(key="batch_source.en").set_value("folder")
    app = app.run()
    assert not metrics(app) and not batch_tab(app).image and not cards(app), "another source clears the last batch"
    assert not gathered.exists(), "the uploads' folder goes with its batch"
