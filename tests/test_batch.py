"""webapp.batch: several pictures answered by one model, each in its place."""

import numpy as np
import pytest

from conftest import dark_top_left, encode_image, nan_when_covered_model, overflow_model, red_top_left, save_as
from trainer import images
from trainer.images import decode, shrunk
from webapp import batch, predictor
from webapp.batch import Labelled, classify_many, failed_status, tally
from webapp.predictor import PredictionError, Upload, classify


def labelled(name: str, label: str | None, status: int = 200) -> Labelled:
    """A picture answered `label`, or (None) not answered, with `status`."""
    if label is None:
        return Labelled(name, error="broken", status=status)
    return Labelled(name, [(label, 0.9)])


def test_each_picture_gets_the_answer_it_would_get_alone_in_the_order_sent(app):
    pictures = [(f"{n}.png", encode_image("PNG", size=(20 + n, 30), seed=n)) for n in range(4)]
    pictures.append(("photo.jpg", encode_image("JPEG", size=(300, 200), seed=9)))
    with app.app_context():
        batch = classify_many(pictures, "small", top_k=2)
        alone = [classify(Upload(data), "small", top_k=2) for _, data in pictures]
    assert batch.model == "small" and batch.elapsed_ms > 0
    assert [each.name for each in batch.labelled] == [name for name, _ in pictures]
    for each, result in zip(batch.labelled, alone):  # one batch gives what one picture at a time does
        assert [label for label, _ in each.predictions] == [label for label, _ in result.predictions]
        assert [p for _, p in each.predictions] == pytest.approx([p for _, p in result.predictions], abs=1e-6)
    assert all(each.error is None for each in batch.labelled)


def test_a_picture_that_cannot_be_answered_says_why_in_its_place_and_the_others_are_answered(app):
    good = encode_image("PNG")
    pictures = [("a.png", good), ("empty.png", b""), ("notes.txt", b"just text"),
                ("cut.png", encode_image("PNG", size=(64, 64))[:200]), ("b.png", good)]
    with app.app_context():
        answers = classify_many(pictures, "tiny", top_k=3).labelled
    assert [(each.error, each.status) for each in answers] == [
        (None, 200),
        ("The file is empty.", 400),
        ("Unsupported file type: send a JPEG, PNG, GIF, BMP or WebP image.", 415),
        ("The PNG file is damaged or incomplete.", 400),
        (None, 200),
    ]
    assert answers[0].predictions == answers[4].predictions and len(answers[0].predictions) == 3


def test_no_model_is_loaded_for_too_many_pictures(app, monkeypatch):
    monkeypatch.setattr(batch, "chosen_model", lambda name: pytest.fail("a model was loaded"))
    pictures = [("a.png", b"")] * (batch.MAX_PICTURES + 1)
    with app.app_context(), pytest.raises(PredictionError) as refused:
        classify_many(pictures, "tiny", top_k=1)
    assert refused.value.status == 400
    assert refused.value.message == f"Send at most {batch.MAX_PICTURES} images at a time; this upload has 31."


def test_no_model_is_loaded_when_no_picture_is_one_a_model_could_read(app, monkeypatch):
    monkeypatch.setattr(batch, "chosen_model", lambda name: pytest.fail("a model was loaded"))
    with app.app_context():
        refused = classify_many([("notes.txt", b"just text"), ("empty.png", b"")], "nope", top_k=1)
    assert refused.model is None
    assert [(each.error, each.status) for each in refused.labelled] == [
        ("Unsupported file type: send a JPEG, PNG, GIF, BMP or WebP image.", 415), ("The file is empty.", 400)]


@pytest.mark.parametrize(("model", "status", "message"), [
    ("nope", 404, "Unknown model 'nope'."),
    ("broken", 503, "Model 'broken' cannot be used"),
])
def test_a_model_that_cannot_be_used_refuses_the_whole_upload(app, models_dir, model, status, message):
    (models_dir / "broken.h5").write_bytes(b"not hdf5")
    (models_dir / "broken.json").write_text((models_dir / "tiny.json").read_text())
    with app.app_context(), pytest.raises(PredictionError) as refused:
        classify_many([("a.png", encode_image())], model, top_k=1)
    assert refused.value.status == status and refused.value.message.startswith(message)


BUDGET_MESSAGE = ("Not classified: with the images before it, this upload would come to over 0 megapixels, the most "
                  "one may hold; send it again with fewer.")


def test_a_picture_that_would_pass_the_pixel_budget_is_not_decoded(app, monkeypatch):
    # Two 20x20 PNGs fit in 1,000 pixels, a third would not; a 10x10 one after it still fits.
    monkeypatch.setattr(batch, "MAX_BATCH_PIXELS", 1_000)
    monkeypatch.setattr(batch.Upload, "pixels", counted(batch.Upload.pixels, decoded := []))
    pictures = [(f"{n}.png", encode_image("PNG", size=(20, 20), seed=n)) for n in range(3)]
    pictures.append(("small.png", encode_image("PNG", size=(10, 10))))
    with app.app_context():
        answers = classify_many(pictures, "tiny", top_k=1).labelled
    assert [each.predictions is not None for each in answers] == [True, True, False, True]
    assert (answers[2].status, answers[2].error) == (400, BUDGET_MESSAGE)
    assert len(decoded) == 3


def test_a_damaged_picture_is_charged_the_pixels_its_header_gives(app, monkeypatch):
    # Decoding a cut 30x30 PNG fails only at its end, after the work, so it counts its 900 pixels.
    monkeypatch.setattr(batch, "MAX_BATCH_PIXELS", 1_000)
    pictures = [("cut.png", encode_image("PNG", size=(30, 30))[:300]), ("a.png", encode_image("PNG", size=(20, 20)))]
    with app.app_context():
        answers = classify_many(pictures, "tiny", top_k=1).labelled
    assert answers[0].error == "The PNG file is damaged or incomplete." and answers[1].error == BUDGET_MESSAGE


def test_a_baseline_jpeg_counts_the_pixels_it_is_decoded_at_a_progressive_one_all_of_them(app, monkeypatch):
    # A 1600x1600 JPEG bound for 16 px decodes at 1/8 scale, 200x200 pixels; a progressive one
    # decodes all its 2,560,000 first, so a second of those passes 3 million.
    monkeypatch.setattr(batch, "MAX_BATCH_PIXELS", 3_000_000)
    baseline = encode_image("JPEG", size=(1600, 1600))
    progressive = encode_image("JPEG", size=(1600, 1600), progressive=True)
    pictures = [("p1.jpg", progressive), ("p2.jpg", progressive)] + [("b.jpg", baseline)] * 10
    with app.app_context():
        answers = classify_many(pictures, "tiny", top_k=1).labelled
    assert [each.predictions is not None for each in answers] == [True, False] + [True] * 10


def test_thumbnails_come_from_the_models_decoding_where_it_serves_and_another_one_is_charged(app, monkeypatch):
    # For the 16 px model and 160 px thumbnails a PNG decodes alike, and so does a 1600x1600 JPEG
    # (at 1/8 scale, 200x200); a 400x300 JPEG decodes at 50x38 for the model, whole for its thumbnail.
    monkeypatch.setattr(predictor, "decode", counted(predictor.decode, decoded := []))
    pictures = [("a.png", encode_image("PNG", size=(300, 200))), ("big.jpg", encode_image("JPEG", size=(1600, 1600))),
                ("small.jpg", encode_image("JPEG", size=(400, 300)))]
    with app.app_context():
        answers = classify_many(pictures, "tiny", top_k=1, thumbnail_side=160).labelled
    assert [len([call for call in decoded if call[0] == data]) for _, data in pictures] == [1, 1, 2]
    for (_, data), each in zip(pictures, answers):  # what the page showed when it decoded each file again
        assert np.array_equal(each.thumbnail, shrunk(decode(data, 160), 160))
    with app.app_context():
        plain = classify_many(pictures[:1], "tiny", top_k=1).labelled[0]
    assert plain.thumbnail is None and plain.predictions == answers[0].predictions

    # The small JPEG's own decodings come to 1,900 + 120,000 pixels: over a budget of 100,000.
    monkeypatch.setattr(batch, "MAX_BATCH_PIXELS", 100_000)
    with app.app_context():
        alone = classify_many(pictures[2:], "tiny", top_k=1).labelled[0]
        with_thumbnail = classify_many(pictures[2:], "tiny", top_k=1, thumbnail_side=160).labelled[0]
    assert alone.predictions and (with_thumbnail.status, with_thumbnail.error) == (400, BUDGET_MESSAGE)


def test_a_jpegs_scans_are_counted_once_for_its_charge_and_its_decodings(app, monkeypatch):
    # Counting reads the whole file (9 ms for 10 MB); this one is charged, then decoded twice:
    # at 50x38 for the model and whole for its thumbnail.
    counting = counted(images.jpeg_scans, calls := [])
    monkeypatch.setattr(images, "jpeg_scans", counting)
    monkeypatch.setattr(predictor, "jpeg_scans", counting)
    with app.app_context():
        answer, = classify_many([("small.jpg", encode_image("JPEG", size=(400, 300)))], "tiny", top_k=1,
                                thumbnail_side=160).labelled
    assert answer.predictions and answer.thumbnail.shape == (120, 160, 3) and len(calls) == 1


def test_pictures_go_to_the_model_a_chunk_at_a_time(app, monkeypatch):
    monkeypatch.setattr(batch, "CHUNK", 2)
    monkeypatch.setattr(batch, "probabilities_for", counted(batch.probabilities_for, batches := []))
    pictures = [(f"{n}.png", encode_image("PNG", seed=n)) for n in range(5)]
    with app.app_context():
        answers = classify_many(pictures, "tiny", top_k=1).labelled
        alone = [classify(Upload(data), "tiny", top_k=1).predictions for _, data in pictures]
    assert [len(images) for _, images in batches] == [2, 2, 1]
    assert [each.predictions[0][0] for each in answers] == [predictions[0][0] for predictions in alone]


def counted(function, calls: list):
    """`function`, noting the arguments of each call in `calls`."""
    def noting(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)
    return noting


def test_a_model_that_gives_nan_says_so_for_each_picture(app, models_dir):
    save_as(models_dir, overflow_model(), "overflowing")
    with app.app_context():
        answers = classify_many([("a.png", encode_image()), ("b.png", encode_image(seed=1))], "overflowing", 1).labelled
    assert all(each.status == 503 and "gave NaN or infinite outputs" in each.error for each in answers)
    assert failed_status(answers) == 503


def test_where_the_batch_gives_nan_each_picture_is_answered_alone(app, models_dir):
    # Black in the corner gives probabilities, any colour NaN: only the second picture fails.
    save_as(models_dir, nan_when_covered_model(), "corner")
    with app.app_context():
        answers = classify_many([("dark.png", dark_top_left()), ("red.png", red_top_left()),
                                 ("dark_too.png", dark_top_left())], "corner", 1).labelled
        alone = classify(Upload(dark_top_left()), "corner", 1).predictions
    assert [each.predictions for each in answers] == [alone, None, alone]
    assert answers[1].status == 503 and answers[1].error.startswith("Model 'corner' gave NaN or infinite outputs")


def test_an_upload_of_refused_pictures_is_a_client_error():
    assert failed_status([labelled("a", None, 415), labelled("b", None, 400)]) == 400


@pytest.mark.parametrize(("labels", "sentence"), [
    (["cat", "dog", "cat", "ship", "cat", "dog"], "6 images: 3 cat, 2 dog and 1 ship"),
    (["dog", "cat"], "2 images: 1 dog and 1 cat"),  # a tie: in the order sent
    (["cat", None, "cat"], "3 images: 2 cat and 1 unanswered"),
    ([None, None], "2 images: 2 unanswered"),
])
def test_the_summary_counts_the_answers_most_frequent_first(labels, sentence):
    assert tally([labelled(f"{n}.png", label) for n, label in enumerate(labels)]) == sentence
