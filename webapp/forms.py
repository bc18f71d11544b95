from flask import request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField

from trainer.images import MAX_PIXELS, UPLOAD_FORMATS

from .predictor import ACCEPTED

# For the file picker; the server trusts neither this nor the file name, only the content
# (a JPEG saved as .jfif, or with no extension, is still a JPEG).
ACCEPT_ATTRIBUTE = ",".join(mime for mime, _ in UPLOAD_FORMATS.values())


class UploadForm(FlaskForm):
    class Meta:
        def wrap_formdata(self, form, formdata):
            # Flask-WTF would read a JSON body as the form's fields, and fail (a 500) on one that
            # is no object; the form is only ever posted as multipart/form-data.
            return None if request.is_json else super().wrap_formdata(form, formdata)

    # For the form's hint: what the server takes.
    formats = ACCEPTED
    max_megapixels = MAX_PIXELS / 1_000_000

    image = FileField(
        "Image",
        validators=[FileRequired("Choose an image to classify.")],
        render_kw={"accept": ACCEPT_ATTRIBUTE},
    )
    # Unknown names are answered by the registry (404) rather than "Not a valid choice".
    model = SelectField("Model", validate_choice=False)
