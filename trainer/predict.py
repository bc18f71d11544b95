"""Labelling images with a saved model: `python -m trainer predict`, and the check of a model's
answers that the web app makes too."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterator, NamedTuple

import numpy as np

from trainer.data import Folder, hidden, open_tree, read_image
from trainer.images import ImageError

# Images decoded and labelled at a time: a folder of thousands of photos is never in memory
# whole, and 256 of a 224 px backbone's activations fit in a laptop's.
CHUNK = 256


class BadOutput(ValueError):
    """A model's answer that is not class probabilities; the message says what it gave."""


class Answer(NamedTuple):
    """One image's most likely classes (label, probability), or why it could not be labelled."""
    name: str
    predictions: list[tuple[str, float]] | None
    error: str | None = None


def probabilities(outputs) -> np.ndarray:
    """A model's outputs for a batch, checked to be class probabilities, a row per image."""
    found = np.asarray(outputs, dtype=np.float64)
    if not np.isfinite(found).all():
        raise BadOutput("NaN or infinite outputs (damaged weights, or a training run that diverged)")
    if found.min() < -1e-6 or np.abs(found.sum(axis=-1) - 1).max() > 1e-3:
        raise BadOutput("outputs that are not probabilities (its last layer needs a softmax)")
    return found


def image_files(paths: list[Path]) -> Iterator[tuple[str, Folder, str]]:
    """Each file given, and each file in a folder or zip given (in name order, hidden files and
    clutter such as Thumbs.db left out, as `hidden` finds them; named, they are read): its name
    as shown, and the folder or zip it is read from with its name there (readable until the
    next one comes)."""
    for path in paths:
        if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path)):  # is_zipfile reads a pipe or device forever
            with open_tree(path) as tree:
                for name in sorted(tree.names()):
                    if not name.endswith("/") and not hidden(PurePosixPath(name).parts):
                        yield _printable(f"{path}/{name}"), tree, name
        else:
            with open_tree(path.parent) as tree:
                yield _printable(str(path)), tree, path.name


def _printable(name: str) -> str:
    """A file name as text that can be printed: bytes that are not UTF-8 shown as U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def predict(model, classes: list[str], size: tuple[int, int], paths: list[Path], top_k: int) -> Iterator[Answer]:
    """The `top_k` most likely classes of every image in `paths`, in order, a chunk at a time."""
    chunk: list[tuple[str, np.ndarray | str]] = []  # (name, pixels, or why it cannot be used)
    for name, tree, inside in image_files(paths):
        try:
            chunk.append((name, read_image(tree, inside, size)))
        except ImageError as error:
            chunk.append((name, str(error)))
        if len(chunk) == CHUNK:
            yield from _answers(model, classes, chunk, top_k)
            chunk = []
    yield from _answers(model, classes, chunk, top_k)


def _answers(model, classes: list[str], chunk: list[tuple[str, np.ndarray | str]], top_k: int) -> Iterator[Answer]:
    images = [pixels for _, pixels in chunk if isinstance(pixels, np.ndarray)]
    found = iter(probabilities(model.predict(np.stack(images), verbose=0)) if images else [])
    for name, pixels in chunk:
        if isinstance(pixels, str):
            yield Answer(name, None, pixels)
            continue
        row = next(found)
        yield Answer(name, ranked(classes, row, top_k))


def ranked(classes: list[str], probabilities: np.ndarray, top_k: int) -> list[tuple[str, float]]:
    """The `top_k` most likely classes with their probabilities, most likely first; equal ones
    in the classes' order, as np.argmax picks the first."""
    return [(classes[i], float(probabilities[i])) for i in np.argsort(-probabilities, kind="stable")[:top_k]]
