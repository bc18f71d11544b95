"""The pictures an answer page shows: the upload, shrunk, with its colour profile; the image as
the model took it; thumbnails. Each goes into the page as a data: URI, so that no upload is
ever stored."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from trainer.images import opened_image

from .predictor import Upload

# Longest side of the picture shown with the answer, in pixels: sharp at the page's widths.
PREVIEW_SIDE = 640
# Least longer side of a decoding made for a model that the picture is taken from rather than
# decoding the upload again: a 12-megapixel JPEG decoded at 1/8 for a 32 px model is 433-504
# px, shown as it is, where decoding it again at 1/4 for 640 px took 29-53 ms more a page.
PREVIEW_LEAST = 400
# The same for each of several pictures, shown at most 14rem high: a page of 30 stays light.
THUMBNAIL_SIDE = 320
# Largest colour profile passed on to the pictures shown: Display P3's is 536 bytes, sRGB's
# about 3 kB; a page of 30 thumbnails carries it 30 times.
MAX_PROFILE_BYTES = 65_536
# Least width, in CSS pixels, at which the picture as the model takes it is shown: a 32 px
# input is enlarged a whole number of times, so that each of its pixels shows as a square.
MODEL_VIEW_SIDE = 96


def preview(upload: Upload) -> tuple[np.ndarray, bytes | None]:
    """The upload as the answer shows it, shrunk to fit PREVIEW_SIDE (the upload itself, up to 10 MB
    and a third more in base64, would make a page slow to load on a phone), or as a model's decoding
    had it where that is at least PREVIEW_LEAST, and its colour profile; BadImage where the decoding
    it needs fails."""
    return upload.picture(PREVIEW_SIDE, PREVIEW_LEAST), colour_profile(upload.data)


def colour_profile(data: bytes) -> bytes | None:
    """An upload's colour profile, read from its header, where its pixels keep their colours as
    RGB: phones take photos in Display P3, which look duller read as sRGB. Not one over
    MAX_PROFILE_BYTES, which the page would carry whole with each picture."""
    with opened_image(data) as upload:
        profile = upload.info.get("icc_profile") if upload.mode == "RGB" else None
    return profile if profile and len(profile) <= MAX_PROFILE_BYTES else None


def model_view(pixels: np.ndarray, picture: np.ndarray) -> dict:
    """The image as the model took it, to show beside the upload: at a 32 px input, much of
    what a person sees is gone, which explains many wrong answers."""
    height, width = pixels.shape[:2]
    scale = max(1, MODEL_VIEW_SIDE // max(height, width))
    shape = (picture.shape[1] / picture.shape[0]) / (width / height)
    # Enlarged, each pixel shows, and JPEG's blocks would too; a 224 px one is lighter as JPEG.
    uri = data_uri(pixels, "PNG") if scale > 1 else jpeg_uri(pixels, None)
    return {"uri": uri, "width": width, "height": height, "shown_width": width * scale, "shown_height": height * scale,
            "squeezed": not 0.95 < shape < 1.05}  # the upload's proportions were not the model's


def jpeg_uri(pixels: np.ndarray, profile: bytes | None) -> str:
    """A picture as a JPEG data: URI, so that it is never stored, and without the upload's
    metadata (a photo's location, say)."""
    return data_uri(pixels, "JPEG", quality=85, icc_profile=profile)


def data_uri(pixels: np.ndarray, image_format: str, **options) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, image_format, **options)
    return f"data:image/{image_format.lower()};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"
