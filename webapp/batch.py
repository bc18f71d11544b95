"""Several pictures answered by one model in one upload: a folder of one's own photos, checked
at once. A picture that cannot be answered gives its reason in its place; the others still are."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from trainer.images import MAX_PIXELS, decoding_pixels
from trainer.predict import ranked

from .occlusion import CHUNK
from .predictor import PredictionError, Upload, chosen_model, probabilities_for
from .registry import Classifier

# Pictures one upload may hold: a page of answers one can still take in.
MAX_PICTURES = 30
# Pixels one upload's pictures may be decoded to in all: twice one picture's limit. A 10 MB body
# can hold dozens of 50-megapixel PNGs of one colour, which would keep a worker busy for a minute.
MAX_BATCH_PIXELS = 2 * MAX_PIXELS


@dataclass(frozen=True)
class Labelled:
    """One picture of several: the model's most likely classes for it, or why it has none."""
    name: str  # its file's name, as sent
    predictions: list[tuple[str, float]] | None = None  # (label, probability), most likely first
    error: str | None = None
    status: int = 200  # the error's, as the picture alone would get it
    thumbnail: np.ndarray | None = None  # when asked for and answered: the picture shrunk, (height, width, 3)


@dataclass(frozen=True)
class Batch:
    model: str | None  # None when no picture was one a model could read, and none was loaded
    elapsed_ms: float  # decoding every picture and answering them, not the model's one-time loading
    labelled: list[Labelled]  # in the order sent
    card_note: str | None = None  # the model's, as Result's


def classify_many(pictures: list[tuple[str, bytes]], model_name: str | None, top_k: int,
                  thumbnail_side: int | None = None) -> Batch:
    """Each picture (file name, bytes) answered by one model, in batches, and with
    `thumbnail_side` each answered one's thumbnail to fit a square of that side; PredictionError
    when the model cannot be used or there are too many pictures."""
    if len(pictures) > MAX_PICTURES:
        raise PredictionError(400, f"Send at most {MAX_PICTURES} images at a time; this upload has {len(pictures)}.")
    uploads = [opened(data) for _, data in pictures]
    if not any(isinstance(each, Upload) for each in uploads):
        # As with one picture: files no model could read are refused before a model is loaded.
        return Batch(None, 0.0, [refused(name, error) for (name, _), error in zip(pictures, uploads)])
    model = chosen_model(model_name)
    started = time.perf_counter()
    inputs = decode_all(uploads, model.input_size, thumbnail_side)
    answers = iter(probabilities_each(model, [each for each in inputs if isinstance(each, np.ndarray)]))
    outcomes = [next(answers) if isinstance(each, np.ndarray) else each for each in inputs]
    labelled = [refused(name, outcome) if isinstance(outcome, PredictionError)
                else Labelled(name, ranked(model.classes, outcome, top_k), thumbnail=thumbnail(upload, thumbnail_side))
                for (name, _), upload, outcome in zip(pictures, uploads, outcomes)]
    return Batch(model.name, (time.perf_counter() - started) * 1000, labelled, model.card_note)


def opened(data: bytes) -> Upload | PredictionError:
    """The picture as an upload, or why no model could read it (its first bytes say)."""
    try:
        return Upload(data)
    except PredictionError as error:
        return error


def refused(name: str, error: PredictionError) -> Labelled:
    return Labelled(name, error=error.message, status=error.status)


def decode_all(uploads: list[Upload | PredictionError], size: tuple[int, int],
               thumbnail_side: int | None = None) -> list[np.ndarray | PredictionError]:
    """Each upload's pixels at the model's input size, or why it has none. A picture whose
    decoding would take the upload past MAX_BATCH_PIXELS is left undecoded, and each is charged
    before it is decoded, so that a damaged one, which fails only once decoded, counts too; its
    thumbnail's decoding as well, where that is not the same one (a JPEG decoded at another scale)."""
    sides = [side for side in (max(size), thumbnail_side) if side]
    inputs, charged = [], 0
    for upload in uploads:
        if isinstance(upload, PredictionError):
            inputs.append(upload)
            continue
        cost = decoding_pixels(upload.data, sides, upload.scans, upload.draft)
        if charged + cost > MAX_BATCH_PIXELS:
            inputs.append(PredictionError(400, f"Not classified: with the images before it, this upload would come to "
                                               f"over {MAX_BATCH_PIXELS // 1_000_000} megapixels, the most one may "
                                               f"hold; send it again with fewer."))
            continue
        charged += cost
        try:
            inputs.append(upload.pixels(size))
        except PredictionError as error:
            inputs.append(error)
    return inputs


def thumbnail(upload: Upload, side: int | None) -> np.ndarray | None:
    """The upload's `Upload.picture` at `side`; None without a side, or where that decoding fails."""
    if side is None:
        return None
    try:
        return upload.picture(side)
    except PredictionError:  # decoded for the model at one scale, it may still fail at another
        return None


def probabilities_each(model: Classifier, images: list[np.ndarray]) -> list[np.ndarray | PredictionError]:
    """Each image's class probabilities, CHUNK at a time: explaining runs batches of that size
    too, so a worker has warmed up to them and has their memory, where 30 pictures at once on a
    large model would take more. Through gunicorn on a CPU, the shipped model answers 1.4-1.5
    times as many pictures a second this way as one a request (BENCHMARKS.md). A chunk that
    gives NaN is answered again one image at a time, to tell which ones do."""
    answers = []
    for start in range(0, len(images), CHUNK):
        chunk = images[start:start + CHUNK]
        try:
            answers.extend(probabilities_for(model, np.stack(chunk)))
        except PredictionError:
            answers.extend(_one_by_one(model, chunk))
    return answers


def _one_by_one(model: Classifier, images: list[np.ndarray]) -> list[np.ndarray | PredictionError]:
    answers = []
    for image in images:
        try:
            answers.append(probabilities_for(model, image[np.newaxis])[0])
        except PredictionError as error:
            answers.append(error)
    return answers


def failed_status(labelled: list[Labelled]) -> int:
    """The status of an upload none of whose pictures was answered: 400 where each was refused
    for itself, else that of the first failure that was not the picture's fault."""
    return next((each.status for each in labelled if each.status >= 500), 400)


def tally(labelled: list[Labelled]) -> str:
    """The answers in one line, the most frequent first: "12 images: 5 cat, 4 dog, 2 ship and 1 unanswered"."""
    votes = Counter(each.predictions[0][0] if each.predictions else None for each in labelled)
    counts = [f"{count} {label}" for label, count in votes.most_common() if label is not None]
    if missed := votes[None]:
        counts.append(f"{missed} unanswered")
    listed = ", ".join(counts[:-1]) + " and " + counts[-1] if len(counts) > 1 else counts[0]
    return f"{len(labelled)} images: {listed}"
