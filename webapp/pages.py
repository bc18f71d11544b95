"""The upload form and the prediction page."""

from __future__ import annotations

import base64

from flask import Blueprint, current_app, render_template

from .errors import message_for
from .forms import UploadForm
from .predictor import PredictionError, classify
from .registry import get_registry

bp = Blueprint("pages", __name__)


def upload_form(**kwargs) -> UploadForm:
    form = UploadForm(**kwargs)
    registry = get_registry()
    form.model.choices = [info.name for info in registry.models() if info.available]
    if not form.model.data:
        form.model.data = registry.default_name(current_app.config["DEFAULT_MODEL"])
    return form


def render_form(form: UploadForm, errors: list[str], status: int):
    return render_template("index.html", form=form, errors=errors), status


@bp.get("/")
def index():
    return render_template("index.html", form=upload_form())


@bp.post("/predict")
def predict():
    form = upload_form()
    if not form.validate_on_submit():
        errors = [
            message + (" Reload the page and try again." if field == "csrf_token" else "")
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
    return render_template("predict.html", form=next_form, result=result, image_uri=image_uri)


@bp.errorhandler(413)
def too_large(error):
    # The body was refused unread, so the form is rebuilt without it.
    return render_form(upload_form(formdata=None), [message_for(error)], 413)
