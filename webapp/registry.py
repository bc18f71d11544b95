"""The model registry: `models/<name>.h5` files with their `<name>.json` cards.

Each worker loads a model lazily, once, on first use. Files are checked on every lookup
(a stat, cheap), so models added, replaced or removed while the server runs are noticed
without a restart; each new version of a file is read through once, in a child process,
when it is first seen. A model that cannot be used is listed with the reason; the others
keep working.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flask import current_app

from trainer.card import load_card

from .formatting import is_number

log = logging.getLogger(__name__)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# (mtime_ns, size) of the .h5 and of the card: any change means "reload".
Stamp = tuple[int, int, int, int]


class UnknownModel(LookupError):
    def __init__(self, name: str):
        super().__init__(f"Unknown model '{name[:80]}'.")


class ModelUnavailable(RuntimeError):
    def __init__(self, name: str, reason: str):
        super().__init__(f"Model '{name}' is unavailable: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class ModelInfo:
    name: str
    card: dict[str, Any] | None
    error: str | None  # why the model cannot be used; None when usable as far as known
    stamp: Stamp = field(repr=False)

    @property
    def available(self) -> bool:
        return self.error is None

    @property
    def file_size(self) -> int:
        return self.stamp[1]


class LoadedModel:
    """A Keras model ready to classify batches of raw RGB pixels."""

    def __init__(self, name: str, card: dict[str, Any], model):
        self.name, self.model = name, model
        self.classes: list[str] = card["classes"]
        height, width, _ = card["input_shape"]
        self.input_size = (height, width)
        outputs = model.output_shape[-1]
        if outputs != len(self.classes):
            raise ValueError(f"the model has {outputs} outputs but its card lists {len(self.classes)} classes")
        # The first call traces and compiles the predict function; do it now, under the
        # registry lock, rather than in the first request (and in several threads at once).
        self.predict(np.zeros((1, height, width, 3), dtype=np.float32))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        # predict_on_batch runs Keras' compiled predict function directly: about 2 ms for a
        # 32x32 CNN on CPU, where model.predict() costs 70+ ms per call in its own overhead.
        return np.asarray(self.model.predict_on_batch(batch))


# Reads every attribute and dataset of an HDF5 file; a file h5py refuses (truncated, say) exits
# with code 1 and the reason on one line. Run in a child process when a file is first seen, so
# that every worker lists it the same way before any load: some damaged files crash HDF5's C
# library, which would take the worker (and every request in it) down, again on each try.
HDF5_READ_CHECK = """
import sys, h5py
def read(name, item):
    for key in item.attrs:
        item.attrs[key]
    if isinstance(item, h5py.Dataset):
        item[()]
try:
    with h5py.File(sys.argv[1], "r") as f:
        read("/", f)
        f.visititems(read)
except Exception as error:
    sys.exit(" ".join(str(error).split()) or type(error).__name__)
"""


def _read_error(path: Path) -> str | None:
    """Why HDF5 cannot read `path` through, read in a child process (None: it can)."""
    try:
        result = subprocess.run([sys.executable, "-c", HDF5_READ_CHECK, str(path)], capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return f"{path.name} is damaged: reading it does not finish"
    if result.returncode < 0:  # killed by a signal, such as SIGSEGV
        return f"{path.name} is damaged: reading it crashes HDF5 (signal {-result.returncode})"
    if result.returncode > 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {result.returncode}"]
        return f"{path.name} cannot be read: {_without_folder(lines[-1], path)[:200]}"  # the last line: the reason
    return None


def _without_folder(message: str, path: Path) -> str:
    """An error message shown to users, with the file's full path cut to its name."""
    return message.replace(str(path), path.name).replace(str(path.parent), "models")


def _load_keras_model(path: Path):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # imported here, in the worker, never in a forking parent

    return keras.saving.load_model(path, compile=False)


def _is_utf8(name: str) -> bool:
    """False for a file name with bytes that are not UTF-8 (some zip tools leave such names):
    pages and URLs could not show it, so the file is left out."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


class Registry:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._load_lock = threading.Lock()
        self._check_lock = threading.Lock()  # a new file version is checked once, not by every thread
        self._checked: dict[str, tuple[Stamp, dict | None, str | None]] = {}
        self._models: dict[str, tuple[Stamp, LoadedModel | None, str | None]] = {}

    def _files(self) -> dict[str, Path]:
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return {}
        return {
            entry.name[: -len(".h5")]: Path(entry.path)
            for entry in entries
            # Dotfiles are models still being written by the trainer.
            if entry.name.endswith(".h5") and not entry.name.startswith(".") and _is_utf8(entry.name)
        }

    def models(self) -> list[ModelInfo]:
        """Every model in the folder, by name, usable or not."""
        files = self._files()
        for stale in (set(self._models) | set(self._checked)) - set(files):
            self._models.pop(stale, None)  # frees a removed model's memory
            self._checked.pop(stale, None)
        infos = (self._info(name, path) for name, path in sorted(files.items()))
        return [info for info in infos if info is not None]

    def info(self, name: str) -> ModelInfo:
        path = self._files().get(name)
        info = self._info(name, path) if path else None
        if info is None:
            raise UnknownModel(name)
        return info

    def _info(self, name: str, path: Path) -> ModelInfo | None:
        h5_stat = _stat(path)
        if h5_stat is None:
            return None  # removed since the folder was listed
        stamp = h5_stat + (_stat(path.with_suffix(".json")) or (0, -1))
        cached = self._checked.get(name)
        if cached is None or cached[0] != stamp:
            with self._check_lock:
                cached = self._checked.get(name)
                if cached is None or cached[0] != stamp:
                    cached = (stamp, *self._check_files(name, path))
                    self._checked[name] = cached
        _, card, error = cached
        loaded = self._models.get(name)
        if error is None and loaded is not None and loaded[0] == stamp:
            error = loaded[2]
        return ModelInfo(name, card, error, stamp)

    @staticmethod
    def _check_files(name: str, path: Path) -> tuple[dict | None, str | None]:
        """The model's card, and why the model cannot be used (None: no reason found): its card
        is missing or unreadable, or its .h5 is not an HDF5 file that reads through."""
        card_path = path.with_suffix(".json")
        if not card_path.exists():
            return None, f"no metrics card ({card_path.name})"
        try:
            card = load_card(card_path)
        except ValueError as error:
            return None, str(error)
        try:
            with open(path, "rb") as handle:
                if handle.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                    return card, f"{path.name} is not an HDF5 model file"
        except OSError:
            return card, f"{path.name} cannot be read"
        error = _read_error(path)
        if error:
            log.warning("model %s is unavailable: %s", name, error)
        return card, error

    def load(self, name: str) -> LoadedModel:
        """The ready-to-use model; raises UnknownModel or ModelUnavailable."""
        info = self.info(name)
        if info.error:
            raise ModelUnavailable(name, info.error)
        cached = self._models.get(name)
        if cached is None or cached[0] != info.stamp:
            with self._load_lock:
                cached = self._models.get(name)
                if cached is None or cached[0] != info.stamp:
                    cached = (info.stamp, *self._load(info))
                    self._models[name] = cached
        _, model, error = cached
        if model is None:
            raise ModelUnavailable(name, error)
        return model

    def _load(self, info: ModelInfo) -> tuple[LoadedModel | None, str | None]:
        path = self.folder / f"{info.name}.h5"
        try:
            model = LoadedModel(info.name, info.card, _load_keras_model(path))
        except Exception as error:  # h5py, Keras and TF raise many types for broken files
            log.warning("model %s cannot be loaded: %r", info.name, error)
            return None, f"cannot be loaded ({type(error).__name__}: {_without_folder(str(error), path)[:300]})"
        log.info("model %s loaded", info.name)
        return model, None

    def default_name(self, preferred: str | None = None) -> str | None:
        """`preferred` when usable, else the most accurate usable model."""
        usable = [info for info in self.models() if info.available]
        if any(info.name == preferred for info in usable):
            return preferred
        return max(usable, key=_accuracy).name if usable else None

    def warm_up(self, preferred: str | None = None) -> None:
        """Load the default model now, so that a worker's first request is fast."""
        name = self.default_name(preferred)
        if name is not None:
            try:
                self.load(name)
            except ModelUnavailable as error:
                log.warning("%s", error)


def _accuracy(info: ModelInfo) -> float:
    evaluation = (info.card or {}).get("evaluation") or {}
    accuracy = evaluation.get("accuracy")
    return accuracy if is_number(accuracy) else -1.0


def get_registry() -> Registry:
    return current_app.extensions["imageapp.registry"]
