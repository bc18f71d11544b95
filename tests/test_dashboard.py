"""The models dashboard and one model's page."""

import io
import json
import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest

from conftest import SMALL_CLASSES, damage, encode_image, read_csv, update_card
from trainer.formatting import filesize
from webapp.dashboard import TABLE_COLUMNS


def text_of(page: str) -> str:
    """The page with each run of spaces and line breaks as one space (no-break spaces kept)."""
    return re.sub(r"[ \n]+", " ", page)


def data_set_headings(page: str) -> list[str]:
    return re.findall(r'<h2 class="data-set">([^<]+)</h2>', page)


def test_dashboard_lists_models_best_first(client, models_dir):
    update_card(models_dir, "tiny", {"accuracy": 0.91})
    update_card(models_dir, "small", {"accuracy": 0.42})
    page = client.get("/models").get_data(as_text=True)
    assert page.index(">tiny</a>") < page.index(">small</a>")
    # The link's name is the model's, whole, whatever <wbr> the wrapping puts in its text.
    assert 'aria-label="tiny">tiny</a>' in page
    assert "91.0%" in page and "42.0%" in page
    # The columns of its CSV and Markdown files (a test score and a card's note when some have them),
    # the figures first, where a phone shows them without scrolling sideways.
    headings = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', page)
    assert sorted(headings) == sorted(column.heading for column in TABLE_COLUMNS if not column.optional)
    assert headings[:3] == ["Model", "Accuracy", "Loss"]

    update_card(models_dir, "small", {"accuracy": 0.95})
    page = client.get("/models").get_data(as_text=True)
    assert page.index(">small</a>") < page.index(">tiny</a>")
    assert "Best first, by accuracy" in page and "within each data set" not in page
    assert data_set_headings(page) == []  # one data set: one table, no heading
    # Each usable model can be tried straight away.
    assert '<a class="try-it" href="/?model=small" aria-label="Try it: small">Try it</a>' in page


def test_models_of_different_data_sets_are_ranked_within_each(client, models_dir):
    update_card(models_dir, "tiny", {"accuracy": 0.91})
    update_card(models_dir, "small", {"accuracy": 0.42}, dataset="apples")
    page = text_of(client.get("/models").get_data(as_text=True))
    assert "Best first within each data set, by accuracy" in page
    assert page.index(">small</a>") < page.index(">tiny</a>")  # "apples" before "synthetic"
    assert '<td class="nowrap">apples</td>' in page
    assert data_set_headings(page) == ["apples", "synthetic"]
    assert 'aria-label="Models trained on apples"' in page  # the table's box, and the table:
    assert '<caption class="visually-hidden">Models trained on apples</caption>' in page


def test_data_sets_of_one_name_are_told_apart_and_not_ranked_together(client, models_dir):
    # Two folders called "synthetic" (told apart by their images' digest), and an older card without one.
    for path in (models_dir / "tiny.h5", models_dir / "tiny.json"):
        shutil.copy(path, path.with_stem("other"))
    update_card(models_dir, "tiny", {"accuracy": 0.6}, data_digest="0123456789abcdef")
    update_card(models_dir, "other", {"accuracy": 0.9}, data_digest="fedcba9876543210")
    update_card(models_dir, "small", {"accuracy": 0.8})
    page = text_of(client.get("/models").get_data(as_text=True))
    # Copies of one card, alike in all but their digests: those tell them apart.
    assert data_set_headings(page) == ["synthetic (data digest fedcba9876543210)",
                                       "synthetic (data digest 0123456789abcdef)",
                                       "synthetic (cards that do not say which images)"]
    tables = page.split('<h2 class="data-set">')[1:]
    assert [re.findall(r'aria-label="(\w+)">\1</a>', table) for table in tables] == [["other"], ["tiny"], ["small"]]
    assert '<caption class="visually-hidden">Models trained on synthetic (data digest 0123456789abcdef)</caption>' in page
    # Each model's page gives the digest the heading names, and none for a card without one.
    assert "<dt>Data set</dt><dd>synthetic (data digest 0123456789abcdef)</dd>" in client.get("/models/tiny").get_data(
        as_text=True)
    assert "<dt>Data set</dt><dd>synthetic</dd>" in client.get("/models/small").get_data(as_text=True)

    # The same images under another name (a renamed folder) are one data set.
    update_card(models_dir, "other", data_digest="0123456789abcdef", dataset="renamed")
    page = text_of(client.get("/models").get_data(as_text=True))
    assert data_set_headings(page) == ["renamed, synthetic", "synthetic"]
    assert page.index(">other</a>") < page.index(">tiny</a>") < page.index('<h2 class="data-set">synthetic</h2>')


def test_data_sets_of_one_name_are_told_apart_by_what_their_cards_say(client, models_dir):
    for path in (models_dir / "tiny.h5", models_dir / "tiny.json"):
        shutil.copy(path, path.with_stem("other"))
    update_card(models_dir, "tiny", {"accuracy": 0.9}, data_digest="0123456789abcdef", created="2026-11-26T08:53:08+00:00")
    update_card(models_dir, "small", {"accuracy": 0.8}, data_digest="fedcba9876543210", created="2026-11-20T12:00:00+00:00")
    update_card(models_dir, "other", {"accuracy": 0.7}, data_digest="0123456789abcdef")
    # Other classes: named, the first few of them.
    page = text_of(client.get("/models").get_data(as_text=True))
    assert data_set_headings(page) == ["synthetic (3 classes: cat, dog, ship)",
                                       "synthetic (4 classes: apple, pear, plum and 1 more)"]

    # Classes alike, or not alike within a data set: the day its first model was trained.
    update_card(models_dir, "other", data_digest="fedcba9876543210", created="2026-11-06T10:03:00+02:00")
    page = text_of(client.get("/models").get_data(as_text=True))
    assert data_set_headings(page) == ["synthetic (first trained 26\u00a0Nov\u00a02026)",
                                       "synthetic (first trained 6\u00a0Nov\u00a02026)"]
    # For files and programs, plain spaces: a client reading the CSV or the API's data_set.
    rows = read_csv(client.get("/models.csv").get_data(as_text=True))[1:]
    assert [row[1] for row in rows] == ["synthetic (first trained 26 Nov 2026)"] + ["synthetic (first trained 6 Nov 2026)"] * 2
    answers = client.post("/api/predict", data={"image": (io.BytesIO(encode_image()), "a.png"), "compare": "1"}).get_json()
    assert {answer["data_set"] for answer in answers["answers"]} == {"synthetic (first trained 26 Nov 2026)",
                                                                    "synthetic (first trained 6 Nov 2026)"}

    # A card that does not say when, or says it in a way that does not compare: the digests.
    for created in (None, "last week", 5, "2026-11-06T10:03:00", "0001-01-01T00:00:00+14:00"):
        update_card(models_dir, "other", created=created)
        response = client.get("/models")
        assert response.status_code == 200
        assert data_set_headings(text_of(response.get_data(as_text=True))) == [
            "synthetic (data digest 0123456789abcdef)", "synthetic (data digest fedcba9876543210)"]


def test_models_scored_on_different_held_out_images_are_said_to_be_once(client, models_dir):
    note = "These models were scored on different held-out images (another <code>--seed</code> or"
    for name, held_out in (("tiny", "0000000000000000"), ("small", "1111111111111111")):
        update_card(models_dir, name, data_digest="0123456789abcdef", held_out_digest=held_out)
    page = text_of(client.get("/models").get_data(as_text=True))
    assert page.count(note) == 1 and "do not say which images" not in page

    update_card(models_dir, "small", held_out_digest="0000000000000000")
    assert "different held-out images" not in text_of(client.get("/models").get_data(as_text=True))


def test_models_whose_cards_do_not_say_which_images_may_differ_in_more_than_their_split(client, models_dir):
    for name, held_out in (("tiny", "0000000000000000"), ("small", "1111111111111111")):
        update_card(models_dir, name, held_out_digest=held_out)  # no data_digest: grouped by name alone
    page = text_of(client.get("/models").get_data(as_text=True))
    assert ('<p class="notice">These models were scored on different held-out images, and their cards do not say '
            'which images they trained on: they may have trained on different data sets of this name, not only with '
            'another <code>--seed</code> or <code>--validation-fraction</code>, so their held-out figures may not '
            'compare at all.</p>') in page
    assert page.count("different held-out images") == 1


def test_models_scored_on_one_test_set_are_ranked_by_it(client, models_dir):
    for name, held_out, test in (("tiny", 0.9, 0.6), ("small", 0.8, 0.7)):
        update_card(models_dir, name, {"accuracy": held_out}, test_digest="0123456789abcdef",
                    test_evaluation={"accuracy": test})
    page = text_of(client.get("/models").get_data(as_text=True))
    assert re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', page)[:3] == ["Model", "Test accuracy", "Held-out accuracy"]
    assert page.index(">small</a>") < page.index(">tiny</a>")
    assert '<td class="number strong">70.0%</td> <td class="number">80.0%</td>' in page
    assert "held-out split, or on a test set where every model was scored on the same one." in page

    # Another test set: the test figures do not compare, and the held-out ones rank.
    update_card(models_dir, "small", test_digest="fedcba9876543210")
    page = text_of(client.get("/models").get_data(as_text=True))
    assert "Test accuracy" not in page and "or on a test set" not in page
    assert page.index(">tiny</a>") < page.index(">small</a>")

    # The same test set, but one model trained on some of its images: its score is no test score.
    update_card(models_dir, "small", test_digest="0123456789abcdef", test_in_training=3, held_out_in_training=2)
    page = text_of(client.get("/models").get_data(as_text=True))
    assert "Test accuracy" not in page and page.index(">tiny</a>") < page.index(">small</a>")
    page = client.get("/models/small").get_data(as_text=True)
    assert ">Test images, 3 of them trained on</th>" in page and ">Held-out images, 2 of them trained on</th>" in page
    rows = client.get("/models").get_data(as_text=True).split("<tr>")
    assert ["2 of its held-out images\n          are copies of training ones" in row for row in rows
            if 'href="/models/' in row] == [False, True]

    # The same test set, but a hand-edited card without its figure: nothing to rank by.
    update_card(models_dir, "small", test_digest="0123456789abcdef", test_evaluation="70%")
    response = client.get("/models")
    assert response.status_code == 200 and "Test accuracy" not in response.get_data(as_text=True)


@pytest.mark.parametrize("trained_on", [0, True, "3", -1, None])
def test_a_test_in_training_that_is_no_count_of_images_is_read_as_none_on_both_pages(client, models_dir, trained_on):
    for name, test in (("tiny", 0.6), ("small", 0.7)):
        update_card(models_dir, name, test_digest="0123456789abcdef", test_evaluation={"accuracy": test})
    update_card(models_dir, "small", test_in_training=trained_on)
    page = text_of(client.get("/models").get_data(as_text=True))
    assert "Test accuracy" in page and page.index(">small</a>") < page.index(">tiny</a>")
    assert ">Test images</th>" in client.get("/models/small").get_data(as_text=True)


@pytest.mark.parametrize("digest", [12345, True, ["0123456789abcdef"], {"a": 1}, "", "f" * 100_000])
def test_a_hand_edited_digest_is_taken_as_not_recorded(client, models_dir, digest):
    update_card(models_dir, "tiny", data_digest=digest, held_out_digest=digest, test_digest=digest,
                test_evaluation={"accuracy": 0.5})
    update_card(models_dir, "small", held_out_digest="0123456789abcdef", test_digest=digest,
                test_evaluation={"accuracy": 0.5})
    response = client.get("/models")
    page = text_of(response.get_data(as_text=True))
    assert response.status_code == 200
    assert data_set_headings(page) == []  # both "synthetic", neither with a digest: one data set
    assert "different held-out images" not in page and "Test accuracy" not in page


def test_dashboard_lists_unavailable_models_with_reason(client, models_dir):
    (models_dir / "broken.h5").write_bytes(b"not hdf5")
    (models_dir / "broken.json").write_text((models_dir / "tiny.json").read_text())
    (models_dir / "orphan.h5").write_bytes((models_dir / "tiny.h5").read_bytes())
    page = client.get("/models").get_data(as_text=True)
    assert "Unavailable" in page
    assert "broken.h5 is not an HDF5 model file" in page
    assert "no metrics card (orphan.json)" in page
    assert str(models_dir) not in page
    assert "try-it" not in page.split("<h2>Unavailable</h2>")[1]  # only usable models are offered
    # Scrolled within the page, as the other tables are, rather than widening a phone's page.
    assert re.search(r'<div class="table-scroll" tabindex="0" role="region" aria-label="Unavailable models">\s*'
                     r'<table class="data unavailable">', page)


def test_a_long_reason_shows_its_first_clause_and_the_rest_as_details(client, models_dir):
    from webapp.formatting import SHORT_REASON

    # A short reason whole; a long one, with Python's JSON error, behind its first clause.
    (models_dir / "tiny.h5").write_bytes(b"not hdf5")
    name = "cifar10_efficientnet_lite0"
    shutil.copy(models_dir / "small.h5", models_dir / f"{name}.h5")
    (models_dir / f"{name}.json").write_text("{oops")
    long = f"metrics card {name}.json is unreadable: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    assert len(long) > SHORT_REASON
    page = text_of(client.get("/models").get_data(as_text=True))
    assert "<td> <p class=\"reason\">tiny.h5 is not an HDF5 model file; copy it again, or train it again</p> </td>" in page
    assert (f"<td> <p class=\"reason\">metrics card {name}.json is unreadable</p> <details class=\"technical\"><summary>Technical details"
            f"</summary><p>{long}</p></details> </td>") in page
    assert page.count("Technical details") == 1


def test_model_page_has_card_curves_per_class_and_heat_map(client, models_dir):
    response = client.get("/models/small")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"<dt>File size</dt><dd>{filesize((models_dir / 'small.h5').stat().st_size)}</dd>" in page
    assert page.count('<svg class="plot"') == 2  # loss and accuracy
    assert 'aria-label="True class in rows, predicted class in columns">true \\ predicted</th>' in page
    for chart in ("loss", "accuracy"):  # each described by the summary under it
        assert f'aria-describedby="{chart}-summary"' in page and f'<figcaption class="hint" id="{chart}-summary">' in page
    assert page.count('<polyline class="line series-') == 4  # training and validation, each
    assert "training" in page and "validation" in page
    for label in SMALL_CLASSES:
        assert f'<th scope="row"><span class="long-name">{label}</span></th>' in page  # per-class table
        assert f'<th scope="row" aria-label="{label}"><span>{label}</span></th>' in page  # matrix rows
        assert f'<th scope="col" class="column-label" aria-label="{label}"><span>{label}</span></th>' in page
    assert len(re.findall(r'class="heat heat-\d+', page)) == len(SMALL_CLASSES) ** 2
    assert page.count(" diagonal") == len(SMALL_CLASSES)
    assert "batch_size" in page  # hyperparameters
    # Tables scroll inside their card rather than widen a phone's page, and a keyboard can scroll them.
    scrollers = re.findall(r'<div class="table-scroll[^"]*" tabindex="0" role="region" aria-label="[^"]+">\s*<table', page)
    assert len(scrollers) == page.count("<table") == 4  # evaluation, its weighted averages, per class, matrix
    # The matrix's box is held to the screen's height (.confusion-scroll): a matrix of many classes scrolls in it.
    assert re.search(r'<div class="table-scroll confusion-scroll"[^>]*>\s*<table class="confusion">', page)
    # A text alternative to each chart, and why its loss is not the Evaluation table's.
    text = " ".join(page.split())
    assert "Training: best and final 0.6000 at epoch 6. Validation: best and final 0.9000 at epoch 6." in text
    assert "Training: best and final 80.0% at epoch 6. Validation: best and final 70.0% at epoch 6." in text
    assert "so the last point can differ a little from the final scores above" in text
    assert '<span aria-current="page">small</span></nav>' in text  # the breadcrumb ends with this model


def test_model_page_speaks_plainly(client, models_dir):
    path = models_dir / "tiny.json"
    card = json.loads(path.read_text())
    card.update(backend="jax", device="gpu: NVIDIA H200", keras_version="3.15.1", training_precision="mixed_bfloat16",
                created="2026-11-26T08:53:08+00:00")
    card["hyperparameters"].update(logit_scale=1 / 9, flip_tta=True, residual=False)
    path.write_text(json.dumps(card))
    page = text_of(client.get("/models/tiny").get_data(as_text=True))
    assert "<h2>About this model</h2>" in page and '<a class="button" href="/?model=tiny">Try it</a>' in page
    assert "<dt>Trained with</dt><dd>JAX on an NVIDIA H200 GPU (Keras 3.15.1)</dd>" in page
    assert "<dt>Number format in training</dt><dd>mixed bfloat16</dd>" in page
    assert "<dt>Created</dt><dd>26\u00a0Nov\u00a02026, 08:53\u00a0UTC</dd>" in page
    assert "<dt>Starting weights</dt><dd>none (trained from scratch)</dd>" in page
    # The weighted averages and the settings are there on request.
    assert re.search(r"<details>\s*<summary>Weighted averages.*F1 \(weighted\).*</details>", page)
    assert page.index("F1 (macro)") < page.index("<summary>Weighted averages")
    # A heading of its own, not inside the summary (a button, whose headings screen readers do not list).
    assert "<h2>Training settings</h2> <details> <summary>All 6 settings</summary>" in page
    for key, shown in [("logit_scale", "0.1111"), ("flip_tta", "yes"), ("residual", "no"), ("augment", "flip")]:
        assert f"<dt>{key}</dt><dd><code>{shown}</code></dd>" in page
    assert "recorded at training time" not in page


def test_a_heat_maps_shades_are_each_rows_shares():
    from webapp.dashboard import HEAT_LEVELS, MAX_HEAT_MAP_CLASSES, heat_map

    # Zeros are the usual cell of a real matrix; a shade is the nearest tenth of the row.
    rows = heat_map([[2, 1, 0], [0, 3, 0], [0, 0, 1]], ["a", "b", "c"])
    assert HEAT_LEVELS == 10 and [row["total"] for row in rows] == [3, 3, 1]
    assert rows[0]["cells"] == [(2, 7), (1, 3), (0, 0)] and rows[2]["cells"] == [(0, 0), (0, 0), (1, 10)]
    assert heat_map([[1] * 100] * 100, [str(n) for n in range(100)]) is not None  # CIFAR-100
    assert heat_map([[2, -1], [0, 1]], ["a", "b"]) is None  # a count below 0: a damaged card, no shades
    assert MAX_HEAT_MAP_CLASSES == 100


def test_the_dashboard_offers_to_compare_the_models_on_a_picture(client, models_dir):
    page = client.get("/models").get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)">Compare\s+them on a picture of yours</a>', page).group(1)
    assert re.search(r'<option [^>]*selected value="/all">All models \(compare\)</option>',
                     client.get(link).get_data(as_text=True))
    for path in models_dir.glob("small.*"):
        path.unlink()
    assert "Compare" not in client.get("/models").get_data(as_text=True)  # one model: nothing to compare it with


def test_the_worst_mistakes_are_named_by_the_share_of_the_true_class(client, models_dir):
    # "cat" (tiny's first class) has 4 images, 3 of them taken for "dog"; 30 of 1,200 "ship"s taken for "cat" are more
    # images, a smaller share; the 2 "ship"s taken for "dog" are the fourth mistake, not named.
    update_card(models_dir, "tiny", {"confusion_matrix": [[1, 3, 0], [0, 9, 1], [30, 2, 1168]]})
    page = " ".join(client.get("/models/tiny").get_data(as_text=True).split())
    assert ("<p>Most often mistaken:</p> <ul> <li>cat taken for dog: 3 of 4 images (75.0%)</li> "
            "<li>dog taken for ship: 1 of 10 images (10.0%)</li> "
            "<li>ship taken for cat: 30 of 1,200 images (2.5%)</li> </ul>") in page
    update_card(models_dir, "tiny", {"confusion_matrix": [[4, 0, 0], [0, 9, 0], [0, 0, 7]]})
    page = client.get("/models/tiny").get_data(as_text=True)
    assert "Most often mistaken" not in page and "Confusion matrix" in page  # no mistakes: nothing to name


def test_the_summary_row_shows_the_macro_averages_the_loss_and_the_files_own_size(client, models_dir):
    path = models_dir / "small.json"
    card = json.loads(path.read_text())
    card["evaluation"].update(precision_macro=0.123, precision_weighted=0.456, loss=0.3141)
    card["file_size_bytes"] = 123  # as if the card came from before a copy
    path.write_text(json.dumps(card))
    page = client.get("/models").get_data(as_text=True)
    assert "12.3%" in page and "45.6%" not in page and "0.3141" in page
    assert filesize((models_dir / "small.h5").stat().st_size) in page and "123 bytes" not in page


def test_a_confusion_matrix_too_big_to_read_is_left_out(client, models_dir, monkeypatch):
    monkeypatch.setattr("webapp.dashboard.MAX_HEAT_MAP_CLASSES", len(SMALL_CLASSES) - 1)
    page = client.get("/models/small").get_data(as_text=True)
    assert "Confusion matrix" not in page
    assert all(f'<th scope="row"><span class="long-name">{label}</span></th>' in page for label in SMALL_CLASSES)


def test_model_page_for_card_without_figures(client, models_dir):
    path = models_dir / "tiny.json"
    path.write_text(json.dumps({"classes": ["a", "b", "c"], "input_shape": [16, 16, 3], "history": {"loss": [None, "x"]}}))
    page = client.get("/models/tiny").get_data(as_text=True)
    assert "<svg" not in page and "heat-" not in page
    for fact in ("Architecture", "Data set", "Parameters", "Starting weights", "Epochs", "Training time", "Created"):
        assert f"<dt>{fact}</dt><dd>\u2014</dd>" in page  # missing values as dashes, not as nothing
    assert ">tiny</a>" in client.get("/models").get_data(as_text=True)


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("device", ":", "<dt>Trained with</dt><dd>TensorFlow (Keras 3.4.1)</dd>"),
    ("device", " : ", "<dt>Trained with</dt><dd>TensorFlow (Keras 3.4.1)</dd>"),
    ("created", "0001-01-01T00:00:00+14:00", "<dt>Created</dt><dd>0001-01-01T00:00:00+14:00</dd>"),
])
def test_a_hand_edited_card_value_is_shown_not_a_500(client, models_dir, key, value, shown):
    path = models_dir / "tiny.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"keras_version": "3.4.1", key: value}))
    response = client.get("/models/tiny")
    assert response.status_code == 200 and shown in text_of(response.get_data(as_text=True))


def test_pages_for_a_card_with_figures_beyond_any_float(client, models_dir):
    path = models_dir / "tiny.json"
    card = json.loads(path.read_text())
    huge = 10**400  # JSON allows it and Python reads it as an int, which no float holds
    card["evaluation"]["accuracy"] = card["training_seconds"] = huge
    card["history"]["loss"][0] = huge
    card["evaluation"]["confusion_matrix"][0] = [huge, 1, 2]
    path.write_text(json.dumps(card))
    for url in ("/models", "/models/tiny"):
        response = client.get(url)
        assert response.status_code == 200 and "\u2014" in response.get_data(as_text=True)


def test_figures_no_card_of_ours_could_hold_are_dashes_and_rank_last(client, models_dir):
    update_card(models_dir, "tiny", {"accuracy": 1e308, "precision_macro": -3, "loss": 1e300},
                history={"loss": [1e20, 1e20], "val_loss": [1e20, 1e20]}, training_seconds=-5)
    page = text_of(client.get("/models").get_data(as_text=True))
    assert page.index(">small</a>") < page.index(">tiny</a>") and "inf%" not in page and "1e+300" in page
    response = client.get("/models/tiny")  # a flat curve at 1e20, where adding 0.5 changes nothing
    assert response.status_code == 200 and "<svg" in response.get_data(as_text=True)
    assert "<dt>Training time</dt><dd>\u2014</dd>" in response.get_data(as_text=True)


def test_model_page_for_unavailable_model_shows_reason(client, models_dir):
    (models_dir / "tiny.json").write_text("{not json")
    page = client.get("/models/tiny").get_data(as_text=True)
    assert "<p class=\"reason\">This model cannot be used: metrics card tiny.json is unreadable" in page
    assert "Try it" not in page


def test_model_page_offers_the_model_and_its_card_for_download(client, models_dir):
    page = text_of(client.get("/models/small").get_data(as_text=True))
    size = filesize((models_dir / "small.h5").stat().st_size)
    assert f'<li><a href="/models/small/model.h5">small.h5</a>: the model, {size}</li>' in page
    assert '<li><a href="/models/small/card.json">small.json</a>: its metrics card (JSON)</li>' in page
    assert ('<code>keras.saving.load_model("small.h5")</code> loads it (Keras 3, any backend, without this app). '
            "It takes raw RGB pixels, 0-255, of 24 × 24, and gives a probability for each class, in the card's order") in page


def test_a_damaged_model_is_said_not_to_be_offered_for_download(client, models_dir):
    (models_dir / "tiny.h5").write_bytes(b"not hdf5")
    page = text_of(client.get("/models/tiny").get_data(as_text=True))
    assert "<h2>Download</h2>" not in page and "tiny/model.h5" not in page
    assert "Until it can, it is not offered for download." in page


def test_with_downloads_off_a_model_page_offers_none(client_without_downloads, models_dir):
    (models_dir / "tiny.h5").write_bytes(b"not hdf5")
    for name in ("small", "tiny"):
        page = client_without_downloads.get(f"/models/{name}").get_data(as_text=True)
        assert "Download" not in page and "download" not in page and "model.h5" not in page


def test_an_unavailable_models_figures_are_said_to_be_from_training(client, models_dir, monkeypatch):
    (models_dir / "tiny.h5").write_bytes(b"not hdf5")
    page = text_of(client.get("/models/tiny").get_data(as_text=True))
    assert "<p class=\"reason\">This model cannot be used: tiny.h5 is not an HDF5 model file; copy it again, or train it again</p>" in page
    assert "<h2>Evaluation (recorded at training time)</h2>" in page
    assert "<h2>Training curves (recorded at training time)</h2>" in page
    assert "The figures below were recorded at training time" in page
    assert "Technical details" not in page and "Try it" not in page
    # A card with no figures, as for a model trained elsewhere: nothing said of figures below.
    (models_dir / "tiny.json").write_text(json.dumps({"classes": ["cat", "dog", "ship"], "input_shape": [16, 16, 3]}))
    assert "recorded at training time" not in client.get("/models/tiny").get_data(as_text=True)

    # A long reason, such as a library's error, is folded away behind its first clause.
    monkeypatch.setattr("webapp.formatting.SHORT_REASON", 10)
    for url in ("/models/tiny", "/models"):
        page = text_of(client.get(url).get_data(as_text=True))
        assert "<summary>Technical details</summary><p>tiny.h5 is not an HDF5 model file; copy it again, or train it again</p>" in page


def test_a_card_beside_another_models_file_is_said_on_every_view_of_it(client, models_dir):
    # As a kill between a save's two renames leaves it, or a card copied beside another file.
    shutil.copy(models_dir / "small.h5", models_dir / "tiny.h5")
    note = "tiny.json was written for another tiny.h5 (the file"
    assert note in client.get("/models/tiny").get_data(as_text=True)
    rows = client.get("/models").get_data(as_text=True).split("<tr>")
    assert ["Its card may be another file's" in row for row in rows if 'href="/models/' in row] == [False, True]
    listed = {entry["name"]: entry for entry in client.get("/api/models").get_json()["models"]}
    assert listed["tiny"]["card_note"].startswith(note) and listed["tiny"]["available"]
    assert listed["small"]["card_note"] is None and note not in client.get("/models/small").get_data(as_text=True)


def test_unknown_model_page_is_404(client):
    response = client.get("/models/nope")
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "Unknown model &#39;nope&#39;." in page
    assert "<title>Model not found" in page and "<h1>Model not found" in page  # not "Page not found"
    assert '<a class="button" href="/models">See all models</a>' in page


def test_model_page_shows_test_evaluation_beside_held_out(client, models_dir):
    path = models_dir / "tiny.json"
    card = json.loads(path.read_text())
    card["test_evaluation"] = dict(card["evaluation"], accuracy=0.5432)
    path.write_text(json.dumps(card))
    page = client.get("/models/tiny").get_data(as_text=True)
    assert ">Held-out images</th>" in page and ">Test images</th>" in page and "54.3%" in page


TABLE_HEADER = ["model", "data_set", "test_accuracy", "accuracy", "loss", "precision", "recall", "f1", "architecture",
                "parameters", "file_size_bytes", "epochs", "training_seconds", "card_note"]


def test_the_dashboards_table_downloads_as_csv_in_its_order(client, models_dir):
    for path in (models_dir / "tiny.h5", models_dir / "tiny.json"):
        shutil.copy(path, path.with_stem("chat_noir_café"))
    update_card(models_dir, "tiny", {"accuracy": 0.6, "loss": 1.25, "precision_macro": 0.5, "recall_macro": 0.4,
                                     "f1_macro": 0.45}, test_evaluation={"accuracy": 0.55})
    update_card(models_dir, "chat_noir_café", {"accuracy": 0.9})
    update_card(models_dir, "small", {"accuracy": 0.3}, dataset="apples")
    damage(models_dir, "broken")  # listed on the dashboard as unavailable, not in its table
    page = client.get("/models").get_data(as_text=True)
    assert '<a href="/models.csv">CSV</a>' in page and '<a href="/models.md">Markdown</a>' in page

    response = client.get("/models.csv")
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == "attachment; filename=models.csv"
    # Made anew on each request: never kept as a static file is, for a year.
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.expires is None or response.expires < datetime.now(timezone.utc) + timedelta(minutes=1)
    assert response.data.startswith(b"\xef\xbb\xbf")  # UTF-8's byte-order mark, for Excel
    header, *rows = read_csv(response.get_data(as_text=True))
    assert header == TABLE_HEADER
    assert [row[:2] for row in rows] == [["small", "apples"], ["chat_noir_café", "synthetic"], ["tiny", "synthetic"]]
    card = json.loads((models_dir / "tiny.json").read_text())
    assert rows[2] == ["tiny", "synthetic", 0.55, 0.6, 1.25, 0.5, 0.4, 0.45, "scratch", card["parameters"],
                       (models_dir / "tiny.h5").stat().st_size, 6, 13.5, ""]
    assert rows[1][2] == "" and rows[1][3] == 0.9  # no test set recorded: an empty cell


def test_the_dashboards_table_names_each_data_set_as_its_heading_does(client, models_dir):
    update_card(models_dir, "tiny", data_digest="0123456789abcdef")
    update_card(models_dir, "small", data_digest="fedcba9876543210")
    headings = data_set_headings(text_of(client.get("/models").get_data(as_text=True)))
    rows = read_csv(client.get("/models.csv").get_data(as_text=True))[1:]
    assert [row[1] for row in rows] == headings == ["synthetic (4 classes: apple, pear, plum and 1 more)",
                                                    "synthetic (3 classes: cat, dog, ship)"]


def test_the_dashboards_table_in_markdown(client, models_dir):
    update_card(models_dir, "tiny", {"accuracy": 0.919, "loss": 0.3141}, dataset="cats|dogs\nand ships",
                training_seconds=67.4)
    update_card(models_dir, "small", {"accuracy": 0.5})
    response = client.get("/models.md")
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Disposition"] == "inline; filename=models.md"  # shown, to copy
    size = filesize((models_dir / "tiny.h5").stat().st_size)
    parameters = json.loads((models_dir / "tiny.json").read_text())["parameters"]
    lines = response.get_data(as_text=True).splitlines()
    assert lines[:2] == ["| Model | Data set | Accuracy | Loss | Precision | Recall | F1 | Architecture | Parameters "
                         "| File size | Epochs | Training time |",
                         "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    assert len(lines) == 4 and lines[3].startswith("| small | synthetic | 50.0% |")
    assert lines[2].startswith("| tiny | cats\\|dogs and ships | 91.9% | 0.3141 | ")
    assert lines[2].endswith(f" | scratch | {parameters:,} | {size} | 6 | 1 min 07 s |")


def test_a_hand_edited_or_hostile_card_gives_empty_cells_and_text_no_spreadsheet_runs(client, models_dir):
    name = "@SUM(1+1)"
    for path in (models_dir / "tiny.h5", models_dir / "tiny.json"):
        shutil.copy(path, path.with_stem(name))
    card = json.loads((models_dir / "tiny.json").read_text())
    card.update(architecture={"layers": 3}, parameters="2M", epochs_run=None, training_seconds=True,
                dataset="=HYPERLINK(\"http://example.com\")", test_evaluation=[0.5], evaluation="oops")
    (models_dir / "tiny.json").write_text(json.dumps(card))
    rows = {row[0]: row for row in read_csv(client.get("/models.csv").get_data(as_text=True))[1:]}
    size = (models_dir / "tiny.h5").stat().st_size  # the file's own, whatever its card says
    assert rows["tiny"] == ["tiny", "'=HYPERLINK(\"http://example.com\")"] + [""] * 8 + [size, "", "", ""]
    assert rows["'" + name][:2] == ["'" + name, "synthetic"]
    markdown = client.get("/models.md")
    assert markdown.status_code == 200
    assert "| tiny | =HYPERLINK(\"http<span>\\:</span>//example.com\") | \u2014 | \u2014 |" in markdown.get_data(as_text=True)
    card.pop("dataset")  # a data set no card names: a dash on the page, an empty cell in the CSV
    (models_dir / "tiny.json").write_text(json.dumps(card))
    rows = {row[0]: row for row in read_csv(client.get("/models.csv").get_data(as_text=True))[1:]}
    assert rows["tiny"][:2] == ["tiny", ""] and "| tiny | \u2014 |" in client.get("/models.md").get_data(as_text=True)


def test_a_card_beside_another_file_says_so_in_the_dashboards_table(client, models_dir):
    shutil.copy(models_dir / "small.h5", models_dir / "tiny.h5")
    rows = {row[0]: row for row in read_csv(client.get("/models.csv").get_data(as_text=True))[1:]}
    assert rows["tiny"][-1].startswith("tiny.json was written for another tiny.h5") and rows["small"][-1] == ""
    markdown = client.get("/models.md").get_data(as_text=True).splitlines()
    assert markdown[0].endswith("| Training time | Note |")
    assert "| tiny.json was written for another tiny.h5" in next(line for line in markdown if line.startswith("| tiny |"))


def test_the_per_class_table_downloads_as_csv(client, models_dir):
    for path in (models_dir / "small.h5", models_dir / "small.json"):
        shutil.copy(path, path.with_stem("small.csv"))  # a name that ends like a file's: its page is its own
    assert 'aria-current="page">small.csv</span>' in client.get("/models/small.csv").get_data(as_text=True)
    page = client.get("/models/small.csv").get_data(as_text=True)
    assert '<a href="/models/small.csv/per_class.csv">This table as CSV</a>' in page

    response = client.get("/models/small.csv/per_class.csv")
    assert response.headers["Content-Disposition"] == "attachment; filename=small.csv_per_class.csv"
    evaluation = json.loads((models_dir / "small.json").read_text())["evaluation"]["per_class"]
    header, *rows = read_csv(response.get_data(as_text=True))
    assert header == ["class", "precision", "recall", "f1", "support"]
    assert rows == [[label] + [evaluation[label][key] for key in header[1:]] for label in SMALL_CLASSES]

    update_card(models_dir, "small", {"per_class": "oops"})
    response = client.get("/models/small/per_class.csv")
    assert response.status_code == 404 and "Model &#39;small&#39; has no per-class figures on its card." in response.get_data(
        as_text=True)
    assert "per_class.csv" not in client.get("/models/small").get_data(as_text=True)
    assert client.get("/models/nope/per_class.csv").status_code == 404
    (models_dir / "small.json").unlink()
    response = client.get("/models/small/per_class.csv")
    assert response.status_code == 404
    assert "Model &#39;small&#39; has no card that can be read, so no per-class figures." in response.get_data(as_text=True)


def test_a_class_with_no_images_and_no_predictions_has_dashes_not_zeros(client, models_dir):
    # An imported 4-class model scored on apples and pears only: plum was predicted once, fig neither shown nor
    # predicted. Its 0/0 figures are no 0%: the macro averages (over apple, pear and plum) leave fig out.
    figures = {"apple": (2 / 3, 1.0, 0.8, 2), "pear": (1.0, 0.5, 2 / 3, 4), "plum": (0.0, 0.0, 0.0, 0),
               "fig": (0.0, 0.0, 0.0, 0)}
    update_card(models_dir, "small", {
        "confusion_matrix": [[2, 0, 0, 0], [1, 2, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
        "per_class": {label: dict(zip(("precision", "recall", "f1", "support"), row)) for label, row in figures.items()},
    })
    page = text_of(client.get("/models/small").get_data(as_text=True))
    row = '<tr> <th scope="row"><span class="long-name">{}</span></th> <td class="number">{}</td> ' \
          '<td class="number">{}</td> <td class="number">{}</td> <td class="number">{}</td> </tr>'
    assert row.format("apple", "66.7%", "100.0%", "80.0%", "2") in page
    assert row.format("plum", "0.0%", "0.0%", "0.0%", "0") in page  # predicted once, wrongly: a real 0 precision
    assert row.format("fig", "\u2014", "\u2014", "\u2014", "0") in page
    assert "A dash: neither, so nothing to score" in page and "zero_division=0" in page
    header, *rows = read_csv(client.get("/models/small/per_class.csv").get_data(as_text=True))
    assert rows[SMALL_CLASSES.index("fig")] == ["fig", "", "", "", 0]
    assert rows[SMALL_CLASSES.index("plum")] == ["plum", 0.0, 0.0, 0.0, 0]
    # A confusion matrix in which every class has images or predictions: no dashes, and none explained.
    update_card(models_dir, "small", {"confusion_matrix": [[2, 0, 0, 0], [1, 2, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1]]})
    page = text_of(client.get("/models/small").get_data(as_text=True))
    assert "A dash" not in page and row.format("fig", "0.0%", "0.0%", "0.0%", "0") in page
