"""The upload form (Flask-WTF): the image or images, the model, and whether to show what the
answer rests on, each checked as the server will take it; the page shows its errors in place."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileRequired, MultipleFileField
from wtforms import BooleanField, SelectField, ValidationError

from trainer.images import MAX_PIXELS, UPLOAD_FORMATS

from .batch import MAX_PICTURES
from .predictor import ACCEPTED

# For the file picker; the server trusts neither this nor the file name, only the content
# (a JPEG saved as .jfif, or with no extension, is still a JPEG).
ACCEPT_ATTRIBUTE = ",".join(mime for mime, _ in UPLOAD_FORMATS.values())


# Said by the server, and by app.js before sending (data-missing on the file input).
NO_IMAGE = "Choose an image to classify."
# The model selector's choice that asks every model. A model's name is its file's name without
# ".h5", which cannot hold a slash, so no model can be called this.
ALL_MODELS = "/all"
EXPLAIN_ONE = ("Show what the answer rests on works with one model at a time: choose a model, "
               "or untick it to compare them all.")
# Said by the server, and by app.js before sending (from the file input's data- attributes).
TOO_MANY = f"Choose at most {MAX_PICTURES} images at a time."
COMPARE_SEVERAL = "Comparing the models works with one image at a time: choose one image, or one model."
# app.js disables the box instead, while several are chosen.
EXPLAIN_SEVERAL = "Show what the answer rests on works with one image at a time: choose one image, or untick it."


class UploadForm(FlaskForm):
    # For the form's hint: what the server takes.
    formats = ACCEPTED
    max_megapixels = MAX_PIXELS / 1_000_000
    max_pictures = MAX_PICTURES

    # One image, or several for one model to answer each (webapp.batch).
    image = MultipleFileField(
        "Image",
        validators=[FileRequired(NO_IMAGE)],
        render_kw={"accept": ACCEPT_ATTRIBUTE, "data-formats": ACCEPTED, "data-missing": NO_IMAGE,
                   "data-max-pictures": MAX_PICTURES,
                   "data-too-many": TOO_MANY, "data-compare-several": COMPARE_SEVERAL},
    )
    # Unknown names are answered by the registry (404) rather than "Not a valid choice".
    model = SelectField("Model", validate_choice=False)
    # Off by default: it takes 26 forward passes instead of one (webapp/occlusion.py).
    # app.js disables it while the model selector's choice is data-not-with's.
    explain = BooleanField("Show what the answer rests on", render_kw={"data-not-with": ALL_MODELS})

    def validate_explain(self, field):
        if field.data and self.model.data == ALL_MODELS:
            raise ValidationError(EXPLAIN_ONE)

    def validate_image(self, field):
        if len(field.data) > MAX_PICTURES:
            raise ValidationError(TOO_MANY)
        if len(field.data) > 1 and self.model.data == ALL_MODELS:
            raise ValidationError(COMPARE_SEVERAL)
        if len(field.data) > 1 and self.explain.data:
            raise ValidationError(EXPLAIN_SEVERAL)
