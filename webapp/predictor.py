"""From uploaded bytes to ranked class probabilities, shared by the pages and the API."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from flask import current_app
from PIL import Image

from trainer.formatting import whole_number
from trainer.images import (UPLOAD_FORMATS, ImageError, decode, draft_size, format_names, jpeg_scans, resized, shrunk,
                            upload_format)
from trainer.predict import BadOutput, ranked

from .occlusion import Occlusion, occlude
from .registry import Classifier, ModelUnavailable, UnknownModel, get_registry

ACCEPTED = format_names(tuple(UPLOAD_FORMATS))
MAX_TOP_K = 1000


class PredictionError(Exception):
    """A request that cannot be answered; `message` is meant for the person who sent it."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class BadImage(PredictionError):
    """The upload itself is refused: no model could answer it."""


class ModelError(PredictionError):
    """The model asked for, or every model, cannot answer: another one might, and the form's
    error is tied to its model selector rather than to the upload."""


class NoModel(ModelError):
    """No model can answer at all: none is in the folder, or none of those there can be used."""

    def __init__(self):
        super().__init__(503, "No model is available.")


@dataclass(frozen=True)
class Result:
    model: str
    predictions: list[tuple[str, float]]  # (label, probability), most likely first
    elapsed_ms: float
    class_count: int  # how many classes the model chose among
    occlusion: Occlusion | None = None  # which parts the best answer rests on, when asked
    occlusion_error: str | None = None  # why that could not be found, when asked; the answer stands
    pixels: np.ndarray | None = None  # the image as the model took it, (height, width, 3), to show
    card_note: str | None = None  # why the model's answers may not be what its card says it gives


def parse_top_k(text: str | None) -> int:
    if text is None or text == "":
        return current_app.config["TOP_K"]
    try:
        return whole_number(text, 1, MAX_TOP_K)
    except ValueError:
        raise PredictionError(400, f"top_k must be a whole number from 1 to {MAX_TOP_K}.") from None


class Upload:
    """An uploaded image, refused at once if its first bytes say no model could read it, and
    decoded once for each scale the models that answer it need, then resized for each: a JPEG
    is decoded at the smallest scale still no smaller than the model's input
    (trainer.images.decode), so a model compared beside larger ones gets the pixels it would
    alone: a 450 px JPEG decoded for 224 px, then cut to 32, is up to 32 levels of 255 off."""

    def __init__(self, data: bytes):
        if not data:
            raise BadImage(400, "The file is empty.")
        # Tells "not an image we take" (415) from "one of ours, but broken" (400, from decode,
        # which uses the same whitelist), by the file's first bytes, never its name.
        kind = upload_format(data)
        if kind is None:
            raise BadImage(415, f"Unsupported file type: send a {ACCEPTED} image.")
        self.data = data
        self.scans = jpeg_scans(data) if kind == "JPEG" else 0  # once for every decoding and charge
        self.decoded: dict[tuple[int, int] | None, Image.Image] = {}  # by the size decoded at
        self.drafts: dict[int, tuple[int, int] | None] = {}  # by side: each draft_size reads the header again

    def draft(self, side: int) -> tuple[int, int] | None:
        """Its `draft_size` for `side`, read once, for its charge and its decodings alike."""
        if side not in self.drafts:
            self.drafts[side] = draft_size(self.data, side)
        return self.drafts[side]

    def decode_for(self, side: int) -> Image.Image:
        """It decoded for models whose input is `side` pixels at its longer side, once for all
        the sides that decode alike (a phone photo, at 1/8 scale, for 32 to 224 px inputs)."""
        key = self.draft(side)
        if key not in self.decoded:
            try:
                self.decoded[key] = decode(self.data, side, scans=self.scans)
            except ImageError as error:
                raise BadImage(400, str(error)) from None
        return self.decoded[key]

    def pixels(self, size: tuple[int, int]) -> np.ndarray:
        """Its pixels at `size`, (height, width), as a model of that input size alone gets them."""
        return resized(self.decode_for(max(size)), size)

    def picture(self, side: int, least: int | None = None) -> np.ndarray:
        """Its pixels shrunk in proportion to fit a square of `side`, to be shown, from the decoding
        a model's input came from where that is the one `side` needs (any picture but a JPEG at
        another scale), or, given `least`, where that decoding is at least `least` pixels at its
        longer side: a 12-megapixel JPEG decoded at 1/8 for the model (about 500 px) is not
        decoded again at 1/4 (BENCHMARKS.md)."""
        if least is not None and self.draft(side) not in self.decoded:
            large = [image for image in self.decoded.values() if max(image.size) >= least]
            if large:
                return shrunk(max(large, key=lambda image: image.width * image.height), side)
        return shrunk(self.decode_for(side), side)


def classify(upload: Upload, model_name: str | None, top_k: int, explain: bool = False) -> Result:
    """The answer of the model asked for by name (None: the default one) to an upload, made by
    the caller before any model loads, so that one no model could read is refused at once."""
    return answer(chosen_model(model_name), upload, top_k, explain)


def chosen_model(name: str | None) -> Classifier:
    """The model asked for by name, or with none the default one, ready to use; PredictionError
    when it cannot be used."""
    registry = get_registry()
    try:
        model = registry.load(name) if name else registry.load_default(current_app.config["DEFAULT_MODEL"])
    except UnknownModel as error:
        raise ModelError(404, str(error)) from None
    except ModelUnavailable as error:
        raise ModelError(503, str(error)) from None
    if model is None:
        raise NoModel()
    return model


def answer(model: Classifier, upload: Upload, top_k: int, explain: bool = False) -> Result:
    """The model's answer to the upload; PredictionError when it gives no probabilities for it."""
    # Timed from here: decoding (unless done before, for all the models compared) and
    # inference, not a model's one-time loading.
    started = time.perf_counter()
    pixels = upload.pixels(model.input_size)
    probabilities = probabilities_for(model, pixels[np.newaxis])[0]
    predictions = ranked(model.classes, probabilities, top_k)
    best = int(np.argmax(probabilities))  # predictions[0]'s
    occlusion, occlusion_error = _explain(model, pixels, best) if explain else (None, None)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Result(model.name, predictions, elapsed_ms, len(model.classes), occlusion, occlusion_error, pixels,
                  model.card_note)


def probabilities_for(model: Classifier, batch: np.ndarray) -> np.ndarray:
    """The model's class probabilities for a batch of images (uint8), a row each; PredictionError
    when it gives none."""
    try:
        return model.predict(batch.astype(np.float32))
    except BadOutput as error:  # found at load for most models; these images found it first
        raise ModelError(503, f"Model '{model.name}' gave {error}: replace or retrain it.") from None


def _explain(model: Classifier, pixels: np.ndarray, index: int) -> tuple[Occlusion | None, str | None]:
    """What the answer for class `index` rests on, or why that could not be found. A model can
    answer the picture and still give NaN for copies of it with a part covered, which it never
    saw in training: the answer itself was fine, so it is kept either way."""
    try:
        return occlude(model.predict, pixels, index, model.classes[index]), None
    except BadOutput as error:
        return None, (f"The map of what the answer rests on could not be made: with parts of the image covered, "
                      f"the model gave {error}.")
