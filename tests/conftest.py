"""Shared fixtures: tiny real Keras models with cards, the Flask app, its test client, images.

Tests build their own models, once per session, and copy them into a fresh folder per test
(copying is cheap, training is not); only test_shipped_model.py and test_factory.py's
test_defaults read the repository's models/.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

# The suite runs on the backend requirements.txt installs, whatever the shell has exported
# (the README's GPU recipe exports jax); and the web app's settings are the tests' own.
os.environ["KERAS_BACKEND"] = "tensorflow"
for name in [name for name in os.environ if name.startswith(("IMAGEAPP_", "NGROK_"))]:
    del os.environ[name]
# The Ctrl-C tests need SIGINT live, as in a terminal: a suite started as a background job
# (`make test &` in a script) inherits it ignored, which the trainer rightly leaves ignored.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from trainer.keras_import import import_keras  # noqa: E402

import_keras()  # as the trainer and the web app import it, without TensorFlow's log lines

from trainer.__main__ import main as trainer_main  # noqa: E402
from trainer.presets import PRESETS  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import ROOT  # noqa: E402

TINY_CLASSES = ["cat", "dog", "ship"]
SMALL_CLASSES = ["apple", "pear", "plum", "fig"]


def build_model(folder, name: str, classes: list[str], size: int, seed: int) -> None:
    """A small untrained CNN whose output depends on orientation (Flatten, not pooling),
    saved with the trainer's own functions and a complete card."""
    import keras

    from trainer.card import CARD_FORMAT, now_iso, save_model_and_card
    from trainer.metrics import classification_report

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((size, size, 3)),
        layers.Rescaling(1 / 255),
        layers.Conv2D(4, 3, strides=2, activation="relu"),
        layers.Flatten(),
        layers.Dense(len(classes), activation="softmax"),
    ])

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(classes), 60)
    probabilities = rng.dirichlet(np.ones(len(classes)), 60)
    epochs = 6
    card = {
        "format": CARD_FORMAT,
        "name": name,
        "architecture": "scratch",
        "dataset": "synthetic",
        "classes": classes,
        "input_shape": [size, size, 3],
        "parameters": int(model.count_params()),
        "file_size_bytes": None,
        "weights": "none",
        "hyperparameters": {"batch_size": 8, "learning_rate": 0.001, "augment": ["flip"]},
        "epochs_run": epochs,
        "training_seconds": 12.5 + seed,
        "backend": "tensorflow",
        "device": "cpu",
        "keras_version": keras.__version__,
        "created": now_iso(),
        "history": {
            "loss": list(np.linspace(1.5, 0.6, epochs)),
            "accuracy": list(np.linspace(0.3, 0.8, epochs)),
            "val_loss": list(np.linspace(1.6, 0.9, epochs)),
            "val_accuracy": list(np.linspace(0.25, 0.7, epochs)),
            "learning_rate": [0.001] * epochs,
        },
        "evaluation": classification_report(labels, probabilities, classes),
    }
    save_model_and_card(model, card, folder / f"{name}.h5")


@pytest.fixture(scope="session")
def built_models(tmp_path_factory):
    """Two models built once: "tiny" (16x16, 3 classes) and "small" (24x24, 4 classes)."""
    folder = tmp_path_factory.mktemp("built-models")
    build_model(folder, "tiny", TINY_CLASSES, 16, seed=1)
    build_model(folder, "small", SMALL_CLASSES, 24, seed=2)
    return folder


def save_model_without_softmax(path) -> None:
    """A 16x16 model that loads and runs but gives three scores, not probabilities."""
    import keras

    keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(3)]).save(path)


def save_lambda_model(path) -> None:
    """A 16x16 model of three classes whose scaling is a Lambda layer: Python code in the file."""
    import keras

    keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Lambda(lambda x: x / 255), keras.layers.Flatten(),
                      keras.layers.Dense(3, activation="softmax")]).save(path)


def top_left_model(red: str = "cat"):
    """A 16x16 model of tiny's classes that looks only at the image's top-left 4x4 pixels:
    the redder they are, the more "cat", the greener, "dog", the bluer, "ship"; or with
    red="dog", the redder the more "dog", the greener "ship", the bluer "cat"."""
    import keras

    layers = keras.layers
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        layers.Rescaling(1 / 255),
        layers.Cropping2D(((0, 12), (0, 12))),
        layers.GlobalAveragePooling2D(),
        layers.Dense(3, activation="softmax"),
    ])
    model.layers[-1].set_weights([10 * np.roll(np.eye(3), TINY_CLASSES.index(red), axis=1), np.zeros(3)])
    return model


def nan_when_covered_model():
    """A 16x16 model of tiny's classes that gives probabilities while the image's top-left 4x4
    pixels are black, as in dark_top_left(), and NaN once any of them is not: as soon as
    explaining covers that corner with the image's mean colour."""
    import keras

    layers = keras.layers
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        layers.Cropping2D(((0, 12), (0, 12))),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    # Black gives the bias alone, "cat" first; any colour overflows float32 to infinity.
    model.layers[-1].set_weights([np.full((48, 3), 1e38, np.float32), np.array([1, 0, 0], np.float32)])
    return model


def overflow_model():
    """A 16x16 model of tiny's classes that gives probabilities for the blank image it is tried
    on when loaded, and NaN for a picture, whose pixels overflow its sums."""
    import keras

    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.set_weights([np.full((768, 3), 1e38, np.float32), np.zeros(3, np.float32)])
    return model


def damage(models_dir, name) -> None:
    """A model `name` whose .h5 is no HDF5 file, beside tiny's card: listed as unusable."""
    (models_dir / f"{name}.h5").write_bytes(b"not hdf5")
    (models_dir / f"{name}.json").write_text((models_dir / "tiny.json").read_text())


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def grey_with_corner(colour, size: int = 16) -> bytes:
    """A grey PNG whose top-left corner, a quarter of its side, is `colour`."""
    pixels = np.full((size, size, 3), 90, dtype=np.uint8)
    pixels[: size // 4, : size // 4] = colour
    return png(pixels)


def red_top_left(size: int = 16) -> bytes:
    """A grey PNG with a red top-left corner: "cat" to top_left_model, because of that corner."""
    return grey_with_corner((250, 0, 0), size)


def dark_top_left() -> bytes:
    """A grey PNG with a black top-left corner: "cat" to nan_when_covered_model, until it is covered."""
    return grey_with_corner((0, 0, 0))


def save_as(models_dir, model, name) -> None:
    """Save a Keras model as `name` in the models folder, with tiny's card, less what ties it to tiny's file."""
    model.save(models_dir / f"{name}.h5")
    card = json.loads((models_dir / "tiny.json").read_text())
    for key in ("file_sha256", "file_size_bytes"):
        card.pop(key, None)
    (models_dir / f"{name}.json").write_text(json.dumps(card))


def update_card(models_dir, name, evaluation=None, **fields):
    """Set fields of model `name`'s card, and figures of its evaluation."""
    path = models_dir / f"{name}.json"
    card = json.loads(path.read_text()) | fields
    card["evaluation"].update(evaluation or {})
    path.write_text(json.dumps(card))


def copy_models(source, target):
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        shutil.copy2(path, target / path.name)
    return target


@pytest.fixture
def models_dir(built_models, tmp_path):
    return copy_models(built_models, tmp_path / "models")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(process, base_url: str, timeout: float, output=lambda: "") -> None:
    """Poll /healthz until the server process answers 200; fail with its output if it dies
    or stays silent past `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "server exited: " + output()
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "server did not answer: " + output()
        time.sleep(0.2)


@contextlib.contextmanager
def gunicorn(models, log_folder, **settings):
    """gunicorn with gunicorn.conf.py on a free port, serving `models`, once it answers: its
    URL, process, models and log file."""
    env = {
        **os.environ,
        "IMAGEAPP_BIND": "127.0.0.1:0",  # a free port, which gunicorn names in its log
        "IMAGEAPP_MODELS_DIR": str(models),
        "IMAGEAPP_DEFAULT_MODEL": "tiny",
        **settings,
    }
    env.pop("IMAGEAPP_SECRET_KEY", None)  # gunicorn.conf.py must give all workers one key
    log = open(log_folder / "gunicorn.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    def output():
        return Path(log.name).read_text()

    try:
        deadline = time.monotonic() + 90
        while not (listening := re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", output())):
            assert process.poll() is None and time.monotonic() < deadline, output()[-3000:]
            time.sleep(0.2)
        base = listening.group(1)
        wait_until_serving(process, base, timeout=90, output=lambda: output()[-3000:])
        yield {"url": base, "process": process, "models": models, "log": log.name}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def make_config(models_dir, **overrides) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "MODELS_DIR": str(models_dir),
        "DEFAULT_MODEL": "tiny",
        **overrides,
    }


@pytest.fixture
def app(models_dir):
    return create_app(make_config(models_dir))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def client_without_downloads(models_dir):
    """A client of an app that does not offer its models for download (IMAGEAPP_MODEL_DOWNLOADS=0)."""
    return create_app(make_config(models_dir, MODEL_DOWNLOADS=False)).test_client()


def encode_image(fmt: str = "PNG", size=(20, 20), mode: str = "RGB", seed: int = 0, **save_options) -> bytes:
    """A small picture with some structure (a gradient and a bright square), encoded."""
    from PIL import Image

    width, height = size
    rng = np.random.default_rng(seed)
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(255, 0, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = rng.integers(0, 255, (height, width), dtype=np.uint8)
    pixels[: height // 3, : width // 3] = 255
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_options)
    return buffer.getvalue()


@pytest.fixture
def make_image():
    return encode_image


def calls(monkeypatch, owner, name) -> list:
    """The calls made from now on to `owner`'s function `name`, which still does its work."""
    made = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        made.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return made


def post_form(client, token, image=None, filename="photo.png", model="tiny", **fields):
    """The upload form, posted to /predict; no token or no image: that field left out."""
    data = {"model": model, **fields}
    if token is not None:
        data["csrf_token"] = token
    if image is not None:
        data["image"] = (io.BytesIO(image), filename)
    return client.post("/predict", data=data, content_type="multipart/form-data")


def post_api(client, image, **fields):
    """POST /api/predict with the image (None: no file) and other form fields."""
    data = dict(fields)
    if image is not None:
        data["image"] = (io.BytesIO(image), "upload.bin")
    return client.post("/api/predict", data=data, content_type="multipart/form-data")


def read_csv(body: str) -> list[list]:
    """The rows of a CSV download (webapp.exports), after its byte-order mark: numbers as floats,
    text as strings, as the csv module tells them apart by their quotes."""
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:], newline=""), quoting=csv.QUOTE_NONNUMERIC))


@pytest.fixture
def csrf_token(client):
    """A valid CSRF token for the client's session, read from the upload form."""
    import re

    page = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


# --- Labelled image folders for the trainer's tests ---------------------------------------

DATASET_CLASSES = ["red", "green", "blue"]


def write_image_folder(root, per_class: int = 10, size: int = 16, fmt: str = "PNG", seed: int = 0,
                       classes: list[str] = DATASET_CLASSES):
    """root/<class>/<n>.<ext>: noisy pictures tinted by their class, so a model can learn them."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index, label in enumerate(classes):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
            pixels[..., index] += 120
            Image.fromarray(pixels, "RGB").save(folder / f"{n}.{fmt.lower()}", fmt)
    return root


@pytest.fixture
def image_folder(tmp_path):
    return write_image_folder(tmp_path / "data")


# --- Training runs for the trainer's tests ------------------------------------------------

# A tiny version of the default recipe, so a run takes seconds on two cores.
TINY = PRESETS["scratch-small"] | {"image_size": 16, "stem_width": 8, "widths": [8, 16], "epochs": 3,
                                   "batch_size": 8, "learning_rate": 0.05, "validation_fraction": 0.2}


def full_disk_in_h5py(filepath, **kwargs):
    """A `save_weights` on a full disk: part of the file written, then h5py's error, with
    HDF5's whole report over two lines where Python puts "No space left on device"."""
    with open(filepath, "wb") as part:
        part.write(b"\x89HDF part of a file")
    raise OSError(errno.ENOSPC, "Can't synchronously write data (file write failed: time = ...\n, "
                                f"filename = '{filepath}', errno = 28)")


def full_disk_in_h5py_close(filepath, **kwargs):
    """A save on a disk that fills as HDF5 flushes the file's last bytes: h5py's close fails,
    as RuntimeError, with the errno only in the error before it."""
    with open(filepath, "wb") as part:
        part.write(b"\x89HDF part of a file")
    try:
        raise RuntimeError("Unable to flush file (file write failed: time = ...\n, "
                           f"filename = '{filepath}', errno = 28, error message = 'No space left on device')")
    except RuntimeError:
        raise RuntimeError("Slist already enabled? (slist already enabled?)") from None


def scandir_refusing(folder: Path):
    """os.scandir, refusing `folder` as to a user who may not read it: chmod 000 would not do,
    as the tests may run as root."""
    scandir = os.scandir

    def refusing(path="."):
        if Path(path) == folder:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return scandir(path)

    return refusing


def refused(argv, capsys) -> str:
    """The one-line error of a `python -m trainer` command refused with exit status 2."""
    assert trainer_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    return err


def run(hp, image_folder, tmp_path):
    """Train `hp` on the image folder: models in tmp_path/models, checkpoints in tmp_path/runs."""
    from trainer import train as train_module
    from trainer.data import load_folder

    data = load_folder(image_folder, hp["image_size"])
    return train_module.train(hp, data, None, tmp_path / "models", "tiny", tmp_path / "runs" / "tiny")


def reload_in_fresh_process(model_path, pixels):
    """Load the .h5 with plain Keras in a new interpreter that cannot import this project
    (-I: isolated, so neither the repository, the working folder nor PYTHONPATH is on sys.path)."""
    script = textwrap.dedent(f"""
        import sys, numpy as np
        import keras
        model = keras.saving.load_model({str(model_path)!r})
        assert "trainer" not in sys.modules
        print(keras.ops.convert_to_numpy(model(np.load(sys.argv[1]))).tolist())
    """)
    np.save(model_path.parent / "pixels.npy", pixels)
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(model_path.parent / "pixels.npy")],
        capture_output=True, text=True, timeout=120, cwd=model_path.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return np.array(json.loads(result.stdout.strip().splitlines()[-1]))


def contrast(first: str, second: str) -> float:
    """WCAG 2's contrast ratio of the colours in two CSS values: a stylesheet's ("2px dashed
    #858e9e") or a browser's computed ones ("rgb(29, 35, 48)")."""
    def luminance(value: str) -> float:
        if hex_colour := re.search(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b", value):
            digits = hex_colour.group(1)
            digits = digits if len(digits) == 6 else "".join(c * 2 for c in digits)
            channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        else:
            channels = [float(c) / 255 for c in re.search(r"rgba?\(([\d.]+), ([\d.]+), ([\d.]+)", value).groups()]
        red, green, blue = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
