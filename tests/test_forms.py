"""The upload form's fields: what its file input asks for, and what it leaves to the registry."""

import pytest

from conftest import post_form
from webapp.pages import NOT_THE_FORM
from trainer.images import MAX_PIXELS


def test_the_file_input_says_what_the_server_takes(client):
    page = client.get("/").get_data(as_text=True)
    assert 'accept="image/jpeg,image/png,image/gif,image/bmp,image/webp"' in page
    assert f"up to 10 MB and {MAX_PIXELS / 1e6:g} megapixels" in page and 'data-max-bytes="10000000"' in page
    assert 'data-max-size="10 MB"' in page  # app.js says the limit in the server's words


def test_a_form_without_an_image_asks_for_one(client, csrf_token):
    response = post_form(client, csrf_token)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Choose an image to classify." in page and "<form" in page
    # Tied to the file input, which comes back empty; and said in the title.
    assert '<div class="errors" id="upload-errors" role="alert">' in page
    assert 'aria-describedby="upload-errors upload-formats" aria-invalid="true" autofocus' in page
    assert "<title>Error: Classify an image" in page


def test_form_with_unknown_model(client, csrf_token, make_image):
    response = post_form(client, csrf_token, make_image(), model="nope")
    assert response.status_code == 404
    assert "Unknown model &#39;nope&#39;." in response.get_data(as_text=True)


@pytest.mark.parametrize("body", ["123", "[1, 2]", '"text"', "[" * 100_000 + "]" * 100_000])
def test_a_json_body_is_no_form(client, csrf_token, body):
    # Flask-WTF read JSON as the form's fields: a body that is no object was a 500.
    for response in (client.post("/predict", data=body, content_type="application/json"),
                     client.post("/predict", json={"csrf_token": csrf_token, "model": "tiny"})):
        page = response.get_data(as_text=True)
        assert response.status_code == 400 and "<form" in page
        assert f"<p>{NOT_THE_FORM}</p>" in page
