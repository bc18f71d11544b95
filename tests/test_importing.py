"""`python -m trainer import`: notebook models made into ones the web app serves."""

import errno
import json

import keras
import numpy as np
import pytest

from conftest import DATASET_CLASSES, copy_models, refused, save_lambda_model, write_image_folder
from trainer import importing, model_file
from trainer.__main__ import main
from trainer.data import Dataset
from trainer.importing import ImportRefused, find_scaling, reloaded, scales_itself, scaling_layers, warn_of_doubts
from webapp.registry import Registry

CLASSES = ",".join(DATASET_CLASSES)


@pytest.fixture(autouse=True)
def in_a_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def unit_scaled_notebook(size: int = 16, classes: list[str] = DATASET_CLASSES) -> keras.Model:
    """A notebook's model of the fixture folder's classes, trained on pixels / 255: a class's
    colour averages about 0.7 there, the others about 0.23 (conftest.write_image_folder). It
    answers by a bump at 0.7, so that no other scaling does as well: raw pixels put the class's
    colour lowest, and -1 to 1 puts every colour below the bump."""
    inputs = keras.Input((size, size, 3))
    means = keras.layers.GlobalAveragePooling2D()(inputs)
    ramps = keras.layers.Dense(6, activation="relu")(means)  # relu(x - 0.6) and relu(x - 0.8) per colour
    outputs = keras.layers.Dense(3, activation="softmax")(ramps)  # 50 (relu(x - 0.6) - 2 relu(x - 0.8))
    model = keras.Model(inputs, outputs)
    model.layers[2].set_weights([np.hstack([np.eye(3), np.eye(3)]), np.array([-0.6] * 3 + [-0.8] * 3)])
    # Its outputs in the classes' name order, as Keras's image_dataset_from_directory gives them.
    colours = np.eye(3)[:, [classes.index(name) for name in sorted(classes)]].T
    model.layers[3].set_weights([50 * np.vstack([colours, -2 * colours]), np.zeros(3)])
    return model


def served(models, name: str, pixels: np.ndarray) -> np.ndarray:
    """The web app's answers by the imported model."""
    return Registry(models).load(name).predict(pixels.astype(np.uint8))


def pixels(size: int = 16, count: int = 3) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (count, size, size, 3)).astype(np.float32)


def test_a_notebook_model_is_imported_with_the_scaling_that_scores_best_and_its_scores(image_folder, tmp_path,
                                                                                       capsys):
    notebook = unit_scaled_notebook()
    notebook.save(tmp_path / "colours.h5")
    assert main(["import", "colours.h5", "--data", str(image_folder)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    table = {line.split()[0]: line.split()[1:3] for line in out.split("after each scaling")[1].splitlines()[2:7]}
    assert table["unit"][0] == "100.00%" and table["none"][0] == "0.00%"
    assert min(table, key=lambda kind: float(table[kind][1])) == "unit"
    assert "Found by scoring: unit, of the lowest loss. Pass --scaling if you know what the notebook did." in out
    assert "warning" not in captured.err
    assert "Saved models/colours.h5 (" in out and "parameters), with the scaling unit as its first layer" in out

    card = json.loads((tmp_path / "models" / "colours.json").read_text())
    assert card["classes"] == sorted(DATASET_CLASSES) and card["input_shape"] == [16, 16, 3]
    assert card["architecture"] == "imported" and card["weights"] == "imported from colours.h5"
    assert card["hyperparameters"] == {"imported_from": "colours.h5", "scaling": "unit",
                                       "scaling_found_by": "the lowest loss on data"}
    assert card["test_evaluation"]["accuracy"] == 1.0 and card["test_evaluation"]["per_class"]["red"]["support"] == 10
    assert card["test_digest"] and card["file_sha256"]
    assert card["summary"] == (
        "A Keras model imported from colours.h5; what it learned from, and how, is not known here. It takes an RGB "
        "picture of 16 x 16 pixels (values 0-255) and gives a probability for each of its 3 classes, in this order: "
        f"{', '.join(sorted(DATASET_CLASSES))}. On 30 test images, it was right 100.0% of the time (30 of 30).")
    picture = pixels()
    np.testing.assert_allclose(served(tmp_path / "models", "colours", picture), notebook.predict(picture / 255),
                               rtol=1e-5, atol=1e-6)


def test_animals10_classes_are_named_in_the_order_of_the_notebooks_italian_folders(tmp_path):
    # Sorted in English (cat, dog, spider), a notebook's outputs for cane, gatto, ragno were named wrongly
    # and scored as a third right.
    folders = ["gatto", "cane", "ragno"]  # red, green and blue pictures
    write_image_folder(tmp_path / "raw-img", classes=folders)
    unit_scaled_notebook(classes=folders).save(tmp_path / "animals.h5")
    assert main(["import", "animals.h5", "--data", "raw-img"]) == 0
    card = json.loads((tmp_path / "models" / "animals.json").read_text())
    assert card["classes"] == ["dog", "cat", "spider"] and card["test_evaluation"]["accuracy"] == 1.0


def tutorial_notebook(augmentation_first: bool) -> keras.Model:
    """The Keras transfer-learning tutorial's kind, which .h5 cannot hold: preprocess_input on
    a tensor, an augmentation block (RandomContrast does not read back from .h5), a base model
    inside, and logits."""
    base = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, strides=4)], name="base")
    augmentation = keras.Sequential([keras.layers.RandomFlip(), keras.layers.RandomContrast(0.2)])
    inputs = keras.Input((32, 32, 3))
    if augmentation_first:
        preprocessed = keras.applications.mobilenet_v2.preprocess_input(augmentation(inputs))
    else:
        preprocessed = augmentation(keras.applications.mobilenet_v2.preprocess_input(inputs))
    features = keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(base(preprocessed)))
    return keras.Model(inputs, keras.layers.Dense(3)(features))


@pytest.mark.parametrize("augmentation_first", [True, False])
def test_preprocessing_on_tensors_becomes_a_layer_and_augmentation_and_logits_are_seen_to(augmentation_first,
                                                                                          tmp_path, capsys):
    notebook = tutorial_notebook(augmentation_first)
    notebook.save(tmp_path / "mobilenet.keras")
    assert main(["import", "mobilenet.keras", "--classes", "cat, dog, ship"]) == 0
    assert "Its arithmetic on tensors is the scaling tf: pixels / 127.5 - 1" in capsys.readouterr().out
    model = keras.saving.load_model(tmp_path / "models" / "mobilenet.h5")  # plainly, as the guide promises
    assert not [layer for layer in model.layers[-2].layers if "Random" in type(layer).__name__]
    picture = pixels(32)
    logits = notebook.predict(picture)
    np.testing.assert_allclose(served(tmp_path / "models", "mobilenet", picture),
                               np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)
    card = json.loads((tmp_path / "models" / "mobilenet.json").read_text())
    assert card["classes"] == ["cat", "dog", "ship"] and card["test_evaluation"] is None
    assert refused(["import", "mobilenet.keras", "--classes", "a,b,c", "--scaling", "unit", "--name", "x"], capsys) == (
        "error: The model's own arithmetic on tensors is the scaling tf, not unit: leave --scaling out")


@pytest.mark.parametrize("kind, preprocess", [("tf", keras.applications.mobilenet_v2.preprocess_input),
                                              ("caffe", keras.applications.vgg16.preprocess_input),
                                              ("torch", keras.applications.densenet.preprocess_input)])
def test_each_scaling_is_what_keras_applications_preprocess_input_does(kind, preprocess):
    picture = pixels(4)
    np.testing.assert_allclose(scaling_layers(kind)[0](picture), preprocess(picture.copy()), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("activation, probability", [("sigmoid", lambda z: z),
                                                     (None, lambda z: (1 + np.tanh(z / 2)) / 2)])
def test_a_two_class_model_of_one_output_answers_with_two_probabilities(activation, probability, tmp_path):
    notebook = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                                 keras.layers.Dense(1, activation=activation)])
    notebook.save(tmp_path / "cats_dogs.h5")
    assert main(["import", "cats_dogs.h5", "--classes", "cat,dog", "--scaling", "caffe"]) == 0
    picture = pixels(8)
    dog = probability(notebook.predict(keras.applications.vgg16.preprocess_input(picture.copy()))[:, 0])
    np.testing.assert_allclose(served(tmp_path / "models", "cats_dogs", picture), np.stack([1 - dog, dog], axis=1),
                               rtol=1e-4, atol=1e-6)


def averaged(activation) -> keras.Model:
    """A model whose last layer averages two heads, as test-time augmentation does, and so
    does not say what it gives."""
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Flatten()(inputs)
    heads = [keras.layers.Dense(3, activation=activation)(features) for _ in range(2)]
    return keras.Model(inputs, keras.layers.Average()(heads))


def test_a_last_layer_that_does_not_say_what_it_gives_is_tried(tmp_path, capsys):
    notebook = averaged("softmax")
    notebook.save(tmp_path / "probabilities.h5")
    assert main(["import", "probabilities.h5", "--classes", CLASSES, "--scaling", "unit"]) == 0
    picture = pixels(8)
    np.testing.assert_allclose(served(tmp_path / "models", "probabilities", picture), notebook.predict(picture / 255),
                               rtol=1e-4, atol=1e-6)
    averaged(None).save(tmp_path / "logits.h5")
    assert refused(["import", "logits.h5", "--classes", CLASSES, "--scaling", "unit"], capsys) == (
        "error: The model's last layer, Average, does not say whether it gives logits or probabilities, and they are "
        "not probabilities: end the model with a Dense layer, and save it again")


def test_a_model_of_grey_pictures_is_given_them_from_colour_ones(tmp_path):
    notebook = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(2, activation="softmax")])
    notebook.save(tmp_path / "grey.h5")
    assert main(["import", "grey.h5", "--classes", "a,b", "--scaling", "unit"]) == 0
    picture = pixels(8)
    grey = picture @ np.array([[0.299], [0.587], [0.114]])
    np.testing.assert_allclose(served(tmp_path / "models", "grey", picture), notebook.predict(grey / 255),
                               rtol=1e-4, atol=1e-6)


def test_a_model_that_scales_pixels_itself_takes_them_as_they_are(tmp_path, capsys):
    notebook = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.RandomFlip(), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    notebook.save(tmp_path / "own.keras")
    assert main(["import", "own.keras", "--classes", "a,b"]) == 0
    assert "Its first layer scales pixels itself" in capsys.readouterr().out
    picture = pixels(8)
    np.testing.assert_allclose(served(tmp_path / "models", "own", picture), notebook.predict(picture),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("adapted_to, scales", [(1, True), (1 / 255, False), (1 / 127.5, False)])
def test_a_normalization_layer_scales_pixels_itself_if_adapted_to_raw_ones(adapted_to, scales):
    normalization = keras.layers.Normalization()
    normalization.adapt(pixels(8, 16) * adapted_to)
    assert scales_itself(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Resizing(4, 4), normalization,
                                           keras.layers.Flatten(), keras.layers.Dense(2)])) is scales


def two_branches(x):
    """A skip connection's kind: two convolutions of x, added."""
    return keras.layers.Add()([keras.layers.Conv2D(4, 3, padding="same")(x), keras.layers.Conv2D(4, 1)(x)])


def test_a_model_whose_layers_branch_keeps_its_graph_without_its_augmentation(tmp_path):
    inputs = keras.Input((8, 8, 3))
    augmented = keras.Sequential([keras.layers.RandomFlip(), keras.layers.RandomContrast(0.2)])(inputs)
    scaled = keras.layers.Rescaling(1 / 255)(augmented)
    branches = two_branches(scaled)
    notebook = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(branches)))
    notebook.save(tmp_path / "branches.keras")
    assert main(["import", "branches.keras", "--classes", "a,b"]) == 0  # its first layer after augmentation scales
    model = keras.saving.load_model(tmp_path / "models" / "branches.h5")
    assert not [layer for layer in model.layers[-1].layers if "Random" in type(layer).__name__]
    picture = pixels(8)
    np.testing.assert_allclose(served(tmp_path / "models", "branches", picture), notebook.predict(picture),
                               rtol=1e-4, atol=1e-6)


def test_a_model_of_any_size_is_given_one(tmp_path, capsys):
    notebook = keras.Sequential([keras.Input((None, None, 3)), keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(2, activation="softmax")])
    notebook.save(tmp_path / "any.h5")
    message = refused(["import", "any.h5", "--classes", "a,b", "--scaling", "unit"], capsys)
    assert message == ("error: The model takes pictures of any size: pass the size it was trained on as "
                       "--image-size, e.g. 224 or 224x160 (height x width)")
    assert main(["import", "any.h5", "--classes", "a,b", "--scaling", "unit", "--image-size", "24x40"]) == 0
    assert json.loads((tmp_path / "models" / "any.json").read_text())["input_shape"] == [24, 40, 3]


def test_bad_commands_are_refused_before_the_model_loads(tmp_path, image_folder, capsys):
    unit_scaled_notebook().save(tmp_path / "colours.h5")
    (tmp_path / "notes.txt").write_text("not a model")
    assert refused(["import", "gone.h5", "--classes", "a,b"], capsys) == "error: There is no model file gone.h5"
    assert refused(["import", "notes.txt", "--classes", "a,b"], capsys) == (
        "error: NOTEBOOK_MODEL must be a Keras model file, .keras or .h5; notes.txt is not one")
    assert refused(["import", "colours.h5"], capsys) == (
        "error: Pass --data, labelled pictures that give the classes, or --classes")
    assert refused(["import", "colours.h5", "--data", "nowhere"], capsys).startswith("error: --data must be a folder")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "colours.h5").write_text("an older model")
    assert refused(["import", "colours.h5", "--classes", CLASSES], capsys) == (
        "error: models/colours.h5 exists: pass --replace to put the imported model in its place, or --name to save "
        "beside it")
    with pytest.raises(SystemExit):
        main(["import", "colours.h5", "--classes", "a,a"])
    assert "must name each class once" in capsys.readouterr().err


def test_models_that_cannot_serve_are_refused_with_the_reason(tmp_path, capsys):
    unit_scaled_notebook().save(tmp_path / "colours.h5")
    save_lambda_model(tmp_path / "lambda.h5")
    assert refused(["import", "colours.h5", "--classes", "a,b", "--scaling", "unit"], capsys) == (
        "error: The model gives 3 outputs but there are 2 classes: check --classes, or the class folders of --data")
    assert refused(["import", "colours.h5", "--classes", CLASSES], capsys).startswith(
        "error: Say what the notebook did to pixels before the model with --scaling (none: raw pixels 0-255")
    assert "Python code that Keras does not run from a file" in refused(
        ["import", "lambda.h5", "--classes", CLASSES, "--scaling", "none"], capsys)

    tags = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="sigmoid")])
    tags.save(tmp_path / "tags.h5")
    assert refused(["import", "tags.h5", "--classes", CLASSES, "--scaling", "unit"], capsys) == (
        "error: The model's last layer gives sigmoid outputs for 3 classes, where a softmax (or logits) answers "
        "which one a picture shows: import a model trained for one class a picture")

    inputs = keras.Input((8, 8, 3))  # arithmetic in the middle: no scaling before it stands for it
    features = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs)) * 3
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(features)).save(tmp_path / "middle.keras")
    assert refused(["import", "middle.keras", "--classes", "a,b"], capsys) == (
        "error: The model does arithmetic on tensors after its first layer (Multiply), such as x + shortcut or "
        "keras.ops.softmax(x), which Keras writes to .h5 but cannot read back: do it with layers "
        "(keras.layers.Add(), keras.layers.Softmax()...) and save it again")
    scaled = inputs / 255  # then branches, so no rebuilding of its layers in a row can stand for it
    branches = two_branches(scaled)
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(branches))).save(
        tmp_path / "branches.keras")
    assert refused(["import", "branches.keras", "--classes", "a,b"], capsys).startswith(
        "error: The model did arithmetic on tensors (TrueDivide) and its layers do not follow one another, so it "
        "cannot be rebuilt without that arithmetic: build it of Keras's own layers")
    scaled = keras.layers.Flatten()(inputs / 255)  # which .h5 cannot hold, and .keras can
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(scaled)).save(tmp_path / "unit.h5")
    assert refused(["import", "unit.h5", "--classes", "a,b"], capsys).endswith(
        "; or if it did arithmetic on tensors, import its .keras file (model.save(\"name.keras\"))")

    scores_map = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, activation="softmax")])
    scores_map.save(tmp_path / "map.h5")
    assert refused(["import", "map.h5", "--classes", "a,b", "--scaling", "unit"], capsys) == (
        "error: The model gives outputs of shape (None, 6, 6, 2), not one score per class: import a classifier of one "
        "output")
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def scores(**accuracy_and_loss) -> dict:
    return {kind: {"accuracy": accuracy, "loss": loss} for kind, (accuracy, loss) in accuracy_and_loss.items()}


def labelled(images: int) -> Dataset:
    return Dataset(np.zeros((images, 1, 1, 3)), np.zeros(images), [str(n) for n in range(10)], "test10",
                   np.zeros(images))


def test_the_scaling_of_the_lowest_loss_is_taken_and_doubts_are_said(capsys):
    # A ReLU network's picks hardly change when its inputs are 255 times larger; how sure it is does.
    notebook = keras.Sequential([keras.Input((1, 1, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    tie = scores(none=(0.285, 11.27), unit=(0.285, 1.93), tf=(0.2, 2.5))
    assert find_scaling(notebook, (1, 1, 3), None, None, tie, labelled(400)) == ("unit", "the lowest loss on test10")
    warn_of_doubts(tie, "unit", labelled(400))
    assert capsys.readouterr().err == ""
    warn_of_doubts(scores(none=(0.3, 2.0), unit=(0.28, 1.5)), "unit", labelled(400))  # 8 pictures more right
    assert capsys.readouterr().err == (
        "warning: none gets more pictures right (30.00%) than unit (28.00%), but at a higher loss; if the notebook "
        "standardized pixels by their own means and deviations, it did none of the five: pass those as --mean and "
        "--std\n")
    # Taken on other evidence (--scaling, or a first layer that scales), and beaten on both counts.
    warn_of_doubts(scores(none=(0.25, 11.95), unit=(0.4575, 1.18), torch=(0.4875, 1.39)), "none", labelled(400))
    assert capsys.readouterr().err.startswith(
        "warning: unit scores far better than none on test10 (45.75% right at a loss of 1.1800, against 25.00% at "
        "11.9500): pass --scaling unit if that is what the notebook did\n")
    warn_of_doubts(scores(none=(0.288, 2.0), unit=(0.28, 1.5)), "unit", labelled(1000))  # 8 of 1,000: under 1%
    assert capsys.readouterr().err == ""
    warn_of_doubts(scores(none=(0.12, 2.29), unit=(0.1, 2.31)), "none", labelled(400))
    assert capsys.readouterr().err == ("warning: none scores about chance on test10: are these the pictures the model "
                                       "learned to tell apart, and its classes in the order of its outputs?\n")


def test_a_scaling_the_model_suggests_gives_way_to_one_that_scores_far_better(image_folder, tmp_path,
                                                                                          capsys):
    # Rescaling(1 / 255) inside, and pixels / 255 outside too, a slip: its layers after the first saw pixels / 65025.
    body = unit_scaled_notebook()
    kernel, bias = body.layers[2].get_weights()
    body.layers[2].set_weights([kernel * 255, bias])
    notebook = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255), body])
    notebook.save(tmp_path / "twice.keras")
    assert main(["import", "twice.keras", "--data", str(image_folder)]) == 0
    captured = capsys.readouterr()
    assert ("Its first layer scales pixels itself, but unit scores far better on data: taking unit. Pass --scaling if "
            "you know what the notebook did.") in captured.out and captured.err == ""
    assert "with the scaling unit as its first layer" in captured.out

    # Told otherwise, it does as told, and says what scores better.
    assert main(["import", "twice.keras", "--data", str(image_folder), "--scaling", "none", "--replace"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: unit scores far better than none on data (100.00% right at a loss of ")
    assert "warning: none scores about chance on data" in captured.err


def test_state_that_h5_reads_back_only_at_a_models_top_level_is_kept(tmp_path):
    # An adapted Normalization layer, as the TensorFlow tutorials start a model, and RandAugment.
    normalization = keras.layers.Normalization()
    normalization.adapt(pixels(8, 16))
    notebook = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.RandAugment(), normalization,
                                 keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    notebook.save(tmp_path / "adapted.keras")
    assert main(["import", "adapted.keras", "--classes", "a,b"]) == 0
    picture = pixels(8)
    np.testing.assert_allclose(served(tmp_path / "models", "adapted", picture),
                               notebook.predict(picture), rtol=1e-4, atol=1e-6)


def test_a_file_that_is_not_a_whole_model_is_refused_with_what_to_save(tmp_path, capsys, monkeypatch):
    notebook = unit_scaled_notebook()
    notebook.save_weights(tmp_path / "colours.weights.h5")
    (tmp_path / "saved_model").mkdir()
    assert refused(["import", "colours.weights.h5", "--classes", CLASSES], capsys) == (
        "error: colours.weights.h5 holds no Keras model, only weights or other data (as save_weights writes, or a "
        "save that failed part-way): save the whole model with model.save(), or train one with python -m trainer")
    # An .h5 is read through in a child process first, as the web app reads one.
    notebook.save(tmp_path / "whole.h5")
    whole = (tmp_path / "whole.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(whole[:len(whole) // 2])
    assert refused(["import", "cut.h5", "--classes", CLASSES], capsys).startswith("error: cut.h5 is incomplete: ")
    monkeypatch.setattr(model_file, "HDF5_READ_CHECK", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert refused(["import", "whole.h5", "--classes", CLASSES], capsys) == (
        "error: whole.h5 is damaged: reading it crashes HDF5 (signal 11); copy it again, or train it again")
    assert not any((tmp_path / "models").iterdir())  # nothing saved
    assert refused(["import", "saved_model", "--classes", CLASSES], capsys) == (
        "error: saved_model is a folder, as TensorFlow 2's SavedModel is: Keras 3 reads .keras and .h5 files; save the "
        'model in the notebook with model.save("name.keras")')


def test_the_dashboard_shows_an_imported_models_test_scores(image_folder, built_models, tmp_path):
    from webapp import create_app

    unit_scaled_notebook().save(tmp_path / "colours.h5")
    assert main(["import", "colours.h5", "--data", str(image_folder)]) == 0
    client = create_app({"MODELS_DIR": str(tmp_path / "models"), "TESTING": True}).test_client()
    row = next(row for row in client.get("/api/models").get_json()["models"] if row["name"] == "colours")
    assert row["available"] and row["card"]["test_evaluation"]["accuracy"] == 1.0
    page = client.get("/models/colours").get_data(as_text=True)
    assert "<dd>imported</dd>" in page and "<dd>imported from colours.h5</dd>" in page
    assert "<h2>Per class</h2>" in page and "<h2>Confusion matrix</h2>" in page  # the test images'
    assert '"blue",1.0,1.0,1.0,10' in client.get("/models/colours/per_class.csv").get_data(as_text=True)

    # Another, scored on other pictures: the test figures, all they have, are shown, though they do not rank.
    write_image_folder(tmp_path / "other", per_class=4, seed=1)
    assert main(["import", "colours.h5", "--data", "other", "--name", "again"]) == 0
    page = client.get("/models").get_data(as_text=True)
    assert '<th scope="col" class="number">Test accuracy</th>' in page
    assert page.count('<td class="number">100.0%</td>') == 2 and "strong" not in page.split("<tbody>")[1]  # no rank

    # Beside models trained here, under a heading of their own.
    copy_models(built_models, tmp_path / "models")
    page = client.get("/models").get_data(as_text=True)
    assert '<h2 class="data-set">Data set not recorded</h2>' in page
    assert 'aria-label="Models whose data set is not recorded"' in page
    assert 'aria-label="Models trained on synthetic"' in page


def test_answers_that_change_once_read_back_from_h5_are_refused():
    # An adapted Normalization inside another model, which Keras's .h5 reads back without its state.
    normalization = keras.layers.Normalization()
    normalization.adapt(pixels(8, 16))
    inner = keras.Sequential([keras.Input((8, 8, 3)), normalization, keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ImportRefused, match="The model answers otherwise once read back from .h5, as a layer of it"):
        reloaded(keras.Sequential([keras.Input((8, 8, 3)), inner]), pixels(8))


def test_a_refusal_quotes_keras_cut_short(tmp_path, capsys):
    # Normalization over the whole picture: Keras reads its values back from .h5 as settings it refuses, and says so
    # with all of them.
    normalization = keras.layers.Normalization(axis=(1, 2, 3))
    normalization.adapt(pixels(8, 16))
    keras.Sequential([keras.Input((8, 8, 3)), normalization, keras.layers.Flatten(),
                      keras.layers.Dense(2, activation="softmax")]).save(tmp_path / "whole.keras")
    message = refused(["import", "whole.keras", "--classes", "a,b", "--scaling", "none"], capsys)
    assert message.startswith("error: The model does not read back from .h5 (Error when deserializing class "
                              "'Normalization'") and "...): build it of Keras's own layers" in message
    assert len(message) < 400


@pytest.mark.parametrize("settings", [{"axis": None}, {"invert": True}])
def test_adapted_normalization_of_any_settings_is_kept(settings, tmp_path):
    normalization = keras.layers.Normalization(**settings)
    normalization.adapt(pixels(8, 16) / (1 if "invert" in settings else 255))
    inner = keras.Sequential([keras.Input((8, 8, 3)), normalization, keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    notebook = keras.Sequential([keras.Input((8, 8, 3)), inner])
    notebook.save(tmp_path / "adapted.keras")
    assert main(["import", "adapted.keras", "--classes", "a,b", "--scaling", "unit"]) == 0
    picture = pixels(8)
    np.testing.assert_allclose(served(tmp_path / "models", "adapted", picture), notebook.predict(picture / 255),
                               rtol=1e-4, atol=1e-6)


def test_a_layer_called_twice_after_arithmetic_is_refused(tmp_path, capsys):
    inputs = keras.Input((8, 8, 3))
    dense = keras.layers.Dense(192, activation="relu")  # 8 x 8 x 3 in and out
    outputs = keras.layers.Dense(2, activation="softmax")(dense(dense(keras.layers.Flatten()(inputs / 255))))
    keras.Model(inputs, outputs).save(tmp_path / "twice.keras")
    assert refused(["import", "twice.keras", "--classes", "a,b"], capsys).startswith(
        "error: The model did arithmetic on tensors (TrueDivide) and its layers do not follow one another")


def test_models_of_other_shapes_and_files_are_refused_or_taken_as_keras_takes_them(tmp_path, capsys):
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, {"p": keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))}).save(
        tmp_path / "named.keras")
    assert refused(["import", "named.keras", "--classes", "a,b", "--scaling", "unit"], capsys) == (
        "error: The model gives outputs of shape (None, 2), not one score per class: import a classifier of one output")
    grey = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(2, activation="softmax")])
    grey.save(tmp_path / "grey.keras")
    assert refused(["import", "grey.keras", "--classes", "a,b", "--scaling", "caffe"], capsys) == (
        "error: The scaling caffe works on colour pictures, and the model takes grey ones: pass --scaling none, unit, "
        "tf, or leave it out")
    (tmp_path / "junk.keras").write_text("not a zip")
    assert refused(["import", "junk.keras", "--classes", "a,b"], capsys) == (
        "error: Cannot read junk.keras: it is not a model file Keras can read: save the model in the notebook with "
        'model.save("name.keras")')

    # One side fixed, the other any; and .hdf5, as ModelCheckpoint names its files.
    tall = keras.Sequential([keras.Input((8, None, 3)), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(2, activation="softmax")])
    tall.save(tmp_path / "tall.hdf5")
    assert refused(["import", "tall.hdf5", "--classes", "a,b", "--scaling", "unit", "--image-size", "9x12"],
                   capsys) == ("error: The model takes pictures of 8 x any, not 9 x 12: pass that size as "
                               "--image-size, or leave it out")
    assert main(["import", "tall.hdf5", "--classes", "a,b", "--scaling", "unit", "--image-size", "8x12"]) == 0
    assert json.loads((tmp_path / "models" / "tall.json").read_text())["input_shape"] == [8, 12, 3]


def test_replace_saves_over_a_model_but_never_over_the_file_imported(tmp_path, capsys):
    unit_scaled_notebook().save(tmp_path / "colours.h5")
    for scaling in ("unit", "tf"):
        assert main(["import", "colours.h5", "--classes", CLASSES, "--scaling", scaling, "--replace"]) == 0
    assert json.loads((tmp_path / "models" / "colours.json").read_text())["hyperparameters"]["scaling"] == "tf"
    assert refused(["import", "models/colours.h5", "--classes", CLASSES, "--scaling", "none", "--replace"],
                   capsys) == ("error: models/colours.h5 is the file the import would save: pass --name to save it "
                               "beside it")


def test_a_model_inside_that_does_arithmetic_on_tensors_is_refused(tmp_path, capsys):
    # As Keras's own MobileNetV3 does (its hard sigmoid): .h5 cannot read it back.
    inputs = keras.Input((8, 8, 3))
    base = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs) * 2, name="base")
    outer = keras.Input((8, 8, 3))
    notebook = keras.Model(outer, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(base(outer))))
    notebook.save(tmp_path / "v3.keras")
    assert refused(["import", "v3.keras", "--classes", "a,b", "--scaling", "unit"], capsys).startswith(
        "error: The model base inside it does arithmetic on tensors (as Keras's own MobileNetV3 does)")


def test_a_model_taken_apart_wrongly_is_refused_before_it_is_saved(tmp_path, monkeypatch, capsys):
    # As if the adapted Normalization's values were lost in the taking apart.
    def zero_means(layer):
        if isinstance(layer, keras.layers.Normalization):
            return keras.layers.Normalization(mean=np.zeros(3), variance=np.ones(3), name=layer.name)
        return layer

    monkeypatch.setattr(importing, "_servable_layer", zero_means)
    normalization = keras.layers.Normalization()
    normalization.adapt(pixels(8, 16))
    keras.Sequential([keras.Input((8, 8, 3)), normalization, keras.layers.Flatten(),
                      keras.layers.Dense(2, activation="softmax")]).save(tmp_path / "adapted.keras")
    assert refused(["import", "adapted.keras", "--classes", "a,b"], capsys).startswith(
        "error: The model answers otherwise without its augmentation and arithmetic on tensors")
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def test_a_notebook_that_standardized_pixels_by_its_own_statistics_is_given_them(tmp_path, capsys):
    notebook = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                                 keras.layers.Dense(2, activation="softmax")])
    notebook.save(tmp_path / "standardized.h5")
    assert main(["import", "standardized.h5", "--classes", "a,b", "--mean", "120,110,100", "--std", "60,50,40"]) == 0
    assert "with the scaling none, then its means and deviations, as its first layers" in capsys.readouterr().out
    picture = pixels(8)
    np.testing.assert_allclose(served(tmp_path / "models", "standardized", picture),
                               notebook.predict((picture - [120, 110, 100]) / [60, 50, 40]), rtol=1e-4, atol=1e-6)
    card = json.loads((tmp_path / "models" / "standardized.json").read_text())
    assert card["hyperparameters"]["mean"] == [120, 110, 100] and card["hyperparameters"]["std"] == [60, 50, 40]

    assert refused(["import", "standardized.h5", "--classes", "a,b", "--mean", "120"], capsys) == (
        "error: Pass --mean and --std together: the notebook's (x - mean) / std")
    assert refused(["import", "standardized.h5", "--classes", "a,b", "--mean", "0.5", "--std", "0.2,0"], capsys) == (
        "error: --std must be above 0, not 0")
    assert refused(["import", "standardized.h5", "--classes", "a,b", "--mean", "1,2", "--std", "1", "--name", "x"],
                   capsys) == "error: --mean and --std take one value, or one for each of the model's 3 channels"


def test_a_resizing_notebook_called_plainly_answers_as_predict_does(tmp_path):
    # Keras's Resizing defaults to training=True and hands it on to the layers after it: the
    # imported model called as model(x) normalised by the batch, and updated its batch norm's
    # moving statistics, on every backend.
    notebook = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Resizing(8, 8), keras.layers.Conv2D(4, 3),
                                 keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(2, activation="softmax")])
    batch_norm = notebook.layers[2]
    batch_norm.set_weights([np.ones(4), np.zeros(4), np.full(4, 40.0), np.full(4, 900.0)])  # of pixels 0-255
    notebook.save(tmp_path / "resizing.keras")
    assert main(["import", "resizing.keras", "--classes", "a,b", "--scaling", "none"]) == 0
    model = keras.saving.load_model(tmp_path / "models" / "resizing.h5")  # plainly, as the guide promises
    picture = pixels(12)
    expected = model.predict(picture, verbose=0)
    np.testing.assert_allclose(expected, notebook.predict(picture, verbose=0), rtol=1e-4, atol=1e-6)
    for _ in range(3):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(picture)), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.predict(picture, verbose=0), expected, rtol=1e-4, atol=1e-6)


def test_a_full_disk_is_said_in_one_sentence_and_keeps_the_model_there(tmp_path, monkeypatch, capsys):
    unit_scaled_notebook().save(tmp_path / "colours.h5")
    assert main(["import", "colours.h5", "--classes", CLASSES, "--scaling", "unit"]) == 0
    saved = (tmp_path / "models" / "colours.h5").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "Can't close file (file write failed: time = ...\n, errno = 28)")

    with monkeypatch.context() as patch:
        patch.setattr(importing.cards, "save_model_and_card", full_disk)
        assert refused(["import", "colours.h5", "--classes", CLASSES, "--scaling", "tf", "--replace"], capsys) == (
            "error: Cannot save models/colours.h5 (No space left on device)")
    assert (tmp_path / "models" / "colours.h5").read_bytes() == saved
    # The copy read back from the temporary folder: the disk's fault, not the model's, which was blamed.
    monkeypatch.setattr(importing.cards, "save_h5", full_disk)
    with pytest.raises(ImportRefused, match=(r"^Cannot write the model in the temporary folder .* to read it back "
                                             r"\(No space left on device\): make room there, or set TMPDIR")):
        reloaded(unit_scaled_notebook(), pixels())
