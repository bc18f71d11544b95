"""The upload form's fields: what its file input asks for, and what it leaves to the registry."""

import argparse
import io
import re

import pytest

from conftest import post_form, save_as, top_left_model
from webapp.batch import MAX_PICTURES
from webapp.forms import ALL_MODELS, COMPARE_SEVERAL, EXPLAIN_ONE, EXPLAIN_SEVERAL, TOO_MANY
from webapp.pages import NOT_THE_FORM
from trainer.images import MAX_PIXELS
from trainer.options import model_name


def test_the_file_input_says_what_the_server_takes(client):
    page = client.get("/").get_data(as_text=True)
    assert 'accept="image/jpeg,image/png,image/gif,image/bmp,image/webp"' in page
    assert f"up to 10 MB and {MAX_PIXELS / 1e6:g} megapixels" in page and 'data-max-bytes="10000000"' in page
    assert 'data-max-size="10 MB"' in page  # app.js says the limit in the server's words
    assert f"or several at once, up to {MAX_PICTURES} and 10 MB in all" in " ".join(page.split())
    # What app.js says instead: it makes pictures past the limit smaller to send.
    assert (f'data-scripted="JPEG, PNG, GIF, BMP or WebP, up to {MAX_PIXELS / 1e6:g} megapixels; or several at once, '
            f'up to {MAX_PICTURES}; made smaller to send past 10 MB in all"') in page
    assert re.search(r'<input [^>]* multiple name="image" [^>]*type="file">', page)
    # app.js refuses what the server would, in its words, before uploading.
    assert f'data-max-pictures="{MAX_PICTURES}"' in page and f'data-too-many="{TOO_MANY}"' in page
    assert f'data-compare-several="{COMPARE_SEVERAL}"' in page


@pytest.mark.parametrize(("count", "fields", "message"), [
    (MAX_PICTURES + 1, {}, f"Choose at most {MAX_PICTURES} images at a time."),
    (2, {"model": ALL_MODELS}, COMPARE_SEVERAL),
    (2, {"explain": "y"}, EXPLAIN_SEVERAL),
])
def test_what_works_with_one_image_only_is_refused_for_several(client, csrf_token, make_image, count, fields, message):
    images = [(io.BytesIO(make_image(seed=n)), f"{n}.png") for n in range(count)]
    response = client.post("/predict", data={"csrf_token": csrf_token, "model": "tiny", **fields, "image": images})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f"<p>{message}</p>" in page.replace("&#39;", "'")
    assert re.search(r'<option [^>]*selected value="' + re.escape(fields.get("model", "tiny")) + '"', page)


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


@pytest.mark.parametrize("fields", [
    lambda token: {"model": ["tiny", "small"]},  # tiny answered, small dropped
    lambda token: {"model": (io.BytesIO(b"small"), "model.txt")},  # the default model answered
    lambda token: {"explain": ["y", "y"]},
    lambda token: {"csrf_token": (io.BytesIO(token.encode()), "token")},  # said to have expired
], ids=["model-twice", "model-as-a-file", "explain-twice", "token-as-a-file"])
def test_fields_not_sent_as_the_form_sends_them_are_refused(client, csrf_token, make_image, fields):
    response = client.post("/predict", data={"csrf_token": csrf_token, "model": "tiny",
                                             "image": (io.BytesIO(make_image()), "a.png"), **fields(csrf_token)})
    assert response.status_code == 400 and "<form" in response.text and f"<p>{NOT_THE_FORM}</p>" in response.text


def test_explaining_is_for_one_model_not_all(client, csrf_token, make_image):
    response = post_form(client, csrf_token, make_image(), model=ALL_MODELS, explain="y")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and f"<p>{EXPLAIN_ONE}</p>" in page
    assert 'class="verdict"' not in page
    # The form keeps both choices, for the person to change one.
    assert re.search(r'<option [^>]*selected value="/all">', page)
    # The box is marked as what the error is about, for a screen reader.
    assert '<input aria-describedby="upload-errors" aria-invalid="true" checked data-not-with="/all" id="explain"' in page


def test_the_choice_of_every_model_is_no_model_name():
    # A model's name is a file's stem, which holds no slash; nor does the trainer take one.
    assert "/" in ALL_MODELS
    with pytest.raises(argparse.ArgumentTypeError):
        model_name(ALL_MODELS)


@pytest.mark.parametrize("name", ["all", "*", "All models (compare)"])
def test_models_named_like_the_choice_of_every_model_are_one_model(client, csrf_token, models_dir, make_image, name):
    save_as(models_dir, top_left_model(), name)
    page = post_form(client, csrf_token, make_image(), model=name).get_data(as_text=True)
    assert 'class="verdict"' in page and f'aria-label="{name}"' in page and 'class="answer' not in page
