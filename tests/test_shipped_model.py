"""The model that ships in models/ and that `make serve` answers with: the web app finds it
usable, it is what its card says (CIFAR-10, 32 px, small enough for a default), and it
recognises a photo of a cat."""

import re

from trainer.__main__ import main
from trainer.data import CIFAR10_CLASSES
from trainer.images import load_rgb
from trainer.presets import PRESETS
from webapp.config import DEFAULTS, ROOT
from webapp.registry import Registry


def test_the_shipped_default_model_is_usable_and_as_its_card_says():
    registry = Registry(ROOT / "models")
    info = registry.info(DEFAULTS["DEFAULT_MODEL"])
    assert info.available, info.error
    assert info.card["classes"] == CIFAR10_CLASSES and info.card["input_shape"] == [32, 32, 3]
    assert info.file_size == info.card["file_size_bytes"] <= 10_000_000  # a default takes at most 10 MB
    assert info.card["evaluation"]["accuracy"] >= 0.9 and info.card["evaluation"]["samples"] == 5000

    model = registry.load(info.name)
    pixels = load_rgb((ROOT / "tests" / "fixtures" / "chelsea.jpg").read_bytes(), model.input_size)
    probabilities = model.predict(pixels[None].astype("float32"))[0]
    assert model.classes[probabilities.argmax()] == "cat"


def test_the_shipped_model_is_its_preset_as_it_now_is():
    # So that `python -m trainer train --preset scratch-medium` remakes it (README, BENCHMARKS);
    # a change of the preset needs the model trained again.
    card = Registry(ROOT / "models").info(DEFAULTS["DEFAULT_MODEL"]).card
    used = dict(card["hyperparameters"])
    assert used.pop("preset") == "scratch-medium" and used == PRESETS["scratch-medium"]


def test_the_readmes_example_answers_are_the_shipped_models(capsys):
    # Written by hand, they went stale once when the model was trained again.
    readme = (ROOT / "README.md").read_text()
    assert main(["predict", str(ROOT / "models" / "cifar10_scratch.h5"), str(ROOT / "tests" / "fixtures" / "chelsea.jpg")]) == 0
    printed = capsys.readouterr().out.strip().split(": ", 1)[1]  # "cat 81.1%, frog 2.3%, horse 2.3%"
    example = re.search(r"# tests/fixtures/chelsea.jpg: (.+)", readme).group(1)
    # The first answer as printed; the runners-up a near-tie that another backend may order otherwise.
    assert example.split(", ")[0] == printed.split(", ")[0] and sorted(example.split(", ")) == sorted(printed.split(", "))
    top = re.search(r'"probability": (0\.\d+)', readme).group(1)  # the API example's, rounded
    assert printed.startswith(f"cat {float(top):.1%}")
