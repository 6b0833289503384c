"""The dashboard in a real headless Chromium, in Chinese and in English, at 1440×900 and at 390×844:
a photo is matted on upload, the before/after slider is there, choices survive a language switch, the
Chinese page shows no English, a bad file then a good one shows only the good result, the product shot
and the ID photo download at their stated pixel sizes, a batch fills a gallery, and a single-image job
downloads again from the history.

Screenshots of every tab in both languages are saved under test-artifacts/ui/ for people to look at.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests import support
from tests.support import ARTIFACTS

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP, PHONE = (1440, 900), (390, 844)
SCREENSHOTS = ARTIFACTS / "ui"
TAB_NAMES = {"zh": ["单图处理", "批量处理", "视频抠图", "历史记录", "高级设置"], "en": ["Single image", "Batch", "Video", "History", "Advanced"]}
#: Latin words a Chinese page may show: file types and video formats, units, product names, the names of the served models (on the
#: operator page, each explained in Chinese), "sha256", the photos' own names, and "English" on the language switch.
ALLOWED_LATIN = {"png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", "zip", "pt", "pth", "onnx", "mb", "kb", "gb",
                 "px", "dpi", "ms", "net", "netp", "cv", "unet", "triton", "cpu", "gpu", "cuda", "sha", "matting",
                 "preprocess", "postprocess", "flip", "stream", "anime", "girl", "english", "mp", "mov", "webm",
                 "mkv", "vp", "prores"}
#: Text nodes that are not words: icon ligatures, hidden inputs, scripts, styles.
VISIBLE_TEXT_SCRIPT = """
const skip = "[data-testid='stIconMaterial'], script, style, svg, [aria-hidden='true']";
const walker = document.createTreeWalker(document.querySelector("[data-testid='stApp']"), NodeFilter.SHOW_TEXT);
const texts = [];
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const element = node.parentElement;
  if (!node.nodeValue.trim() || !element || element.closest(skip)) continue;
  if (!element.getClientRects().length || getComputedStyle(element).visibility === "hidden") continue;
  texts.push(node.nodeValue.trim());
}
return texts;
"""


@pytest.fixture(scope="module")
def dashboard(triton, tmp_path_factory):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("Debian chromium and chromium-driver are missing: run the tests with `make test`")
    state = tmp_path_factory.mktemp("dashboard")
    with support.dashboard_process(triton, state, "browser") as url:
        yield url, state


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(driver, seconds: float = 120) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.5, ignored_exceptions=[StaleElementReferenceException])


def wait_until_idle(driver) -> None:
    """Streamlit shows its status widget while the script runs (hidden by our CSS, still in the page)."""
    time.sleep(0.5)
    wait(driver, 180).until(lambda driver: not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']"))


def open_page(driver, url: str, language: str, size: tuple[int, int] = DESKTOP) -> None:
    driver.set_window_size(*size)
    driver.get(f"{url}/?lang={language}")
    wait(driver).until(ready.presence_of_element_located((By.XPATH, f"//*[@role='tab'][contains(., '{TAB_NAMES[language][0]}')]")))
    wait(driver).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".st-key-paste-target input[type='file']"))
    wait_until_idle(driver)


def click_tab(driver, label: str) -> None:
    wait(driver).until(ready.element_to_be_clickable((By.XPATH, f"//*[@role='tab'][contains(., '{label}')]"))).click()
    wait_until_idle(driver)


def click_text(driver, text: str, within: str = "[data-testid='stMain']") -> None:
    """Click (a real click: downloads need one) the radio option, pill or button showing exactly ``text``;
    looked up again if Streamlit redraws it between the lookup and the click."""
    def clicked(driver) -> bool:
        target = driver.execute_script(
            "const [within, text] = arguments;"
            "return [...document.querySelectorAll(`${within} label, ${within} button`)]"
            "  .find(element => element.innerText.trim() === text && element.getClientRects().length);", within, text)
        if target is None:
            return False
        target.click()
        return True
    wait(driver).until(clicked)
    wait_until_idle(driver)


def upload_single(driver, path: Path) -> None:
    driver.find_element(By.CSS_SELECTOR, ".st-key-paste-target input[type='file']").send_keys(str(path))
    wait(driver).until(lambda driver: path.name in driver.find_element(By.CSS_SELECTOR, ".st-key-paste-target").text)
    wait_until_idle(driver)


def remove_single_upload(driver) -> None:
    driver.find_element(By.CSS_SELECTOR, ".st-key-paste-target [data-testid='stFileChipDeleteBtn'] button").click()
    wait_until_idle(driver)


def errors(driver) -> list[str]:
    return [alert.text for alert in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stAlertContentError']")]


def checked_options(driver) -> list[str]:
    """The labels of every selected radio option and pill on the page (read in one go: the page may rerender)."""
    return driver.execute_script(
        "const radios = [...document.querySelectorAll('input[type=radio]:checked')].map(input => input.closest('label').innerText);"
        "const pills = [...document.querySelectorAll(\"[data-testid='stButtonGroup'] button[aria-checked='true']\")].map(b => b.innerText);"
        "return [...radios, ...pills].map(text => text.trim());")


def english_words(driver, allowed: set[str] = frozenset()) -> set[str]:
    """Latin words in the visible text, leaving out server paths, file names and hashes (shown as they are)."""
    path_or_file = r"\S*/\S*|[^\s·,，：]+\.(png|jpe?g|webp|bmp|tiff?|gif|zip)\b|\b[0-9a-f]{16,}\b"
    texts = [re.sub(path_or_file, " ", text, flags=re.IGNORECASE) for text in driver.execute_script(VISIBLE_TEXT_SCRIPT)]
    words = {word for text in texts for word in re.findall(r"[A-Za-z]{2,}", text)}
    return {word for word in words if word.lower() not in ALLOWED_LATIN | allowed}


def download(driver, downloads: Path, button_text: str) -> Path:
    before = set(downloads.iterdir())
    click_text(driver, button_text)
    def finished(_):
        new = [path for path in set(downloads.iterdir()) - before if not path.name.endswith(".crdownload")]
        return new[0] if new else None
    return wait(driver, 60).until(finished)


def screenshot(driver, name: str, showing: str | None = None) -> None:
    """The page from its top (a click may have scrolled it), or scrolled to the element ``showing`` selects."""
    driver.execute_script("window.scrollTo(0, 0);"
                          "for (const element of document.querySelectorAll('*')) { if (element.scrollTop) element.scrollTop = 0; }"
                          "if (arguments[0]) document.querySelector(arguments[0])?.scrollIntoView();", showing)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def no_traceback(driver) -> None:
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']"), "a traceback reached the page"


@pytest.fixture(scope="module")
def broken_photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("broken") / "broken.jpg"
    path.write_bytes(support.truncated_jpeg())
    return path


@pytest.mark.parametrize("language", ["zh", "en"])
def test_single_image_on_desktop(browser, dashboard, downloads, broken_photo, language):
    url, _ = dashboard
    words = {"zh": {"color": "纯色背景", "white": "白色", "product": "电商白底主图", "id": "证件照", "other": "English",
                    "download": "下载结果（JPG）", "damaged": "文件已损坏"},
             "en": {"color": "Solid colour", "white": "White", "product": "White product shot", "id": "ID photo",
                    "other": "中文", "download": "Download result (JPG)", "damaged": "damaged"}}[language]
    other = "en" if language == "zh" else "zh"
    open_page(browser, url, language)
    assert browser.execute_script("return document.documentElement.lang") == {"zh": "zh-CN", "en": "en"}[language]

    # A damaged file: a plain error; then a good one: only its result, no second click anywhere.
    upload_single(browser, broken_photo)
    wait(browser).until(lambda driver: errors(driver))
    assert words["damaged"] in errors(browser)[0]
    remove_single_upload(browser)
    upload_single(browser, support.PHOTO)
    wait(browser, 180).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".cvunet-compare input[type='range']"))
    assert not errors(browser), "the damaged file's error stays with that file"
    no_traceback(browser)
    if language == "zh":
        assert not english_words(browser), "English on the Chinese page"
    screenshot(browser, f"single-{language}-desktop")

    # A white background, kept across a language switch and a reload (the language is in the URL).
    click_text(browser, words["color"])
    click_text(browser, words["white"])
    click_text(browser, words["other"])
    wait(browser).until(lambda driver: f"lang={other}" in driver.current_url)
    other_words = {"zh": ("纯色背景", "白色"), "en": ("Solid colour", "White")}[other]
    wait(browser, 30).until(lambda driver: set(other_words) <= set(checked_options(driver)),
                            "the switch kept the white background")
    browser.refresh()
    wait(browser).until(ready.presence_of_element_located((By.XPATH, f"//*[@role='tab'][contains(., '{TAB_NAMES[other][0]}')]")))
    click_text(browser, {"zh": "中文", "en": "English"}[language])

    # The product shot and the ID photo download at their stated pixel sizes.
    upload_single(browser, support.PHOTO)
    for mode, size in (("product", (800, 800)), ("id", (295, 413))):
        click_text(browser, words[mode])
        wait(browser, 180).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".st-key-single-viewer [data-testid='stImage'] img"))
        saved = download(browser, downloads, words["download"])
        with Image.open(saved) as image:
            assert (image.format, image.size) == ("JPEG", size), saved.name
        screenshot(browser, f"single-{language}-{mode}")
    click_text(browser, {"zh": "透明背景", "en": "Transparent background"}[language])
    no_traceback(browser)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_single_image_on_a_phone(browser, dashboard, language):
    url, _ = dashboard
    open_page(browser, url, language, PHONE)
    switch = browser.find_element(By.CSS_SELECTOR, "[data-testid='stButtonGroup']")
    assert switch.is_displayed() and switch.rect["y"] < PHONE[1], "the language switch is on the first screen"
    upload_single(browser, support.PHOTO)
    wait(browser, 180).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".cvunet-compare input[type='range']"))
    bottom = browser.execute_script(
        "const button = document.querySelector('.st-key-single_download_result');"
        "const main = document.querySelector('[data-testid=stMain]');"
        "return button.getBoundingClientRect().bottom + (main ? main.scrollTop : 0);")
    assert bottom < 2 * PHONE[1], f"the downloads end at {bottom:.0f} px, past the second screen"
    if language == "zh":
        assert not english_words(browser), "English on the Chinese page"
    screenshot(browser, f"single-{language}-phone")


def test_a_pasted_image_is_matted(browser, dashboard):
    """Ctrl+V with an image on the clipboard fills the drop zone (ui/assets/page.js), named after the paste."""
    url, _ = dashboard
    open_page(browser, url, "en")
    photo = base64.b64encode(support.encode(support.photo((200, 150)), "PNG")).decode()
    browser.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const clipboard = new DataTransfer();
        clipboard.items.add(new File([bytes], "image.png", { type: "image/png" }));
        document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: clipboard, bubbles: true }));
    """, photo)
    wait(browser).until(lambda driver: re.search(r"pasted-\d{6}\.png", driver.find_element(By.CSS_SELECTOR, ".st-key-paste-target").text))
    wait_until_idle(browser)
    wait(browser, 180).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".cvunet-compare input[type='range']"))
    assert "200 × 150 px" in browser.find_element(By.CSS_SELECTOR, "[data-testid='stMain']").text
    no_traceback(browser)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_batch_fills_a_gallery_with_thumbnails_and_plain_errors(browser, dashboard, broken_photo, tmp_path, language):
    url, _ = dashboard
    words = {"zh": ("批量处理", "开始批量处理", "文件已损坏"), "en": ("Batch", "Start batch", "damaged")}[language]
    photos = [tmp_path / "商品一.jpg", tmp_path / "product-2.png"]
    photos[0].write_bytes(support.encode(support.photo((160, 120)), "JPEG", quality=90))
    photos[1].write_bytes(support.encode(support.photo((120, 160)), "PNG"))
    open_page(browser, url, language)
    click_tab(browser, words[0])
    uploader = browser.find_element(By.CSS_SELECTOR, ".st-key-batch_uploads input[type='file']")
    uploader.send_keys("\n".join(str(path) for path in [*photos, broken_photo]))
    wait(browser).until(lambda driver: "broken.jpg" in driver.find_element(By.CSS_SELECTOR, ".st-key-batch_uploads").text)
    wait_until_idle(browser)
    click_text(browser, words[1])
    gallery = wait(browser, 240).until(lambda driver: next(iter(driver.find_elements(By.CSS_SELECTOR, ".st-key-batch_gallery")), None))
    assert len(gallery.find_elements(By.CSS_SELECTOR, "[data-testid='stImage'] img")) >= len(photos), "a thumbnail per result"
    assert all(path.name in gallery.text for path in [*photos, broken_photo]), "original names on the cards"
    assert words[2] in gallery.text and "header" not in gallery.text, "the broken file's reason, in plain words"
    no_traceback(browser)
    if language == "zh":
        assert not english_words(browser, {"product", "broken"}), "English on the Chinese batch tab"
    screenshot(browser, f"batch-{language}-gallery", showing=".st-key-batch_gallery")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_single_image_job_downloads_again_from_the_history(browser, dashboard, downloads, language):
    url, _ = dashboard
    open_page(browser, url, language)
    upload_single(browser, support.PHOTO)
    wait(browser, 180).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".cvunet-compare input[type='range']"))
    click_tab(browser, TAB_NAMES[language][3])
    saved = download(browser, downloads, {"zh": "下载 anime-girl-1-抠图.png", "en": "Download anime-girl-1-cutout.png"}[language])
    with Image.open(saved) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (850, 601))
    no_traceback(browser)
    screenshot(browser, f"history-{language}")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_tab_renders_in_both_languages(browser, dashboard, language, size):
    url, _ = dashboard
    open_page(browser, url, language, size)
    device = "desktop" if size == DESKTOP else "phone"
    for label in TAB_NAMES[language][1:]:
        click_tab(browser, label)
        no_traceback(browser)
        if language == "zh":
            assert not english_words(browser), f"English on the Chinese {label} tab: {sorted(english_words(browser))}"
        screenshot(browser, f"{TAB_NAMES['en'][TAB_NAMES[language].index(label)].split()[0].lower()}-{language}-{device}")
