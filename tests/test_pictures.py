"""The pictures an answer page shows: the upload made small, its colour profile, and the image
as the model took it."""

import base64
import io
import re

import numpy as np
from PIL import Image, ImageCms

from conftest import calls, post_form
from trainer import images
from trainer.images import load_rgb
from webapp.pictures import MAX_PROFILE_BYTES, PREVIEW_LEAST, PREVIEW_SIDE


def test_the_picture_shown_is_a_small_copy_without_the_photos_metadata(client, csrf_token, make_image):
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # the camera's make, as a stand-in for any metadata (a location)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # as a Display P3 one
    photo = make_image("JPEG", size=(3000, 2000), quality=95, exif=exif, icc_profile=profile)
    page = post_form(client, csrf_token, photo, model="small").get_data(as_text=True)
    shown = base64.b64decode(re.search(r'src="data:image/jpeg;base64,([^"]+)"', page).group(1))
    with Image.open(io.BytesIO(shown)) as picture:
        assert picture.size == (PREVIEW_SIDE, round(PREVIEW_SIDE * 2 / 3)) and not picture.getexif()
        assert picture.info["icc_profile"] == profile  # its colours as the person saw them
    assert len(page) < len(photo) / 4


def test_a_colour_profile_too_large_to_carry_is_left_out(client, csrf_token, make_image):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = make_image("JPEG", size=(300, 200), icc_profile=profile + bytes(MAX_PROFILE_BYTES))
    page = post_form(client, csrf_token, photo, model="small").get_data(as_text=True)
    shown = base64.b64decode(re.search(r'src="data:image/jpeg;base64,([^"]+)"', page).group(1))
    with Image.open(io.BytesIO(shown)) as picture:
        assert "icc_profile" not in picture.info
    assert len(page) < MAX_PROFILE_BYTES


def test_the_answer_shows_the_picture_as_the_model_took_it(client, csrf_token, make_image, monkeypatch):
    def model_view(page: str):
        found = re.search(r'<figure class="model-view">\s*<img src="data:image/(png|jpeg);base64,([^"]+)" '
                          r'width="(\d+)" height="(\d+)"( class="enlarged")? alt="[^"]+">\s*'
                          r'<figcaption class="hint">(.+?)</figcaption>', page, re.S)
        shown = Image.open(io.BytesIO(base64.b64decode(found[2])))
        # Enlarged, its pixels are drawn as squares, and sent exactly (PNG); else as a lighter JPEG.
        assert bool(found[5]) == (int(found[3]) > shown.width) == (found[1] == "png")
        return np.asarray(shown), (int(found[3]), int(found[4])), " ".join(re.sub("<[^>]+>", "", found[6]).split())

    wide = make_image("PNG", size=(60, 30))
    pixels, shown_size, caption = model_view(post_form(client, csrf_token, wide, model="small").get_data(as_text=True))
    assert np.array_equal(pixels, load_rgb(wide, size=(24, 24)))  # exactly what "small" was given
    assert shown_size == (96, 96)  # 24 px enlarged 4 times, for each pixel to show
    assert caption == "What the model sees: the picture at its input size, 24 &times; 24 pixels, squeezed to that shape."
    square = make_image("PNG", size=(40, 40))
    pixels, shown_size, caption = model_view(post_form(client, csrf_token, square, model="tiny").get_data(as_text=True))
    assert pixels.shape == (16, 16, 3) and shown_size == (96, 96)
    assert caption.endswith("16 &times; 16 pixels.")
    # A phone photo's 4:3 is squeezed to a square input; 2% off square is not said to be.
    for size, squeezed in (((40, 30), True), ((51, 50), False)):
        page = post_form(client, csrf_token, make_image("PNG", size=size), model="tiny").get_data(as_text=True)
        assert model_view(page)[2].endswith("squeezed to that shape.") == squeezed, size
    monkeypatch.setattr("webapp.pictures.MODEL_VIEW_SIDE", 20)  # as for a 224 px input: shown at its own size
    assert model_view(post_form(client, csrf_token, square, model="small").get_data(as_text=True))[1] == (24, 24)


def test_a_cmyk_photos_colour_profile_is_not_put_on_its_rgb_picture(client, csrf_token, make_image):
    # A CMYK profile describes ink, not the RGB pixels shown: attached to them, it would shift every colour.
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # standing in for a CMYK one
    photo = make_image("JPEG", size=(300, 200), mode="CMYK", icc_profile=profile)
    page = post_form(client, csrf_token, photo, model="small").get_data(as_text=True)
    shown = base64.b64decode(re.search(r'src="data:image/jpeg;base64,([^"]+)"', page).group(1))
    with Image.open(io.BytesIO(shown)) as picture:
        assert picture.mode == "RGB" and "icc_profile" not in picture.info


def test_a_phone_photo_is_shown_from_the_models_decoding_not_decoded_again(client, csrf_token, make_image, monkeypatch):
    decoded = calls(monkeypatch, images, "_to_rgb")  # the last step of every decoding
    page = post_form(client, csrf_token, make_image("JPEG", size=(4000, 3000)), model="small").get_data(as_text=True)
    shown = base64.b64decode(re.search(r'src="data:image/jpeg;base64,([^"]+)"', page).group(1))
    with Image.open(io.BytesIO(shown)) as picture:
        assert picture.size == (500, 375) and max(picture.size) >= PREVIEW_LEAST  # the 24 px model's, at 1/8
    assert len(decoded) == 1
    # One whose model decoding is smaller is decoded again for a sharp picture.
    decoded.clear()
    page = post_form(client, csrf_token, make_image("JPEG", size=(3000, 2000)), model="small").get_data(as_text=True)
    assert len(decoded) == 2
