"""webapp.comparison: every model's answer to one picture, and whether they agree."""

import pytest

from conftest import damage, overflow_model, red_top_left, save_as, top_left_model
from webapp.comparison import Answer, agreement, compare
from webapp.predictor import BadImage, PredictionError, Result, classify


def answer(model: str, label: str | None) -> Answer:
    """A model's part: its best class `label`, or (None) a failure."""
    if label is None:
        return Answer(model, None, error=f"Model '{model}' cannot be used: broken.")
    return Answer(model, 0.9, result=Result(model, [(label, 0.8), ("other", 0.1)], 2.0, 10))


@pytest.mark.parametrize(("labels", "sentence"), [
    (["cat", "dog", "cat"], "The 3 models disagree: 2 say cat, 1 says dog."),
    (["dog", "cat", "cat", "ship"], "The 4 models disagree: 2 say cat, 1 says dog, 1 says ship."),
    (["dog", "cat"], "The 2 models disagree: 1 says dog, 1 says cat."),  # a tie: the better model's first
    (["cat", "cat"], "The 2 models agree: each says cat."),
    (["cat", None, "cat"], "The 2 models that answered agree: each says cat."),
    (["cat", None, "dog"], "The 2 models that answered disagree: 1 says cat, 1 says dog."),
    ([None, "cat", None], "Only m1 answered: it says cat."),
    (["cat"], "Only m0 answered: it says cat."),
    ([None, None], "No model could answer."),
])
def test_the_sentence_says_whether_the_models_agree(labels, sentence):
    assert agreement([answer(f"m{n}", label) for n, label in enumerate(labels)]) == sentence


def test_every_model_answers_best_first_each_at_its_own_size(app, make_image):
    image = make_image("JPEG", size=(37, 23))
    with app.app_context():
        answers = compare(image, 3)
        # small (24 px, 4 classes) scored higher on its held-out images than tiny (16 px, 3 classes).
        assert [a.model for a in answers] == ["small", "tiny"]
        assert [a.accuracy for a in answers] == [pytest.approx(0.2667, abs=1e-4), 0.25]
        for part in answers:  # the answers one model gives alone
            alone = classify(image, part.model, 3)
            assert part.error is None and part.result.predictions == alone.predictions
            assert part.result.elapsed_ms > 0
        assert {label for label, _ in answers[0].result.predictions} <= {"apple", "pear", "plum", "fig"}


def test_a_model_that_cannot_answer_gives_its_reason_and_the_others_still_answer(app, models_dir):
    save_as(models_dir, top_left_model(), "corner")
    save_as(models_dir, top_left_model(red="dog"), "corner_dog")
    save_as(models_dir, overflow_model(), "overflow")  # NaN for this picture
    damage(models_dir, "broken")  # unusable at all
    with app.app_context():
        answers = {a.model: a for a in compare(red_top_left(), 3)}
    assert answers["corner"].result.predictions[0][0] == "cat"
    assert answers["corner_dog"].result.predictions[0][0] == "dog"
    assert answers["tiny"].result and answers["small"].result
    assert answers["overflow"].result is None and answers["overflow"].error == (
        "Model 'overflow' gave NaN or infinite outputs (damaged weights, or a training run that diverged): "
        "replace or retrain it.")
    assert answers["broken"].result is None and answers["broken"].error == (
        "Model 'broken' cannot be used: broken.h5 is not an HDF5 model file; copy it again, or train it again")


def test_models_that_give_one_class_agree(app, models_dir):
    save_as(models_dir, top_left_model(), "corner")
    save_as(models_dir, top_left_model(), "corner_copy")
    for name in ("tiny", "small"):
        (models_dir / f"{name}.h5").unlink()
    with app.app_context():
        assert agreement(compare(red_top_left(), 3)) == "The 2 models agree: each says cat."


@pytest.mark.parametrize(("image", "status"), [(b"", 400), (b"%PDF-1.4", 415), (b"\x89PNG\r\n\x1a\nbroken", 400)])
def test_an_image_no_model_can_read_is_refused_once(app, models_dir, image, status):
    damage(models_dir, "broken")
    # Ranked first (small's figures, and first by name): its failure must not hide the image's.
    (models_dir / "broken.json").write_text((models_dir / "small.json").read_text())
    with app.app_context(), pytest.raises(BadImage) as refused:
        compare(image, 3)
    assert refused.value.status == status


def test_no_models_at_all(app, models_dir, make_image):
    for path in models_dir.iterdir():
        path.unlink()
    with app.app_context(), pytest.raises(PredictionError, match="No model is available.") as refused:
        compare(make_image(), 3)
    assert refused.value.status == 503
