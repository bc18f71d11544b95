import json
import re

import keras
import numpy as np
import pytest

from conftest import TINY, reload_in_fresh_process, run, save_lambda_model
from trainer.data import digest, load_folder, stratified_split
from trainer.distillation import Distiller, load_teacher
from trainer.models import WeightsError

CLASSES = ["blue", "green", "red"]  # the image folder's classes, in load order


def split_of(folder, seed: int = TINY["seed"]):
    """The folder split as TINY with `seed` splits it: (training images, held-out images)."""
    data = load_folder(folder, 16)
    train, held_out = stratified_split(data.labels, TINY["validation_fraction"], seed)
    return data.subset(train), data.subset(held_out)


@pytest.fixture
def split(image_folder):
    return split_of(image_folder)


def constant_model(probabilities, shape=(16, 16, 3)):
    """A model that answers `probabilities` for every image."""
    inputs = keras.Input(shape)
    zeros = keras.layers.Dense(len(probabilities), kernel_initializer="zeros", use_bias=False)(
        keras.layers.GlobalAveragePooling2D()(inputs))
    return keras.Model(inputs, keras.layers.Dense(
        len(probabilities), kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(probabilities))(zeros))


def test_the_student_learns_from_a_blend_of_labels_and_teacher_and_is_scored_on_labels():
    student, teacher = constant_model([0.5, 0.3, 0.2]), constant_model([0.0, 0.0, 1.0])
    distiller = Distiller(student, teacher, teacher_weight=0.25)
    distiller.compile(loss=keras.losses.CategoricalCrossentropy())
    x, y = np.zeros((2, 16, 16, 3), "float32"), np.array([[1.0, 0, 0], [0, 1.0, 0]], "float32")
    y_pred = distiller(x)
    blended = np.array([[0.75, 0, 0.25], [0, 0.75, 0.25]])
    expected = -(blended * np.log([0.5, 0.3, 0.2])).sum(axis=1).mean()
    assert float(distiller.compute_loss(x, y, y_pred, training=True)) == pytest.approx(expected, rel=1e-5)
    labels_only = -np.log([0.5, 0.3]).mean()
    assert float(distiller.compute_loss(x, y, y_pred, training=False)) == pytest.approx(labels_only, rel=1e-5)
    assert not teacher.trainable and distiller.trainable_weights == student.trainable_weights


def test_the_teacher_answers_as_in_inference_without_its_dropout():
    # A transfer model's head has dropout: trained with it on, its targets would be noise.
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Dropout(0.5)(keras.layers.GlobalAveragePooling2D()(inputs))
    head = keras.layers.Dense(3, activation="softmax", kernel_initializer=keras.initializers.Constant(4 * np.eye(3)))
    teacher = keras.Model(inputs, head(features))
    distiller = Distiller(constant_model([0.5, 0.3, 0.2]), teacher, teacher_weight=1.0)
    distiller.compile(loss=keras.losses.CategoricalCrossentropy())
    x = np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 3)).astype("float32") * [1, 2, 3]
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2, 0, 1]]
    expected = -(keras.ops.convert_to_numpy(teacher(x, training=False)) * np.log([0.5, 0.3, 0.2])).sum(axis=1).mean()
    losses = [float(distiller.compute_loss(x, y, distiller(x), training=True)) for _ in range(3)]
    assert losses == pytest.approx([expected] * 3, rel=1e-5)


def test_label_smoothing_softens_the_labels_not_the_teachers_predictions():
    student, teacher = constant_model([0.5, 0.3, 0.2]), constant_model([0.1, 0.1, 0.8])
    distiller = Distiller(student, teacher, teacher_weight=0.25)
    distiller.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.3))
    x, y = np.zeros((1, 16, 16, 3), "float32"), np.array([[1.0, 0, 0]], "float32")
    smoothed_labels = np.array([0.8, 0.1, 0.1])  # 0.7 of the label, 0.3 spread over the 3 classes
    target = 0.75 * smoothed_labels + 0.25 * np.array([0.1, 0.1, 0.8])
    expected = -(target * np.log([0.5, 0.3, 0.2])).sum()
    assert float(distiller.compute_loss(x, y, distiller(x), training=True)) == pytest.approx(expected, rel=1e-5)


def test_a_distilled_run_trains_and_saves_the_student_alone(image_folder, tmp_path):
    teacher_path = tmp_path / "teacher.h5"
    constant_model([0.1, 0.1, 0.8]).save(teacher_path)
    plain = run(TINY, image_folder, tmp_path / "plain")
    card = run(TINY | {"teacher": str(teacher_path), "teacher_weight": 0.5}, image_folder, tmp_path)
    assert card["parameters"] == plain["parameters"] and card["epochs_run"] == 3
    assert card["hyperparameters"]["teacher"] == "teacher.h5"  # no folder: cards are shown to anyone
    assert card["history"]["loss"] != plain["history"]["loss"]  # the teacher changed the targets
    saved = keras.saving.load_model(tmp_path / "models" / "tiny.h5")
    assert all("distiller" not in layer.name for layer in saved.layers)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype("float32")
    assert reload_in_fresh_process(tmp_path / "models" / "tiny.h5", pixels).shape == (2, 3)


@pytest.mark.parametrize("problem, message", [
    ("missing", "Cannot use the teacher"),
    ("damaged", "Cannot use the teacher"),
    # Not "training diverged": the teacher is what is broken.
    ("not a number", "(teacher.h5 holds NaN or infinite weights (in "),
    ("other size", "takes (8, 8, 3) images into 3 classes; this run needs (16, 16, 3) into 3"),
    ("other classes", "knows the classes ['red', 'green', 'blue']"),
    ("Lambda", "(it holds a Lambda layer, Python code that Keras does not run from a file: build the model"),
])
def test_an_unusable_teacher_is_one_clear_sentence(tmp_path, split, problem, message):
    path = tmp_path / "teacher.h5"
    if problem == "damaged":
        path.write_bytes(b"\x89HDF not a model")
    elif problem == "not a number":
        constant_model([0.2, 0.3, float("nan")]).save(path)
    elif problem == "other size":
        constant_model([0.2, 0.3, 0.5], shape=(8, 8, 3)).save(path)
    elif problem == "other classes":
        constant_model([0.2, 0.3, 0.5]).save(path)
        path.with_suffix(".json").write_text(json.dumps({"classes": ["red", "green", "blue"], "input_shape": [16, 16, 3]}))
    elif problem == "Lambda":
        save_lambda_model(path)
    with pytest.raises(WeightsError, match=re.escape(message)):
        load_teacher(str(path), *split)


def test_a_teacher_whose_card_matches_is_accepted_with_a_word_on_what_it_cannot_check(tmp_path, split, capsys):
    """A card from before cards recorded a run's images (nor its data's digest): nothing can be checked."""
    path = tmp_path / "teacher.h5"
    constant_model([0.2, 0.3, 0.5]).save(path)
    path.with_suffix(".json").write_text(json.dumps({"classes": CLASSES, "input_shape": [16, 16, 3]}))
    assert load_teacher(str(path), *split).output_shape == (None, 3)
    assert capsys.readouterr().err.startswith(f"warning: nothing says which images the teacher {path} trained on "
                                              "(its card does not record them), so nothing checks that "
                                              "it left out the ones this run holds out")


def test_a_teacher_whose_card_has_no_sketch_is_checked_by_its_digests(tmp_path, split):
    """A card from before sketches: trained on this very data, it must have held out the same images."""
    train_set, held_out = split
    path = tmp_path / "teacher.h5"
    constant_model([0.2, 0.3, 0.5]).save(path)
    card = {"classes": CLASSES, "input_shape": [16, 16, 3],
            "data_digest": digest(np.concatenate([train_set.files, held_out.files])),
            "held_out_digest": digest(held_out.files[1:])}
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="was trained on this data with other images held out"):
        load_teacher(str(path), *split)
    path.with_suffix(".json").write_text(json.dumps(card | {"held_out_digest": digest(held_out.files)}))
    assert load_teacher(str(path), *split).output_shape == (None, 3)


def test_a_teacher_that_trained_on_the_students_held_out_images_is_refused(image_folder, tmp_path):
    teacher = run(TINY | {"epochs": 1, "seed": 1}, image_folder, tmp_path / "teacher")  # seed 1: another split
    teacher_path = str(tmp_path / "teacher" / "models" / "tiny.h5")
    with pytest.raises(WeightsError, match=re.escape(f"The teacher {teacher_path} was trained on 5 of the 6 images "
                                                     "this run holds out (the same pixels)")):
        run(TINY | {"teacher": teacher_path}, image_folder, tmp_path)
    assert not (tmp_path / "runs" / "tiny").exists()
    # Nor may it teach from a copy of that data with an image less, which splits it otherwise: the same
    # --seed does not help there.
    picture = (image_folder / "red" / "9.png").read_bytes()
    (image_folder / "red" / "9.png").unlink()
    with pytest.raises(WeightsError, match="images this run holds out .*; train the teacher on this same data with "
                                           "this run's --seed and --validation-fraction, or on data without them"):
        run(TINY | {"teacher": teacher_path, "seed": 1}, image_folder, tmp_path)

    # The same split as the teacher's is accepted, as is a teacher trained on other images (a run
    # that takes a teacher: test_a_teacher_of_the_same_split_is_taken_when_the_data_holds_copies_of_pictures).
    (image_folder / "red" / "9.png").write_bytes(picture)
    assert load_teacher(teacher_path, *split_of(image_folder, seed=1)).output_shape == (None, 3)
    card_path = tmp_path / "teacher" / "models" / "tiny.json"
    card_path.write_text(json.dumps(teacher | {"training_pixels_sketch": "0123456789abcdef", "file_sha256": "0" * 64,
                                               "file_size_bytes": 1}))
    # Its card must be its own, as the check of its training images goes by the card.
    with pytest.raises(WeightsError, match="tiny.json was written for another tiny.h5"):
        run(TINY | {"teacher": teacher_path, "epochs": 1}, image_folder, tmp_path / "other")
    card_path.write_text(json.dumps(teacher | {"training_pixels_sketch": "0123456789abcdef", "data_digest": "0" * 16}))
    assert load_teacher(teacher_path, *split_of(image_folder)).output_shape == (None, 3)


def test_a_teacher_of_the_same_split_is_taken_when_the_data_holds_copies_of_pictures(image_folder, tmp_path):
    # Copies on both sides of the split: the teacher trained on those the student trains on too.
    for path in list(image_folder.rglob("*.png")):
        (path.parent / f"{path.stem} (1).png").write_bytes(path.read_bytes())
    teacher = run(TINY | {"epochs": 1}, image_folder, tmp_path / "teacher")
    assert teacher["held_out_in_training"] > 0
    teacher_path = str(tmp_path / "teacher" / "models" / "tiny.h5")
    assert run(TINY | {"teacher": teacher_path, "epochs": 1}, image_folder, tmp_path)["epochs_run"] == 1
    # Without the copies, another split holds out pictures the teacher trained on and the student does not.
    for path in image_folder.rglob("* (1).png"):
        path.unlink()
    with pytest.raises(WeightsError, match="was trained on .* images this run holds out"):
        run(TINY | {"teacher": teacher_path, "seed": 1}, image_folder, tmp_path / "other")


def test_a_teacher_without_a_card_is_taken_on_its_shapes(tmp_path, split, capsys):
    """A model file without its card (one made elsewhere): nothing says what it trained on."""
    path = tmp_path / "teacher.h5"
    constant_model([0.2, 0.3, 0.5]).save(path)
    assert load_teacher(str(path), *split).output_shape == (None, 3)
    assert "(it has no card), so nothing checks" in capsys.readouterr().err
