"""The upload form, the prediction page and the JSON API's documentation page."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from wtforms import SelectChoice

from .batch import MAX_BATCH_PIXELS, MAX_PICTURES, classify_many, failed_status, tally
from .comparison import agreement, compare
from .dashboard import data_set_of
from .errors import message_for
from .forms import ALL_MODELS, UploadForm
from .formatting import split_reason
from .occlusion import MIN_DROP, PATCH_SHARE, STEPS, spotlight
from .pictures import THUMBNAIL_SIDE, colour_profile, jpeg_uri, model_view, preview
from .predictor import MAX_TOP_K, ModelError, NoModel, PredictionError, Upload, classify
from .registry import UnknownModel, get_registry, listing_and_default
from .uploads import UnreadableBody

bp = Blueprint("pages", __name__)

# Below this top probability the answer is worded as a guess.
CONFIDENT = 0.5
# Classes shown for each model on the comparison page, and for each of several pictures: enough
# to see where models differ, and how close a call each answer was.
COMPARED_TOP_K = 3
# ImageNet's 1,000 classes would be a wall of text under the model selector.
MAX_LISTED_CLASSES = 20
# Flask-WTF's own words ("The CSRF token is missing.") mean nothing to most people; a stale
# form, left open across a restart of the server, is the usual cause.
EXPIRED = "This page had expired (for example, the server restarted). Choose the image again and press Classify."
# The token's other half is in the session cookie: without it (cookies blocked, or cleared since
# the page came), EXPIRED would be said again on every try.
NO_COOKIE = ("This form needs a cookie from this site, and the upload came without one: allow cookies for this "
             "site (or reload the page), then choose the image again and press Classify.")
NOT_THE_FORM = "This address takes the upload form, sent as multipart/form-data; programs can use the JSON API."


def classes_text(name: str, classes: list[str]) -> str:
    """The line under the model selector. It names the model in full: a long name is cut
    short in the closed <select>, which cannot wrap, most of all on a phone."""
    listed = ", ".join(classes[:MAX_LISTED_CLASSES])
    more = len(classes) - MAX_LISTED_CLASSES
    return f"{name} recognises {len(classes):,} classes: {listed}" + (f" and {more:,} more." if more > 0 else ".")


def upload_form(requested: str | None = None, **kwargs) -> UploadForm:
    """The form, its model preselected: the one posted, else `requested` if it is usable,
    else the default."""
    form = UploadForm(**kwargs)
    # Each choice's value, words, and line under the selector (its classes); app.js shows the
    # chosen one's line from data-classes, the page has the selected one's.
    listed, default = listing_and_default()
    usable = [info for info in listed if info.available]
    choices = [(info.name, info.name, classes_text(info.name, info.card["classes"])) for info in usable]
    if len(usable) > 1:  # one model has none to be compared with
        several = len({data_set_of(info.card) for info in usable}) > 1  # as the comparison ranks them
        choices.append((ALL_MODELS, "All models (compare)",
                        f"The {len(usable)} models answer the same picture side by side, the most accurate first"
                        + (" within each data set." if several else ".")))
    form.model.choices = [SelectChoice(value, label, render_kw={"data-classes": line}) for value, label, line in choices]
    lines = {value: line for value, _, line in choices}
    if not form.model.data:
        form.model.data = requested if requested in lines else default
    form.model.description = lines.get(form.model.data, "")
    return form


def render_form(form: UploadForm, errors: list[str], status: int, about_model: bool = False):
    """The form again with its errors, tied to the file input, or to the model selector where
    the model, not the upload, is at fault."""
    return render_template("index.html", form=form, errors=errors, about_model=about_model), status


def render_failure(form: UploadForm, error: PredictionError):
    about_model = isinstance(error, ModelError)
    if about_model:
        # The model posted may be gone from the choices (the browser would show the first one
        # instead), or would fail again: the form offers the one a request naming none gets.
        form = upload_form(formdata=None, data={"explain": form.explain.data})
        if not form.model.choices and (error.status == 404 or isinstance(error, NoModel)):
            return render_form(form, [], 503, about_model)  # gone since the form came: the no-model notice says it all
    return render_form(form, [error.message], error.status, about_model)


@bp.get("/")
def index():
    # "Try it" links on the models pages ask for a model with ?model=<name>.
    requested = request.args.get("model")
    form = upload_form(requested=requested)
    return render_template("index.html", form=form, notice=_not_offered(requested, form))


def _not_offered(requested: str | None, form: UploadForm) -> str | None:
    """Why the form offers another model than the one the address asks for, if it does."""
    if not requested or requested == form.model.data or not form.model.choices:
        return None
    try:
        error = get_registry().info(requested).error
    except UnknownModel:
        # Not repeated: the page would show, in its own voice, any words a link put there.
        return f"The address asks for a model that does not exist; the form offers {form.model.data} instead."
    if error is None:  # usable again since the form was made: its file was being replaced
        return None
    reason = split_reason(error)[0]  # the dashboard has the rest
    return f"Model '{requested}' cannot be used ({reason}); the form offers {form.model.data} instead."


@bp.get("/predict")
def predict_address():
    # A prediction's address opened directly (typed, bookmarked): the form is at /.
    return redirect(url_for("pages.index"))


@bp.post("/predict")
def predict():
    if not sent_as_the_form():
        raise UnreadableBody(NOT_THE_FORM)
    # Read before upload_form shows the default selected: with no model named, classify picks
    # it as for the API, and passes over it to a usable one if it fails to load.
    chosen = request.form.get("model") or None
    form = upload_form()
    if not form.validate_on_submit():
        # A token error page is at /predict, where reloading sends the stale token again;
        # the form on it has a fresh one.
        if "csrf_token" in form.errors:
            errors = [EXPIRED if current_app.config["SESSION_COOKIE_NAME"] in request.cookies else NO_COOKIE]
        else:
            errors = [message for messages in form.errors.values() for message in messages]
        return render_form(form, errors, 400)
    if len(form.image.data) > 1:
        return predict_several(form, chosen)
    data = form.image.data[0].read()
    if form.model.data == ALL_MODELS:
        return predict_all(form, data)
    try:
        upload = Upload(data)
        result = classify(upload, chosen, current_app.config["TOP_K"], explain=form.explain.data)
        picture, profile = preview(upload)
    except PredictionError as error:
        return render_failure(form, error)
    # The form below the answer keeps the model it came from, and the choice to explain, for the next image.
    next_form = upload_form(formdata=None, data={"model": result.model, "explain": form.explain.data})
    spotlight_uri = None
    if result.occlusion and result.occlusion.telling:
        spotlight_uri = jpeg_uri(spotlight(picture, result.occlusion), profile)
    return render_template("predict.html", form=next_form, result=result, image_uri=jpeg_uri(picture, profile),
                           model_view=model_view(result.pixels, picture), spotlight_uri=spotlight_uri,
                           min_drop=MIN_DROP, sure_from=CONFIDENT)


def sent_as_the_form() -> bool:
    """Whether the body is as the upload form sends it: multipart, no file but the images, no
    field twice. Flask-WTF would read JSON as the form's fields (and fail, a 500, on one that is
    no object), keep the first of a field sent twice, and take a field sent as a file for none
    sent (the default model answering, or a token said to have expired)."""
    return (request.mimetype == "multipart/form-data" and set(request.files) <= {"image"}
            and all(len(values) == 1 for values in request.form.listvalues()))


def predict_all(form: UploadForm, data: bytes):
    """The comparison page: every model's answer to the picture."""
    try:
        upload = Upload(data)
        answers = compare(upload, COMPARED_TOP_K)
        if not any(answer.result for answer in answers):
            # Each model's reason, on the form as one model's would be: no answer to show the picture with.
            return render_form(form, [answer.error for answer in answers], 503, about_model=True)
        picture, profile = preview(upload)
    except PredictionError as error:
        return render_failure(form, error)
    # Side by side, a 32 px model's view beside a 224 px one's shows much of why they differ.
    views = {answer.model: model_view(answer.result.pixels, picture) for answer in answers if answer.result}
    return render_template("compare.html", form=upload_form(formdata=None, data={"model": ALL_MODELS}),
                           answers=answers, agreement=agreement(answers), image_uri=jpeg_uri(picture, profile),
                           views=views, sure_from=CONFIDENT)


def predict_several(form: UploadForm, model_name: str | None):
    """The page of several pictures' answers from one model, each in its own card."""
    pictures = [(file.filename, file.read()) for file in form.image.data]
    try:
        batch = classify_many(pictures, model_name, COMPARED_TOP_K, THUMBNAIL_SIDE)
    except PredictionError as error:
        return render_failure(form, error)
    labelled = batch.labelled
    if not any(each.predictions for each in labelled):
        return render_form(form, [f"{each.name}: {each.error}" for each in labelled], failed_status(labelled))
    thumbnails = {index: jpeg_uri(each.thumbnail, colour_profile(data))
                  for index, ((_, data), each) in enumerate(zip(pictures, labelled)) if each.thumbnail is not None}
    return render_template("several.html", form=upload_form(formdata=None, data={"model": batch.model}), batch=batch,
                           summary=tally(labelled), thumbnails=thumbnails, sure_from=CONFIDENT)


@bp.get("/api")
def api_help():
    return render_template("api.html", top_k=current_app.config["TOP_K"], max_top_k=MAX_TOP_K,
                           formats=UploadForm.formats, max_megapixels=UploadForm.max_megapixels, steps=STEPS,
                           patch_share=PATCH_SHARE, max_pictures=MAX_PICTURES, max_batch_pixels=MAX_BATCH_PIXELS)


@bp.errorhandler(413)
@bp.errorhandler(UnreadableBody)
def unread_body(error):
    # The body was refused unread, so the form is rebuilt without it.
    return render_form(upload_form(formdata=None), [message_for(error)], error.code)
