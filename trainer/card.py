"""Saving a trained model: `models/<name>.h5` and its metrics card `models/<name>.json`.

The card is the contract between the trainer and the web app. Its keys:

    summary           first in the file: the card in words (in_words), what the model is,
                      takes and gives, and how often it was right (absent from older cards)
    format            always "image-classifier-card/1"
    name              the file stem, e.g. "cifar10_scratch"
    architecture      "scratch", "vgg16", "efficientnet_lite0" (preset in hyperparameters),
                      or "imported" (see below)
    dataset           what it was trained on, e.g. "cifar10" or a folder name
    data_digest       a fingerprint of the images read (trainer.data.digest): of their class
                      and path in the class folder, so a zip and its unzipped folder match
    held_out_digest   the same of the held-out images, which `evaluate --held-out` finds again
    test_digest       the same of the test images of test_evaluation, by which the dashboard
                      finds models scored on the same ones (None without a test set; absent
                      from cards written before this field)
    training_pixels_sketch  a sample of the pictures the run trained on, by their pixels
                      (trainer.data.sketch), by which `evaluate` and a distillation teacher's
                      check find what another set of images shares with them, whatever their
                      names; cards written before it kept `training_sketch`, of their class
                      and file names, which are still read (and before that, neither)
    classes           the labels, in the order of the model's outputs
    input_shape       [height, width, 3]: raw RGB pixels 0-255 of this size go in
    parameters        parameter count
    file_size_bytes   size of the .h5 file
    file_sha256       its SHA-256, by which a card beside another file is told
                      (trainer.model_file.card_of_another_file; absent from older cards)
    weights           where the starting weights came from: "imagenet", "none" or a file name
                      ("imported from <file>" for an imported model)
    hyperparameters   every setting of the run
    training_images   how many images the weights learned from: all but the held-out ones,
                      and for transfer models but the epoch-picking share too (absent from
                      cards written before this field)
    epochs_run        epochs actually trained (early stopping may cut them short)
    training_seconds  wall-clock time from building the model to the end of its last phase
                      (a first download of pretrained weights included); for a resumed
                      run, plus the time of the epochs it resumed from
    training_precision  "float32", or "mixed_bfloat16" for the scratch presets on a GPU
    backend, device   e.g. "tensorflow", "cpu (2 cores)"; "jax", "gpu: NVIDIA H100 80GB HBM3"
    keras_version     the Keras that wrote the file
    created           ISO 8601 time, UTC
    history           per epoch: loss, accuracy, val_loss, val_accuracy, learning_rate, seconds
                      as Keras logs them: losses label-smoothed (and with cutmix, training
                      figures on mixed images), one view scored, val_* on
                      the held-out images (scratch) or the epoch-picking share (transfer)
    evaluation        on the held-out split, of the saved model (test-time views averaged;
                      plain cross-entropy, each true class's probability clipped at 1e-7 as
                      Keras clips it, so at most 16.12): see trainer.metrics.classification_report
    held_out_in_training  how many of the held-out images are pictures it trained on too, the
                      same pixels (copies in the data set; absent from cards written before it)
    test_evaluation   the same on a separate test set, when one was given
    test_in_training  how many of those test images the model trained on too, the same pixels
                      (None without a test set; absent from cards written before it): a score
                      they flatter, by which the dashboard does not rank

A model made by `python -m trainer import` (trainer.importing.imported_card) has a shorter card:
summary, format, name, architecture "imported", classes, input_shape, parameters, file_size_bytes,
file_sha256, weights, created, hyperparameters (the file imported, the scaling put inside and
how it was found, and --mean/--std if given), test_digest and test_evaluation (of --data, or
None): what it trained on, and how, is not known here.

Both files are written to temporary dotfiles in the same folder and renamed into place,
so a crash or Ctrl-C never leaves a half-written model where the web app looks; those that a
killed save leaves (SIGKILL, a power cut) go with the next save of the name.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import math
import os
import re
import secrets
import sys
from collections import Counter
from pathlib import Path
from contextlib import contextmanager, suppress
from typing import IO, Any, Iterator

from trainer import locks, model_file
from trainer.formatting import filesize, is_utf8, os_reason, percentage, plural

CARD_FORMAT = "image-classifier-card/1"

ARCHITECTURE_NAMES = {"scratch": "A CNN", "vgg16": "VGG16", "efficientnet_lite0": "EfficientNet-Lite0"}
CLASSES_NAMED = 10  # in the summary; the rest are counted


def in_words(card: dict[str, Any]) -> str:
    """The card's `summary`: what the model is, takes and gives, and how often it was right on
    images it did not learn from, in sentences for whoever has the JSON file without this
    project (the web app offers it for download beside the model)."""
    weights, data_set = card["weights"], card.get("dataset")
    if card["architecture"] == "imported":
        made = f"A Keras model {weights}; what it learned from, and how, is not known here."
    else:
        start = {"none": "trained from scratch", "imagenet": "fine-tuned from ImageNet weights"}.get(
            weights, f"fine-tuned from the weights in {weights}")
        made = f"{ARCHITECTURE_NAMES.get(card['architecture'], card['architecture'])} {start} on {data_set}."
    classes, (height, width, _) = card["classes"], card["input_shape"]
    named = ", ".join(classes[:CLASSES_NAMED]) + (f" and {len(classes) - CLASSES_NAMED:,} more"
                                                  if len(classes) > CLASSES_NAMED else "")
    text = (f"{made} It takes an RGB picture of {height} x {width} pixels (values 0-255) and gives a probability "
            f"for each of its {len(classes)} classes, in this order: {named}.")
    for key, copies_key, images in (
            ("evaluation", "held_out_in_training", f"images of {data_set} held out from its training"),
            ("test_evaluation", "test_in_training", "test images")):
        if scored := card.get(key):
            samples, copies = scored["samples"], card.get(copies_key)
            right = sum(row[i] for i, row in enumerate(scored["confusion_matrix"]))
            learned = f" ({copies:,} of them copies of pictures it learned from)" if copies else ""
            text += (f" On {samples:,} {images}{learned}, it was right {percentage(right / samples)} of the time "
                     f"({right:,} of {samples:,}).")
    return text


class _NoHdf5Advice(logging.Filter):
    """Keras logs on every `.h5` save that the format is legacy and to use `.keras`. The
    product ships `.h5` on purpose (the web app and plain `load_model` take it on any
    backend), so that advice would only mislead whoever trains."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("You are saving your model as an HDF5 file")


@contextmanager
def _staged(model_path: Path) -> Iterator[tuple[Path, Path]]:
    """Hidden temporary files beside the model and its card, for the caller to fill and rename
    into place; removed if they are not published, as are those of earlier saves of the name
    that were killed."""
    folder = model_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    lock, lock_path = _save_lock(folder, model_path.stem)
    staged = _staged_files(lock_path, model_path.suffix)
    with lock:
        try:
            _remove_killed_saves(folder, model_path.stem, model_path.suffix, lock_path)
            yield staged
        finally:
            for tmp in staged:
                tmp.unlink(missing_ok=True)
            lock_path.unlink(missing_ok=True)  # while locked: no other save takes it for a killed one's


# A save holds an flock on a lock file of its own from before its temporary files exist until
# after they are gone, so that a later save tells a killed save's files (their lock file free)
# from those of a save going on. Not a process id in their names: it may be another process's by
# now, or one in another container. Not a lock on the .h5 itself: HDF5 locks a file it writes,
# and refuses to write one locked already.
def _save_lock(folder: Path, stem: str) -> tuple[IO, Path]:
    """A new lock file `.<stem>.<random>.lock`, open and locked, and its path."""
    while True:
        path = folder / f".{stem}.{secrets.token_hex(4)}.lock"
        try:
            # Not mkstemp's private file: under the umask, as the model's, so that the next save of
            # another user who shares the folder can open it to tell whether this save was killed.
            lock = open(path, "x")
        except FileExistsError:
            continue
        with suppress(OSError):  # a file system without locks: then no save removes another's files
            fcntl.flock(lock, fcntl.LOCK_EX)
        if locks.still_names(path, lock):
            return lock, path
        lock.close()  # another save found it before it was locked, and removed it as a killed save's


def _staged_files(lock_path: Path, suffix: str) -> tuple[Path, Path]:
    """The temporary model and card of the save that holds `lock_path`."""
    return lock_path.with_suffix(suffix), lock_path.with_suffix(".json")


def _remove_killed_saves(folder: Path, stem: str, suffix: str, own_lock: Path) -> None:
    """Remove the files of earlier saves of `stem` in `folder` that were killed during the save,
    which nothing else ever would; a failure is a warning, as the save itself can go on."""
    pattern = re.compile(rf"\.{re.escape(stem)}\.[^.]+\.lock")  # not another name's: ".m.b.x.lock" is m.b's
    try:
        for lock_path in folder.iterdir():
            # A save's lock file is a plain file (_save_lock's): a folder or FIFO of the name is no save's.
            if lock_path != own_lock and pattern.fullmatch(lock_path.name) and lock_path.is_file():
                try:
                    _remove_if_killed(lock_path, suffix)
                except OSError as error:  # one that cannot be removed keeps none of the others
                    _cannot_remove(folder, stem, error)
    except OSError as error:
        _cannot_remove(folder, stem, error)


def _cannot_remove(folder: Path, stem: str, error: OSError) -> None:
    print(f"warning: cannot remove the files that killed saves of {stem} may have left in {folder} "
          f"({os_reason(error)})", file=sys.stderr)


def _remove_if_killed(lock_path: Path, suffix: str) -> None:
    try:
        lock = open(lock_path, "r+")  # not "w": a lock file removed meanwhile must not be made again
    except FileNotFoundError:  # its save ended, or another save removed it
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a save going on
            return
        if locks.still_names(lock_path, lock):  # else another save removed it meanwhile
            for tmp in _staged_files(lock_path, suffix):
                tmp.unlink(missing_ok=True)
            lock_path.unlink()


def save_model_and_card(model, card: dict[str, Any], model_path: Path) -> dict[str, Any]:
    """Save `<name>.h5` (for inference: no optimizer state) and its card `<name>.json`.

    Both are written in full before either is renamed into place, card first, so the web
    app never lists a new model without its card, and an interruption while writing leaves
    the old pair as it was. Returns the card with `file_size_bytes` and `file_sha256` filled in.
    """
    model_path = Path(model_path)
    card_path = model_path.with_suffix(".json")
    with _staged(model_path) as (model_tmp, card_tmp):
        save_h5(model, model_tmp)
        card = card | {"file_size_bytes": model_tmp.stat().st_size, "file_sha256": model_file.sha256(model_tmp)}
        card_tmp.write_text(json.dumps(card, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(card_tmp, card_path)
        os.replace(model_tmp, model_path)
    return card


def save_h5(model, path: Path) -> None:
    """Save the model for inference (no optimizer state) as .h5, without Keras's advice against it."""
    absl_log, no_advice = logging.getLogger("absl"), _NoHdf5Advice()
    absl_log.addFilter(no_advice)
    try:
        with model_file.writing_h5():
            model.save(path, include_optimizer=False)
    finally:
        absl_log.removeFilter(no_advice)


def exists_message(model_path: Path, new: str = "train a new one") -> str:
    """Why a run (or an import) does not save over an existing model unless told to."""
    return f"{model_path} exists: pass --replace to {new} in its place, or --name to save beside it"


def load_card(path: Path) -> dict[str, Any]:
    """Read and check a card; raises ValueError with a readable reason if it is unusable."""
    path = Path(path)
    try:
        card = json.loads(_card_text(path), parse_constant=_not_a_number, parse_float=_finite_float,
                          parse_int=_json_int)
        if not is_utf8(json.dumps(card, ensure_ascii=False)):  # "\udc80": no page or answer could show it
            raise ValueError("it holds text that is not valid Unicode (a name that was not UTF-8?)")
    except OSError as error:  # its name alone: messages reach pages, where the server's paths do not belong
        raise ValueError(f"metrics card {path.name} cannot be read ({os_reason(error)})") from error
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"metrics card {path.name} is unreadable: {error}") from error
    if not isinstance(card, dict):
        raise ValueError(f"metrics card {path.name} is not a JSON object")
    missing = [key for key in ("classes", "input_shape") if key not in card]
    if missing:
        raise ValueError(f"metrics card {path.name} lacks {', '.join(missing)}")
    classes, shape = card["classes"], card["input_shape"]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise ValueError(f"metrics card {path.name} has no valid class list")
    # type() rather than isinstance(): JSON's true is a Python int too.
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(n) is int and n > 0 for n in shape)):
        raise ValueError(f"metrics card {path.name} has an invalid input_shape")
    # Found from the card alone, before any worker loads the model: each would answer every
    # picture with 100%, or name two of its answers alike, or be fed pixels it cannot take.
    if len(classes) < 2:
        raise ValueError(f"metrics card {path.name} lists one class; a classifier needs two or more")
    if len(set(classes)) < len(classes):
        twice = next(name for name, count in Counter(classes).items() if count > 1)
        raise ValueError(f"metrics card {path.name} lists the class {twice!r} more than once")
    if shape[2] != 3:
        raise ValueError(f"metrics card {path.name}'s input_shape has {plural(shape[2], 'channel')}, "
                         "where models here take RGB images (3)")
    return card


def mismatch(model, card: dict[str, Any]) -> str | None:
    """Why a loaded Keras model cannot serve as its card describes (None: it can): it must take
    RGB images of the card's size, or of any size, and give an output per class."""
    height, width, _ = card["input_shape"]  # 3 channels: load_card's
    model_shape = model.input_shape  # (None, height, width, 3) for one image input; None: any size
    if not (isinstance(model_shape, tuple) and len(model_shape) == 4
            and all(n in (None, m) for n, m in zip(model_shape[1:], (height, width, 3)))):
        shape = _per_image(model_shape) if isinstance(model_shape, tuple) else model_shape
        return f"the model takes inputs of shape {shape}, not the RGB images of its card's size ({height} x {width} x 3)"
    output_shape, classes = model.output_shape, len(card["classes"])  # (None, classes) for one answer an image
    if not (isinstance(output_shape, tuple) and len(output_shape) == 2):
        shape = _per_image(output_shape) if isinstance(output_shape, tuple) else f"{len(output_shape)} outputs"
        return f"the model answers an image with {shape}, not one score per class of its card"
    if output_shape[1] != classes:
        return f"the model has {plural(output_shape[1], 'output')} but its card lists {plural(classes, 'class')}"
    return None


def _per_image(shape: tuple) -> str:
    """A batch's shape as one image's: (None, 32, None, 10) as "32 x any x 10"."""
    return " x ".join("any" if n is None else str(n) for n in shape[1:])


# A card is a few hundred kB at most (a 100-class matrix, a thousand epochs of history);
# reading more, whole, could exhaust a web app worker's memory.
MAX_CARD_BYTES = 16_000_000


def _card_text(path: Path) -> str:
    if not path.is_file():  # a FIFO would block its reader, a device (/dev/zero) never end
        raise ValueError("it is not a regular file")
    with open(path, "rb") as handle:
        data = handle.read(MAX_CARD_BYTES + 1)
    if len(data) > MAX_CARD_BYTES:
        raise ValueError(f"it is over {filesize(MAX_CARD_BYTES)}, more than a card holds")
    return data.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is fine


def _json_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # over 4,300 digits; Python's own words speak of sys.set_int_max_str_digits()
        raise ValueError(f"{text[:20]}... is too long a number") from None


def _not_a_number(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")  # NaN and Infinity, which Python writes


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
