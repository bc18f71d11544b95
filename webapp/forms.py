from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import SelectField

from .predictor import ACCEPTED

EXTENSIONS = ["jpg", "jpeg", "png", "gif", "bmp", "webp"]
# For the file picker; the server trusts neither this nor the file name, only the content.
ACCEPT_ATTRIBUTE = "image/jpeg,image/png,image/gif,image/bmp,image/webp"


class UploadForm(FlaskForm):
    image = FileField(
        "Image",
        validators=[
            FileRequired("Choose an image to classify."),
            FileAllowed(EXTENSIONS, f"Choose a {ACCEPTED} image."),
        ],
        render_kw={"accept": ACCEPT_ATTRIBUTE},
    )
    # Unknown names are answered by the registry (404) rather than "Not a valid choice".
    model = SelectField("Model", validate_choice=False)
