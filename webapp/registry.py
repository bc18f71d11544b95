"""The model registry: `models/<name>.h5` files with their `<name>.json` cards.

Each worker loads a model lazily, once, on first use. Files are checked on every lookup
(a stat, cheap), so models added, replaced or removed while the server runs are noticed
without a restart; each new version of a file is read through once when it is first seen,
in a child process that reads all the files a listing sees first. A model that cannot be
used is listed with the reason; the others keep working.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from flask import Flask, current_app
from werkzeug.exceptions import NotFound

from trainer import model_file
from trainer.card import load_card, mismatch
from trainer.formatting import as_typed, first_line, is_number, is_share, is_utf8, os_reason, reason
from trainer.keras_import import import_keras
from trainer.options import did_you_mean
from trainer.predict import BadOutput, probabilities

from .occlusion import warm_up

log = logging.getLogger(__name__)

EXTENSION = "imageapp.registry"  # the app.extensions key it is kept under

# model_file.stamp of the .h5 (its size None for a link to nothing), then of the card: any
# change means "check and load again".
Stamp = tuple[int | None, ...]
NO_CARD = (-1, 0, 0, 0)  # a Stamp's card half where there is no card: no file has size -1


class ModelNotFound(NotFound):
    """A page about a model that is not in the models folder: a 404 titled as such."""
    title = "Model not found"


class UnknownModel(LookupError):
    def __init__(self, name: str, known=()):
        # The likely slip named: "my_photos.h5" or "My_Photos" for my_photos.
        super().__init__(f"Unknown model '{name[:80]}'{did_you_mean(name[:80], known)}.")


def as_listed(name: str, listed) -> str:
    """`name` as the model of `listed` spells it that reads alike: typed "modèle" for a file named
    on macOS, whose "è" is "e" and an accent (NFD), was "Unknown model 'modèle' (did you mean modèle?)"."""
    if name in listed:
        return name
    typed = as_typed(name)
    return next((each for each in listed if as_typed(each) == typed), name)


class ModelUnavailable(RuntimeError):
    def __init__(self, name: str, reason: str):
        super().__init__(f"Model '{name}' cannot be used: {reason}")
        self.reason = reason


class FileChanged(RuntimeError):
    """A model's file replaced since the registry last looked: not the version it checked."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    card: dict[str, Any] | None
    error: str | None  # why the model cannot be used; None when usable as far as known
    stamp: Stamp = field(repr=False)
    card_note: str | None = None  # why the card may not describe the file, for a usable model

    @property
    def available(self) -> bool:
        return self.error is None

    @property
    def file_size(self) -> int | None:
        return self.stamp[0]


class ModelMismatch(ValueError):
    """A model file that loads but cannot serve as its card describes; the message says why."""


class Checked(NamedTuple):
    """What the registry knows of a model's files from reading them, for one version of them."""
    stamp: Stamp
    card: dict | None
    error: str | None  # why the model cannot be used; None when no reason was found
    card_note: str | None  # why the card may not describe the file


class Classifier:
    """A Keras model ready to classify batches of raw RGB pixels."""

    def __init__(self, name: str, card: dict[str, Any], model, card_note: str | None = None):
        self.name, self.model, self.card_note = name, model, card_note  # card_note: ModelInfo's
        self.classes: list[str] = card["classes"]
        height, width, _ = card["input_shape"]
        self.input_size = (height, width)
        problem = mismatch(model, card)
        if problem:
            raise ModelMismatch(problem)
        # The first call traces and compiles the predict function; do it now, under the
        # registry lock, rather than in the first request (and in several threads at once).
        # It also finds weights that give NaN, or a head without a softmax, before any request.
        try:
            self.predict(np.zeros((1, height, width, 3), dtype=np.float32))
        except BadOutput as error:
            raise ModelMismatch(f"it gives {error}") from None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities, a row per image; raises BadOutput when the model gives none."""
        # predict_on_batch runs Keras' compiled predict function directly: about 2 ms for a
        # 32x32 CNN on CPU, where model.predict() costs 70+ ms per call in its own overhead.
        return probabilities(self.model.predict_on_batch(batch))


class LoadAttempt(NamedTuple):
    """A worker's load of one version of a model's files: the classifier, or why it failed."""
    stamp: Stamp
    classifier: Classifier | None
    error: str | None


def _check_card(card_path: Path) -> tuple[dict | None, str | None]:
    if not card_path.exists():
        return None, f"no metrics card ({card_path.name})"
    try:
        return load_card(card_path), None
    except ValueError as error:
        return None, model_file.without_folder(str(error), card_path)


def _check_files(files: dict[str, Path], stamps: dict[str, Stamp]) -> dict[str, Checked]:
    """The check of each model's files, of the version in `stamps`: its card; why the model
    cannot be used (its card is missing or unreadable, or its .h5 fails trainer.model_file's
    checks, which read all the files through in one child process); and for a usable one, why
    its card may be another file's."""
    keras_files = {name for name, path in files.items() if path.suffix == ".keras"}
    cards = {name: _check_card(path.with_suffix(".json")) for name, path in files.items()}
    # The .h5's size, first in its stamp (None, as 0, for a link to nothing that appeared since).
    found = model_file.problems({files[name]: (stamps[name][0] or 0, card)
                                 for name, (card, _) in cards.items() if card is not None and name not in keras_files})
    checks = {}
    for name, (card, error) in cards.items():
        if name in keras_files:  # and what its card lacks, said at once: it is the next thing to put right
            error = (f"{name}.keras is in Keras's own .keras format, and the app serves .h5 files with a card beside "
                     "them: python -m trainer import makes one of it, as docs/web-app.md says (\"A model trained "
                     "elsewhere\")"
                     + (f"; and {error}" if error else ""))
        error = error or found[files[name]]
        if error:
            log.warning("model %s cannot be used: %s", name, error)
        note = None if error else model_file.card_of_another_file(files[name], card)
        if note:
            log.warning("model %s: %s", name, note)
        checks[name] = Checked(stamps[name], card, error, note)
    return checks


def _load_keras_model(path: Path):
    # The backend requirements.txt installs, even where ~/.keras/keras.json names another (a
    # machine that also trains on JAX); KERAS_BACKEND set by hand still wins.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = import_keras()  # here, in the worker, never in a forking parent
    return keras.saving.load_model(path, compile=False)


def _stamp(path: Path) -> Stamp | None:
    h5_stamp = model_file.stamp(path)
    if h5_stamp is None:
        if not model_file.is_dangling_link(path):
            return None  # removed since the folder was listed, or out of reach
        # A link to a file gone: listed, as unusable, not left out as if removed. No size: the link's is no model's.
        h5_stamp = (None, *model_file.stamp_of(path.lstat())[1:])
    return h5_stamp + (model_file.stamp(path.with_suffix(".json")) or NO_CARD)


def _free_dropped_models() -> None:
    """Frees the memory of the models just dropped from a registry, removed or replaced: a Keras
    model's reference cycles kept each one (25 MB for the shipped model) until Python's next full
    collection, which in a worker came 6 or more versions later."""
    gc.collect()  # 0.12-0.19 s with TensorFlow and 1 to 7 models loaded (idle core), once per model dropped


class Registry:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._load_lock = threading.Lock()
        self._check_lock = threading.Lock()  # a new file version is checked once, not by every thread
        self._checked: dict[str, Checked] = {}
        self._attempts: dict[str, LoadAttempt] = {}
        self._default_served: str | None = None  # what load_default last gave, to log a change
        self.unreadable: str | None = None  # why the folder could not be listed last time, as for a chmod

    def _files(self) -> dict[str, Path]:
        try:
            entries = list(os.scandir(self.folder))
        except OSError as error:
            # Served as empty. One not there is said at start; one the server may not read (a
            # chmod, another user's copy) is said once each time it becomes so, else nowhere.
            why = None if isinstance(error, (FileNotFoundError, NotADirectoryError)) else os_reason(error)
            if why and why != self.unreadable:
                log.warning("The models folder %s cannot be read (%s): no model is served until it can be",
                            self.folder, why)
            self.unreadable = why
            return {}
        self.unreadable = None
        # Dotfiles are models still being written by the trainer. A name that is not UTF-8 (some
        # zip tools leave such names) could not be shown in pages or URLs.
        named = [Path(entry.path) for entry in entries if not entry.name.startswith(".") and is_utf8(entry.name)]
        # A .keras file is listed, as one the app cannot use, unless an .h5 of its name is there.
        return {path.stem: path for suffix in (".keras", ".h5") for path in named if path.suffix == suffix}

    def models(self) -> list[ModelInfo]:
        """Every model in the folder, by name, usable or not."""
        files = self._files()
        dropped = False
        for stale in (set(self._attempts) | set(self._checked)) - set(files):
            dropped |= self._attempts.pop(stale, None) is not None
            self._checked.pop(stale, None)
        if dropped:  # by this thread: the others found it gone
            _free_dropped_models()  # a removed model's memory
        checks = self._checks(files)
        return [self._info(name, checks[name]) for name in sorted(checks)]

    def info(self, name: str) -> ModelInfo:
        files = self._files()
        name = as_listed(name, files)
        checks = self._checks({name: files[name]}) if name in files else {}
        if name not in checks:
            raise UnknownModel(name, files)
        return self._info(name, checks[name])

    def _checks(self, files: dict[str, Path]) -> dict[str, Checked]:
        """The check of each file's current version, by name (files removed meanwhile left out).
        Versions not checked yet are checked now, together: their .h5 files read by one child."""
        stamps = {name: stamp for name, path in files.items() if (stamp := _stamp(path)) is not None}
        checks = self._cached_checks(stamps)
        if len(checks) < len(stamps):
            with self._check_lock:
                checks = self._cached_checks(stamps)  # other threads may have checked some meanwhile
                new = {name: files[name] for name in sorted(stamps) if name not in checks}
                for name, checked in _check_files(new, stamps).items():
                    checks[name] = self._checked[name] = checked
        return checks

    def _cached_checks(self, stamps: dict[str, Stamp]) -> dict[str, Checked]:
        return {name: cached for name, stamp in stamps.items()
                if (cached := self._checked.get(name)) is not None and cached.stamp == stamp}

    def _info(self, name: str, checked: Checked) -> ModelInfo:
        error = checked.error
        attempt = self._attempts.get(name)
        if error is None and attempt is not None and attempt.stamp == checked.stamp:
            error = attempt.error  # found on loading it
        return ModelInfo(name, checked.card, error, checked.stamp, checked.card_note)

    def load(self, name: str) -> Classifier:
        """The ready-to-use model; raises UnknownModel or ModelUnavailable."""
        return self.load_listed(self.info(name))

    def load_listed(self, info: ModelInfo) -> Classifier:
        """The model of an entry that `models` has just listed, ready to use, without listing the
        folder again (a comparison loads every model of one listing); raises ModelUnavailable, or
        UnknownModel for a model removed since."""
        name = info.name
        attempt = self._attempts.get(name)
        if not info.error and (attempt is None or attempt.stamp != info.stamp):
            with self._load_lock:
                # Again: the file may have been replaced while this thread waited, and a new
                # version must be read through in a child before this process opens it.
                info = self.info(name)
                attempt = self._attempts.get(name)
                if not info.error and (attempt is None or attempt.stamp != info.stamp):
                    replaced = attempt is not None
                    attempt = self._attempts[name] = self._load(info)
                    if replaced:  # no reference to the older version is left here
                        _free_dropped_models()
        if info.error or attempt.classifier is None:
            raise ModelUnavailable(name, info.error or attempt.error)
        return attempt.classifier

    def _load(self, info: ModelInfo) -> LoadAttempt:
        path = self.folder / f"{info.name}.h5"
        try:
            classifier = Classifier(info.name, info.card, _load_keras_model(path), info.card_note)
        except ModelMismatch as error:
            log.warning("model %s cannot be used: %s", info.name, error)
            return LoadAttempt(info.stamp, None, str(error))
        except Exception as error:  # h5py, Keras and TF raise many types for broken files
            log.warning("model %s cannot be loaded: %r", info.name, error)
            said = first_line(model_file.without_folder(str(error), path))
            return LoadAttempt(info.stamp, None, model_file.keras_refusal(error)
                               or f"cannot be loaded ({type(error).__name__}: {said})")
        log.info("model %s loaded", info.name)
        return LoadAttempt(info.stamp, classifier, None)

    def open_file(self, info: ModelInfo, suffix: str) -> BinaryIO:
        """A usable model's .h5 (`suffix` ".h5") or card (".json"), open to be sent, provided it is
        the version that `info` describes: a version put in place since is not checked yet. Raises
        FileNotFoundError for a file removed since, FileChanged for one replaced."""
        file = open((self.folder / f"{info.name}.h5").with_suffix(suffix), "rb")
        half = len(NO_CARD)  # a model's stamp is its .h5's, then its card's (_stamp)
        checked = info.stamp[:half] if suffix == ".h5" else info.stamp[half:]
        if model_file.stamp_of(os.fstat(file.fileno())) != checked:
            file.close()
            raise FileChanged(f"{info.name}{suffix}")
        return file

    def default_name(self, preferred: str | None = None) -> str | None:
        """`preferred` when usable, else the best usable model (by `rank`)."""
        return default_of(self.models(), preferred)

    def load_default(self, preferred: str | None = None) -> Classifier | None:
        """`preferred` when it loads, else the best model that does (None: none does). Called
        by gunicorn in each new worker, so that its first request does not wait for a load."""
        while (info := default_info(self.models(), preferred)) is not None:
            name = info.name
            try:
                model = self.load_listed(info)
            except (ModelUnavailable, UnknownModel):
                continue  # now known unusable (logged), or gone: the next pick passes over it
            if self._default_served not in (None, name):  # the first is said at start
                log.warning("Requests that name no model now go to %s, not %s", name, self._default_served)
            self._default_served = name
            return model
        return None


def section(card: dict, key: str) -> dict:
    """A part of a card that should be an object; {} when it is missing or is not one."""
    value = card.get(key)
    return value if isinstance(value, dict) else {}


def default_of(listed: list[ModelInfo], preferred: str | None = None) -> str | None:
    """Of a listing, the name of `preferred` when usable, else of the best usable model (by
    `rank`): a page that shows the listing picks from the same one, not from the folder read again."""
    info = default_info(listed, preferred)
    return info.name if info else None


def default_info(listed: list[ModelInfo], preferred: str | None = None) -> ModelInfo | None:
    """`default_of`'s entry of the listing."""
    usable = [info for info in listed if info.available]
    preferred = preferred and as_listed(preferred, [info.name for info in usable])
    chosen = [info for info in usable if info.name == preferred]
    return chosen[0] if chosen else min(usable, key=rank, default=None)


def rank(info: ModelInfo) -> tuple:
    """Best first: highest held-out accuracy, then lowest loss, then by name; models without
    figures last. The default model and the dashboard's order both go by it."""
    evaluation = section(info.card or {}, "evaluation")
    accuracy, loss = evaluation.get("accuracy"), evaluation.get("loss")
    return (-accuracy if is_share(accuracy) else 1.0, loss if is_number(loss) else math.inf, info.name)


def make_ready(app: Flask) -> None:
    """Load the default model, and trace it for batches (explaining's, several pictures'), before
    the first request: else that request waits seconds for TensorFlow and the model, and a
    default model that fails to load is listed as usable until then. The second shape traced
    adds 0.8 s to the first such answer otherwise; after it, Keras traces for any batch size."""
    model = registry_of(app).load_default(app.config["DEFAULT_MODEL"])
    if model is None:
        return
    try:
        warm_up(model.predict, model.input_size)
    except Exception as error:  # such as memory for a big model's batch: one picture needs none, so serve on
        app.logger.warning("model %s could not be made ready for batches (%s); the first explained answer, or "
                           "answer to several pictures, will try again", model.name, reason(error))


def init_app(app: Flask) -> None:
    """Give the app a registry of its models folder, saying at start where the default model
    cannot be used (requests then fall back to the most accurate usable one)."""
    folder, default = app.config["MODELS_DIR"], app.config["DEFAULT_MODEL"]
    registry = app.extensions[EXTENSION] = Registry(folder)
    app.add_template_global(models_folder_unreadable)  # for the no-model notice, beside config's
    if not os.path.isdir(folder):  # served anyway: models may be copied in later
        app.logger.warning("The models folder %s does not exist or is not a folder: no model to serve.", folder)
        return
    try:
        problem = registry.info(default).error
    except UnknownModel:
        if registry.unreadable:  # said already; the default may well be in it
            return
        problem = f"{default}.h5 is not in the models folder"
    if problem:
        served = registry.default_name(default)
        # The setting named: serving a folder of one's own models, the shipped default is not in it.
        app.logger.warning("The default model %s cannot be used (%s): %s; IMAGEAPP_DEFAULT_MODEL=NAME sets the "
                           "default.", default, problem, f"serving {served} instead" if served else "no model is usable")


def registry_of(app: Flask) -> Registry:
    return app.extensions[EXTENSION]


def get_registry() -> Registry:
    """The registry of the app handling the request."""
    return registry_of(current_app)


def models_folder_unreadable() -> bool:
    """Whether the models folder could not be listed as the request listed it (its user may not
    read it), which the no-model notice says: not "put a model there" beside the models it holds."""
    return bool(get_registry().unreadable)


def listing_and_default() -> tuple[list[ModelInfo], str | None]:
    """The models of the request's app, and which of them answers a request naming none: from
    one reading of the folder, so that a page or answer never names a default it does not list."""
    listed = get_registry().models()
    return listed, default_of(listed, current_app.config["DEFAULT_MODEL"])


def get_info_or_404(name: str) -> ModelInfo:
    """The model a page or an API answer is about; an unknown name is a 404 that says so."""
    try:
        return get_registry().info(name)
    except UnknownModel as error:
        raise ModelNotFound(str(error)) from None


def listed_or_404(listed: list[ModelInfo], name: str) -> ModelInfo:
    """`get_info_or_404` for an answer that also needs the whole listing it picks from."""
    name = as_listed(name, [info.name for info in listed])
    for info in listed:
        if info.name == name:
            return info
    raise ModelNotFound(str(UnknownModel(name, [info.name for info in listed])))
