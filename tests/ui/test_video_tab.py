"""The 视频抠图 / Video tab against the real Triton: through Streamlit's AppTest (a generated clip set on the
uploader, the job polled by re-running the page until done, its download, a refused file in a plain
sentence, the History row), and in a real headless Chromium (the page polls by itself, the result
downloads, the Chinese page shows no English but format names).

Every refusal of matting.video maps to its own plain sentence, in both languages.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from client.video_jobs import VideoJobs
from matting.video import VideoError, VideoLimits, probe
from tests.support import dashboard_process
from tests.ui import test_browser
from tests.ui.test_browser import click_tab, click_text, download, english_words, no_traceback, open_page, screenshot, wait, \
    wait_until_idle
from tests.ui.test_history import texts
from tests.video_clips import FRAMES, SIZE, decoded_alphas, plain_frame, write_clip
from ui import i18n
from ui.context import _video_jobs
from ui.history import HistoryStore
from ui.reasons import reason_key
from ui.state import widget_key
from ui.tabs.video import STRINGS

VIDEO_TAB, HISTORY_TAB = 2, 3
#: A job of FRAMES small frames on the CPU Triton takes seconds; this is the most it may take.
JOB_TIMEOUT_S = 240
#: Format and codec names a Chinese page may show besides tests/ui/test_browser.ALLOWED_LATIN
#: (WebM, MOV, MP4, MKV, VP9, ProRes), and the clip's own name.
VIDEO_LATIN = {"webm", "mov", "mp", "mkv", "vp", "prores", "clip", "matted"}
#: The result as Chromium saves it: a second download of the same name gets a number.
DOWNLOADED = re.compile(r"clip-matted( \(\d+\))?\.webm")


#: The browser tests' Chromium and its download folder.
browser, downloads = test_browser.browser, test_browser.downloads


@pytest.fixture(autouse=True)
def stop_video_workers():
    """Each test's dashboard has its own jobs folder, hence its own worker: stop it after the test."""
    yield
    _video_jobs.clear()


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    write_clip(path, paint=plain_frame)
    return path


def video_tab(app):
    return app.tabs[VIDEO_TAB]


def upload(app, name: str, data: bytes, mime: str = "video/mp4"):
    app.file_uploader(key="video_upload").set_value((name, data, mime))
    return app.run()


def start(app):
    app.button(key="video_start").click()
    return app.run()


def shown_job_id(app) -> str:
    return app.session_state["video_shown_job"]


def run_until_finished(app, ui_env):
    """Re-run the page (as its polling fragment would) until the shown job is done or failed."""
    jobs = VideoJobs(ui_env.video_jobs, ui_env.triton.grpc_url)  # reads the folder; its worker is not started
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while jobs.get(shown_job_id(app)).status in ("queued", "running"):
        assert time.monotonic() < deadline, f"the job did not finish in {JOB_TIMEOUT_S} s"
        time.sleep(1)
        app.run()
        assert not app.exception
    app.run()
    return jobs.get(shown_job_id(app)), jobs


def history_rows(ui_env, seconds: float = 10) -> list:
    """The History's jobs; the row is written by the worker right after the job's status, so allow a moment."""
    store, deadline = HistoryStore(ui_env.history_db), time.monotonic() + seconds
    while not store.list() and time.monotonic() < deadline:
        time.sleep(0.2)
    return store.list()


def test_every_string_is_in_both_languages():
    assert STRINGS["zh"].keys() == STRINGS["en"].keys()
    assert i18n.COMMON["zh"].keys() == i18n.COMMON["en"].keys()


def bad_files(folder: Path, clip: Path) -> dict[str, tuple[Path, VideoLimits]]:
    """(file, limits) that probe refuses, by the reason the user should read."""
    (folder / "notes.mp4").write_text("this is not a video")
    (folder / "empty.mp4").write_bytes(b"")
    return {
        "reason_not_video": (folder / "notes.mp4", VideoLimits()),
        "reason_video_empty": (folder / "empty.mp4", VideoLimits()),
        "reason_video_too_large": (clip, VideoLimits(max_width=100, max_height=100)),
        "reason_video_too_long": (clip, VideoLimits(max_duration_s=1)),
        "reason_video_file_too_large": (clip, VideoLimits(max_bytes=100)),
    }


@pytest.mark.parametrize("key", ["reason_not_video", "reason_video_empty", "reason_video_too_large",
                                 "reason_video_too_long", "reason_video_file_too_large"])
def test_every_video_refusal_has_its_own_plain_reason(tmp_path, clip, key):
    path, limits = bad_files(tmp_path, clip)[key]
    with pytest.raises(VideoError) as refused:
        probe(path, limits)
    assert reason_key(str(refused.value), video=True) == key
    assert not re.search(r"[A-Za-z]{2,}", re.sub(r"\{\w+\}|MP4|MOV|WebM|MKV|GIF|MB", "", i18n.COMMON["zh"][key]))


def test_an_unknown_video_failure_does_not_ask_for_another_photo():
    assert reason_key("something new went wrong", video=True) == "reason_video_other"
    assert reason_key("internal server error: boom", video=True) == "reason_server_fault"


def test_a_clip_is_matted_in_the_background_downloaded_and_recorded(app_test, ui_env, clip):
    app = upload(app_test, "clip.mp4", clip.read_bytes())
    assert [radio.value for radio in video_tab(app).radio if radio.key == widget_key("video_format", "en")] == ["webm"]
    assert any("Up to 10 minutes, 3840×2160 pixels and 200 MB" in caption.value for caption in video_tab(app).caption)
    app = start(app)
    assert not app.exception and not video_tab(app).error
    job, jobs = run_until_finished(app, ui_env)

    assert (job.status, job.frames_done, job.frames_total, (job.width, job.height)) == ("done", FRAMES, FRAMES, SIZE)
    tab = video_tab(app)
    assert not app.exception and not tab.error
    [button] = tab.download_button
    assert (button.label, button.key) == ("Download result (WebM)", f"video_download_{job.id}")
    result = jobs.result_path(job.id)
    alphas = decoded_alphas(result)
    assert len(alphas) == FRAMES, "every frame of the clip, with its alpha"
    assert alphas[0][SIZE[1] // 2, 40] > 200 and alphas[0][2, SIZE[0] - 3] < 50, "the disc kept, the background cleared"
    assert tab.get("video"), "a player for the WebM"
    assert any(success.value.startswith("Done in") for success in tab.success)

    [row] = history_rows(ui_env)
    assert (row.kind, row.status, row.sources, row.image_size) == ("video", "ok", ["clip.mp4"], f"{SIZE[0]}×{SIZE[1]} · {FRAMES}")
    assert row.options == {"format": "webm", "model": "u2net"} and (row.model, row.model_version) == ("u2net", "1")
    assert row.output_path == str(result) and row.thumbnail and row.duration_ms > 0 and row.error is None

    app.run()
    history = app.tabs[HISTORY_TAB]
    table = history.dataframe[0].value
    assert (list(table["kind"]), list(table["sources"]), list(table["options"])) == (
        ["Video"], ["clip.mp4"], ["Transparent WebM"])
    assert [button.label for button in history.download_button] == ["Download clip-matted.webm"]
    assert f"Video: {SIZE[0]}×{SIZE[1]} px · {FRAMES} frames" in [caption.value for caption in history.caption]
    history.selectbox(key="history_kind.en").set_value("video").run()
    assert list(app.tabs[HISTORY_TAB].dataframe[0].value["kind"]) == ["Video"]


def test_an_mp4_on_a_colour_has_that_colour_behind_the_subject(app_test, ui_env, clip):
    app = upload(app_test, "clip.mp4", clip.read_bytes())
    video_tab(app).radio(key=widget_key("video_format", "en")).set_value("mp4").run()
    app.pills(key=widget_key("video_swatch", "en")).set_value("black").run()
    app = start(app)
    job, jobs = run_until_finished(app, ui_env)
    assert job.status == "done" and job.bg_color == "#000000"
    assert [button.label for button in video_tab(app).download_button] == ["Download result (MP4)"]
    import av  # noqa: PLC0415 - only this test reads the MP4 back

    with av.open(str(jobs.result_path(job.id))) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == FRAMES
    assert frames[0][2, SIZE[0] - 3].max() < 40 and frames[0][SIZE[1] // 2, 40].min() > 150, "black around the bright disc"
    [row] = history_rows(ui_env)
    assert row.options == {"format": "mp4", "model": "u2net", "bg_color": "#000000"}
    app.run()
    assert list(app.tabs[HISTORY_TAB].dataframe[0].value["options"]) == ["Black background · MP4 on a background"]


def test_a_text_file_named_mp4_is_refused_in_a_plain_chinese_sentence(app_test, ui_env):
    app_test.session_state["language"] = "zh"
    app = upload(app_test.run(), "说明.mp4", "这不是视频".encode())
    app = start(app)
    assert not app.exception
    assert [error.value for error in video_tab(app).error] == [
        "无法处理该文件：这不是可以识别的视频，或文件已损坏。请上传 MP4、MOV、WebM、MKV 或 GIF 文件。"]
    assert list(ui_env.video_jobs.iterdir()) == [], "no job left behind"
    assert HistoryStore(ui_env.history_db).count() == 0, "a refused upload is no job"


def test_the_chinese_tab_shows_its_choices_in_chinese(app_test):
    app_test.session_state["language"] = "zh"
    app = app_test.run()
    tab = video_tab(app)
    assert not app.exception
    assert tab.radio(key=widget_key("video_format", "zh")).options == [
        "透明背景 WebM（VP9，网页/剪辑软件）", "透明背景 MOV（ProRes 4444，专业剪辑）",
        "白底/彩色背景 MP4（H.264，适合直接发布，电商主图视频）", "PNG 序列（ZIP）"]
    shown = " ".join(texts(tab) + [radio.label for radio in tab.radio] + [info.value for info in tab.info]
                     + [uploader.label for uploader in tab.file_uploader])
    assert set(re.findall(r"[A-Za-z]{2,}", shown)) <= {"MP", "MOV", "WebM", "MKV", "GIF", "PNG", "ZIP", "MB", "VP",
                                                      "ProRes", "Net", "Netp"}


@pytest.fixture(scope="module")
def video_dashboard(triton, tmp_path_factory):
    """A dashboard process of its own: its video jobs in a private folder."""
    with dashboard_process(triton, tmp_path_factory.mktemp("video-dashboard"), "video-browser") as url:
        yield url


@pytest.mark.parametrize("language", ["zh", "en"])
def test_in_the_browser_the_page_polls_until_the_result_downloads(browser, video_dashboard, downloads, clip, language):
    from selenium.webdriver.common.by import By  # noqa: PLC0415 - as the browser tests do

    words = {"zh": ("视频抠图", "开始处理", "下载结果（WebM）", "历史记录", "下载 clip-matted.webm"),
             "en": ("Video", "Start", "Download result (WebM)", "History", "Download clip-matted.webm")}[language]
    open_page(browser, video_dashboard, language)
    click_tab(browser, words[0])
    if language == "zh":
        assert not english_words(browser, VIDEO_LATIN), "English on the Chinese video tab"
    browser.find_element(By.CSS_SELECTOR, ".st-key-video_upload input[type='file']").send_keys(str(clip))
    wait(browser).until(lambda driver: clip.name in driver.find_element(By.CSS_SELECTOR, ".st-key-video_upload").text)
    wait_until_idle(browser)
    click_text(browser, words[1])
    wait(browser, JOB_TIMEOUT_S).until(lambda driver: driver.find_elements(By.XPATH, f"//button[contains(., '{words[2]}')]"))
    saved = download(browser, downloads, words[2])
    assert DOWNLOADED.fullmatch(saved.name) and len(decoded_alphas(saved)) == FRAMES
    wait(browser).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "[data-testid='stVideo']"))
    no_traceback(browser)
    if language == "zh":
        assert not english_words(browser, VIDEO_LATIN), "English on the Chinese video tab"
    screenshot(browser, f"video-{language}-desktop")

    click_tab(browser, words[3])
    again = download(browser, downloads, words[4])
    assert DOWNLOADED.fullmatch(again.name) and len(decoded_alphas(again)) == FRAMES
    no_traceback(browser)
