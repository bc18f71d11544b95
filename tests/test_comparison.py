"""webapp.comparison: every model's answer to one picture, and whether they agree."""

import pytest

from conftest import (TINY_CLASSES, calls, damage, overflow_model, red_top_left, save_as, save_model_without_softmax,
                      top_left_model, update_card)
from webapp.comparison import Answer, agreement, compare
from webapp.dashboard import table_rows
from webapp.predictor import BadImage, PredictionError, Result, Upload, classify
from webapp.registry import Registry

FRUIT = ["apple", "pear", "plum"]


def answer(model: str, label: str | None, classes: list[str] = TINY_CLASSES) -> Answer:
    """A model's part: its best class `label`, or (None) a failure."""
    if label is None:
        return Answer(model, "synthetic", frozenset(classes), None, error=f"Model '{model}' cannot be used: broken.")
    return Answer(model, "synthetic", frozenset(classes), 0.9,
                  result=Result(model, [(label, 0.8), ("other", 0.1)], 2.0, len(classes)))


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


@pytest.mark.parametrize(("parts", "sentence"), [
    # A fruit model cannot say cat: it does not disagree, it knows other classes.
    ([("cat", TINY_CLASSES), ("apple", FRUIT)], "The 2 models know different classes: 1 says cat, 1 says apple."),
    ([("cat", TINY_CLASSES), ("dog", TINY_CLASSES), ("apple", FRUIT)],
     "The 3 models know different classes: 1 says cat, 1 says dog, 1 says apple."),
    ([("cat", TINY_CLASSES), ("cat", TINY_CLASSES + ["apple"])], "The 2 models agree: each says cat."),
    ([("cat", TINY_CLASSES), ("dog", TINY_CLASSES[::-1])], "The 2 models disagree: 1 says cat, 1 says dog."),
    # Only the classes of those that answered count.
    ([("cat", TINY_CLASSES), (None, FRUIT), ("dog", TINY_CLASSES)],
     "The 2 models that answered disagree: 1 says cat, 1 says dog."),
])
def test_the_sentence_says_so_where_the_models_know_different_classes(parts, sentence):
    assert agreement([answer(f"m{n}", label, classes) for n, (label, classes) in enumerate(parts)]) == sentence


def test_a_class_spelled_as_macos_names_folders_is_the_same_class():
    """A card whose "café" is "e" and an accent (NFD: an import's --classes pasted from macOS's
    Finder, a model trained on a macOS zip before names were read as NFC) said "2 say café, 1 says café"."""
    typed, macos = ["café", "dog"], ["cafe\u0301", "dog"]
    assert agreement([answer("m0", "café", typed), answer("m1", "cafe\u0301", macos)]) == (
        "The 2 models agree: each says café.")
    assert agreement([answer("m0", "café", typed), answer("m1", "dog", macos)]) == (
        "The 2 models disagree: 1 says café, 1 says dog.")


def test_every_model_answers_best_first_each_at_its_own_size(app, make_image):
    image = make_image("JPEG", size=(37, 23))
    with app.app_context():
        answers = compare(Upload(image), 3)
        # small (24 px, 4 classes) scored higher on its held-out images than tiny (16 px, 3 classes).
        assert [a.model for a in answers] == ["small", "tiny"]
        assert [a.accuracy for a in answers] == [pytest.approx(0.2667, abs=1e-4), 0.25]
        for part in answers:  # the answers one model gives alone
            alone = classify(Upload(image), part.model, 3)
            assert part.error is None and part.result.predictions == alone.predictions
            assert part.result.elapsed_ms > 0
        assert {label for label, _ in answers[0].result.predictions} <= {"apple", "pear", "plum", "fig"}


def test_a_model_that_cannot_answer_gives_its_reason_and_the_others_still_answer(app, models_dir):
    save_as(models_dir, top_left_model(), "corner")
    save_as(models_dir, top_left_model(red="dog"), "corner_dog")
    save_as(models_dir, overflow_model(), "overflow")  # NaN for this picture
    save_model_without_softmax(models_dir / "no_softmax.h5")  # passes the file checks, fails when loaded
    (models_dir / "no_softmax.json").write_text((models_dir / "tiny.json").read_text())
    with app.app_context():
        answers = {a.model: a for a in compare(Upload(red_top_left()), 3)}
    assert answers["corner"].result.predictions[0][0] == "cat"
    assert answers["corner_dog"].result.predictions[0][0] == "dog"
    assert answers["tiny"].result and answers["small"].result
    assert answers["overflow"].result is None and answers["overflow"].error == (
        "Model 'overflow' gave NaN or infinite outputs (damaged weights, or a training run that diverged): "
        "replace or retrain it.")
    assert answers["no_softmax"].result is None and answers["no_softmax"].error == (
        "Model 'no_softmax' cannot be used: it gives outputs that are not probabilities (its last layer needs a "
        "softmax)")


def test_only_the_models_the_registry_lists_as_usable_are_asked(app, models_dir, make_image):
    # As many as the model selector counts: a damaged file is listed as unusable before any comparison.
    damage(models_dir, "broken")
    with app.app_context():
        assert [a.model for a in compare(Upload(make_image()), 3)] == ["small", "tiny"]
        save_model_without_softmax(models_dir / "tiny.h5")
        assert [a.model for a in compare(Upload(make_image()), 3)] == ["small", "tiny"]  # found unusable when loaded
        assert [a.model for a in compare(Upload(make_image()), 3)] == ["small"]  # now listed as such


def test_models_are_ranked_within_their_data_set_as_on_the_dashboard(app, models_dir, make_image):
    save_as(models_dir, top_left_model(), "corner")
    update_card(models_dir, "corner", {"accuracy": 0.9})
    update_card(models_dir, "small", dataset="apples")  # 26.7%: between the others, on other images
    with app.app_context():
        answers = compare(Upload(make_image()), 3)
        # The data sets by name, as the dashboard's tables; the best first within each.
        assert [a.model for a in answers] == [row["name"] for row in table_rows()] == ["small", "corner", "tiny"]
    assert [a.data_set for a in answers] == ["apples", "synthetic", "synthetic"]
    assert [a.classes for a in answers] == [{"apple", "pear", "plum", "fig"}] + [set(TINY_CLASSES)] * 2
    assert [a.accuracy for a in answers] == [pytest.approx(0.2667, abs=1e-4), 0.9, 0.25]
    assert [a.test_accuracy for a in answers] == [None] * 3


def test_models_all_scored_on_one_test_set_are_ranked_by_it(app, models_dir, make_image):
    save_as(models_dir, top_left_model(), "corner")
    update_card(models_dir, "corner", {"accuracy": 0.9}, test_evaluation={"accuracy": 0.5}, test_digest="0123")
    update_card(models_dir, "tiny", test_evaluation={"accuracy": 0.7}, test_digest="0123")
    update_card(models_dir, "small", dataset="apples")
    with app.app_context():
        answers = compare(Upload(make_image()), 3)
    assert [(a.model, a.test_accuracy) for a in answers] == [("small", None), ("tiny", 0.7), ("corner", 0.5)]


@pytest.mark.parametrize(("fmt", "side", "decodings"), [("JPEG", 150, 2), ("JPEG", 400, 1), ("PNG", 150, 1)])
def test_a_comparison_decodes_the_upload_once_a_scale_and_lists_the_models_once(app, models_dir, make_image,
                                                                                monkeypatch, fmt, side, decodings):
    from webapp import predictor

    save_as(models_dir, top_left_model(), "corner")
    # A 150 px JPEG decodes at 1/4 scale for 24 px, at 1/8 for 16 px: one decoding for both would
    # give tiny and corner other pixels than they get alone. A 400 px one decodes at 1/8 for
    # both, and a PNG alike for any size.
    image = make_image(fmt, size=(side, side))
    with app.app_context():
        compare(Upload(image), 3)  # loads each model (each new file is listed again then, under the lock)
        decoded, listed = calls(monkeypatch, predictor, "decode"), calls(monkeypatch, Registry, "_files")
        answers = compare(Upload(image), 3)
        assert len(decoded) == decodings and len(listed) == 1
        # Each as the model alone answers, at its own size: 24 px for small, 16 for the others.
        for part in answers:
            assert part.result.predictions == classify(Upload(image), part.model, 3).predictions


def test_models_that_give_one_class_agree(app, models_dir):
    save_as(models_dir, top_left_model(), "corner")
    save_as(models_dir, top_left_model(), "corner_copy")
    for name in ("tiny", "small"):
        (models_dir / f"{name}.h5").unlink()
    with app.app_context():
        assert agreement(compare(Upload(red_top_left()), 3)) == "The 2 models agree: each says cat."


@pytest.mark.parametrize(("image", "status"), [(b"", 400), (b"%PDF-1.4", 415), (b"\x89PNG\r\n\x1a\nbroken", 400)])
def test_an_image_no_model_can_read_is_refused_once(app, models_dir, image, status):
    save_model_without_softmax(models_dir / "broken.h5")  # fails when loaded
    # Ranked first (small's figures, and first by name): its failure must not hide the image's.
    (models_dir / "broken.json").write_text((models_dir / "small.json").read_text())
    with app.app_context(), pytest.raises(BadImage) as refused:
        compare(Upload(image), 3)
    assert refused.value.status == status


def test_no_models_at_all(app, models_dir, make_image):
    for path in models_dir.iterdir():
        path.unlink()
    with app.app_context(), pytest.raises(PredictionError, match="No model is available.") as refused:
        compare(Upload(make_image()), 3)
    assert refused.value.status == 503
