"""The JSON API, for programs: no CSRF (no cookies are needed), never an HTML answer (errors.py
answers its errors in JSON)."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from .batch import classify_many, failed_status
from .comparison import compare
from .dashboard import plain_spaces
from .downloads import links
from .predictor import PredictionError, Result, Upload, classify, parse_top_k
from .registry import ModelInfo, get_registry, listed_or_404, listing_and_default, section

bp = Blueprint("api", __name__)

FIELDS = ("model", "top_k", "compare", "explain")  # besides the image
FIELDS_IN_WORDS = f"{', '.join(FIELDS[:-1])} and {FIELDS[-1]}"
# Taken and not read: the upload page's form, pointed at the API, sends its CSRF token too.
IGNORED_FIELDS = ("csrf_token",)
TAKEN = frozenset({"image", *FIELDS, *IGNORED_FIELDS})
SWITCH_VALUES = {None: False, "": False, "0": False, "1": True}  # explain and compare

# Per-class arrays: in the full card (GET /api/models/<name>), not in the model list.
LONG_EVALUATION_KEYS = ("per_class", "confusion_matrix")


def describe(info: ModelInfo, full: bool, default: str | None) -> dict:
    card = dict(info.card or {})
    if not full:
        card.pop("history", None)  # per-epoch arrays
        for key in ("training_pixels_sketch", "training_sketch"):  # 17 kB per model, of use to the trainer only
            card.pop(key, None)
        for key in ("evaluation", "test_evaluation"):
            if figures := section(card, key):  # a value that is not an object is left as it is
                card[key] = {k: v for k, v in figures.items() if k not in LONG_EVALUATION_KEYS}
    return {"name": info.name, "default": info.name == default, "available": info.available, "error": info.error,
            "card_note": info.card_note, "downloads": links(info),
            "card": None if info.card is None else card}  # null: no card, or one that cannot be read


@bp.post("/api/predict")
def predict():
    # A part with neither a name nor a byte is a form's file input left empty: not sent, as on the page.
    pictures = [(upload.filename or "", upload.read()) for upload in request.files.getlist("image")]
    pictures = [picture for picture in pictures if picture != ("", b"")]
    if "image" in request.form:  # curl's -F image=cat.jpg, without the @, sends the name as text
        abort(400, description="An 'image' field came as plain text, not as a file: send each image as a file "
                               "(with curl, -F image=@cat.jpg: the @ sends the file).")
    if not pictures:
        abort(400, description="Send the image as a multipart/form-data file field named 'image'.")
    refuse_misplaced_fields()
    try:
        top_k = parse_top_k(request.form.get("top_k"))
        explain = parse_switch("explain", "show what the answer rests on")
        every_model = parse_switch("compare", "every model answers")
        if len(pictures) > 1:
            return label_several(pictures, top_k, explain, every_model)
        data = pictures[0][1]
        if every_model:
            return compare_models(data, top_k, explain)
        result = classify(Upload(data), request.form.get("model") or None, top_k, explain)
    except PredictionError as failure:
        abort(failure.status, description=failure.message)
    answer = as_json(result)
    if explain:  # both fields, one of them null: the map, or why it could not be made
        occlusion = result.occlusion
        answer["occlusion"] = {
            "label": occlusion.label,
            "probability": occlusion.probability,
            "drops": occlusion.drops.round(4).tolist(),
        } if occlusion else None
        answer["occlusion_error"] = result.occlusion_error
    return jsonify(answer)


def compare_models(data: bytes, top_k: int, explain: bool):
    """Every usable model's answer, in the dashboard's order, each with its data set's heading there:
    200 when at least one model answered, else 503."""
    if request.form.get("model"):
        raise PredictionError(400, "Send model or compare=1, not both: compare=1 asks every model.")
    if explain:
        raise PredictionError(400, "explain works with one model: send it without compare=1.")
    answers = compare(Upload(data), top_k)
    # In the API page's order: model, data_set, then the answer or why there is none.
    body = [{"model": answer.model, "data_set": plain_spaces(answer.data_set)}
            | (as_json(answer.result) if answer.result else {"error": answer.error})
            for answer in answers]
    if not any(answer.result for answer in answers):
        return jsonify(error="No model could answer: each one's reason is in answers.", answers=body), 503
    return jsonify(answers=body)


def label_several(pictures: list[tuple[str, bytes]], top_k: int, explain: bool, every_model: bool):
    """One model's answer to each image, in the order sent, each named by its file name, and the
    time for them all: 200 when at least one was answered."""
    if every_model:
        raise PredictionError(400, "compare=1 works with one image: send one 'image' field, or leave compare out.")
    if explain:
        raise PredictionError(400, "explain works with one image: send one 'image' field, or leave explain out.")
    batch = classify_many(pictures, request.form.get("model") or None, top_k)
    body = [{"image": each.name} | ({"predictions": as_list(each.predictions)} if each.predictions
                                    else {"error": each.error}) for each in batch.labelled]
    if not any(each.predictions for each in batch.labelled):
        error = "No image could be classified: each one's reason is in answers."
        return jsonify(error=error, answers=body), failed_status(batch.labelled)
    return jsonify(model=batch.model, elapsed_ms=round(batch.elapsed_ms, 3), answers=body, **noted(batch.card_note))


def as_json(result: Result) -> dict:
    return ({"model": result.model, "predictions": as_list(result.predictions), "elapsed_ms": round(result.elapsed_ms, 3)}
            | noted(result.card_note))


def noted(card_note: str | None) -> dict:
    """The model's card_note where it has one: its answers may not be those its card describes."""
    return {"card_note": card_note} if card_note else {}


def as_list(predictions: list[tuple[str, float]]) -> list[dict]:
    return [{"label": label, "probability": p} for label, p in predictions]


def refuse_misplaced_fields() -> None:
    """A 400 for a field the API does not take, or one sent twice, in the URL or as a file."""
    refuse_unknown((set(request.form) | set(request.files)) - TAKEN)
    if repeated := [field for field in FIELDS if len(request.form.getlist(field)) > 1]:
        abort(400, description=f"Send {' and '.join(repeated)} once; this request has more than one.")
    # The image too: "Unknown field 'image'" would contradict "the API takes image".
    if misplaced := [field for field in ("image", *FIELDS) if field in request.args]:
        abort(400, description=f"Send {' and '.join(misplaced)} in the form data, not in the URL.")
    refuse_unknown(set(request.args) - TAKEN, in_url=True)
    if as_files := [field for field in FIELDS if field in request.files]:  # else read as not sent at all
        abort(400, description=f"Send {' and '.join(as_files)} as a plain form field, not as a file.")


def refuse_unknown(fields: set[str], in_url: bool = False) -> None:
    """A 400 naming the fields the API does not take: a misspelt top_k, in the form or the URL,
    would leave top_k quietly at its default."""
    if unknown := sorted(fields):
        where, how = (" in the URL", ", in the form data") if in_url else ("", "")
        abort(400, description=f"Unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}{where}: "
                               f"the API takes image, {FIELDS_IN_WORDS}{how}.")


def parse_switch(field: str, meaning: str) -> bool:
    text = request.form.get(field)
    if text not in SWITCH_VALUES:
        raise PredictionError(400, f"{field} must be 1 ({meaning}) or 0.")
    return SWITCH_VALUES[text]


@bp.get("/api/models")
def models():
    listed, default = listing_and_default()
    return jsonify(models=[describe(info, full=False, default=default) for info in listed])


@bp.get("/api/models/<name>")
def model(name: str):
    listed, default = listing_and_default()
    return jsonify(describe(listed_or_404(listed, name), full=True, default=default))


@bp.get("/healthz")
def health():
    usable = sum(info.available for info in get_registry().models())
    if not usable:  # so that a load balancer sends nothing to a server that can classify nothing
        return jsonify(status="no usable model", models=0), 503
    return jsonify(status="ok", models=usable)
