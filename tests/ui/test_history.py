"""The job history: the bounded SQLite store, and the History tab listing, filtering, re-downloading and clearing it."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from matting.previews import thumbnail_png
from ui.history import HistoryStore, Job
from ui.archive import zip_folder

HISTORY_TAB = 2


def make_job(index: int, kind: str = "single", status: str = "ok", **fields) -> Job:
    return Job(kind=kind, sources=fields.pop("sources", [f"photo-{index}.jpg"]), image_size="200×150",
               options={"kind": "rgba", "format": "png"}, model="u2netp", model_version="1",
               duration_ms=100.0 + index, status=status, created_at=1_700_000_000.0 + index, **fields)


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
    job_id = HistoryStore(path).add(make_job(1, output_path="/somewhere/photo-1.png", thumbnail=thumbnail,
                                             sources=["照片.jpg"]))
    reopened = HistoryStore(path)
    job = reopened.get(job_id)
    assert (job.sources, job.options, job.output_path, job.thumbnail) == (["照片.jpg"], {"kind": "rgba", "format": "png"},
                                                                          "/somewhere/photo-1.png", thumbnail)
    assert Image.open(io.BytesIO(job.thumbnail)).size == (160, 120)
    reopened.clear()
    assert HistoryStore(path).count() == 0


def test_zip_folder_keeps_relative_paths(tmp_path):
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "a.png").write_bytes(b"a")
    (tmp_path / "out" / "sub" / "b.png").write_bytes(b"b")
    with zipfile.ZipFile(io.BytesIO(zip_folder(tmp_path / "out"))) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == {"a.png": b"a", "sub/b.png": b"b"}


@pytest.fixture
def stored_jobs(ui_env):
    """Three jobs: a single image whose output exists, a batch folder, and a failed job whose output is gone."""
    single_output = ui_env.outputs / "cat.png"
    single_output.write_bytes(b"\x89PNG cat")
    batch_output = ui_env.outputs / "shop"
    batch_output.mkdir()
    (batch_output / "a.png").write_bytes(b"a")
    thumbnail = thumbnail_png(Image.new("RGB", (64, 48), "blue"))
    store = HistoryStore(ui_env.history_db)
    return {
        "single": store.add(make_job(1, sources=["cat.jpg"], output_path=str(single_output), thumbnail=thumbnail)),
        "batch": store.add(make_job(2, kind="batch", status="partial", sources=["shop/a.jpg", "shop/b.jpg"],
                                    output_path=str(batch_output))),
        "gone": store.add(make_job(3, status="failed", sources=["dog.jpg"], output_path=str(ui_env.outputs / "dog.png"),
                                   error="cannot identify image file")),
    }


def listed_sources(tab) -> list[str]:
    return list(tab.dataframe[0].value["Sources"])


def test_history_tab_lists_filters_downloads_and_clears(stored_jobs, ui_env, app_test):
    app_test.run()
    tab = app_test.tabs[HISTORY_TAB]
    assert not app_test.exception
    assert listed_sources(tab) == ["dog.jpg", "shop/a.jpg, shop/b.jpg", "cat.jpg"]
    assert "3 jobs stored; only the newest 500 are kept." in [caption.value for caption in tab.caption]

    tab.selectbox(key="history_job").set_value(stored_jobs["gone"]).run()
    tab = app_test.tabs[HISTORY_TAB]
    assert any("no longer exists" in warning.value for warning in tab.warning)
    assert any("cannot identify image file" in warning.value for warning in tab.warning)

    tab.selectbox(key="history_job").set_value(stored_jobs["single"]).run()
    tab = app_test.tabs[HISTORY_TAB]
    assert [button.label for button in tab.download_button] == ["Download cat.png"]
    assert len(tab.image) == 1

    tab.selectbox(key="history_job").set_value(stored_jobs["batch"]).run()
    assert [button.label for button in app_test.tabs[HISTORY_TAB].download_button] == ["Download shop.zip"]

    app_test.tabs[HISTORY_TAB].text_input(key="history_text").input("shop").run()
    assert listed_sources(app_test.tabs[HISTORY_TAB]) == ["shop/a.jpg, shop/b.jpg"]
    app_test.tabs[HISTORY_TAB].text_input(key="history_text").input("").run()
    app_test.tabs[HISTORY_TAB].selectbox(key="history_status").set_value("failed").run()
    assert listed_sources(app_test.tabs[HISTORY_TAB]) == ["dog.jpg"]
    app_test.tabs[HISTORY_TAB].selectbox(key="history_kind").set_value("batch").run()
    assert [info.value for info in app_test.tabs[HISTORY_TAB].info] == ["No job matches these filters."]

    tab = app_test.tabs[HISTORY_TAB]
    assert tab.button(key="history_clear").disabled
    tab.checkbox(key="history_confirm_clear").check().run()
    app_test.tabs[HISTORY_TAB].button(key="history_clear").click().run()
    tab = app_test.tabs[HISTORY_TAB]
    assert not app_test.exception
    assert [success.value for success in tab.success] == ["History cleared."]
    assert [info.value for info in tab.info] == ["No jobs yet: processed images and batches appear here."]
    assert HistoryStore(ui_env.history_db).count() == 0
