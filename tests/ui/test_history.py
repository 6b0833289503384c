"""The job history: the bounded SQLite store, and the History tab (through AppTest against the real Triton)
listing jobs in readable words, opening a row's details, re-downloading every job, filtering and clearing."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from PIL import Image

from matting.previews import thumbnail_png
from ui.archive import zip_folder
from ui.history import HistoryStore, Job
from ui.kept_results import KeptResults
from ui.tabs.history import COLUMN_WIDTHS, STRINGS

HISTORY_TAB = 3
#: The wide layout's content width in a 1440 px window, and the table's row-selection column (Chromium, measured).
CONTENT_WIDTH_AT_1440 = 1268
SELECTION_COLUMN = 33
DAMAGED = "unreadable image header: Truncated File Read"


def make_job(index: int, kind: str = "single", status: str = "ok", **fields) -> Job:
    values = {"sources": [f"photo-{index}.jpg"], "image_size": "200×150", "options": {"output": "transparent", "format": "png"},
              "model": "u2netp", "model_version": "1", **fields}
    return Job(kind=kind, status=status, duration_ms=1000.0 + index * 100, created_at=1_700_000_000.0 + index, **values)


def sources(jobs: list[Job]) -> list[str]:
    return [job.sources[0] for job in jobs]


def test_store_keeps_only_the_newest_jobs(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3", limit=3)
    for index in range(5):
        store.add(make_job(index))
    assert store.count() == 3
    assert sources(store.list()) == ["photo-4.jpg", "photo-3.jpg", "photo-2.jpg"]


def test_store_filters_by_kind_status_and_source_name(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    store.add(make_job(1))
    store.add(make_job(2, kind="batch", status="partial", sources=["shop/a.jpg", "shop/b.png"]))
    store.add(make_job(3, status="failed"))
    assert sources(store.list(kind="batch")) == ["shop/a.jpg"]
    assert sources(store.list(status="failed")) == ["photo-3.jpg"]
    assert sources(store.list(text="b.png")) == ["shop/a.jpg"]
    assert sources(store.list(kind="single", status="ok")) == ["photo-1.jpg"]
    assert store.list(kind="batch", status="failed") == []


def test_store_survives_reopening_and_clears(tmp_path):
    path = tmp_path / "history.sqlite3"
    thumbnail = thumbnail_png(Image.new("RGB", (640, 480), "red"))
    job_id = HistoryStore(path).add(make_job(1, output_path="/somewhere/photo-1", thumbnail=thumbnail, sources=["照片.jpg"]))
    reopened = HistoryStore(path)
    job = reopened.get(job_id)
    assert (job.sources, job.options, job.output_path, job.thumbnail) == (
        ["照片.jpg"], {"output": "transparent", "format": "png"}, "/somewhere/photo-1", thumbnail)
    assert Image.open(io.BytesIO(job.thumbnail)).size == (160, 120)
    reopened.clear()
    assert HistoryStore(path).count() == 0


def test_zip_folder_keeps_relative_paths(tmp_path):
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "a.png").write_bytes(b"a")
    (tmp_path / "out" / "sub" / "b.png").write_bytes(b"b")
    with zipfile.ZipFile(io.BytesIO(zip_folder(tmp_path / "out"))) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == {"a.png": b"a", "sub/b.png": b"b"}


def test_the_table_fits_a_1440_px_window_without_scrolling_sideways():
    assert set(COLUMN_WIDTHS) == {"preview", "time", "kind", "sources", "status", "model", "duration", "options"}
    assert SELECTION_COLUMN + sum(COLUMN_WIDTHS.values()) <= CONTENT_WIDTH_AT_1440


def test_every_string_is_in_both_languages():
    assert STRINGS["zh"].keys() == STRINGS["en"].keys()


#: The table's rows, newest first, as the fixture below stores them.
FAILED, GONE, BATCH, SINGLE = range(4)


@pytest.fixture
def stored_jobs(ui_env):
    """Four jobs: a white product shot kept for re-download, a partly failed batch, a single result no
    longer kept, and a damaged photo recorded by an older version (old option keys)."""
    kept = KeptResults(ui_env.results).keep({"商品图-cutout.png": b"\x89PNG cutout",
                                                           "商品图-mask.png": b"\x89PNG mask"})
    batch_output = ui_env.outputs / "shop"
    batch_output.mkdir()
    (batch_output / "a.png").write_bytes(b"a")
    thumbnail = thumbnail_png(Image.new("RGB", (64, 48), "blue"))
    product = {"output": "product", "format": "jpeg", "model": "u2net", "bg_color": "#ffffff", "product_side": 800,
               "padding": 0.08, "shadow": True}
    batch = {"source": "folder", "output": "transparent", "format": "png", "recursive": True, "concurrency": 4}
    old = {"kind": "rgba", "format": "png", "save": False, "refine": "guided", "tta": "flip"}
    store = HistoryStore(ui_env.history_db)
    for job in (
        make_job(1, sources=["商品图.jpg"], options=product, model="u2net", output_path=str(kept), thumbnail=thumbnail),
        make_job(2, kind="batch", status="partial", sources=["shop/a.jpg", "shop/b.jpg"], image_size="12",
                 options=batch, output_path=str(batch_output), error=f"shop/b.jpg: {DAMAGED}"),
        make_job(3, sources=["cat.jpg"], output_path=str(ui_env.results / "20240101-000000-000000")),
        make_job(4, status="failed", sources=["dog.jpg"], options=old, error=DAMAGED),
    ):
        store.add(job)
    return kept


def history_tab(app):
    return app.tabs[HISTORY_TAB]


def table(app):
    return history_tab(app).dataframe[0]


def select_row(app, row: int):
    app.session_state[table(app).key] = {"selection": {"rows": [row], "columns": []}}
    return app.run()


def texts(tab) -> list[str]:
    """Everything the tab shows in words: text elements, widget labels and options, table cells and headers."""
    shown = [element.value for kind in ("markdown", "caption", "warning", "info", "success", "subheader")
             for element in getattr(tab, kind)]
    for kind in ("selectbox", "text_input", "checkbox", "button", "download_button"):
        for widget in getattr(tab, kind):
            shown += [widget.label, *getattr(widget, "options", [])]
    for frame in tab.dataframe:
        shown += [str(cell) for cell in frame.value.drop(columns="preview").to_numpy().ravel()]
        shown += [column["label"] for column in json.loads(frame.proto.columns).values() if "label" in column]
    return shown


def test_jobs_are_listed_in_plain_words_and_the_newest_opens_by_default(stored_jobs, app_test):
    app = app_test
    assert not app.exception
    rows = table(app).value
    assert list(rows["sources"]) == ["dog.jpg", "cat.jpg", "shop/a.jpg, shop/b.jpg and 10 more", "商品图.jpg"]
    assert list(rows["status"]) == ["✗ Failed", "✓ Done", "⚠ Partly failed", "✓ Done"]
    assert list(rows["model"]) == ["Fast (U²-Netp)", "Fast (U²-Netp)", "Fast (U²-Netp)", "Fine (U²-Net)"]
    assert list(rows["duration"]) == [1.4, 1.3, 1.2, 1.1]
    assert list(rows["options"]) == ["Transparent background · PNG", "Transparent background · PNG",
                                     "Transparent background · with subfolders · PNG",
                                     "White product shot · 800 × 800 px · 8% margin · White background · soft shadow · JPG"]
    tab = history_tab(app)
    assert [warning.value for warning in tab.warning] == [
        "Why it failed: the file is damaged or was not copied completely. Open it on your computer, save it again, and retry."]
    assert "This job produced no result to download." in [caption.value for caption in tab.caption]
    assert not any("unreadable" in text or "rgba" in text or "guided" in text for text in texts(tab))


def test_a_kept_single_result_downloads_under_its_source_derived_names(stored_jobs, app_test):
    app = select_row(app_test, SINGLE)
    tab = history_tab(app)
    assert not app.exception
    assert [button.label for button in tab.download_button] == ["Download 商品图-cutout.png", "Download 商品图-mask.png"]
    assert len(tab.image) == 1
    assert "Options: White product shot · 800 × 800 px · 8% margin · White background · soft shadow · JPG · Fine (U²-Net)" in [
        caption.value for caption in tab.caption]


def test_a_batch_downloads_as_a_zip_and_names_its_failed_files(stored_jobs, app_test):
    app = select_row(app_test, BATCH)
    tab = history_tab(app)
    assert [button.label for button in tab.download_button] == ["Download all results (shop.zip)"]
    assert [warning.value for warning in tab.warning] == [
        "These files failed:\n- shop/b.jpg: the file is damaged or was not copied completely. Open it on your "
        "computer, save it again, and retry."]
    assert "Image size: 12 images" in [caption.value for caption in tab.caption]


def test_a_result_no_longer_kept_is_reported_plainly(stored_jobs, app_test):
    app = select_row(app_test, GONE)
    tab = history_tab(app)
    assert not tab.download_button
    assert [warning.value for warning in tab.warning] == [
        "This result is no longer kept: only the newest 200 single-image results are kept. Process the photo again to get it."]


def test_the_chinese_page_words_status_options_and_errors_in_chinese(stored_jobs, app_test):
    app = select_row(app_test, BATCH)
    app.session_state["language"] = "zh"
    app.run()
    assert not app.exception
    rows = table(app).value
    assert list(rows["status"]) == ["✗ 失败", "✓ 成功", "⚠ 部分失败", "✓ 成功"]
    assert list(rows["sources"])[BATCH] == "shop/a.jpg, shop/b.jpg 等 12 个文件"
    assert list(rows["model"])[-2:] == ["快速（U²-Netp）", "精细（U²-Net）"]
    assert list(rows["options"]) == ["透明背景 · PNG", "透明背景 · PNG", "透明背景 · 包含子文件夹 · PNG",
                                     "电商白底主图 · 800 × 800 像素 · 留白 8% · 白色背景 · 柔和阴影 · JPG"]
    tab = history_tab(app)
    assert [button.label for button in tab.download_button] == ["下载全部结果（shop.zip）"], "the selection survives the switch"
    file_names = ("商品图.jpg", "shop/a.jpg", "shop/b.jpg", "dog.jpg", "cat.jpg", "shop.zip")
    shown = " ".join(texts(tab))
    for name in file_names:
        shown = shown.replace(name, "")
    assert set(re.findall(r"[A-Za-z]{2,}", shown)) <= {"PNG", "JPG", "ZIP", "Net", "Netp"}


def test_filters_survive_a_language_switch_and_clearing_asks_first(stored_jobs, ui_env, app_test):
    app = app_test
    history_tab(app).text_input(key="history_text.en").input("shop").run()
    assert list(table(app).value["sources"]) == ["shop/a.jpg, shop/b.jpg and 10 more"]
    history_tab(app).text_input(key="history_text.en").input("").run()
    history_tab(app).selectbox(key="history_status.en").set_value("failed").run()
    assert list(table(app).value["sources"]) == ["dog.jpg"]

    app.session_state["language"] = "zh"
    app.run()
    assert history_tab(app).selectbox(key="history_status.zh").value == "failed"
    assert list(table(app).value["sources"]) == ["dog.jpg"]
    history_tab(app).selectbox(key="history_kind.zh").set_value("batch").run()
    assert [info.value for info in history_tab(app).info] == ["没有符合筛选条件的任务。"]

    tab = history_tab(app)
    assert tab.button(key="history_clear").disabled
    assert "结果文件仍保留在服务器上" in tab.checkbox(key="history_confirm_clear").label
    tab.checkbox(key="history_confirm_clear").check().run()
    history_tab(app).button(key="history_clear").click().run()
    tab = history_tab(app)
    assert not app.exception
    assert [success.value for success in tab.success] == ["历史已清空。"]
    assert [info.value for info in tab.info] == ["暂无任务：处理过的图片和批量任务会显示在这里。"]
    assert HistoryStore(ui_env.history_db).count() == 0
    assert sorted(path.name for path in stored_jobs.iterdir()) == ["商品图-cutout.png", "商品图-mask.png"]
