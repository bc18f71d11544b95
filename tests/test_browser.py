"""A real headless Chromium: upload through the form, see the prediction, open the dashboard.

Screenshots go to artifacts/screenshots/ (git-ignored). Skipped only where chromium or
chromedriver is not installed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import threading
import urllib.parse
from collections import Counter

import numpy as np
import pytest

from conftest import (TINY_CLASSES, contrast, copy_models, damage, encode_image, make_config, red_top_left,
                      save_as, top_left_model)
from webapp import create_app
from webapp.config import ROOT
from webapp.dashboard import HEAT_LEVELS
from trainer.formatting import filesize

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium and chromedriver are not installed")

SHOTS = ROOT / "artifacts" / "screenshots"
# A real training run's kind of names: one long word each, which must wrap on a phone (a German
# compound too long for the confusion matrix's headers even between underscores: at any letter).
LONG_NAME = "efficientnet_lite0_animals10_finetuned_224px_seed0_v2"
LONG_DATA_SET = "animals10_photos_of_the_2024_holidays_resized"
LONG_CLASSES = ["domestic_short_haired_cat", "golden_retriever_dog_puppy", "great_crested_grebe_bird",
                "donaudampfschifffahrtsgesellschaft_steamer"]
# A long run's curves: three-digit epochs (110: 100 is close), a 100% tick, six-character loss ticks.
LONG_HISTORY = {"loss": [0.0125 - 0.000005 * e for e in range(110)], "val_loss": [0.0123] * 110,
                "accuracy": [min(1.0, 0.9 + e / 1000) for e in range(110)], "val_accuracy": [0.95] * 110}
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--window-size=1280,1000"]


@pytest.fixture(scope="module")
def served_models(built_models, tmp_path_factory):
    return copy_models(built_models, tmp_path_factory.mktemp("browser") / "models")


@contextlib.contextmanager
def serving(app):
    """The WSGI app served on a free port of 127.0.0.1, in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def base_url(served_models):
    models = served_models
    # Long names and values, as a real training run's card has, for the phone-width page.
    card = json.loads((models / "small.json").read_text())
    card["hyperparameters"].update(activation_after_sum=False, logit_scale=1 / 9)
    (models / "small.json").write_text(json.dumps(card))
    long_card = card | {"name": LONG_NAME, "classes": LONG_CLASSES, "dataset": LONG_DATA_SET,
                        "history": LONG_HISTORY}
    (models / f"{LONG_NAME}.json").write_text(json.dumps(long_card))
    shutil.copy(models / "small.h5", models / f"{LONG_NAME}.h5")
    with serving(create_app(make_config(models, TESTING=False))) as url:
        yield url


def start_browser(tmp_path_factory, javascript: bool = True, flags=()):
    """A headless Chromium, with `flags` besides FLAGS, whose temporary files (a singleton
    socket per run) land in a folder that pytest cleans, not in /tmp, where they were left
    behind. A short-named one: the socket's path must fit in 108 bytes, which a test's own
    tmp_path under a pytest-xdist worker's folder does not."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, *flags]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    scratch = tmp_path_factory.mktemp("chromium")
    service = Service(CHROMEDRIVER, env=os.environ | {"TMPDIR": str(scratch)})
    return webdriver.Chrome(service=service, options=options)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_browser(tmp_path_factory)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "photo.png"
    path.write_bytes(encode_image("PNG", size=(160, 120), seed=4))
    return path


def screenshot(driver, name, width=1280):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, 800)  # the page's own height, not the last screenshot's window
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(800, min(height + 100, 4000)))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait_for(driver, css: str):
    """The element, once it is shown (app.js can draw it after the page has loaded)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 20).until(ready.visibility_of_element_located((By.CSS_SELECTOR, css)))


def sideways_scroll(driver) -> int:
    """How many pixels the page is wider than the window: 0 or less where it need not scroll sideways."""
    return driver.execute_script("return document.scrollingElement.scrollWidth - document.documentElement.clientWidth")


def change_page(driver, action):
    """Calls `action` (a link's or a button's click, the driver's back) and returns once the
    page it was on is gone: until then, waiting for an element can find it on that page while it
    is being left, and then fail ("Node with given id does not belong to the document")."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    action()

    def left(_):
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        return False

    # Other errors can come while the page is being replaced: they mean "not yet".
    WebDriverWait(driver, 20, ignored_exceptions=[WebDriverException]).until(left)


def wait_until_hidden(driver, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(ready.invisibility_of_element_located((By.CSS_SELECTOR, css)))


def csp_violations(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_upload_and_see_prediction(browser, base_url, photo):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(base_url + "/")
    assert browser.title == "Classify an image · Image classifier"
    # The first Tab shows a link past the header to the page's content.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content" and skip.rect["x"] >= 0 and skip.get_attribute("href").endswith("#content")
    assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "Choose an image, drop it here or paste it"
    file_input = browser.find_element(By.CSS_SELECTOR, "input[type=file]")
    assert file_input.accessible_name == "Choose an image, drop it here or paste it"  # the formats are its description
    file_input.send_keys(str(photo))
    preview = wait_for(browser, ".preview")  # drawn by app.js
    assert preview.get_attribute("src").startswith("data:image/png;base64,")
    screenshot(browser, "1-upload-form")

    change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
    verdict = wait_for(browser, ".verdict").text
    assert browser.find_element(By.CSS_SELECTOR, ".verdict strong").text in TINY_CLASSES
    assert len(browser.find_elements(By.CSS_SELECTOR, ".bar-fill")) == 3
    uploaded = browser.find_element(By.CSS_SELECTOR, "img.uploaded")
    assert browser.execute_script("return arguments[0].naturalWidth", uploaded) == 160
    assert "tiny" in browser.find_element(By.CSS_SELECTOR, ".meta").text
    screenshot(browser, "2-prediction")
    assert csp_violations(browser) == []

    # Back to the answer from a link on it: shown again, not "Confirm Form Resubmission".
    change_page(browser, browser.find_element(By.CSS_SELECTOR, ".meta a").click)
    wait_for(browser, ".breadcrumb")
    change_page(browser, browser.back)
    assert wait_for(browser, ".verdict").text == verdict
    # Back to the form, which the back/forward cache restores as it was left (uploading): usable again.
    change_page(browser, browser.back)
    button = wait_for(browser, "button[type=submit]")
    assert button.text == "Classify" and button.get_attribute("aria-disabled") is None
    assert browser.find_element(By.CSS_SELECTOR, "form.upload").get_attribute("aria-busy") is None


def test_see_what_the_answer_rests_on(browser, base_url, served_models, tmp_path):
    from selenium.webdriver.common.by import By

    save_as(served_models, top_left_model(), "corner")
    try:
        picture = tmp_path / "corner.png"
        picture.write_bytes(red_top_left(120))
        browser.get(base_url + "/?model=corner")
        browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(picture))
        checkbox = browser.find_element(By.ID, "explain")
        assert checkbox.accessible_name == "Show what the answer rests on" and not checkbox.is_selected()
        browser.find_element(By.CSS_SELECTOR, "label[for=explain]").click()
        change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        lit = wait_for(browser, ".occlusion img")
        assert wait_for(browser, ".verdict strong").text == "cat"
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", lit) == 120
        assert "lowers cat from" in browser.find_element(By.CSS_SELECTOR, ".occlusion figcaption").text
        assert browser.find_element(By.ID, "explain").is_selected()  # kept for the next image
        screenshot(browser, "2b-what-the-answer-rests-on")
        assert csp_violations(browser) == []
    finally:
        for suffix in (".h5", ".json"):
            (served_models / f"corner{suffix}").unlink()


def test_compare_every_model_on_one_picture(browser, base_url, served_models, photo):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    damage(served_models, "broken")
    try:
        browser.get(base_url + "/")
        explain = browser.find_element(By.ID, "explain")
        explain.click()  # ticked for one model, then every model chosen: explaining is not offered
        Select(browser.find_element(By.ID, "model")).select_by_visible_text("All models (compare)")
        # broken, listed as unusable, is not counted, and not asked.
        compare_line = ("The 3 models answer the same picture side by side, the most accurate first within each data "
                        "set.")
        assert browser.find_element(By.ID, "model-classes").text == compare_line  # from app.js
        note = browser.find_element(By.ID, "explain-note")
        assert not explain.is_enabled() and note.text == "(for one model and one picture)"  # why, in words
        Select(browser.find_element(By.ID, "model")).select_by_visible_text("tiny")
        assert explain.is_enabled() and explain.is_selected()  # as it was left, for one model
        assert not note.is_displayed()
        Select(browser.find_element(By.ID, "model")).select_by_visible_text("All models (compare)")
        browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
        change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        headline = wait_for(browser, "h1").text
        assert len(browser.find_elements(By.CSS_SELECTOR, "img.uploaded")) == 1
        answers = browser.find_elements(By.CSS_SELECTOR, ".answer")
        # The long-named copy of small was trained on its own data set, which comes first by name, as on /models.
        assert [answer.find_element(By.CSS_SELECTOR, "h2 a").accessible_name for answer in answers] == [
            LONG_NAME, "small", "tiny"]
        verdicts = []
        for answer, data_set in zip(answers, [LONG_DATA_SET, "synthetic", "synthetic"]):
            verdicts.append(answer.find_element(By.CSS_SELECTOR, ".verdict strong").text)
            assert len(answer.find_elements(By.CSS_SELECTOR, ".bar-fill")) == 3
            assert answer.find_element(By.CSS_SELECTOR, ".meta").text.startswith(
                f"Trained on {data_set}. Held-out accuracy ")
        assert verdicts[2] in TINY_CLASSES
        assert headline == "The 3 models know different classes: " + ", ".join(
            f"{count} {'says' if count == 1 else 'say'} {v}" for v, count in Counter(verdicts).most_common()) + "."
        # The form below asks all of them again.
        assert Select(browser.find_element(By.ID, "model")).first_selected_option.text == "All models (compare)"
        assert browser.find_element(By.ID, "model-classes").text == compare_line
        screenshot(browser, "2c-compare")
        assert csp_violations(browser) == []
        browser.set_window_size(390, 844)
        assert sideways_scroll(browser) <= 0
        screenshot(browser, "2d-phone-compare", width=390)
    finally:
        browser.set_window_size(1280, 1000)
        for suffix in (".h5", ".json"):
            (served_models / f"broken{suffix}").unlink()


def test_error_is_shown_on_the_form(browser, base_url, tmp_path, photo):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    fake = tmp_path / "notes.jpg"
    fake.write_text("not a picture at all")
    browser.get(base_url + "/")
    file_input = browser.find_element(By.CSS_SELECTOR, "input[type=file]")
    file_input.send_keys(str(photo))
    wait_for(browser, ".preview")
    document = tmp_path / "doc.pdf"
    document.write_bytes(b"%PDF-1.4 not a picture")
    # chromedriver adds to a multiple input's files, where a person's new choice replaces them.
    file_input.clear()
    file_input.send_keys(str(document))  # the photo's preview must not stay beside this name
    assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "doc.pdf"
    wait_until_hidden(browser, ".preview")
    assert wait_for(browser, ".errors").text == "doc.pdf is not an image."  # said before uploading
    file_input.clear()
    file_input.send_keys(str(fake))  # named like a JPEG: only the server can tell
    wait_until_hidden(browser, ".errors")
    change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
    assert "Unsupported file type" in wait_for(browser, ".errors").text
    file_input = browser.find_element(By.CSS_SELECTOR, "input[type=file]")
    assert file_input.get_attribute("aria-invalid") == "true"
    # Where the error is read out; Chromium focuses at its next frame, maybe after the page has loaded.
    WebDriverWait(browser, 20).until(lambda _: browser.execute_script("return document.activeElement") == file_input)
    screenshot(browser, "5-form-error")


def test_a_model_gone_since_the_page_came_is_said_at_the_model_selector(browser, base_url, photo):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base_url + "/")
    # As if its file had been deleted after the page was sent.
    browser.execute_script("const select = document.querySelector('select');"
                           "select.options[select.selectedIndex].value = 'gone_since'")
    browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
    change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
    assert "gone_since" in wait_for(browser, ".errors").text
    select = browser.find_element(By.CSS_SELECTOR, "select")
    assert select.get_attribute("aria-invalid") == "true"
    assert browser.find_element(By.CSS_SELECTOR, "input[type=file]").get_attribute("aria-invalid") is None
    WebDriverWait(browser, 20).until(lambda _: browser.execute_script("return document.activeElement") == select)
    # The next picture chosen is another try: the model's error, and its mark, go.
    browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
    wait_until_hidden(browser, ".errors")
    assert select.get_attribute("aria-invalid") is None
    assert select.get_attribute("aria-describedby") == "model-classes"


def test_back_to_a_form_loaded_again_shows_what_the_browser_restored(tmp_path_factory, base_url, photo):
    """Without the back/forward cache (off, full, or timed out) Back loads the form again, and the
    browser restores its files and choices after "load": the preview, the model's classes and the
    explain box must follow them, or explain is offered for several pictures and then refused."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = start_browser(tmp_path_factory, flags=["--disable-features=BackForwardCache"])
    try:
        driver.get(base_url + "/")
        Select(driver.find_element(By.ID, "model")).select_by_value("small")
        driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(f"{photo}\n{photo}")
        change_page(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        wait_for(driver, ".answers")
        change_page(driver, driver.back)
        wait_for(driver, "button[type=submit]")
        assert driver.execute_script("return document.getElementById('image').files.length") == 2  # restored
        assert driver.find_element(By.CSS_SELECTOR, ".drop-text").text == "2 images: photo.png, photo.png"
        assert driver.find_element(By.ID, "model-classes").text.startswith("small recognises")
        assert not driver.find_element(By.ID, "explain").is_enabled()
    finally:
        driver.quit()


def test_dashboard_and_model_page(browser, base_url):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/models")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.data tbody tr")
    assert len(rows) == 3
    screenshot(browser, "3-dashboard")
    # A scrolling box is a Tab stop only while its table overflows it (the long data set name's does here).
    focusable_and_scrolling = """return Array.from(document.querySelectorAll('.table-scroll')).map(box =>
        [box.tabIndex === 0, box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight])"""
    assert browser.execute_script(focusable_and_scrolling) == [[True, True], [False, False]]
    browser.set_window_size(390, 844)
    try:
        assert browser.execute_script(focusable_and_scrolling) == [[True, True], [True, True]]
    finally:
        browser.set_window_size(1280, 1000)

    change_page(browser, browser.find_element(By.LINK_TEXT, "small").click)
    assert wait_for(browser, ".breadcrumb + h1").text == "small"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".chart .plot")) == 2
    # Training and validation told apart by more than colour: validation's line is dashed.
    assert browser.execute_script("""return Array.from(document.querySelectorAll('.chart .series-1:not(.dot)'))
        .map(line => getComputedStyle(line).strokeDasharray)""") == ["6px, 3px"] * 4
    assert browser.execute_script(
        "return getComputedStyle(document.querySelector('.chart .line.series-0')).strokeDasharray") == "none"
    assert len(browser.find_elements(By.CSS_SELECTOR, "td.heat")) == 16
    screenshot(browser, "4-model")
    assert csp_violations(browser) == []



def test_chart_text_grows_with_the_readers_text_size(browser, base_url):
    """Text made larger alone (Chromium's font size setting, Firefox's zoom text only): here the
    root's font size at 200%. The charts' text is drawn in the SVG's own units, so it grows as the
    chart does, and with the units the container queries (in rem) pick for its width."""
    browser.get(base_url + "/models/small")
    sizes = """var svg = document.querySelector('.chart .plot');
        var tick = parseFloat(getComputedStyle(svg.querySelector('.tick')).fontSize);
        return [tick * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width,
                parseFloat(getComputedStyle(document.body).fontSize)];"""
    tick, body = browser.execute_script(sizes)
    browser.execute_script("document.documentElement.style.fontSize = '200%'")
    try:
        larger_tick, larger_body = browser.execute_script(sizes)
        assert larger_body == 2 * body and larger_tick >= 1.8 * tick
    finally:
        browser.execute_script("document.documentElement.style.fontSize = ''")


# Each chart's text: its size as drawn on the screen, in px, and any text that its drawing
# cuts off or that runs into another.
CHART_TEXT = """
return Array.from(document.querySelectorAll('.chart .plot')).map(function (svg) {
  var box = svg.viewBox.baseVal, scale = svg.getBoundingClientRect().width / box.width;
  var texts = Array.from(svg.querySelectorAll('text')).map(text => [text.textContent, text.getBBox()]);
  var inside = b => b.x >= box.x && b.y >= box.y && b.x + b.width <= box.x + box.width
    && b.y + b.height <= box.y + box.height;
  var apart = (p, q) => p.x + p.width <= q.x || q.x + q.width <= p.x || p.y + p.height <= q.y || q.y + q.height <= p.y;
  return {
    pixels: Math.round(10 * parseFloat(getComputedStyle(svg.querySelector('.tick')).fontSize) * scale) / 10,
    cut: texts.filter(([, b]) => !inside(b)).map(([text]) => text),
    overlapping: texts.flatMap(([text, b], i) => texts.slice(i + 1).filter(([, c]) => !apart(b, c))
      .map(([other]) => text + ' / ' + other)),
  };
});"""


def test_chart_text_is_readable_and_whole_at_every_width(browser, base_url):
    """The drawing scales with its column, from a phone's to a desktop's: its text is drawn at
    11 to 13 px or so, never cut by the drawing nor run into other text. The long run's curves
    have the widest labels."""
    try:
        for width in (320, 390, 600, 800, 1280):
            browser.set_window_size(width, 900)
            browser.get(f"{base_url}/models/{LONG_NAME}")
            charts = browser.execute_script(CHART_TEXT)
            assert len(charts) == 2
            for chart in charts:
                assert 10.5 <= chart["pixels"] <= 14, (width, chart)
                assert chart["cut"] == chart["overlapping"] == [], (width, chart)
    finally:
        browser.set_window_size(1280, 1000)


DARK_SCHEME = {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
# A model's page: each text's colour, and the colour of what it is drawn on.
MODEL_PAGE_COLOURS = """
var colour = (css, property) => getComputedStyle(document.querySelector(css))[property];
return {
  page: colour('body', 'backgroundColor'), text: colour('body', 'color'), link: colour('.breadcrumb a', 'color'),
  card: colour('.card', 'backgroundColor'), muted: colour('.card .hint', 'color'),
  card_link: colour('.card a:not(.button)', 'color'),
  chart_title: colour('.chart .chart-title', 'color'), tick: colour('.chart .tick', 'fill'),
  header: colour('.site-header', 'backgroundColor'), nav: colour('.site-header a', 'color'),
};"""
LIGHT_COLOURS = {
    "page": "rgb(244, 246, 249)", "text": "rgb(29, 35, 48)", "link": "rgb(42, 102, 211)",
    "card": "rgb(255, 255, 255)", "muted": "rgb(93, 102, 120)", "card_link": "rgb(42, 102, 211)",
    "chart_title": "rgb(29, 35, 48)", "tick": "rgb(93, 102, 120)",
    "header": "rgb(29, 35, 48)", "nav": "rgb(255, 255, 255)",
}


def diagonal_contrasts(browser) -> list[float]:
    """The contrast of a right answer's outline on its cell's shade, for each shade in turn."""
    return [contrast(*browser.execute_script("""var cell = document.querySelector('td.heat.diagonal');
        cell.className = 'heat diagonal heat-' + arguments[0];
        return [getComputedStyle(cell).outlineColor, getComputedStyle(cell).backgroundColor];""", level))
        for level in range(HEAT_LEVELS + 1)]


def test_a_system_set_to_dark_gets_dark_pages(browser, base_url, photo):
    """Every text still 4.5:1 on its ground (WCAG AA), and the light scheme as it was."""
    from selenium.webdriver.common.by import By

    def colours_of(css, *properties):
        return browser.execute_script("""var style = getComputedStyle(document.querySelector(arguments[0]));
            return arguments[1].map(property => style[property]);""", css, properties)

    browser.get(base_url + "/models/small")
    assert browser.execute_script(MODEL_PAGE_COLOURS) == LIGHT_COLOURS
    # A right answer's outline 3:1 on its cell's shade (WCAG 1.4.11), whatever the share.
    assert min(diagonal_contrasts(browser)) >= 3
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", DARK_SCHEME)
    try:
        browser.get(base_url + "/models/small")
        dark = browser.execute_script(MODEL_PAGE_COLOURS)
        black, white = "rgb(0, 0, 0)", "rgb(255, 255, 255)"
        assert contrast(dark["page"], black) < 1.5 and contrast(dark["card"], black) < 1.5  # dark grounds
        assert contrast(dark["text"], white) < 1.5  # light text
        for text in ("text", "link"):
            assert contrast(dark[text], dark["page"]) >= 4.5, text
        for text in ("text", "muted", "card_link", "chart_title", "tick"):
            assert contrast(dark[text], dark["card"]) >= 4.5, text
        assert contrast(dark["nav"], dark["header"]) >= 4.5
        # The heat map's shades come from the counts: each one's number readable on it.
        for colour, shade in browser.execute_script("""return Array.from(document.querySelectorAll('td.heat'))
                .map(cell => [getComputedStyle(cell).color, getComputedStyle(cell).backgroundColor])"""):
            assert contrast(colour, shade) >= 4.5, shade
        screenshot(browser, "12-dark-model")
        assert min(diagonal_contrasts(browser)) >= 3

        browser.get(base_url + "/")
        card = colours_of(".card", "backgroundColor")[0]
        # Form controls follow the scheme too (<meta name="color-scheme">): no black text on the dark card.
        assert contrast(*colours_of("select", "color", "backgroundColor")) >= 4.5
        assert contrast(*colours_of(".button", "color", "backgroundColor")) >= 4.5
        assert contrast(colours_of(".drop-zone", "borderTopColor")[0], card) >= 3
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # no file: an error
        wait_for(browser, ".errors")
        assert contrast(*colours_of(".errors", "color", "backgroundColor")) >= 4.5
        screenshot(browser, "12b-dark-form-error")

        browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
        change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        wait_for(browser, ".verdict")
        assert contrast(colours_of(".confidence", "color")[0], colours_of("body", "backgroundColor")[0]) >= 4.5
        assert contrast(colours_of(".bar-fill", "fill")[0], colours_of(".bar-track", "fill")[0]) >= 3
        screenshot(browser, "12c-dark-prediction")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    browser.get(base_url + "/models/small")
    assert browser.execute_script(MODEL_PAGE_COLOURS) == LIGHT_COLOURS


def test_high_contrast_mode_underlines_the_pages_own_link_alone(browser, base_url):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/models")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "forced-colors", "value": "active"}]})
    try:
        underlines = {link.text: link.value_of_css_property("border-bottom-color")
                      for link in browser.find_elements(By.CSS_SELECTOR, ".site-header nav a")}
        background = browser.find_element(By.CSS_SELECTOR, ".site-header").value_of_css_property("background-color")
        assert underlines["Models"] != background and underlines["Classify"] == background, underlines
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_form_works_with_javascript_off(base_url, photo, tmp_path_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = start_browser(tmp_path_factory, javascript=False)
    try:
        driver.get(base_url + "/")
        # Without app.js a dropped file would open in the browser: dropping is not offered.
        assert driver.find_element(By.CSS_SELECTOR, ".drop-text").text == "Choose an image"
        # Nor is making pictures smaller: the limit holds.
        assert driver.find_element(By.ID, "upload-formats").get_attribute("textContent").endswith("10 MB in all")
        driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
        change_page(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        wait_for(driver, ".verdict")
        # The form under the answer, set to every model: a comparison without app.js too.
        Select(driver.find_element(By.ID, "model")).select_by_value("/all")
        driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
        change_page(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        wait_for(driver, ".answer")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".answer .verdict")) == 3
        driver.get(base_url + "/models/tiny")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".chart .plot")) == 2
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def camera_browser(tmp_path_factory, base_url):
    """Chromium with a fake camera (a moving test pattern, 640 x 480), which base_url may use:
    without a permission set, headless Chromium refuses it, as a person who says no would."""
    driver = start_browser(tmp_path_factory, flags=["--use-fake-device-for-media-stream"])
    driver.execute_cdp_cmd("Browser.setPermission", {
        "permission": {"name": "camera"}, "setting": "granted", "origin": base_url})
    yield driver
    driver.quit()


# Keeps every stream the page gets in window.cameras, to see that their tracks are stopped.
RECORD_CAMERAS = """
window.cameras = [];
var ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = c => ask(c).then(stream => { cameras.push(stream); return stream; });
"""
CAMERAS_OFF = "return cameras.every(stream => stream.getTracks().every(track => track.readyState === 'ended'))"
PLAYING = "var video = document.querySelector('.camera-view video'); return video.readyState >= 2 && !video.paused"


def open_camera(driver):
    """Presses "Use the camera" from the keyboard; returns once the live view plays."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, ".camera-open").send_keys(Keys.ENTER)
    WebDriverWait(driver, 20).until(lambda _: driver.execute_script(PLAYING))
    return wait_for(driver, ".camera-view video")


def test_a_picture_taken_with_the_camera_is_classified(camera_browser, base_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser = camera_browser
    browser.get(base_url + "/")
    browser.execute_script(RECORD_CAMERAS)
    assert wait_for(browser, ".camera-open").accessible_name == "Use the camera"
    video = open_camera(browser)
    assert video.accessible_name == "What the camera sees"
    take = browser.find_element(By.CSS_SELECTOR, ".camera-take")
    assert browser.switch_to.active_element == take  # the button it was on is hidden now
    # It moves: frames, not a still, under the Content-Security-Policy (no media-src).
    start = browser.execute_script("return arguments[0].currentTime", video)
    WebDriverWait(browser, 20).until(lambda _: browser.execute_script("return arguments[0].currentTime", video) > start)
    assert csp_violations(browser) == []
    width, height = browser.execute_script("return [arguments[0].videoWidth, arguments[0].videoHeight]", video)
    assert (width, height) == (640, 480)
    screenshot(browser, "13-camera")
    browser.set_window_size(390, 844)
    try:
        assert sideways_scroll(browser) <= 0
        assert video.rect["width"] < 390
        screenshot(browser, "13b-phone-camera", width=390)
    finally:
        browser.set_window_size(1280, 1000)

    take.send_keys(Keys.ENTER)
    wait_for(browser, ".preview")
    file_input = browser.find_element(By.CSS_SELECTOR, "input[type=file]")
    assert browser.execute_script("return [arguments[0].files[0].name, arguments[0].files[0].type]",
                                  file_input) == ["camera.jpg", "image/jpeg"]
    # A JPEG by its bytes, of the frame's size, as the page would send it.
    magic, size = browser.execute_async_script("""var file = arguments[0].files[0], done = arguments[1];
        Promise.all([file.slice(0, 3).arrayBuffer(), createImageBitmap(file)])
          .then(([head, picture]) => done([Array.from(new Uint8Array(head)), [picture.width, picture.height]]));""",
                                               file_input)
    assert magic == [0xFF, 0xD8, 0xFF] and size == [width, height]
    assert browser.execute_script(CAMERAS_OFF + " && cameras.length === 1")  # its light is off
    wait_until_hidden(browser, ".camera-view")
    # Said to a screen reader where the focus is: the file input, named for the picture.
    assert browser.switch_to.active_element == file_input and file_input.accessible_name == "Image: camera.jpg"
    assert browser.find_element(By.CSS_SELECTOR, ".camera-open").is_displayed()  # for another picture
    screenshot(browser, "13c-camera-picture-taken")

    change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
    assert wait_for(browser, "h1").text.startswith(("Most likely:", "Not sure: best guess"))
    assert browser.find_element(By.CSS_SELECTOR, ".verdict strong").text in TINY_CLASSES


def test_the_camera_is_turned_off_however_the_view_is_left(camera_browser, base_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser = camera_browser
    browser.get(base_url + "/")
    browser.execute_script(RECORD_CAMERAS)
    opener = browser.find_element(By.CSS_SELECTOR, ".camera-open")
    # Pressed again while the browser asks: one camera, not a second one left on.
    assert browser.execute_script("""arguments[0].click(); arguments[0].click();
        return [arguments[0].getAttribute('aria-disabled'), arguments[0].textContent]""", opener) == [
        "true", "Starting the camera\u2026"]
    wait_for(browser, ".camera-view video")
    leaving = [lambda: browser.find_element(By.CSS_SELECTOR, ".camera-cancel").click(),
               lambda: browser.switch_to.active_element.send_keys(Keys.ESCAPE),
               lambda: browser.execute_script("window.dispatchEvent(new PageTransitionEvent('pagehide'))"),
               # A picture that comes another way is the one taken: the live view would stay on.
               lambda: browser.execute_script(DROP, [["dropped.png", 10, "image/png"]]),
               lambda: browser.execute_script(PASTE, [["pasted.png", 10, "image/png"]])]
    for turn, leave in enumerate(leaving):
        if turn:
            open_camera(browser)
        leave()
        wait_until_hidden(browser, ".camera-view")
        assert browser.execute_script(CAMERAS_OFF)
        assert browser.switch_to.active_element == opener  # back where it was pressed, ready again
        assert opener.text == "Use the camera" and opener.get_attribute("aria-disabled") is None
    assert browser.execute_script("return cameras.length") == 5
    assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "pasted.png"
    assert browser.find_element(By.CSS_SELECTOR, ".errors").is_displayed() is False

    # Sent with the view open: off with the upload, not once the answer comes (held here).
    browser.execute_script("arguments[0].form.addEventListener('submit', e => e.preventDefault())", opener)
    open_camera(browser)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until_hidden(browser, ".camera-view")
    assert browser.execute_script(CAMERAS_OFF + " && cameras.length === 6")

    # A picture dropped while the browser still asks: the camera it then gives is turned off at once.
    browser.get(base_url + "/")
    browser.execute_script(RECORD_CAMERAS + """var record = navigator.mediaDevices.getUserMedia;
        navigator.mediaDevices.getUserMedia = c => new Promise(done => setTimeout(done, 500)).then(() => record(c));""")
    browser.find_element(By.CSS_SELECTOR, ".camera-open").click()
    browser.execute_script(DROP, [["dropped.png", 10, "image/png"]])
    WebDriverWait(browser, 20).until(lambda _: browser.execute_script("return cameras.length === 1"))
    assert browser.execute_script(CAMERAS_OFF)
    assert not browser.find_element(By.CSS_SELECTOR, ".camera-view").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, ".camera-open").text == "Use the camera"


def test_a_camera_that_cannot_be_used_is_said_on_the_page(camera_browser, base_url):
    from selenium.webdriver.common.by import By

    browser = camera_browser
    refused = "The camera was not allowed: allow it in the browser's site settings, or choose an image instead."
    browser.execute_cdp_cmd("Browser.setPermission", {
        "permission": {"name": "camera"}, "setting": "denied", "origin": base_url})
    try:
        browser.get(base_url + "/")
        opener = browser.find_element(By.CSS_SELECTOR, ".camera-open")
        opener.click()
        assert wait_for(browser, ".errors").text == refused
        assert opener.text == "Use the camera" and browser.switch_to.active_element == opener
        screenshot(browser, "13d-camera-refused")
    finally:
        browser.execute_cdp_cmd("Browser.setPermission", {
            "permission": {"name": "camera"}, "setting": "granted", "origin": base_url})
    # Allowed after all: the refusal is taken back once the camera works.
    open_camera(browser)
    wait_until_hidden(browser, ".errors")
    assert browser.find_element(By.ID, "image").get_attribute("aria-invalid") is None

    # What getUserMedia says when there is no camera, or another program holds it.
    for name, message in [("NotFoundError", "No camera was found: connect one, or choose an image instead."),
                          ("NotReadableError", "The camera could not be started: another program may be using it."),
                          ("AbortError", "The camera could not be started: choose an image instead.")]:
        browser.get(base_url + "/")
        browser.execute_script("navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('', "
                               "arguments[0]))", name)
        browser.find_element(By.CSS_SELECTOR, ".camera-open").click()
        assert wait_for(browser, ".errors").text == message

    # Unplugged while on: the view closes, the light goes off, and the page says why.
    browser.get(base_url + "/")
    browser.execute_script(RECORD_CAMERAS)
    open_camera(browser)
    browser.execute_script("cameras[0].getVideoTracks()[0].dispatchEvent(new Event('ended'))")
    assert wait_for(browser, ".errors").text == (
        "The camera stopped (unplugged or turned off): use it again, or choose an image.")
    wait_until_hidden(browser, ".camera-view")
    assert browser.execute_script(CAMERAS_OFF)


def test_the_camera_is_offered_only_where_it_can_be_used_and_helps(camera_browser, base_url):
    from selenium.webdriver.common.by import By

    browser = camera_browser
    # Without the API, as in an insecure context (a plain-http address on the network).
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                     {"source": "delete Navigator.prototype.mediaDevices"})
    try:
        browser.get(base_url + "/")
        assert browser.execute_script("return 'mediaDevices' in navigator") is False
        assert not browser.find_element(By.CSS_SELECTOR, ".camera-open").is_displayed()
        assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "Choose an image, drop it here or paste it"
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
    # A touch screen's file chooser offers its own camera app.
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    try:
        browser.get(base_url + "/")
        assert browser.execute_script("return matchMedia('(pointer: coarse)').matches")
        assert not browser.find_element(By.CSS_SELECTOR, ".camera-open").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
    browser.get(base_url + "/")
    assert browser.find_element(By.CSS_SELECTOR, ".camera-open").is_displayed()


# Files made in the page, each (name, its bytes or a number of zero bytes, type), in a DataTransfer.
FILES = """
var data = new DataTransfer();
arguments[0].forEach(function (spec) {
  data.items.add(new File([new Uint8Array(spec[1])], spec[0], {type: spec[2]}));
});
"""
# Drops them on the page's body, not the drop zone; no files: a link. Returns false when the
# page cancelled the drop (kept it for itself).
DROP = FILES + """
if (!arguments[0].length) data.setData("text/uri-list", "http://example.com/cat.jpg");
return document.body.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: data}));
"""


# Pastes them as Ctrl+V would; no files: text. Returns false when the page cancelled the
# paste (kept it for itself).
PASTE = FILES + """
if (!arguments[0].length) data.setData("text/plain", "a cat");
return document.body.dispatchEvent(new ClipboardEvent("paste", {bubbles: true, cancelable: true, clipboardData: data}));
"""


def test_a_pasted_picture_is_classified(browser, base_url, make_image):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    assert browser.execute_script(PASTE, []) is True  # text: not the form's
    assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "Choose an image, drop it here or paste it"
    image = list(make_image())
    assert browser.execute_script(PASTE, [["image.png", image, "image/png"]]) is False
    wait_for(browser, ".preview")
    wait_until_hidden(browser, ".errors")
    assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "image.png"
    change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
    assert wait_for(browser, "h1").text.startswith(("Most likely:", "Not sure: best guess"))


def test_drops_and_checks_before_uploading(browser, base_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    browser.get(base_url + "/")
    model = Select(browser.find_element(By.ID, "model"))
    model.select_by_value("small")
    assert browser.find_element(By.ID, "model-classes").text == "small recognises 4 classes: apple, pear, plum, fig."
    file_input = browser.find_element(By.ID, "image")
    limit = int(file_input.get_attribute("data-max-bytes"))

    def drop(*files):
        assert browser.execute_script(DROP, [list(file) for file in files]) is False
        return wait_for(browser, ".errors").text

    # Dragging over the page must be cancelled, or the browser never fires "drop" and opens
    # the file itself, leaving the app.
    assert browser.execute_script("""return document.body.dispatchEvent(
        new DragEvent("dragover", {bubbles: true, cancelable: true, dataTransfer: new DataTransfer()}))""") is False
    assert "dragging" in browser.find_element(By.CSS_SELECTOR, ".drop-zone").get_attribute("class")

    assert drop().startswith("Drop the image file itself")
    assert drop(("notes.pdf", 10, "application/pdf")) == "notes.pdf is not an image."
    # An image of a kind the server does not take is said so, however large: a smaller one would not do.
    for name, kind in (("scan.tiff", "image/tiff"), ("IMG_0001.HEIC", "image/heic")):
        said = f"{name} is not a JPEG, PNG, GIF, BMP or WebP image, the kinds this app takes."
        assert drop((name, limit + 2_000_000, kind)) == said
    # The limit as the server says sizes; not the file's size, which can be under it (the form adds to it).
    message = f"huge.png is too large to send (the limit is {filesize(limit)}): choose a smaller image."
    assert drop(("huge.png", limit - 1000, "image/png")) == message
    assert drop(("huge.png", limit + 3_900_000, "image/png")) == message
    assert browser.execute_script("return arguments[0].files[0].name", file_input) == "huge.png"
    assert file_input.get_attribute("aria-invalid") == "true"
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert browser.find_element(By.CSS_SELECTOR, ".errors").text == message  # not uploaded: no 413
    assert browser.current_url == base_url + "/" and model.first_selected_option.text == "small"
    screenshot(browser, "6-drop-refused")

    # A file whose type the browser cannot tell (no extension) is left to the server to judge.
    browser.execute_script(DROP, [["photo", 1000, ""]])
    wait_until_hidden(browser, ".errors")
    browser.execute_script(DROP, [["huge.png", limit, "image/png"]])
    wait_for(browser, ".errors")
    browser.execute_script(DROP, [["photo.png", 1000, "image/png"]])
    wait_until_hidden(browser, ".errors")
    assert file_input.get_attribute("aria-invalid") is None
    # Held back after app.js has seen it, to look at the button while "uploading"; counts what
    # app.js lets through.
    browser.execute_script("""window.sent = 0; arguments[0].form.addEventListener('submit', e => {
        if (!e.defaultPrevented) sent++; e.preventDefault(); })""", file_input)
    button = browser.find_element(By.CSS_SELECTOR, "button[type=submit]")
    button.send_keys(Keys.ENTER)  # from the keyboard
    assert button.text == "Classifying\u2026"
    assert browser.find_element(By.CSS_SELECTOR, "form.upload").get_attribute("aria-busy") == "true"
    # The button keeps the focus, where a screen reader says "Classifying…" (a disabled one loses
    # it); it says it is unavailable, and pressed again it sends nothing.
    assert browser.switch_to.active_element == button
    assert button.get_attribute("aria-disabled") == "true"
    button.send_keys(Keys.ENTER)
    button.click()
    assert browser.execute_script("return window.sent") == 1
    # Escape stops an upload: the form is ready to send again.
    button.send_keys(Keys.ESCAPE)
    assert button.text == "Classify" and button.get_attribute("aria-disabled") is None
    button.click()
    assert browser.execute_script("return window.sent") == 2


def test_several_pictures_are_checked_then_each_answered(browser, base_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(base_url + "/")
    file_input = browser.find_element(By.ID, "image")
    limit = int(file_input.get_attribute("data-max-bytes"))
    explain = browser.find_element(By.ID, "explain")
    model = Select(browser.find_element(By.ID, "model"))

    def drop(*files):
        browser.execute_script(DROP, [list(file) for file in files])
        checked(browser)
        errors = browser.find_element(By.CSS_SELECTOR, ".errors")
        return "" if errors.get_attribute("hidden") is not None else errors.text

    # Checked together before uploading, in the server's words where it has them.
    explain.click()
    assert drop(("a.png", 10, "image/png"), ("b.png", 10, "image/png")) == ""
    assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "2 images: a.png, b.png"
    assert file_input.accessible_name == "Images: a.png, b.png"
    assert not browser.find_element(By.CSS_SELECTOR, ".preview").is_displayed()
    assert not explain.is_enabled()  # explaining is for one picture: not sent
    model.select_by_value("/all")
    assert browser.find_element(By.CSS_SELECTOR, ".errors").text == file_input.get_attribute("data-compare-several")
    model.select_by_value("tiny")
    assert drop(*[(f"{n}.png", 10, "image/png") for n in range(31)]) == file_input.get_attribute("data-too-many")
    assert drop(("a.png", limit // 2, "image/png"), ("b.png", limit // 2, "image/png")) == (
        f"These 2 images are too large to send together (the limit is {filesize(limit)} in all): "
        "choose fewer or smaller ones.")
    assert drop(("a.png", 10, "image/png"), ("notes.pdf", 10, "application/pdf")) == "notes.pdf is not an image."
    assert drop(("a.png", 10, "image/png")) == "" and explain.is_enabled()

    # Chosen in the file chooser, several at once, and sent.
    paths = []
    for n, colour in enumerate(["red", "green"]):
        path = tmp_path / f"{colour}.png"
        path.write_bytes(encode_image("PNG", size=(40, 30), seed=n))
        paths.append(path)
    (tmp_path / "notes.png").write_bytes(b"not a picture")
    paths.append(tmp_path / "notes.png")
    file_input.send_keys("\n".join(str(path) for path in paths))
    assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "3 images: red.png, green.png, notes.png"
    change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
    assert wait_for(browser, "h1").text.startswith("3 images: ") and browser.title.endswith("and 1 unanswered · Image classifier")
    cards = browser.find_elements(By.CSS_SELECTOR, ".pictures .card")
    assert [card.find_element(By.TAG_NAME, "h2").text for card in cards] == ["red.png", "green.png", "notes.png"]
    for card in cards[:2]:
        assert card.find_element(By.CSS_SELECTOR, ".verdict strong").text in TINY_CLASSES
        shown = card.find_element(By.CSS_SELECTOR, "img.uploaded")
        assert browser.execute_script("return arguments[0].naturalWidth", shown) == 40
    assert cards[2].find_element(By.CSS_SELECTOR, ".reason").text.startswith("Unsupported file type")
    screenshot(browser, "several-pictures")
    screenshot(browser, "several-pictures-phone", width=390)
    assert csp_violations(browser) == []


def checked(driver):
    """Once app.js is done with the files chosen: too large to send together, it first tries
    to make them smaller, and only then says what is wrong."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda _: "smaller to send\u2026" not in driver.find_element(
        "css selector", ".drop-text").text)


def big_photo(corner: tuple[int, int, int], upright: bool = False, size=(2400, 1800)) -> bytes:
    """A JPEG of noise (3.8 MB at 2400 x 1800), its top-left quarter of one colour; stored on its
    side with EXIF saying to turn it, unless `upright`, as a phone stores a photo."""
    from PIL import Image

    width, height = size
    pixels = np.random.default_rng(sum(corner)).integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels[:height // 2, :width // 2] = corner
    picture, exif = Image.fromarray(pixels), Image.Exif()
    if not upright:
        picture, exif[0x0112] = picture.rotate(90, expand=True), 6  # 6: turn it clockwise to show it
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def test_photos_too_large_together_are_made_smaller_to_send(browser, base_url, served_models, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    save_as(served_models, top_left_model(), "upright")  # cat for a red top-left corner, dog for green
    try:
        paths = []
        for name, corner, upright in [("red.jpg", (250, 0, 0), False), ("green.jpg", (0, 250, 0), False),
                                      ("red-upright.jpg", (250, 0, 0), True)]:
            paths.append(tmp_path / name)
            paths[-1].write_bytes(big_photo(corner, upright))
        browser.get(base_url + "/")
        file_input = browser.find_element(By.ID, "image")
        hint = browser.find_element(By.ID, "upload-formats")
        assert hint.get_attribute("textContent") == hint.get_attribute("data-scripted")  # with the limit, not under it
        # Not a kind the server takes (PNG bytes, named as a TIFF): said so, not made smaller and passed off as a JPEG.
        other = tmp_path / "scan.tif"
        other.write_bytes(encode_image("PNG", size=(2000, 1800), compress_level=0))
        file_input.send_keys(str(other))
        checked(browser)
        assert browser.find_element(By.CSS_SELECTOR, ".errors").text == (
            "scan.tif is not a JPEG, PNG, GIF, BMP or WebP image, the kinds this app takes.")
        assert "smaller" not in browser.find_element(By.CSS_SELECTOR, ".drop-text").text
        browser.get(base_url + "/")  # a chooser adds to the files chosen before
        file_input = browser.find_element(By.ID, "image")
        sent = sum(path.stat().st_size for path in paths)
        assert sent > int(file_input.get_attribute("data-max-bytes"))  # refused as they are
        # Chosen for every model, they are refused for that first; made smaller once a model is chosen.
        model = Select(browser.find_element(By.ID, "model"))
        model.select_by_value("/all")
        file_input.send_keys("\n".join(str(path) for path in paths))
        assert browser.find_element(By.CSS_SELECTOR, ".errors").text == file_input.get_attribute("data-compare-several")
        model.select_by_value("upright")
        checked(browser)
        text = browser.find_element(By.CSS_SELECTOR, ".drop-text").text
        assert text.startswith("3 images: red.jpg, green.jpg, red-upright.jpg (made smaller to send: 11.")
        assert browser.find_element(By.CSS_SELECTOR, ".errors").get_attribute("hidden") is not None
        assert browser.execute_script("return Array.from(arguments[0].files, f => f.type)", file_input) == [
            "image/jpeg"] * 3
        change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        cards = wait_for(browser, ".pictures").find_elements(By.CSS_SELECTOR, ".card")
        assert [card.find_element(By.TAG_NAME, "h2").text for card in cards] == ["red.jpg", "green.jpg",
                                                                                  "red-upright.jpg"]
        # Turned upright as the server would turn them: the corner the model looks at is the right one.
        assert [card.find_element(By.CSS_SELECTOR, ".verdict strong").text for card in cards] == ["cat", "dog", "cat"]
        for card in cards:  # 1024 x 768 sent, shown at 320 x 240: landscape, as taken
            shown = card.find_element(By.CSS_SELECTOR, "img.uploaded")
            assert browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]",
                                          shown) == [320, 240]
        assert csp_violations(browser) == []
    finally:
        for suffix in (".h5", ".json"):
            (served_models / f"upright{suffix}").unlink()


@pytest.mark.parametrize("name", ["green.jpg", "green"])  # a name without an extension has no type: tried too
def test_one_photo_too_large_is_made_smaller_to_send(browser, base_url, served_models, tmp_path, name):
    from selenium.webdriver.common.by import By

    save_as(served_models, top_left_model(), "upright2")
    try:
        photo = tmp_path / name
        photo.write_bytes(big_photo((0, 250, 0), size=(4000, 3000)))
        browser.get(base_url + "/?model=upright2")
        file_input = browser.find_element(By.ID, "image")
        assert photo.stat().st_size > int(file_input.get_attribute("data-max-bytes"))
        file_input.send_keys(str(photo))
        checked(browser)
        assert browser.find_element(By.CSS_SELECTOR, ".drop-text").text.startswith(f"{name} (made smaller to send: ")
        change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        assert wait_for(browser, ".verdict strong").text == "dog"  # its corner green once upright
        shown = browser.find_element(By.CSS_SELECTOR, "img.uploaded")
        assert browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", shown) == [640, 480]
    finally:
        for suffix in (".h5", ".json"):
            (served_models / f"upright2{suffix}").unlink()


def test_escape_while_a_photo_is_made_smaller_leaves_the_form_waiting_for_it(browser, base_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    photo = tmp_path / "green.jpg"
    photo.write_bytes(big_photo((0, 250, 0), size=(4000, 3000)))
    browser.get(base_url + "/")
    browser.execute_script("window.createImageBitmap = function () { return new Promise(function () {}); };")
    browser.find_element(By.ID, "image").send_keys(str(photo))
    button = browser.find_element(By.CSS_SELECTOR, "button[type=submit]")
    assert button.text == "Making smaller\u2026"
    # Escape stops an upload: none is under way, and the button once showed Classify, which did nothing.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    assert button.text == "Making smaller\u2026" and button.get_attribute("aria-disabled") == "true"


def test_what_the_form_is_doing_is_said_to_screen_readers(browser, base_url, photo, tmp_path):
    """What the busy button and the zone show, said in a live region outside the busy form: sent
    with Enter in the check box, the focus is not on the button that says "Classifying…"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def said():
        return browser.find_element(By.CSS_SELECTOR, "form.upload + [role=status]").get_attribute("textContent")

    browser.get(base_url + "/")
    assert said() == ""
    # Kept from leaving the page, which the answer would replace before it is read here.
    browser.execute_script("document.querySelector('form.upload').addEventListener('submit', function (event) {"
                           " event.preventDefault(); })")
    browser.find_element(By.ID, "image").send_keys(str(photo))
    browser.find_element(By.ID, "explain").send_keys(Keys.ENTER)
    assert browser.find_element(By.CSS_SELECTOR, "button[type=submit]").text == "Classifying\u2026"
    assert said() == "Classifying\u2026"
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)  # stopped: nothing under way
    assert said() == ""

    large = tmp_path / "green.jpg"
    large.write_bytes(big_photo((0, 250, 0), size=(4000, 3000)))
    browser.get(base_url + "/")
    browser.execute_script("window.createImageBitmap = function () { return new Promise(function () {}); };")
    browser.find_element(By.ID, "image").send_keys(str(large))
    assert said() == "Making it smaller to send\u2026"
    browser.get(base_url + "/")
    browser.find_element(By.ID, "image").send_keys(str(large))
    checked(browser)
    assert said().startswith("Made smaller to send: ") and said().endswith(" MB.")


def test_phone_width(browser, base_url, tmp_path):
    from selenium.webdriver.common.by import By

    def visible_width():
        return browser.execute_script("return document.documentElement.clientWidth")

    tall = tmp_path / "tall.png"
    tall.write_bytes(encode_image("PNG", size=(600, 1100)))
    browser.set_window_size(390, 844)
    try:
        browser.get(base_url + "/models")
        accuracy = browser.find_element(By.XPATH, "//thead//th[text()='Accuracy']")
        assert accuracy.rect["x"] + accuracy.rect["width"] <= visible_width()  # seen without scrolling
        screenshot(browser, "7-phone-dashboard", width=390)

        browser.set_window_size(390, 844)
        browser.get(base_url + "/models/small")
        # Nothing sticks out of its card: tables scroll in it, long values wrap.
        assert browser.execute_script("""return Array.from(document.querySelectorAll('.card'))
            .filter(card => card.scrollWidth > card.clientWidth)
            .map(card => card.querySelector('h2').textContent)""") == []
        screenshot(browser, "8-phone-model", width=390)

        browser.set_window_size(390, 844)
        browser.get(base_url + "/")
        browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(tall))
        change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        wait_for(browser, ".verdict")
        # A tall picture leaves the answer on the first screen.
        bars = browser.find_element(By.CSS_SELECTOR, ".bars")
        assert bars.rect["y"] + bars.rect["height"] <= browser.execute_script("return innerHeight")
        browser.save_screenshot(str(SHOTS / "9-phone-prediction.png"))  # that first screen only
    finally:
        browser.set_window_size(1280, 1000)


# The words, in the elements `css` selects, that are broken across lines (each line a rectangle of its own).
BROKEN_WORDS = """
var broken = [];
document.querySelectorAll(arguments[0]).forEach(function (element) {
  var walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (var node = walker.nextNode(); node; node = walker.nextNode()) {
    var pattern = /\\S+/g, match;
    while ((match = pattern.exec(node.data))) {
      var range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      if (range.getClientRects().length > 1) broken.push(match[0]);
    }
  }
});
return broken;"""


def test_a_phone_with_text_twice_as_large_needs_no_sideways_scrolling(browser, base_url, photo):
    """Text made larger alone (Chromium's font size setting, at 200% here) on a 320 px screen:
    everything reflows (WCAG 1.4.4 and 1.4.10), the answer's bars keep a width, words stay whole."""
    from selenium.webdriver.common.by import By

    def larger_text(address):
        browser.get(address)
        browser.execute_script("document.documentElement.style.fontSize = '200%'")

    browser.set_window_size(320, 700)
    try:
        larger_text(base_url + "/api")
        assert sideways_scroll(browser) <= 0
        larger_text(base_url + "/")
        assert browser.execute_script(BROKEN_WORDS, ".drop-zone") == [] and sideways_scroll(browser) <= 0
        browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
        change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        wait_for(browser, ".verdict")
        browser.execute_script("document.documentElement.style.fontSize = '200%'")
        assert sideways_scroll(browser) <= 0
        assert all(bar.rect["width"] > 20 for bar in browser.find_elements(By.CSS_SELECTOR, "svg.bar"))
    finally:
        browser.set_window_size(1280, 1000)


def test_long_names_fit_a_phone(browser, base_url, photo):
    from selenium.webdriver.common.by import By

    browser.set_window_size(390, 844)
    try:
        browser.get(f"{base_url}/?model={LONG_NAME}")  # as the models page's "Try it" link asks
        assert sideways_scroll(browser) <= 0, "form"
        # The closed <select> cuts the name short (it cannot wrap); the line under it names the model in full.
        assert browser.find_element(By.ID, "model-classes").text.startswith(LONG_NAME + " recognises 4 classes:")
        file_input = browser.find_element(By.CSS_SELECTOR, "input[type=file]")
        # Not "invalid" to a screen reader before anything is chosen, as a required input is.
        assert browser.execute_script("return arguments[0].matches(':invalid')", file_input) is False
        # Hidden from sight, the input still stops a form without a file, and takes the focus.
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert browser.find_element(By.CSS_SELECTOR, ".errors").text == "Choose an image to classify."
        assert browser.current_url == f"{base_url}/?model={LONG_NAME}"
        assert browser.execute_script("return document.activeElement") == file_input
        assert file_input.get_attribute("aria-invalid") == "true"
        # A long file name in an error wraps, as the file names of phone screenshots are.
        not_an_image = photo.with_name("Screenshot_20240615_183245123_com_android_chrome_document.txt")
        not_an_image.write_text("notes")
        file_input.send_keys(str(not_an_image))
        assert browser.find_element(By.CSS_SELECTOR, ".errors").text == f"{not_an_image.name} is not an image."
        assert sideways_scroll(browser) <= 0, "an error naming a long file"
        browser.execute_script("arguments[0].value = ''", file_input)  # else the next file is added to it
        file_input.send_keys(str(photo))
        wait_for(browser, ".preview")
        # The zone names the file; the browser's own "Choose File" control is out of sight.
        assert file_input.size["width"] <= 1 and browser.find_element(By.CSS_SELECTOR, ".drop-text").text == "photo.png"
        # Named for what it holds; the preview and the formats hint are not part of its name.
        assert file_input.accessible_name == "Image: photo.png"
        assert browser.find_element(By.CSS_SELECTOR, ".preview").get_attribute("alt") == ""
        assert sideways_scroll(browser) <= 0, "form with a file chosen"
        change_page(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click)
        wait_for(browser, ".verdict")
        assert LONG_NAME in browser.find_element(By.CSS_SELECTOR, ".meta").text
        # Wrapped at its underscores on the screen, whole to a screen reader.
        assert browser.find_element(By.CSS_SELECTOR, ".meta a").accessible_name == LONG_NAME
        assert sideways_scroll(browser) <= 0, "prediction"
        screenshot(browser, "10-phone-long-names-prediction", width=390)

        browser.set_window_size(390, 844)
        browser.get(f"{base_url}/models/{LONG_NAME}")
        assert sideways_scroll(browser) <= 0, "model page"
        assert browser.find_element(By.TAG_NAME, "h1").accessible_name == LONG_NAME
        # The confusion matrix's long class names wrap after underscores, shown whole, named whole.
        headers = browser.find_elements(By.CSS_SELECTOR, "table.confusion th:not(.corner)")
        assert [header.accessible_name for header in headers] == LONG_CLASSES * 2
        assert browser.execute_script("""return Array.from(document.querySelectorAll('table.confusion th span'))
            .filter(span => span.scrollWidth > span.clientWidth || span.scrollHeight > span.clientHeight)
            .map(span => span.textContent)""") == []
        screenshot(browser, "11-phone-long-names-model", width=390)

        browser.get(f"{base_url}/models")
        assert LONG_DATA_SET in browser.find_element(By.CSS_SELECTOR, "h2.data-set").text  # headed by it
        assert sideways_scroll(browser) <= 0, "dashboard"
    finally:
        browser.set_window_size(1280, 1000)


# A student's own front-end, served from another origin: it draws a picture, sends it to the
# API named in its address with fetch and FormData, and shows the answer, or fetch's error.
# With ?send=json it sends JSON instead, which the browser asks the API about first (a preflight).
FRONT_END = b"""<!doctype html><title>My classifier</title><pre id="answer"></pre><script>
var query = new URLSearchParams(location.search);
function send(body, headers) {
  fetch(query.get("api") + "/api/predict", {method: "POST", body: body, headers: headers})
    .then(function (response) {
      return response.text().then(function (text) { show(response.status + " " + text); });
    })
    .catch(function (error) { show(error.name + ": " + error.message); });
}
function show(text) { document.getElementById("answer").textContent = text; }
if (query.get("send") === "json") {
  send(JSON.stringify({image: "cat.png"}), {"Content-Type": "application/json"});
} else {
  var canvas = document.createElement("canvas");
  canvas.width = canvas.height = 24;
  var pen = canvas.getContext("2d");
  pen.fillStyle = "#3366cc"; pen.fillRect(0, 0, 24, 24);
  pen.fillStyle = "#ffcc00"; pen.fillRect(0, 0, 8, 8);
  canvas.toBlob(function (png) {
    var form = new FormData();
    form.append("image", png, "drawn.png");
    send(form);
  });
}
</script>"""


def front_end(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [FRONT_END]


def test_a_page_on_another_origin_reads_the_api_only_when_allowed(browser, base_url, served_models):
    from selenium.webdriver.support.ui import WebDriverWait

    def answer(page, api, send="picture"):
        browser.get(page + "/?" + urllib.parse.urlencode({"api": api, "send": send}))
        return WebDriverWait(browser, 20).until(lambda _: browser.execute_script(
            "return document.getElementById('answer').textContent"))

    with serving(front_end) as page, serving(create_app(make_config(
            served_models, TESTING=False, API_ORIGINS=(page,)))) as allowing:
        status, _, body = answer(page, allowing).partition(" ")
        assert status == "200" and json.loads(body)["model"] == "tiny"
        assert {p["label"] for p in json.loads(body)["predictions"]} == set(TINY_CLASSES)
        # Asked in a preflight first; the API's error reaches the page.
        status, _, body = answer(page, allowing, send="json").partition(" ")
        assert status == "400" and json.loads(body) == {
            "error": "Send the image as a multipart/form-data file field named 'image'."}
        browser.get_log("browser")  # what came before
        # The app as it is by default: the browser keeps the answer from the page.
        assert answer(page, base_url) == "TypeError: Failed to fetch"
        assert any("has been blocked by CORS policy: No 'Access-Control-Allow-Origin' header" in entry["message"]
                   for entry in browser.get_log("browser"))
