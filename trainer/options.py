"""The options of `python -m trainer train` and `import`: how each one is read and checked, and
the recipe (the hyperparameters) they make of a preset. The command line and bench/train.py
share them."""

from __future__ import annotations

import argparse
import difflib
import math
from pathlib import Path

from trainer.formatting import as_typed, whole_number
from trainer.presets import DEFAULT_PRESET, PRESETS


def _names(text: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    if not names:
        raise argparse.ArgumentTypeError("must name at least one layer-name prefix, such as block5")
    return names


def _read(text: str, kind=float):
    """`text` as a number of `kind`, or argparse's error in words (not "invalid parse value")."""
    try:
        if kind is int:  # a minus sign, for "must be from 0 ..., not -1"
            value = -whole_number(text[1:], 0) if text.startswith("-") else whole_number(text, 0)
        else:
            value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a {'whole ' if kind is int else ''}number, not {text!r}") from None
    if not math.isfinite(value):  # nan and inf; also refused by every check below
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def _in_range(least: int, most: int):
    def parse(text: str) -> int:
        value = _read(text, int)
        if not least <= value <= most:  # past `most`, NumPy and Keras fail with a traceback, or never end
            raise argparse.ArgumentTypeError(f"must be from {least} to {most:,}, not {value}")
        return value
    return parse


FLOAT32_MAX = 3.4028234663852886e38  # the largest learning rate the optimizers can hold


def _learning_rate(text: str) -> float:
    value = _read(text)
    if not 0 < value <= FLOAT32_MAX:  # a larger one became infinite and failed in Keras with a traceback
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {FLOAT32_MAX:.4g}, not {text}")
    return value


def _fraction(text: str) -> float:
    value = _read(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (a share held out), not {text}")
    return value


def _weight(text: str) -> float:
    value = _read(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def class_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if len(names) < 2 or not all(names):
        raise argparse.ArgumentTypeError(f"must name two classes or more, comma-separated, not {text!r}")
    # "café" typed and pasted from macOS's Finder ("e" and an accent) are one class, as folders are.
    if len(set(map(as_typed, names))) < len(names):
        raise argparse.ArgumentTypeError(f"must name each class once, not {text!r}")
    return names


def numbers(text: str) -> list[float]:
    """Comma-separated numbers: one, or one for each colour channel."""
    return [_read(each.strip()) for each in text.split(",")]


def image_size(text: str) -> tuple[int, int]:
    """SIDE or HEIGHTxWIDTH, as (height, width)."""
    sides = text.lower().split("x")
    if len(sides) == 1:
        sides *= 2  # a square's side
    try:
        height, width = (whole_number(side, 1) for side in sides)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a side or HEIGHTxWIDTH in pixels, such as 224 or 224x160, "
                                         f"not {text!r}") from None
    if max(height, width) > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SIDE} pixels a side, not {text}")
    return height, width


# What a notebook may have done to the pixels before its model (`import --scaling`); tf, caffe
# and torch are keras.applications' names for the modes of its preprocess_input functions.
SCALINGS = {
    "none": "raw pixels 0-255, for a model that scales them itself",
    "unit": "pixels / 255",
    "tf": "pixels / 127.5 - 1, as the preprocess_input of MobileNet, Inception, Xception and ResNetV2",
    "caffe": "RGB to BGR less ImageNet's means, as the preprocess_input of VGG16, VGG19 and ResNet50",
    "torch": "pixels / 255 less ImageNet's means over its deviations, as DenseNet's preprocess_input",
}

MAX_NAME_BYTES = 100  # a file name holds 255; the save's temporary file adds to it


def model_name(text: str) -> str:
    # The name becomes MODELS/NAME.h5 and RUN_DIR/NAME/, which a changed command deletes:
    # a path (.., /home) would write or delete outside those folders. Unprintable characters
    # (undecodable bytes included) could not be shown by the web app.
    if not text or text.startswith(".") or "/" in text or "\\" in text or not text.isprintable():
        raise argparse.ArgumentTypeError(f"must be a plain name (no / or \\, no leading dot), not {text!r}")
    size = len(text.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_NAME_BYTES} bytes long in UTF-8, not {size}")
    # NAME.h5 is the model's file: a name given as that file's (--name my_model.h5) means it
    # without the extension, which was saved as my_model.h5.h5 and served as "my_model.h5".
    return text[:-len(".h5")] if text.lower().endswith(".h5") else text


MIN_IMAGE_SIZE = 16  # the scratch nets shrink it by a 2x2 stem, then halve it three times
MIN_UPSCALE_SIZE = 32  # VGG16's five poolings need at least 32 px (Keras refuses less)
MAX_SIDE = 2048  # pixels: 50,000 images of this side would need 600 GB
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_SEED = 2**32 - 1  # Keras' seeding takes no more

# Options that override a preset's value of the same name (None: keep the preset's), with
# how to read each (a function, or the choices) and its help.
OVERRIDES = {
    "epochs": (_in_range(1, MAX_EPOCHS), "epochs (scratch); for transfer models see --head-epochs / --fine-tune-epochs"),
    "head_epochs": (_in_range(1, MAX_EPOCHS), "transfer models, phase 1: epochs with the base frozen"),
    "fine_tune_epochs": (_in_range(1, MAX_EPOCHS), "transfer models, phase 2: epochs with the top blocks unfrozen"),
    "unfreeze_blocks": (_names, "transfer models, phase 2: comma-separated name prefixes of the base's "
                                "layers to unfreeze (e.g. block5; stem,block,top for the whole base)"),
    "batch_size": (_in_range(1, MAX_BATCH_SIZE), "images per training step"),
    "image_size": (_in_range(MIN_IMAGE_SIZE, MAX_SIDE), "side of the square images the model takes (data is resized to "
                                              "it); transfer presets: by default the backbone's size, or the "
                                              "images' own if at most half"),
    "upscale_size": (_in_range(MIN_UPSCALE_SIZE, MAX_SIDE), "transfer models: side the backbone sees, resized inside the model"),
    "learning_rate": (_learning_rate, "scratch: peak SGD learning rate"),
    "head_learning_rate": (_learning_rate, "transfer models: Adam learning rate of phase 1"),
    "fine_tune_learning_rate": (_learning_rate, "transfer models: Adam learning rate of phase 2 (its peak with cosine)"),
    "fine_tune_schedule": (("plateau", "cosine"), "transfer models, phase 2: plateau (Adam, the rate cut when "
                                                  "validation stalls) or cosine (AdamW, the rate decaying to 0)"),
    "validation_fraction": (_fraction, "share of every class held out for validation (stratified)"),
    "seed": (_in_range(0, MAX_SEED), "random seed of the split, the initial weights and the augmentation"),
    "weights": (str, "transfer models: imagenet, none, or a path to a weights file (VGG16: Keras' .h5 "
                     "without top; EfficientNet-Lite0: the .pth of its weights package)"),
    "teacher": (str, "scratch: a trained model (.h5) whose predictions the new net learns from too"),
    "teacher_weight": (_weight, "scratch, with --teacher: the teacher's share of each target (0-1)"),
}


class UsageError(Exception):
    """A command that cannot be run as given; the message says why."""


def did_you_mean(word: str, known) -> str:
    """Words to add to an error: " (did you mean X?)", X the closest of `known` to a mistyped
    `word`; "" when none is close."""
    guesses = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {guesses[0]}?)" if guesses else ""


def choice_of(names) -> dict:
    """add_argument's keywords for a choice among `names`: as argparse's `choices`, with the
    closest name to a slip (--preset scratch_small) said too."""
    names = list(names)

    def parse(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r}{did_you_mean(text, names)}; choose from "
                                             f"{', '.join(names)}")
        return text
    return {"type": parse, "metavar": "{" + ",".join(names) + "}"}


def recipe(args) -> dict:
    """The preset's hyperparameters with the options given, once they are known to fit it."""
    preset = args.preset or DEFAULT_PRESET[args.arch or "scratch"]
    hp = dict(PRESETS[preset], preset=preset)
    if args.arch and args.arch != hp["arch"]:
        raise UsageError(f"preset {preset} is for --arch {hp['arch']}, not {args.arch}")
    given = {key: getattr(args, key) for key in OVERRIDES if getattr(args, key) is not None}
    foreign = [key for key in given if key not in hp]
    if foreign:  # silently ignored, --epochs 2 would leave a transfer model its 15 epochs
        kind = "a scratch CNN" if hp["arch"] == "scratch" else "a transfer model"
        options = ", ".join("--" + key.replace("_", "-") for key in foreign)
        verb = "does" if len(foreign) == 1 else "do"
        raise UsageError(f"{options} {verb} not apply to preset {preset} ({kind}); --help says which "
                         "options each kind of model takes")
    hp.update(given)
    if hp["arch"] != "scratch":
        _check_weights(hp)
        _check_unfreeze_blocks(hp)
    elif hp["teacher"] and not Path(hp["teacher"]).is_file():
        raise UsageError(f"--teacher must be an existing model file; {hp['teacher']} is not")
    elif "teacher_weight" in given and not hp["teacher"]:  # otherwise ignored, yet recorded on the card
        raise UsageError("--teacher-weight sets the teacher's share of each target, so it needs --teacher")
    return hp


def _check_unfreeze_blocks(hp):
    from trainer.models import unfreeze_problem

    problem = unfreeze_problem(hp["arch"], hp["unfreeze_blocks"])
    if problem:
        raise UsageError(problem)


def _check_weights(hp):
    weights = hp["weights"]
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise UsageError(f"--weights must be imagenet, none or an existing file; {weights} is none of these")
    if hp["arch"] == "efficientnet_lite0" and weights == "imagenet":
        from trainer.efficientnet_lite import missing_package_message

        missing = missing_package_message()
        if missing:  # said now, not after the data has loaded
            raise UsageError(missing)
