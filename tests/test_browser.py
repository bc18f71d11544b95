"""A real headless Chromium: upload through the form, see the prediction, open the dashboard.

Screenshots go to artifacts/screenshots/ (git-ignored). Skipped only where chromium or
chromedriver is not installed.
"""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from conftest import copy_models, encode_image, make_config
from webapp import ROOT, create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium and chromedriver are not installed")

SHOTS = ROOT / "artifacts" / "screenshots"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--window-size=1280,1000"]


@pytest.fixture(scope="module")
def base_url(built_models, tmp_path_factory):
    from werkzeug.serving import make_server

    models = copy_models(built_models, tmp_path_factory.mktemp("browser") / "models")
    app = create_app(make_config(models, TESTING=False))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def start_browser(scratch_dir, javascript: bool = True):
    """A headless Chromium whose temporary files (a singleton socket per run) land in
    `scratch_dir`, which pytest cleans, not in /tmp, where they were left behind."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    service = Service(CHROMEDRIVER, env=os.environ | {"TMPDIR": str(scratch_dir)})
    return webdriver.Chrome(service=service, options=options)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_browser(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "photo.png"
    path.write_bytes(encode_image("PNG", size=(160, 120), seed=4))
    return path


def screenshot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(800, min(height + 100, 4000)))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait_for(driver, css: str):
    """The element, once the page that has it has loaded (a click returns before that)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 20).until(ready.visibility_of_element_located((By.CSS_SELECTOR, css)))


def wait_until_hidden(driver, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(ready.invisibility_of_element_located((By.CSS_SELECTOR, css)))


def csp_violations(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_upload_and_see_prediction(browser, base_url, photo):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    assert browser.title == "Classify an image · Image classifier"
    browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
    preview = wait_for(browser, ".preview")  # drawn by app.js
    assert preview.get_attribute("src").startswith("data:image/png;base64,")
    screenshot(browser, "1-upload-form")

    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "Most likely" in wait_for(browser, ".verdict").text
    assert len(browser.find_elements(By.CSS_SELECTOR, ".bar-fill")) == 3
    uploaded = browser.find_element(By.CSS_SELECTOR, "img.uploaded")
    assert browser.execute_script("return arguments[0].naturalWidth", uploaded) == 160
    assert "tiny" in browser.find_element(By.CSS_SELECTOR, ".meta").text
    screenshot(browser, "2-prediction")
    assert csp_violations(browser) == []


def test_error_is_shown_on_the_form(browser, base_url, tmp_path, photo):
    from selenium.webdriver.common.by import By

    fake = tmp_path / "notes.jpg"
    fake.write_text("not a picture at all")
    browser.get(base_url + "/")
    file_input = browser.find_element(By.CSS_SELECTOR, "input[type=file]")
    file_input.send_keys(str(photo))
    wait_for(browser, ".preview")
    document = tmp_path / "doc.pdf"
    document.write_bytes(b"%PDF-1.4 not a picture")
    file_input.send_keys(str(document))  # the photo's preview must not stay beside this name
    assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "doc.pdf"
    wait_until_hidden(browser, ".preview")
    file_input.send_keys(str(fake))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "Unsupported file type" in wait_for(browser, ".errors").text
    assert browser.find_element(By.CSS_SELECTOR, "form.upload")
    screenshot(browser, "5-form-error")


def test_dashboard_and_model_page(browser, base_url):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/models")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.data tbody tr")
    assert len(rows) == 2
    screenshot(browser, "3-dashboard")

    browser.find_element(By.LINK_TEXT, "small").click()
    assert wait_for(browser, ".breadcrumb + h1").text == "small"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".chart svg")) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "td.heat")) == 16
    screenshot(browser, "4-model")
    assert csp_violations(browser) == []


def test_form_works_with_javascript_off(base_url, photo, tmp_path):
    from selenium.webdriver.common.by import By

    driver = start_browser(tmp_path, javascript=False)
    try:
        driver.get(base_url + "/")
        driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert "Most likely" in wait_for(driver, ".verdict").text
        driver.get(base_url + "/models/tiny")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".chart svg")) == 2
    finally:
        driver.quit()
