"""The HTML pages: upload form, prediction page, errors shown on the form."""

import io
import re

import pytest


def post_form(client, token, image=None, filename="photo.png", model="tiny"):
    data = {"model": model}
    if token is not None:
        data["csrf_token"] = token
    if image is not None:
        data["image"] = (io.BytesIO(image), filename)
    return client.post("/predict", data=data, content_type="multipart/form-data")


def test_index_has_form_with_csrf_and_model_selector(client):
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in page
    assert 'name="csrf_token"' in page
    assert '<option selected value="tiny">tiny</option>' in page
    assert '<option value="small">small</option>' in page
    assert 'accept="image/jpeg,image/png,image/gif,image/bmp,image/webp"' in page


def test_pages_have_no_inline_scripts_or_styles(client):
    for url in ("/", "/models", "/models/tiny", "/missing"):
        page = client.get(url).get_data(as_text=True)
        assert "style=" not in page
        assert re.search(r"<script(?![^>]*\bsrc=)", page) is None, url
        assert "<style" not in page
        assert "http://" not in page and "https://" not in page  # no CDN


def test_predict_shows_image_inline_top5_model_and_time(client, csrf_token, make_image):
    response = post_form(client, csrf_token, make_image("PNG"), model="small")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'src="data:image/png;base64,' in page
    assert page.count('class="bar-fill"') == 4  # "small" has only four classes
    assert 'href="/models/small"' in page
    assert '<option selected value="small">' in page  # the next image goes to the same model
    assert re.search(r"\d+\.\d ms", page)
    assert response.headers["Cache-Control"] == "no-store"


def test_predict_uses_default_model(client, csrf_token, make_image):
    response = post_form(client, csrf_token, make_image("JPEG"), "photo.jpg", model="")
    assert response.status_code == 200
    assert 'href="/models/tiny"' in response.get_data(as_text=True)
    assert response.get_data(as_text=True).count('class="bar-fill"') == 3


@pytest.mark.parametrize(
    ("image", "filename", "status", "message"),
    [
        (None, None, 400, "Choose an image to classify."),
        (b"%PDF-1.4 not a picture", "file.pdf", 415, "Unsupported file type: send a JPEG, PNG, GIF, BMP or WebP image."),
        (b"<html>hello</html>", "fake.jpg", 415, "Unsupported file type"),
        (b"\x89PNG\r\n\x1a\nbroken", "broken.png", 400, "The PNG file is damaged or incomplete."),
        (b"", "empty.png", 400, "The file is empty."),
    ],
)
def test_form_errors_rerender_form(client, csrf_token, image, filename, status, message):
    response = post_form(client, csrf_token, image, filename)
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert message in page
    assert 'class="errors"' in page and "<form" in page


@pytest.mark.parametrize("filename", ["photo.jfif", "photo", "photo.JPG"])
def test_the_content_not_the_file_name_decides(client, csrf_token, make_image, filename):
    response = post_form(client, csrf_token, make_image("JPEG"), filename)
    assert response.status_code == 200 and "Most likely" in response.get_data(as_text=True)


def test_form_without_csrf_token_is_refused(client, make_image):
    response = post_form(client, None, make_image())
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The CSRF token is missing. Reload the page and try again." in page


def test_form_with_unknown_model(client, csrf_token, make_image):
    response = post_form(client, csrf_token, make_image(), model="nope")
    assert response.status_code == 404
    assert "Unknown model &#39;nope&#39;." in response.get_data(as_text=True)


def test_form_over_size_limit_rerenders_form(models_dir, make_image):
    from conftest import make_config
    from webapp import create_app

    app = create_app(make_config(models_dir, MAX_CONTENT_LENGTH=2000, WTF_CSRF_ENABLED=False))
    response = app.test_client().post(
        "/predict", data={"image": (io.BytesIO(b"\xff\xd8\xff" + b"0" * 5000), "big.jpg")}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "The request is too large" in page and "<form" in page


def test_get_predict_is_an_error_page_not_a_traceback(client):
    response = client.get("/predict")
    assert response.status_code == 405
    assert "text/html" in response.content_type
    assert "Traceback" not in response.get_data(as_text=True)


def test_unknown_page_is_a_styled_404(client):
    response = client.get("/no/such/page")
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "404" in page and "style.css" in page


def test_no_models_shows_a_notice(app, models_dir):
    for path in models_dir.iterdir():
        path.unlink()
    page = app.test_client().get("/").get_data(as_text=True)
    assert "No model is available yet" in page
