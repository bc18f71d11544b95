from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField

# For the file picker; the server trusts neither this nor the file name, only the content
# (a JPEG saved as .jfif, or with no extension, is still a JPEG).
ACCEPT_ATTRIBUTE = "image/jpeg,image/png,image/gif,image/bmp,image/webp"


class UploadForm(FlaskForm):
    image = FileField(
        "Image",
        validators=[FileRequired("Choose an image to classify.")],
        render_kw={"accept": ACCEPT_ATTRIBUTE},
    )
    # Unknown names are answered by the registry (404) rather than "Not a valid choice".
    model = SelectField("Model", validate_choice=False)
