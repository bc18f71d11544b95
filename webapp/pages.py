"""The upload form and the prediction page."""

from __future__ import annotations

import base64

from flask import Blueprint, current_app, redirect, render_template, url_for
from wtforms import SelectChoice

from .errors import message_for
from .forms import UploadForm
from .predictor import PredictionError, classify
from .registry import get_registry

bp = Blueprint("pages", __name__)

# Below this top probability the answer is worded as a guess.
CONFIDENT = 0.5
# ImageNet's 1,000 classes would be a wall of text under the model selector.
MAX_LISTED_CLASSES = 20


def classes_text(classes: list[str]) -> str:
    listed = ", ".join(classes[:MAX_LISTED_CLASSES])
    more = len(classes) - MAX_LISTED_CLASSES
    return f"Recognises {len(classes):,} classes: {listed}" + (f" and {more:,} more." if more > 0 else ".")


def upload_form(**kwargs) -> UploadForm:
    form = UploadForm(**kwargs)
    registry = get_registry()
    classes = {info.name: classes_text(info.card["classes"]) for info in registry.models() if info.available}
    # app.js shows the chosen model's classes from data-classes; the page has the selected one's.
    form.model.choices = [SelectChoice(name, render_kw={"data-classes": text}) for name, text in classes.items()]
    if not form.model.data:
        form.model.data = registry.default_name(current_app.config["DEFAULT_MODEL"])
    form.model.description = classes.get(form.model.data, "")
    return form


def render_form(form: UploadForm, errors: list[str], status: int):
    return render_template("index.html", form=form, errors=errors), status


@bp.get("/")
def index():
    return render_template("index.html", form=upload_form())


@bp.get("/predict")
def predict_address():
    # A prediction's address opened directly (typed, bookmarked): the form is at /.
    return redirect(url_for("pages.index"))


@bp.post("/predict")
def predict():
    form = upload_form()
    if not form.validate_on_submit():
        # A token error page is at /predict, where reloading sends the stale token again;
        # the form on it has a fresh one.
        errors = [
            message + (" Choose the image again and press Classify." if field == "csrf_token" else "")
            for field, messages in form.errors.items()
            for message in messages
        ]
        return render_form(form, errors, 400)
    data = form.image.data.read()
    try:
        result = classify(data, form.model.data, current_app.config["TOP_K"])
    except PredictionError as error:
        return render_form(form, [error.message], error.status)
    # Shown from memory as a data: URI: the upload is never stored.
    image_uri = f"data:{result.mime};base64,{base64.b64encode(data).decode('ascii')}"
    # The form below the answer keeps the model it came from, for the next image.
    next_form = upload_form(formdata=None, data={"model": result.model})
    return render_template("predict.html", form=next_form, result=result, image_uri=image_uri,
                           confident=result.predictions[0][1] >= CONFIDENT)


@bp.errorhandler(413)
def too_large(error):
    # The body was refused unread, so the form is rebuilt without it.
    return render_form(upload_form(formdata=None), [message_for(error)], 413)
