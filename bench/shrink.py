"""Several phone photos through the upload form: how long static/app.js takes to make them
smaller in headless Chromium, how small, and what that does to the model's answers.

    python bench/shrink.py [--models models/] [--model NAME] [--photos 4 10 30]
                           [--image tests/fixtures/chelsea.jpg]

Makes 12-megapixel JPEGs from one picture (enlarged, with grain, quality 92, as a phone
saves a photo), then for each count: chooses them in the form, and times until the page says
they were made smaller. Last, the model's top answer to each photo sent whole (one API
request each) against the same photo as the page made it smaller (one request for all).
The app runs in this process (Werkzeug's server); needs the test tools (selenium) and Debian's
chromium and chromium-driver. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serve import multipart  # noqa: E402  (bench/serve.py: run as a script, this folder is on the path)
from webapp import create_app  # noqa: E402


def phone_photos(picture: Path, count: int, folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    enlarged = np.asarray(Image.open(picture).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC))
    paths = []
    for n in range(count):
        grain = rng.normal(0, 6, enlarged.shape)  # a sensor's noise: without it the JPEG is unusually small
        path = folder / f"photo{n}.jpg"
        Image.fromarray(np.clip(enlarged + grain, 0, 255).astype(np.uint8)).save(path, quality=92)
        paths.append(path)
    return paths


def ask(url: str, model: str, files: list[tuple[str, bytes]]) -> dict:
    """POST /api/predict with these files."""
    body, content_type = multipart(files, {"model": model})
    request = urllib.request.Request(url + "/api/predict", body, {"Content-Type": content_type})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="cifar10_scratch")
    parser.add_argument("--photos", type=int, nargs="+", default=[4, 10, 30])
    parser.add_argument("--image", type=Path, default=ROOT / "tests" / "fixtures" / "chelsea.jpg")
    args = parser.parse_args()
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # its access log would come between the figures
    config = {"MODELS_DIR": str(args.models), "DEFAULT_MODEL": args.model, "SECRET_KEY": uuid.uuid4().hex}
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    with tempfile.TemporaryDirectory() as folder:
        paths = phone_photos(args.image, max(args.photos), Path(folder))
        print(f"{len(paths)} photos of 4000 x 3000, {paths[0].stat().st_size / 1e6:.1f} MB each")
        driver = browser()
        try:
            for count in sorted(args.photos):  # the answers below compare the largest count's photos
                made = shrunk_in_the_form(driver, f"{url}/?model={args.model}", paths[:count])
        finally:
            driver.quit()
        print(f"The model's top answer, whole against made smaller ({Image.open(io.BytesIO(made[0])).size}):")
        answers = ask(url, args.model, [(path.name, data) for path, data in zip(paths, made)])["answers"]
        for path, answer in zip(paths, answers):
            whole = ask(url, args.model, [(path.name, path.read_bytes())])["predictions"][0]
            smaller = answer["predictions"][0]
            print(f"  {path.name}: {whole['label']} {whole['probability']:.4f}, "
                  f"{smaller['label']} {smaller['probability']:.4f}")
    server.shutdown()


def shrunk_in_the_form(driver, page: str, paths: list[Path]) -> list[bytes]:
    """Chooses the photos in the form at `page`, prints how long until it says they were made
    smaller and what it says, and returns the files it made."""
    driver.get(page)
    start = time.perf_counter()
    driver.find_element("id", "image").send_keys("\n".join(str(path) for path in paths))
    # The page says "(making them smaller to send...)" until it is done: under the limit, it never does.
    text = driver.find_element("css selector", ".drop-text").text
    while "smaller to send\u2026" in text and time.perf_counter() - start < 120:
        time.sleep(0.02)
        text = driver.find_element("css selector", ".drop-text").text
    if "made smaller" in text:
        print(f"  {len(paths):3d} photos: {time.perf_counter() - start:5.2f} s, {text.rpartition('(')[2].rstrip(')')}")
    else:
        print(f"  {len(paths):3d} photos: not made smaller (under the upload limit, or no smaller so), sent as chosen")
    made = driver.execute_async_script("""var done = arguments[arguments.length - 1];
        Promise.all(Array.from(document.getElementById('image').files, f => f.arrayBuffer()))
          .then(all => done(all.map(b => Array.from(new Uint8Array(b)))));""")
    return [bytes(each) for each in made]

if __name__ == "__main__":
    main()
