"""The JSON API: predictions, model list and health."""

import io
import json
import types

import numpy as np
import pytest

from conftest import (calls, damage, dark_top_left, nan_when_covered_model, overflow_model, post_api, read_csv,
                      red_top_left, save_as, save_model_without_softmax, top_left_model, update_card)
from webapp.batch import MAX_PICTURES
from webapp.occlusion import STEPS
from webapp.registry import Registry


def test_predict_returns_ranked_predictions(client, make_image):
    response = post_api(client, make_image("JPEG"))
    body = response.get_json()
    assert response.status_code == 200
    assert body["model"] == "tiny"
    assert {p["label"] for p in body["predictions"]} == {"cat", "dog", "ship"}  # top 5 of three classes
    probabilities = [p["probability"] for p in body["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert body["elapsed_ms"] > 0


def test_the_time_taken_is_given_to_the_microsecond(client, make_image, monkeypatch):
    clock = iter([100.0, 100.0012345])  # the predictor's start and end
    monkeypatch.setattr("webapp.predictor.time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    assert post_api(client, make_image()).get_json()["elapsed_ms"] == 1.234


def test_the_list_and_the_default_model_come_from_one_reading_of_the_models_folder(client, make_image, monkeypatch):
    post_api(client, make_image())  # loads the default model
    listed = calls(monkeypatch, Registry, "_files")
    assert client.get("/api/models").status_code == 200
    assert post_api(client, make_image()).status_code == 200
    assert client.get("/api/models/small").get_json()["default"] is False
    assert len(listed) == 3


def test_predict_with_model_and_top_k(client, make_image):
    body = post_api(client, make_image("PNG"), model="small", top_k="2").get_json()
    assert body["model"] == "small"
    assert len(body["predictions"]) == 2
    assert {p["label"] for p in body["predictions"]} <= {"apple", "pear", "plum", "fig"}


def test_explain_finds_the_part_the_answer_rests_on(client, models_dir):
    save_as(models_dir, top_left_model(), "corner")
    body = post_api(client, red_top_left(), model="corner", explain="1").get_json()
    best = body["predictions"][0]
    occlusion = body["occlusion"]
    assert best["label"] == occlusion["label"] == "cat" and occlusion["probability"] == pytest.approx(best["probability"])
    drops = np.array(occlusion["drops"])
    assert drops.shape == (STEPS, STEPS) and drops[0, 0] == drops.max() > 0.5
    assert np.all(drops[2:, 2:] == 0)  # squares that miss the corner the model looks at
    assert body["occlusion_error"] is None
    for quiet in ({}, {"explain": "0"}, {"explain": ""}):
        assert post_api(client, red_top_left(), model="corner", **quiet).get_json().keys() == {
            "model", "predictions", "elapsed_ms"}


def test_an_answer_whose_explanation_fails_is_still_given(client, models_dir):
    save_as(models_dir, nan_when_covered_model(), "fragile")
    plain = post_api(client, dark_top_left(), model="fragile").get_json()
    response = post_api(client, dark_top_left(), model="fragile", explain="1")
    body = response.get_json()
    assert response.status_code == 200
    assert body["predictions"] == plain["predictions"] and body["predictions"][0]["label"] == "cat"
    assert body["occlusion"] is None
    assert body["occlusion_error"] == (
        "The map of what the answer rests on could not be made: with parts of the image covered, the model gave "
        "NaN or infinite outputs (damaged weights, or a training run that diverged).")


def test_explain_takes_1_or_0_only(client, make_image):
    for bad in ("yes", "true", "2", " 1"):
        response = post_api(client, make_image(), explain=bad)
        assert response.status_code == 400
        assert response.get_json() == {"error": "explain must be 1 (show what the answer rests on) or 0."}
    response = client.post("/api/predict?explain=1", data={"image": (io.BytesIO(make_image()), "a.png")})
    assert response.get_json() == {"error": "Send explain in the form data, not in the URL."}


def test_api_needs_no_csrf_token(client, make_image):
    client.get("/")  # even with a session cookie, no token is asked for
    assert post_api(client, make_image()).status_code == 200
    assert post_api(client, make_image(), csrf_token="anything").status_code == 200  # the form's, taken and not read


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"model": "nope"}, 404, "Unknown model 'nope'."),
        ({"model": "tiny.h5"}, 404, "Unknown model 'tiny.h5' (did you mean tiny?)."),
        ({"model": "Small"}, 404, "Unknown model 'Small' (did you mean small?)."),
        ({"top_k": "0"}, 400, "top_k must be a whole number from 1 to 1000."),  # the other bad values: test_predictor.py
        ({"topk": "3"}, 400, "Unknown field 'topk': the API takes image, model, top_k, compare and explain."),
        ({"Top_K": "3", "note": "x"}, 400, "Unknown fields 'Top_K', 'note': the API takes image, model, top_k"),
    ],
)
def test_predict_field_errors(client, make_image, fields, status, message):
    response = post_api(client, make_image(), **fields)
    assert response.status_code == status
    assert response.is_json and message in response.get_json()["error"]


def test_predict_refuses_unknown_fields_in_the_url(client, make_image):
    # As in the form: a misspelt top_k in the URL is not a default quietly used.
    image = {"image": (io.BytesIO(make_image()), "a.png")}
    response = client.post("/api/predict?topk=1", data=image)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "Unknown field 'topk' in the URL: the API takes image, model, top_k, compare and explain, in the "
                 "form data."}
    image = {"image": (io.BytesIO(make_image()), "a.png")}
    response = client.post("/api/predict?note=x&other=y", data=image)
    assert response.status_code == 400 and "Unknown fields 'note', 'other' in the URL" in response.get_json()["error"]
    image = {"image": (io.BytesIO(make_image()), "a.png")}
    response = client.post("/api/predict?image=a.png&note=x", data=image)  # not "unknown", and then "takes image"
    assert response.status_code == 400 and response.get_json()["error"] == "Send image in the form data, not in the URL."


def test_predict_without_image(client):
    response = post_api(client, None, model="tiny")
    assert response.status_code == 400
    assert "field named 'image'" in response.get_json()["error"]


@pytest.mark.parametrize("files", [[], [(io.BytesIO(b"\x89PNG"), "a.png")]])
def test_an_image_sent_as_text_is_refused_with_or_without_files_beside_it(client, files):
    # curl -F image=@a.png -F image=b.png: the second is its name as text, and would go unanswered.
    response = client.post("/api/predict", data={"image": [*files, "b.png"]}, content_type="multipart/form-data")
    assert response.status_code == 400 and response.get_json()["error"] == (
        "An 'image' field came as plain text, not as a file: send each image as a file "
        "(with curl, -F image=@cat.jpg: the @ sends the file).")


def post_several(client, pictures: list[tuple[str, bytes]], **fields):
    images = [(io.BytesIO(data), name) for name, data in pictures]
    return client.post("/api/predict", data={**fields, "image": images}, content_type="multipart/form-data")


def test_several_images_are_each_answered_by_one_model_in_the_order_sent(client, make_image):
    first, second = make_image(seed=1), make_image("JPEG", size=(300, 200), seed=2)
    response = post_several(client, [("a.png", first), ("notes.txt", b"text"), ("b.jpg", second)], model="small",
                            top_k="2")
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == "small" and body["elapsed_ms"] > 0
    assert list(body) == ["model", "elapsed_ms", "answers"]  # as the API page has them: the model before 30 answers
    answers = body["answers"]
    alone = [post_api(client, data, model="small", top_k="2").get_json() for data in (first, second)]
    assert [answer["image"] for answer in answers] == ["a.png", "notes.txt", "b.jpg"]
    for answer, single in zip([answers[0], answers[2]], alone):
        assert set(answer) == {"image", "predictions"}
        assert [each["label"] for each in answer["predictions"]] == [each["label"] for each in single["predictions"]]
        assert [each["probability"] for each in answer["predictions"]] == pytest.approx(
            [each["probability"] for each in single["predictions"]], abs=1e-6)
    assert answers[1] == {"image": "notes.txt", "error": "Unsupported file type: send a JPEG, PNG, GIF, BMP or WebP image."}


def test_several_images_none_of_which_can_be_answered_are_a_400_with_each_reason(client):
    response = post_several(client, [("a.png", b""), ("b.png", b"\x89PNG\r\n\x1a\nbroken")])
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "No image could be classified: each one's reason is in answers.",
        "answers": [{"image": "a.png", "error": "The file is empty."},
                    {"image": "b.png", "error": "The PNG file is damaged or incomplete."}],
    }


def test_a_file_input_left_empty_is_not_sent_as_on_the_page(client, make_image):
    # An HTML form's empty file input sends a part with no file name and no bytes.
    response = post_several(client, [("a.png", make_image()), ("", b"")], model="tiny")
    assert response.status_code == 200 and "answers" not in response.get_json()
    assert response.get_json()["predictions"] == post_api(client, make_image(), model="tiny").get_json()["predictions"]
    response = post_several(client, [("", b"")])
    assert response.status_code == 400 and "field named 'image'" in response.get_json()["error"]


def test_answers_of_a_model_whose_file_may_be_damaged_carry_its_card_note(client, models_dir, make_image):
    # The file has the card's size but not its SHA-256: HDF5 keeps no checksums, so it loads.
    update_card(models_dir, "tiny", file_sha256="0" * 64)
    note = client.get("/api/models/tiny").get_json()["card_note"]
    assert "neither its answers nor the card's figures can be trusted" in note
    assert post_api(client, make_image(), model="tiny").get_json()["card_note"] == note
    several = post_several(client, [("a.png", make_image()), ("b.png", make_image(seed=1))], model="tiny")
    assert several.get_json()["card_note"] == note
    answers = {each["model"]: each for each in post_api(client, make_image(), compare="1").get_json()["answers"]}
    assert answers["tiny"]["card_note"] == note and "card_note" not in answers["small"]
    assert "card_note" not in post_api(client, make_image(), model="small").get_json()


@pytest.mark.parametrize(("count", "fields", "message"), [
    (MAX_PICTURES + 1, {}, f"Send at most {MAX_PICTURES} images at a time; this upload has {MAX_PICTURES + 1}."),
    (2, {"compare": "1"}, "compare=1 works with one image: send one 'image' field, or leave compare out."),
    (2, {"explain": "1"}, "explain works with one image: send one 'image' field, or leave explain out."),
])
def test_what_works_with_one_image_only_is_refused_for_several(client, make_image, count, fields, message):
    response = post_several(client, [(f"{n}.png", make_image(seed=n)) for n in range(count)], **fields)
    assert response.status_code == 400 and response.get_json() == {"error": message}


def test_as_many_images_as_allowed_fit_with_every_field(client, make_image):
    pictures = [(f"{n}.png", make_image(seed=n)) for n in range(MAX_PICTURES)]
    response = post_several(client, pictures, model="tiny", top_k="1", explain="0", compare="0")
    assert response.status_code == 200 and len(response.get_json()["answers"]) == MAX_PICTURES


def test_predict_refuses_repeated_fields_and_fields_in_the_url(client, make_image):
    image = {"image": (io.BytesIO(make_image()), "a.png")}
    response = client.post("/api/predict?model=small&top_k=2", data=image)
    assert response.status_code == 400
    assert response.get_json() == {"error": "Send model and top_k in the form data, not in the URL."}
    # Otherwise the first would win, silently: top_k=2 and top_k=banana gave 2 answers.
    repeated = {"image": (io.BytesIO(make_image()), "a.png"), "model": ["tiny", "nope"], "top_k": ["2", "banana"]}
    response = client.post("/api/predict", data=repeated)
    assert response.status_code == 400
    assert response.get_json() == {"error": "Send model and top_k once; this request has more than one."}
    # A field sent as a file part (curl's -F top_k=@k.txt) is not in the form: it would be the default.
    as_files = {"image": (io.BytesIO(make_image()), "a.png"), "top_k": (io.BytesIO(b"1"), "k.txt")}
    response = client.post("/api/predict", data=as_files)
    assert response.status_code == 400
    assert response.get_json() == {"error": "Send top_k as a plain form field, not as a file."}


def test_unavailable_model_is_503(client, models_dir, make_image):
    (models_dir / "tiny.h5").write_bytes(b"garbage")
    response = post_api(client, make_image(), model="tiny")
    assert response.status_code == 503
    assert "Model 'tiny' cannot be used: tiny.h5 is not an HDF5 model file; copy it again, or train it again" == response.get_json()["error"]


@pytest.mark.parametrize("damage", ["file", "load"])
def test_a_damaged_default_model_gives_way_to_a_usable_one(client, models_dir, make_image, damage):
    if damage == "file":
        (models_dir / "tiny.h5").write_bytes(b"garbage")  # the app's default
    else:  # passes the file checks, fails when loaded: its head gives no probabilities
        save_model_without_softmax(models_dir / "tiny.h5")
    response = post_api(client, make_image())
    assert response.status_code == 200 and response.get_json()["model"] == "small"


def test_a_model_that_gives_nan_for_one_image_is_503_not_invalid_json(client, models_dir, make_image):
    save_as(models_dir, overflow_model(), "overflow")
    for explain in ("0", "1"):  # asked to explain too: no answer to keep
        response = post_api(client, make_image(), model="overflow", explain=explain)
        assert response.status_code == 503
        assert response.get_json() == {"error": "Model 'overflow' gave NaN or infinite outputs (damaged weights, or a "
                                                "training run that diverged): replace or retrain it."}


def test_compare_asks_every_model_best_first(client, models_dir, make_image):
    save_as(models_dir, overflow_model(), "overflow")  # NaN for a picture
    save_model_without_softmax(models_dir / "broken.h5")  # passes the file checks, fails when loaded
    (models_dir / "broken.json").write_text((models_dir / "tiny.json").read_text())
    damage(models_dir, "damaged")  # listed as unusable: not asked
    response = post_api(client, make_image("JPEG"), compare="1", top_k="2")
    body = response.get_json()
    assert response.status_code == 200 and body.keys() == {"answers"}
    small, broken, overflow, tiny = body["answers"]  # as the dashboard ranks them
    for answer, classes in ((small, {"apple", "pear", "plum", "fig"}), (tiny, {"cat", "dog", "ship"})):
        assert list(answer) == ["model", "data_set", "predictions", "elapsed_ms"] and answer["elapsed_ms"] > 0
        assert len(answer["predictions"]) == 2 and {p["label"] for p in answer["predictions"]} <= classes
    assert (small["model"], tiny["model"]) == ("small", "tiny")
    # Each as that model alone answers.
    assert tiny["predictions"] == post_api(client, make_image("JPEG"), model="tiny", top_k="2").get_json()["predictions"]
    assert list(broken) == ["model", "data_set", "error"]
    assert broken == {"model": "broken", "data_set": "synthetic", "error": "Model 'broken' cannot be used: it gives "
                      "outputs that are not probabilities (its last layer needs a softmax)"}
    assert overflow == {"model": "overflow", "data_set": "synthetic", "error": "Model 'overflow' gave NaN or infinite "
                        "outputs (damaged weights, or a training run that diverged): replace or retrain it."}
    assert post_api(client, make_image(), compare="0").get_json()["model"] == "tiny"  # one model, as without it


def test_compare_answers_by_data_set_as_the_dashboard(client, models_dir, make_image):
    save_as(models_dir, top_left_model(), "corner")
    update_card(models_dir, "corner", {"accuracy": 0.9})
    update_card(models_dir, "small", dataset="apples")
    answers = post_api(client, make_image(), compare="1").get_json()["answers"]
    assert [(answer["model"], answer["data_set"]) for answer in answers] == [
        ("small", "apples"), ("corner", "synthetic"), ("tiny", "synthetic")]
    table = client.get("/models.csv").get_data(as_text=True)  # the same headings name them there
    assert [row[:2] for row in read_csv(table)[1:]] == [[answer["model"], answer["data_set"]] for answer in answers]


def test_compare_is_503_when_no_model_can_answer(client, models_dir, make_image):
    save_as(models_dir, overflow_model(), "overflow")
    damage(models_dir, "broken")
    for name in ("tiny", "small"):
        (models_dir / f"{name}.h5").unlink()
    response = post_api(client, make_image(), compare="1")
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "No model could answer: each one's reason is in answers."
    assert [answer["model"] for answer in body["answers"]] == ["overflow"]  # not broken, which is not usable
    assert all(answer.keys() == {"model", "data_set", "error"} for answer in body["answers"])
    (models_dir / "overflow.h5").unlink()
    response = post_api(client, make_image(), compare="1")  # broken alone
    assert response.status_code == 503 and response.get_json() == {"error": "No model is available."}
    for path in models_dir.iterdir():
        path.unlink()
    response = post_api(client, make_image(), compare="1")
    assert response.status_code == 503 and response.get_json() == {"error": "No model is available."}


@pytest.mark.parametrize(("fields", "message"), [
    ({"compare": "yes"}, "compare must be 1 (every model answers) or 0."),
    ({"compare": "1", "model": "tiny"}, "Send model or compare=1, not both: compare=1 asks every model."),
    ({"compare": "1", "explain": "1"}, "explain works with one model: send it without compare=1."),
])
def test_compare_field_errors(client, make_image, fields, message):
    response = post_api(client, make_image(), **fields)
    assert response.status_code == 400 and response.get_json() == {"error": message}


def test_compare_is_validated_as_the_other_fields(client, make_image):
    response = client.post("/api/predict?compare=1", data={"image": (io.BytesIO(make_image()), "a.png")})
    assert response.status_code == 400
    assert response.get_json() == {"error": "Send compare in the form data, not in the URL."}
    twice = {"image": (io.BytesIO(make_image()), "a.png"), "compare": ["1", "0"]}
    response = client.post("/api/predict", data=twice)
    assert response.status_code == 400
    assert response.get_json() == {"error": "Send compare once; this request has more than one."}
    # An image no model can read: refused once, as for one model, not once per model.
    response = post_api(client, b"\x89PNG\r\n\x1a\nbroken", compare="1")
    assert response.status_code == 400 and response.get_json() == {"error": "The PNG file is damaged or incomplete."}


def test_no_model_at_all_is_503(client, models_dir, make_image):
    for path in models_dir.iterdir():
        path.unlink()
    response = post_api(client, make_image())
    assert response.status_code == 503
    assert response.get_json() == {"error": "No model is available."}


def test_models_list_without_long_arrays(client, models_dir):
    written = json.loads((models_dir / "small.json").read_text())
    written["test_evaluation"] = written["evaluation"]  # as after training with --test-data
    written["training_pixels_sketch"] = "0123456789abcdef"
    (models_dir / "small.json").write_text(json.dumps(written))
    body = client.get("/api/models").get_json()
    models = {entry["name"]: entry for entry in body["models"]}
    assert set(models) == {"tiny", "small"}
    card = models["small"]["card"]
    assert models["small"]["available"] is True and models["small"]["error"] is None
    assert card["classes"] == ["apple", "pear", "plum", "fig"]
    assert "history" not in card and "training_pixels_sketch" not in card
    for key in ("evaluation", "test_evaluation"):
        assert "confusion_matrix" not in card[key] and "per_class" not in card[key]
        assert "accuracy" in card[key]
    assert client.get("/api/models/small").get_json()["card"]["training_pixels_sketch"] == "0123456789abcdef"


def test_a_model_without_a_readable_card_lists_its_card_as_null(client, models_dir):
    (models_dir / "small.json").write_text("{not json")
    listed = {entry["name"]: entry for entry in client.get("/api/models").get_json()["models"]}
    assert listed["small"]["card"] is None and listed["small"]["available"] is False and listed["small"]["error"]
    assert listed["tiny"]["card"]["classes"]


def test_each_usable_model_says_where_to_download_it(client, client_without_downloads, models_dir):
    (models_dir / "small.h5").write_bytes(b"not hdf5")
    listed = {entry["name"]: entry["downloads"] for entry in client.get("/api/models").get_json()["models"]}
    assert listed == {"tiny": {"model": "http://localhost/models/tiny/model.h5",
                               "card": "http://localhost/models/tiny/card.json"},
                      "small": None}
    assert client.get("/api/models/tiny").get_json()["downloads"] == listed["tiny"]
    with client.get(listed["tiny"]["model"]) as model, client.get(listed["tiny"]["card"]) as card:  # open files
        assert model.data == (models_dir / "tiny.h5").read_bytes()
        assert card.data == (models_dir / "tiny.json").read_bytes()
    assert client_without_downloads.get("/api/models/tiny").get_json()["downloads"] is None


def test_the_model_that_answers_a_request_naming_none_is_marked_default(client, models_dir, make_image):
    def defaults():
        return {entry["name"]: entry["default"] for entry in client.get("/api/models").get_json()["models"]}

    answered = post_api(client, make_image()).get_json()["model"]
    assert answered == "tiny" and defaults() == {"tiny": True, "small": False}
    damage(models_dir, "tiny")  # while it cannot be used, the most accurate usable model answers
    assert post_api(client, make_image()).get_json()["model"] == "small" and defaults() == {"tiny": False, "small": True}
    assert client.get("/api/models/small").get_json()["default"] is True


def test_one_model_in_full(client):
    body = client.get("/api/models/small").get_json()
    assert body["card"]["history"]["loss"]
    assert len(body["card"]["evaluation"]["confusion_matrix"]) == 4
    assert client.get("/api/models/nope").get_json() == {"error": "Unknown model 'nope'."}
    misspelt = client.get("/api/models/tiny.h5")
    assert misspelt.status_code == 404 and misspelt.get_json()["error"] == "Unknown model 'tiny.h5' (did you mean tiny?)."


def test_health(client, models_dir):
    assert client.get("/healthz").get_json() == {"status": "ok", "models": 2}
    assert client.get("/healthz").get_data(as_text=True).startswith('{"status":')  # as README shows it
    (models_dir / "small.json").unlink()
    assert client.get("/healthz").get_json() == {"status": "ok", "models": 1}
    damage(models_dir, "tiny")
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json() == {"status": "no usable model", "models": 0}
