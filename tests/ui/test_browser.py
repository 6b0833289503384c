"""The dashboard in a real headless Chromium: upload the fixture, process it, see the result.

Screenshots of every tab are saved under test-artifacts/ui/ for people to look at.
"""

from __future__ import annotations

import os
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from launch.processes import free_port
from launch.processes import start_service
from launch.stack import dashboard_command, dashboard_env
from matting.paths import PROJECT_ROOT
from tests import support
from tests.support import ARTIFACTS

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1100"]
SCREENSHOTS = ARTIFACTS / "ui"


@pytest.fixture(scope="module")
def dashboard_url(triton, tmp_path_factory):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("Debian chromium and chromium-driver are missing: run the tests with `make test`")
    state = tmp_path_factory.mktemp("dashboard")
    (state / "data").mkdir()
    (state / "outputs").mkdir()
    port = free_port()
    env = {**dashboard_env(triton), "CVUNET_HISTORY_DB": str(state / "history.sqlite3"),
           "CVUNET_OUTPUTS_DIR": str(state / "outputs"),
           "CVUNET_UI_ROOTS": os.pathsep.join([str(state / "data"), str(state / "outputs")])}
    process = start_service("the dashboard", dashboard_command("127.0.0.1", port), f"http://127.0.0.1:{port}/_stcore/health",
                            ARTIFACTS / f"ui-browser-{port}.log", PROJECT_ROOT, env)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(driver, seconds: float = 120) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.5)


def wait_until_idle(driver) -> None:
    """Streamlit shows its status widget ("Running…") while the script runs."""
    wait(driver).until(lambda driver: not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']"))


def click_tab(driver, label: str) -> None:
    tab = wait(driver).until(ready.element_to_be_clickable((By.XPATH, f"//*[@role='tab'][contains(., '{label}')]")))
    tab.click()


def test_single_image_in_a_real_browser(browser, dashboard_url):
    browser.get(dashboard_url)
    wait(browser).until(ready.presence_of_element_located((By.XPATH, "//*[@role='tab'][contains(., '单图处理')]")))
    wait_until_idle(browser)  # a file sent while the first run still renders can be dropped with its widget
    uploader = wait(browser).until(ready.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stFileUploader']")))
    uploader.find_element(By.CSS_SELECTOR, "input[type='file']").send_keys(str(support.PHOTO))
    wait(browser).until(lambda driver: support.PHOTO.name in uploader.text)
    wait_until_idle(browser)
    start = wait(browser).until(ready.element_to_be_clickable((By.XPATH, "//button[contains(., '开始处理')]")))
    start.click()
    # The result panels: the cut-out over a checkerboard, the matte, original vs result.
    try:
        wait(browser, 180).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "[data-testid='stImage'] img")) >= 3)
    finally:
        browser.save_screenshot(str(SCREENSHOTS / "1-single-image.png"))
    wait(browser).until(ready.presence_of_element_located((By.XPATH, "//*[contains(., 'ms')]")))
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']"), "a traceback reached the page"

    for index, label in enumerate(["批量处理", "历史记录", "高级设置"], start=2):
        click_tab(browser, label)
        browser.implicitly_wait(1)
        wait(browser).until(lambda driver: not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stSpinner']"))
        assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']"), f"a traceback on {label}"
        if label == "历史记录":
            wait(browser).until(ready.presence_of_element_located((By.XPATH, f"//*[contains(., '{support.PHOTO.name}')]")))
        browser.save_screenshot(str(SCREENSHOTS / f"{index}-{['batch', 'history', 'advanced'][index - 2]}.png"))
