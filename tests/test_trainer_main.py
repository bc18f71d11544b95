"""The trainer's command line, run as `python -m trainer` (in-process through `main`)."""

import errno
import fcntl
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import (DATASET_CLASSES, TINY_CLASSES, encode_image, post_api, refused, save_lambda_model,
                      save_model_without_softmax, write_image_folder)
from trainer.data import load_folder, stratified_split
from trainer.formatting import filesize
from trainer.model_file import sha256
from trainer.__main__ import _presets_values, _resumed_from, default_name, main
from trainer.options import MAX_NAME_BYTES
from trainer.presets import PRESETS

CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def in_a_scratch_folder(tmp_path, monkeypatch):
    """Commands run from the test's own folder, so that the default --run-dir (runs/) and its
    lock files land there, not in the checkout."""
    monkeypatch.chdir(tmp_path)


def test_help_documents_the_commands():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "trainer", *args], capture_output=True, text=True, timeout=60,
                              cwd=CHECKOUT)

    result = run("--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in ("train", "evaluate", "predict", "import"))
    result = run("train", "--help")
    assert result.stdout.startswith("usage: python -m trainer train --data DATA [OPTION ...]\n")  # one line
    for option in ("--arch", "--preset", "--data", "--test-data", "--epochs", "--batch-size", "--image-size",
                   "--validation-fraction", "--weights", "--unfreeze-blocks", "--teacher", "--name", "--out", "--seed"):
        assert option in result.stdout


def test_options_help_gives_the_presets_values():
    assert _presets_values("batch_size") == " [" + ", ".join(f"{name} {hp['batch_size']}"
                                                              for name, hp in PRESETS.items()) + "]"
    transfer = [name for name, hp in PRESETS.items() if hp["arch"] != "scratch"]
    assert _presets_values("dense_units") == f" [{', '.join(transfer)}: {PRESETS['vgg16']['dense_units']}]"
    assert _presets_values("seed") == " [every preset: 0]" and _presets_values("teacher") == ""
    assert _presets_values("validation_fraction") == " [every preset: 0.1]"  # as written, not 0.100000


def test_cifar10_offline_is_one_clear_sentence(monkeypatch, tmp_path, capsys):
    def offline():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("keras.datasets.cifar10.load_data", offline)
    assert main(["train", "--data", "cifar10", "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Could not download CIFAR-10 ([Errno -3] Temporary failure in name resolution); ")
    assert "--data PATH" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_unavailable_pretrained_weights_are_one_clear_sentence(monkeypatch, image_folder, tmp_path, capsys):
    vgg16 = keras.applications.VGG16

    def offline(weights="imagenet", **kwargs):
        if weights is not None:
            raise Exception("URL fetch failure on https://storage.googleapis.com/: None -- [Errno -3]")
        return vgg16(weights=None, **kwargs)

    monkeypatch.setattr("keras.applications.VGG16", offline)
    assert main(["train", "--arch", "vgg16", "--data", str(image_folder), "--image-size", "16",
                 "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # said before the data loads, so nothing of it was read
    assert err.startswith("error: Cannot load the vgg16 weights 'imagenet' (URL fetch failure")
    assert "--weights PATH" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize("arch, file", [("vgg16", "vgg16_notop.h5"), ("efficientnet_lite0", "lite0.pth")])
def test_a_damaged_weights_file_is_refused_before_the_data_loads(arch, file, image_folder, tmp_path, capsys,
                                                                  monkeypatch):
    weights = tmp_path / file
    weights.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # an HDF5 signature, and nothing after it
    monkeypatch.setattr("trainer.data.load_dataset", lambda *args: pytest.fail("the data was loaded"))
    assert main(["train", "--arch", arch, "--weights", str(weights), "--data", str(image_folder),
                 "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: Cannot load the {arch} weights {str(weights)!r} (") and len(err.splitlines()) == 1


def test_a_damaged_teacher_is_refused_before_the_data_loads(image_folder, tmp_path, capsys):
    teacher = tmp_path / "teacher.h5"
    teacher.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # an HDF5 signature, and nothing after it
    assert main(["train", "--data", str(image_folder), "--teacher", str(teacher), "--epochs", "1",
                 "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")]) == 2
    out, err = capsys.readouterr()
    assert "Reading" not in out and err.startswith(f"error: Cannot use the teacher {teacher} (")


def test_a_teacher_of_another_image_size_is_refused_before_the_data_loads(built_models, image_folder, tmp_path, capsys):
    # tiny takes 16 px images; the default preset's run, 32 px.
    assert main(["train", "--data", str(image_folder), "--teacher", str(built_models / "tiny.h5"), "--epochs", "1",
                 "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")]) == 2
    out, err = capsys.readouterr()
    assert "Reading" not in out
    assert err == f"error: The teacher {built_models / 'tiny.h5'} takes (16, 16, 3) images; this run needs (32, 32, 3).\n"


def test_copies_of_a_picture_on_both_sides_of_the_split_are_counted_and_said(image_folder, tmp_path, capsys):
    for path in list(image_folder.rglob("*.png")):  # as a scraped folder holds "cat (1).jpg" beside "cat.jpg"
        shutil.copy(path, path.with_name(f"{path.stem} (1).png"))
    code = main(["train", "--data", str(image_folder), "--epochs", "1", "--batch-size", "16", "--image-size", "16",
                 "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")])
    assert code == 0
    card = json.loads((tmp_path / "models" / "data_scratch.json").read_text())
    # By name, independently: the held-out images whose twin the run trains on.
    data = load_folder(image_folder, 16)
    train, held_out = stratified_split(data.labels, 0.1, 0, data.classes)
    training = {name.replace(" (1)", "") for name in data.files[train]}
    twins = sum(name.replace(" (1)", "") in training for name in data.files[held_out])
    assert 0 < twins == card["held_out_in_training"]
    assert (f"warning: {twins} of the {len(held_out)} held-out images are pictures this run trains on too (copies in "
            "the data), so their score will flatter the model") in capsys.readouterr().err


def test_train_from_a_zip_then_evaluate(image_folder, tmp_path, capsys):
    archive = tmp_path / "colours.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in image_folder.rglob("*.png"):
            z.write(path, path.relative_to(image_folder).as_posix())
    out = tmp_path / "models"
    code = main(["train", "--data", str(archive), "--test-data", str(image_folder), "--epochs", "1",
                 "--batch-size", "16", "--image-size", "16", "--validation-fraction", "0.2",
                 "--out", str(out), "--run-dir", str(tmp_path / "runs")])
    assert code == 0
    card = json.loads((out / "colours_scratch.json").read_text())
    assert card["test_evaluation"]["samples"] == 30  # every image of the separate test folder
    assert card["test_digest"] == card["data_digest"]  # the test folder holds the zip's images, as below
    assert card["hyperparameters"]["preset"] == "scratch-small" and card["hyperparameters"]["epochs"] == 1
    assert card["dataset"] == "colours"
    # The test images are the training ones, zipped: a test score of images it learned from (24 of them;
    # the other 6 are held out), which the card records.
    assert ("warning: 24 of the 30 test images are pictures this run trains on too, so their score will flatter "
            "the model; its card says so, and the dashboard ranks it by held-out images only\n") in capsys.readouterr().err
    assert card["test_in_training"] == 24 and card["held_out_in_training"] == 0

    assert main(["evaluate", str(out / "colours_scratch.h5"), "--data", str(image_folder)]) == 0
    report, err = capsys.readouterr()
    assert "colours_scratch on data (30 images)" in report and "macro avg" in report
    # The training data, whole, scores images the model learned from: said, with what to do instead.
    assert err.strip() == ("warning: colours_scratch.h5 was trained on 24 of the 30 images of data (the same "
                           "pixels), so this score counts images it learned from; on the data it was trained on, "
                           "--held-out scores only those its run held out")

    # The card's own evaluation again, from the unzipped folder: the same images held out.
    assert main(["evaluate", str(out / "colours_scratch.h5"), "--data", str(image_folder), "--held-out"]) == 0
    report = capsys.readouterr().out
    assert "colours_scratch on data, held out (6 images)" in report
    assert f"loss {card['evaluation']['loss']:.4f}   accuracy {card['evaluation']['accuracy']:.2%}" in report


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory) -> Path:
    """A model trained for an epoch by the command line on a folder of images (a tiny run is
    mostly compiling: seconds saved for each test that needs one)."""
    root = tmp_path_factory.mktemp("trained")
    write_image_folder(root / "data")
    assert main(["train", "--data", str(root / "data"), "--name", "tiny", "--epochs", "1", "--batch-size", "16",
                 "--image-size", "16", "--validation-fraction", "0.2", "--out", str(root / "models"),
                 "--run-dir", str(root / "runs")]) == 0
    return root


@pytest.fixture
def trained(trained_once, tmp_path) -> tuple[Path, Path]:
    """This test's own copy of that model, with its card and its data: (model, data folder)."""
    shutil.copytree(trained_once, tmp_path, dirs_exist_ok=True)
    return tmp_path / "models" / "tiny.h5", tmp_path / "data"


def test_evaluate_counts_the_training_images_in_other_data(trained, tmp_path, capsys):
    model, image_folder = trained
    split = json.loads(model.with_suffix(".json").read_text())["hyperparameters"]
    data = load_folder(image_folder, 16)
    held_out = data.files[stratified_split(data.labels, split["validation_fraction"], split["seed"], data.classes)[1]]
    trained_on = [entry for entry in data.files if entry not in held_out]
    mixed = tmp_path / "mixed"  # the 6 held-out images, and 6 the model trained on
    for entry in [*held_out, *trained_on[:6]]:
        (mixed / entry).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image_folder / entry, mixed / entry)
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", str(mixed)]) == 0
    assert capsys.readouterr().err.startswith("warning: tiny.h5 was trained on 6 of the 12 images of mixed (the same "
                                              "pixels)")
    # One image reads as one, under another name too.
    shutil.rmtree(mixed)
    (mixed / trained_on[0]).parent.mkdir(parents=True)
    shutil.copy(image_folder / trained_on[0], (mixed / trained_on[0]).with_name("renamed.png"))
    assert main(["evaluate", str(model), "--data", str(mixed)]) == 0
    assert capsys.readouterr().err.startswith("warning: tiny.h5 was trained on 1 of the 1 image of mixed (the same")

    # Images it never saw, under names of those it did (a smaller test folder numbered alike), are scored without a word.
    shutil.rmtree(mixed)
    write_image_folder(mixed, per_class=8, seed=7)
    assert main(["evaluate", str(model), "--data", str(mixed)]) == 0
    assert capsys.readouterr().err == ""


def test_evaluate_warns_of_a_card_written_for_another_file(trained, capsys):
    model, image_folder = trained
    card_path = model.with_suffix(".json")
    card_path.write_text(json.dumps(json.loads(card_path.read_text()) | {"file_sha256": "0" * 64, "file_size_bytes": 1}))
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", str(image_folder), "--held-out"]) == 0
    assert capsys.readouterr().err.startswith("warning: tiny.json was written for another tiny.h5")


def test_evaluate_estimates_from_a_sample_when_the_card_keeps_one(trained, monkeypatch, capsys):
    """Trained on more images than a sketch keeps (SKETCH_SIZE made 8 here for 24): the warning gives an
    estimate from the images that could be checked, of all the data's."""
    from trainer import data as data_module

    model, image_folder = trained
    card = json.loads(model.with_suffix(".json").read_text())
    data = load_folder(image_folder, 16)
    split = card["hyperparameters"]
    training = stratified_split(data.labels, split["validation_fraction"], split["seed"], data.classes)[0]
    monkeypatch.setattr(data_module, "SKETCH_SIZE", 8)
    kept = data_module.sketch(data_module.picture_fingerprints(data.images[training]))
    model.with_suffix(".json").write_text(json.dumps(card | {"training_pixels_sketch": kept}))
    found, checked = data_module.overlap(data_module.picture_fingerprints(data.images), kept)
    assert found == 8 and 8 <= checked < 30
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", str(image_folder)]) == 0
    assert capsys.readouterr().err.startswith(f"warning: tiny.h5 was trained on about {found / checked:.0%} (8 of the "
                                              f"{checked} that could be checked) of the 30 images of data (the same "
                                              "pixels)")


def test_evaluate_warns_from_the_digest_of_a_card_without_a_sketch_or_whose_sketch_misses(trained, capsys):
    model, image_folder = trained
    card_path = model.with_suffix(".json")
    card = json.loads(card_path.read_text())
    capsys.readouterr()
    # As written before cards kept one; or one that misses, as another Pillow may decode the images otherwise.
    for sketch in (None, "0123456789abcdef"):
        card_path.write_text(json.dumps({k: v for k, v in card.items() if k != "training_pixels_sketch"}
                                        | ({"training_pixels_sketch": sketch} if sketch else {})))
        assert main(["evaluate", str(model), "--data", str(image_folder)]) == 0
        assert capsys.readouterr().err.strip() == ("warning: data is the data tiny.h5 was trained on, so this score "
                                                   "counts the images it learned from; --held-out scores only those "
                                                   "its run held out")


def test_evaluate_warns_that_a_card_from_before_cards_recorded_images_cannot_tell(trained, capsys):
    model, image_folder = trained
    card_path = model.with_suffix(".json")
    recorded = {"training_pixels_sketch", "training_sketch", "data_digest", "held_out_digest"}
    card_path.write_text(json.dumps({k: v for k, v in json.loads(card_path.read_text()).items() if k not in recorded}))
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", str(image_folder)]) == 0
    assert capsys.readouterr().err.strip() == ("warning: the card of tiny.h5 does not say which images it was trained "
                                               "on, so nothing checks whether data holds some of them (which would "
                                               "count images it learned from)")


@pytest.mark.parametrize("change, message", [
    ("another image", "data is not the data tiny.h5 was trained on: its images differ"),
    ("another split", "This trainer splits data unlike the one that trained tiny.h5"),
    ("no split settings", "The card of tiny.h5 does not say how its run split its data"),
    ("a seed below 0", "The card of tiny.h5 does not say how its run split its data"),  # hand-edited
    ("no share held out", "The card of tiny.h5 does not say how its run split its data"),
])
def test_held_out_images_are_not_guessed(change, message, trained, capsys):
    model, image_folder = trained
    card = json.loads(model.with_suffix(".json").read_text())
    if change == "another image":
        shutil.copy(image_folder / "red" / "0.png", image_folder / "red" / "copy.png")
    elif change == "another split":
        card["held_out_digest"] = "0123456789abcdef"
    elif change == "a seed below 0":
        card["hyperparameters"]["seed"] = -1
    elif change == "no share held out":
        card["hyperparameters"]["validation_fraction"] = 0.0
    else:
        del card["hyperparameters"]
    model.with_suffix(".json").write_text(json.dumps(card))
    capsys.readouterr()
    assert message in refused(["evaluate", str(model), "--data", str(image_folder), "--held-out"], capsys)


def test_a_card_without_digests_rebuilds_its_held_out_images_with_a_warning(trained, capsys):
    model, image_folder = trained
    card = json.loads(model.with_suffix(".json").read_text())
    older = {key: value for key, value in card.items() if not key.endswith("_digest")}
    model.with_suffix(".json").write_text(json.dumps(older))
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", str(image_folder), "--held-out"]) == 0
    out, err = capsys.readouterr()
    assert "warning: the card of tiny.h5 has no data_digest" in err
    assert f"accuracy {card['evaluation']['accuracy']:.2%}" in out and "(6 images)" in out


@pytest.mark.parametrize("content, card, message", [
    (None, {}, "MODEL must be a .h5 model file; there is no "),
    (b"this is not HDF5", {}, "error: broken.h5 is not an HDF5 model file; copy it again, or train it again"),
    (b"this is not HDF5", None, "broken.h5 has no metrics card beside it (broken.json), which gives the model's"),
    (b"\x89HDF\r\n\x1a\n", {"input_shape": None}, "error: Cannot use broken.h5: its metrics card broken.json has an"),
])
def test_evaluate_reports_a_missing_or_damaged_model(tmp_path, image_folder, capsys, content, card, message):
    model = tmp_path / "broken.h5"
    if content is not None:
        model.write_bytes(content)
    if card is not None:
        card = {"classes": ["red", "green"], "input_shape": [16, 16, 3]} | card
        (tmp_path / "broken.json").write_text(json.dumps(card))
    assert main(["evaluate", str(model), "--data", str(image_folder)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_evaluate_refuses_missing_data_or_a_folder_as_the_model_before_loading_it(built_models, tmp_path, capsys):
    err = refused(["evaluate", str(built_models / "tiny.h5"), "--data", "nowhere"], capsys)
    assert err == "error: --data must be a folder or .zip of class subfolders; there is no nowhere"  # as train says it
    err = refused(["evaluate", str(tmp_path), "--data", "nowhere"], capsys)
    assert err == f"error: MODEL must be a .h5 model file; {tmp_path} is a folder"
    (tmp_path / "linked.h5").symlink_to(tmp_path / "gone.h5")
    err = refused(["evaluate", str(tmp_path / "linked.h5"), "--data", "nowhere"], capsys)
    assert err == f"error: {tmp_path / 'linked.h5'} is a link to {tmp_path / 'gone.h5'}, which is not there"


def test_evaluate_calls_a_model_file_cut_short_incomplete(built_models, tmp_path, image_folder, capsys):
    data = (built_models / "tiny.h5").read_bytes()
    (tmp_path / "tiny.h5").write_bytes(data[:2000])
    shutil.copy(built_models / "tiny.json", tmp_path)
    assert main(["evaluate", str(tmp_path / "tiny.h5"), "--data", str(image_folder)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: tiny.h5 is incomplete: 2.0 kB of the {filesize(len(data))} its card records; "
        "copy it again, or train it again")


@pytest.mark.parametrize("card_change, message", [
    ({"input_shape": [24, 24, 3]}, "the model takes inputs of shape 16 x 16 x 3, not the RGB images of its card's "
                                   "size (24 x 24 x 3)"),
    ({"classes": ["red", "green"]}, "the model has 3 outputs but its card lists 2 classes"),
])
def test_evaluate_refuses_a_card_that_does_not_match_its_model(built_models, tmp_path, image_folder, capsys,
                                                               card_change, message):
    card = json.loads((built_models / "tiny.json").read_text()) | card_change
    (tmp_path / "tiny.h5").write_bytes((built_models / "tiny.h5").read_bytes())
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    assert main(["evaluate", str(tmp_path / "tiny.h5"), "--data", str(image_folder)]) == 2
    assert f"error: tiny.h5 does not match its card: {message}" in capsys.readouterr().err


@pytest.mark.parametrize("weight, message", [
    (np.nan, "error: tiny.h5 holds NaN or infinite weights (in model_weights/"),  # found before it is loaded
    (1e30, "error: The model gives NaN or infinite outputs for 3 of 3 images (damaged weights, or a training "
           "run that diverged): retrain it."),  # finite weights whose sums overflow
])
def test_evaluate_refuses_a_model_that_gives_nan(built_models, tmp_path, make_image, capsys, weight, message):
    model = keras.saving.load_model(built_models / "tiny.h5")
    model.set_weights([np.full_like(w, weight) for w in model.get_weights()])
    model.save(tmp_path / "tiny.h5")
    card = json.loads((built_models / "tiny.json").read_text())  # this file's card: of its hash
    (tmp_path / "tiny.json").write_text(json.dumps(card | {"file_sha256": sha256(tmp_path / "tiny.h5")}))
    for label in TINY_CLASSES:
        (tmp_path / "data" / label).mkdir(parents=True)
        (tmp_path / "data" / label / "1.png").write_bytes(make_image())
    assert main(["evaluate", str(tmp_path / "tiny.h5"), "--data", str(tmp_path / "data")]) == 2
    # After the warning that this card (without a record of its images) cannot tell what the model trained on.
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(message)


def test_predict_gives_the_web_apps_answers(models_dir, client, tmp_path, capsys):
    photos = {name: encode_image(fmt, size=(30, 20), seed=seed) for name, fmt, seed in
              (("one.png", "PNG", 1), ("two.jpg", "JPEG", 2), ("three.webp", "WEBP", 3))}
    for name, image in photos.items():
        (tmp_path / name).write_bytes(image)
    paths = [str(tmp_path / name) for name in photos]
    capsys.readouterr()
    assert main(["predict", str(models_dir / "tiny.h5"), *paths, "--json", "--top-k", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == paths
    for line, image in zip(lines, photos.values()):
        served = post_api(client, image, model="tiny", top_k="2").get_json()["predictions"]
        assert [p["label"] for p in line["predictions"]] == [p["label"] for p in served]
        assert [p["probability"] for p in line["predictions"]] == pytest.approx([p["probability"] for p in served],
                                                                                abs=1e-6)
    assert main(["predict", str(models_dir / "tiny.h5"), paths[0]]) == 0
    label, probability = lines[0]["predictions"][0].values()
    assert capsys.readouterr().out.startswith(f"{paths[0]}: {label} {probability:.1%}, ")


def test_a_model_named_as_the_web_app_names_it_is_pointed_to_its_file(built_models, tmp_path, monkeypatch, capsys):
    shutil.copytree(built_models, tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    for named, meant in (("tiny", "models/tiny.h5"), ("models/tiny", "models/tiny.h5")):
        assert main(["predict", named, "photo.jpg"]) == 2
        assert capsys.readouterr().err == (f"error: MODEL must be a .h5 model file; there is no {named} "
                                           f"(did you mean {meant}?)\n")
    assert main(["predict", "huge", "photo.jpg"]) == 2
    assert capsys.readouterr().err == "error: MODEL must be a .h5 model file; there is no huge\n"


def test_predict_names_the_files_it_cannot_label_and_labels_the_rest(built_models, tmp_path, make_image, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(make_image())
    (folder / "b.jpg").write_bytes(make_image("JPEG")[:300])
    (folder / "c.txt").write_text("notes")
    assert main(["predict", str(built_models / "tiny.h5"), str(folder)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{folder}/a.png: ") and len(out.splitlines()) == 1
    assert err.splitlines() == [
        f"{folder}/b.jpg: not labelled: The JPEG file is damaged or incomplete.",
        f"{folder}/c.txt: not labelled: Not a readable image (accepted formats: JPEG, PNG, GIF, BMP, WebP or TIFF).",
        "2 of 3 files could not be labelled",
    ]
    assert main(["predict", str(built_models / "tiny.h5"), str(folder / "c.txt"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "file": f"{folder}/c.txt", "error": "Not a readable image (accepted formats: JPEG, PNG, GIF, BMP, WebP or TIFF)."}


def test_predict_prints_a_name_with_control_characters_on_its_one_line(built_models, tmp_path, make_image, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "ok\nfake.png: cat 99.9%").write_bytes(make_image())  # would print as a second answer
    (folder / "red\x1b[31m.png").write_bytes(b"broken")  # a terminal's colour escape
    assert main(["predict", str(built_models / "tiny.h5"), str(folder)]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and out.startswith(f"{folder}/ok\\nfake.png: cat 99.9%: ")
    assert err.splitlines()[0].startswith(f"{folder}/red\\x1b[31m.png: not labelled: ")
    assert main(["predict", str(built_models / "tiny.h5"), str(folder), "--json"]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[0])["file"] == f"{folder}/ok\nfake.png: cat 99.9%"


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_predict_writes_names_its_output_cannot_encode_escaped(built_models, tmp_path, capsys, monkeypatch, encoding):
    """As `predict ... > answers.txt` on Windows (cp1252) or under LC_ALL=C with PYTHONUTF8=0:
    a name the file's encoding cannot write was a UnicodeEncodeError's traceback."""
    folder = tmp_path / "写真"
    folder.mkdir()
    (folder / "été 🐟.png").write_bytes(encode_image())
    model = str(built_models / "tiny.h5")
    for extra in ([], ["--json"]):
        written = io.BytesIO()
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(written, encoding=encoding))
        assert main(["predict", model, str(folder), *extra]) == 0
        sys.stdout.flush()
        out = written.getvalue().decode(encoding)
        if extra:
            assert json.loads(out)["file"] == f"{folder}/été 🐟.png"
        else:
            assert out.startswith(str(folder).replace("写真", "\\u5199\\u771f") + "/")
    assert capsys.readouterr().err == ""


def test_predict_refuses_what_it_cannot_read_before_loading_the_model(built_models, tmp_path, capsys, monkeypatch):
    import trainer.__main__ as trainer_main

    monkeypatch.setattr(trainer_main, "_open_model", lambda *_: pytest.fail("the model was loaded"))
    model = str(built_models / "tiny.h5")
    assert refused(["predict", model, "nowhere.png"], capsys) == "error: There is no image, folder or .zip nowhere.png"
    for name in ("cut.zip", "photos.download"):  # a .zip by its name, or by its first bytes
        (tmp_path / name).write_bytes(b"PK\x03\x04 and no more")
        assert refused(["predict", model, str(tmp_path / name)], capsys) == (
            f"error: {tmp_path}/{name} is not a whole .zip (its list of files is missing): copy or download it again")
    assert refused(["predict", str(tmp_path), "nowhere.png"], capsys) == (
        f"error: MODEL must be a .h5 model file; {tmp_path} is a folder")  # as evaluate says it


@pytest.mark.timeout(60)  # unchecked, the pipe is waited on forever
def test_predict_labels_a_folder_copied_from_windows_and_names_a_pipe_it_cannot(built_models, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(encode_image())
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 not an image")
    (folder / "desktop.ini").write_text("[.ShellClassInfo]")
    assert main(["predict", str(built_models / "tiny.h5"), str(folder)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{folder}/a.png: ") and len(out.splitlines()) == 1 and err == ""
    os.mkfifo(tmp_path / "pipe")
    assert main(["predict", str(built_models / "tiny.h5"), str(tmp_path / "pipe"), str(folder)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{folder}/a.png: ") and err.splitlines() == [
        f"{tmp_path}/pipe: not labelled: It is a device, pipe or socket, not a file.",
        "1 of 2 files could not be labelled"]


def test_predict_labels_a_folder_named_like_a_zip(built_models, tmp_path, capsys):
    folder = tmp_path / "photos.zip"  # as some tools name the folder they unzip into
    folder.mkdir()
    (folder / "a.png").write_bytes(encode_image())
    assert main(["predict", str(built_models / "tiny.h5"), str(folder)]) == 0
    assert capsys.readouterr().out.startswith(f"{folder}/a.png: ")


def test_predict_says_so_when_there_is_nothing_to_label(built_models, tmp_path, capsys):
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    (tmp_path / "empty" / ".hidden" / "a.png").write_bytes(encode_image())
    assert refused(["predict", str(built_models / "tiny.h5"), str(tmp_path / "empty")], capsys) == (
        f"error: There are no files in {tmp_path}/empty")


def test_predict_refuses_a_model_that_gives_nan(built_models, tmp_path, make_image, capsys):
    model = keras.saving.load_model(built_models / "tiny.h5")
    model.set_weights([np.full_like(w, 1e30) for w in model.get_weights()])  # finite weights whose sums overflow
    model.save(tmp_path / "tiny.h5")
    card = json.loads((built_models / "tiny.json").read_text())
    (tmp_path / "tiny.json").write_text(json.dumps(card | {"file_sha256": sha256(tmp_path / "tiny.h5")}))
    (tmp_path / "a.png").write_bytes(make_image())
    assert refused(["predict", str(tmp_path / "tiny.h5"), str(tmp_path / "a.png")], capsys) == (
        "error: tiny.h5 gives NaN or infinite outputs (damaged weights, or a training run that diverged): retrain "
        "or replace it")


def test_predict_piped_into_a_reader_that_stops_early_ends_quietly(built_models, tmp_path):
    """As `python -m trainer predict ... | head -1` would, with more lines than a pipe holds."""
    folder = tmp_path / "photos"
    folder.mkdir()
    image = encode_image(size=(4, 4))
    for n in range(600):
        (folder / f"{n:04}.png").write_bytes(image)
    process = subprocess.Popen([sys.executable, "-m", "trainer", "predict", str(built_models / "tiny.h5"), str(folder),
                                "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=CHECKOUT)
    assert json.loads(process.stdout.readline())["file"] == f"{folder}/0000.png"
    process.stdout.close()
    assert process.wait(timeout=120) == 128 + signal.SIGPIPE
    with process.stderr:
        assert process.stderr.read() == b""


def test_predict_into_a_full_disk_says_so_in_one_line(built_models, tmp_path):
    """As `python -m trainer predict ... > answers.txt` on a full disk: /dev/full fails every write so."""
    (tmp_path / "a.png").write_bytes(encode_image(size=(4, 4)))
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "trainer", "predict", str(built_models / "tiny.h5"),
                                 str(tmp_path / "a.png")], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                                cwd=CHECKOUT)
    assert (result.returncode, result.stderr) == (
        2, "error: Cannot write the answers to standard output (No space left on device)\n")


def test_a_ctrl_c_once_the_command_is_done_is_ignored_while_python_shuts_down():
    # As a Ctrl-C after "Saved ..." lands in an exit handler while TensorFlow shuts down (a
    # traceback), or after Python's own signal handling has ended (status 130 for a saved model).
    script = ("import atexit, os, signal, time; from trainer.__main__ import _ignore_late_interrupts; "
              "atexit.register(time.sleep, 0.2); _ignore_late_interrupts(0); os.kill(os.getpid(), signal.SIGINT)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=CHECKOUT)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("option", ["--out", "--run-dir"])
def test_an_out_or_run_dir_that_is_a_file_is_refused_before_training(option, image_folder, tmp_path, capsys):
    (tmp_path / "models").write_text("not a folder")
    folders = {"--out": tmp_path / "out", "--run-dir": tmp_path / "runs"} | {option: tmp_path / "models"}
    err = refused(["train", "--data", str(image_folder), *(str(x) for pair in folders.items() for x in pair)], capsys)
    assert f"{option} must be a folder that can be written to; {tmp_path / 'models'} is a file" in err


def test_a_read_only_out_folder_is_refused_before_the_data_loads(monkeypatch, image_folder, tmp_path, capsys):
    def read_only(*args, **kwargs):  # chmod would not do: the tests may run as root
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr("trainer.data.load_dataset", pytest.fail)
    err = refused(["train", "--data", str(image_folder), "--out", str(tmp_path / "models")], capsys)
    assert err == f"error: --out must be a folder that can be written to; {tmp_path / 'models'}: Permission denied"


@pytest.mark.parametrize("name", [["--name", "tiny"], []])
def test_a_model_of_the_same_name_is_replaced_only_when_asked(name, monkeypatch, image_folder, tmp_path, capsys):
    trained = []
    monkeypatch.setattr("trainer.train.train", lambda *args, **kwargs: trained.append(kwargs))
    (tmp_path / "models").mkdir()
    saved = tmp_path / "models" / ("tiny.h5" if name else "data_scratch.h5")  # by default: DATA_ARCH
    saved.write_bytes(b"an hour's work")
    argv = ["train", "--data", str(image_folder), *name, "--out", str(tmp_path / "models"),
            "--run-dir", str(tmp_path / "runs")]
    with monkeypatch.context() as patch:
        patch.setattr("trainer.data.load_dataset", pytest.fail)  # refused before the data loads
        err = refused(argv, capsys)
    assert f"{saved.name} exists: pass --replace to train a new one in its place, or --name to save beside it" in err
    assert trained == []
    assert main([*argv, "--replace"]) == 0 and trained == [{"replace": True}]


def test_data_named_without_letters_or_digits_gives_the_model_a_name_still(monkeypatch, image_folder, tmp_path, capsys):
    data = shutil.copytree(image_folder, tmp_path / "!!!")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "data_scratch.h5").write_bytes(b"an hour's work")
    monkeypatch.setattr("trainer.data.load_dataset", pytest.fail)
    err = refused(["train", "--data", str(data), "--out", str(tmp_path / "models")], capsys)
    assert "data_scratch.h5 exists: pass --replace" in err


def test_a_long_data_name_gives_a_name_a_file_can_have(monkeypatch, image_folder, tmp_path, capsys):
    # A folder's name may take 255 bytes; the model's has MAX_NAME_BYTES, and a lock file beside it.
    data = shutil.copytree(image_folder, tmp_path / ("a" * 245))
    trained = []
    monkeypatch.setattr("trainer.train.train", lambda *args, **kwargs: trained.append(args[4]))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")]) == 0
    assert trained == ["a" * (MAX_NAME_BYTES - len("_scratch")) + "_scratch"]
    assert default_name("\u732b" * 85, "vgg16") == "\u732b" * 31 + "_vgg16"  # 3 bytes each: none cut in two


def test_models_are_not_saved_into_the_run_folder_deleted_after_them(monkeypatch, image_folder, tmp_path, capsys):
    monkeypatch.setattr("trainer.data.load_dataset", pytest.fail)
    err = refused(["train", "--data", str(image_folder), "--name", "m", "--run-dir", str(tmp_path / "runs"),
                   "--out", str(tmp_path / "runs" / "m" / "models")], capsys)
    assert err == f"error: --out must not be inside {tmp_path / 'runs' / 'm'}: that run folder is deleted once the " \
                  "model is saved"


@pytest.mark.parametrize("per_class", [1, 2])
def test_a_transfer_model_says_it_needs_three_images_a_class(tmp_path, capsys, per_class):
    # One is held out, one picks the epoch: "hold out less" could not help, nor a second image a class.
    write_image_folder(tmp_path / "data", per_class=per_class)
    err = refused(["train", "--arch", "vgg16", "--weights", "none", "--data", str(tmp_path / "data"), "--batch-size",
                   "1", "--image-size", "32", "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")],
                  capsys)
    assert err.endswith("to hold out a share of 0.1 and train on the rest: add images: a transfer model holds out "
                        "one a class or more, then sets aside one or more of the rest to pick its epoch, so it needs "
                        "at least 3 a class")


def test_a_second_run_of_the_same_name_is_refused_before_its_data_loads(monkeypatch, image_folder, tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr("trainer.data.load_dataset", pytest.fail)
    with open(tmp_path / "runs" / ".tiny.lock", "w") as first:
        fcntl.flock(first, fcntl.LOCK_EX)  # as a first run holds it while it trains
        err = refused(["train", "--data", str(image_folder), "--name", "tiny", "--out", str(tmp_path / "models"),
                       "--run-dir", str(tmp_path / "runs")], capsys)
    assert f"Another training run is using {tmp_path / 'runs' / 'tiny'}: wait for it to end" in err


def test_missing_data_is_refused_before_a_run_folder_or_lock_is_made(tmp_path, capsys):
    err = refused(["train", "--data", "nowhere", "--run-dir", str(tmp_path / "runs")], capsys)
    assert err == "error: --data must be cifar10 or a folder or .zip of class subfolders; there is no nowhere"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("option", ["--data", "--test-data"])
def test_a_file_that_is_no_zip_is_refused_before_a_run_folder_or_lock_is_made(option, image_folder, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a data set")
    data = str(notes) if option == "--data" else str(image_folder)
    err = refused(["train", "--data", data, option, str(notes), "--run-dir", str(tmp_path / "runs")], capsys)
    assert err == f"error: {notes} is neither a folder nor a .zip of class subfolders"
    assert not (tmp_path / "runs").exists()


def test_missing_test_data_is_refused_before_loading_the_training_data(image_folder, capsys):
    err = refused(["train", "--data", str(image_folder), "--test-data", "nowhere"], capsys)
    assert err == "error: --test-data must be a folder or .zip of class subfolders; there is no nowhere"


def test_sigterm_during_the_save_leaves_no_temporary_files(image_folder, tmp_path, monkeypatch, capsys):
    # As a process manager stops a run: the half-written files of the save under way go with it.
    real_save = keras.Model.save

    def save_then_terminated(self, path, **kwargs):
        real_save(self, path, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(keras.Model, "save", save_then_terminated)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "models"
    assert main(["train", "--data", str(image_folder), "--name", "tiny", "--epochs", "1", "--batch-size", "16",
                 "--image-size", "16", "--validation-fraction", "0.2", "--out", str(out),
                 "--run-dir", str(tmp_path / "runs")]) == 128 + signal.SIGTERM
    assert list(out.iterdir()) == []
    assert "Stopped (SIGTERM): nothing was saved in the models folder." in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # put back


def test_ctrl_c_once_the_model_is_saved_says_so(image_folder, tmp_path, monkeypatch, capsys):
    # Not "nothing was saved": the same command again would then be refused, as the model exists.
    out = tmp_path / "models"
    real_rmtree = shutil.rmtree

    def interrupted_once_saved(path, **kwargs):  # as the run's folder is deleted, after the save
        if (out / "tiny.h5").exists():
            raise KeyboardInterrupt
        real_rmtree(path, **kwargs)

    monkeypatch.setattr("trainer.train.shutil.rmtree", interrupted_once_saved)
    assert main(["train", "--data", str(image_folder), "--name", "tiny", "--epochs", "1", "--batch-size", "16",
                 "--image-size", "16", "--validation-fraction", "0.2", "--out", str(out),
                 "--run-dir", str(tmp_path / "runs")]) == 130
    assert capsys.readouterr().err.strip().endswith(f"Interrupted, after {out / 'tiny.h5'} was saved.")
    assert (out / "tiny.h5").exists() and (out / "tiny.json").exists()


def test_a_foreign_folder_in_place_of_a_run_is_left_alone(image_folder, tmp_path, capsys):
    keep = tmp_path / "runs" / "notes"
    keep.mkdir(parents=True)
    (keep / "thesis.txt").write_text("precious")
    err = refused(["train", "--data", str(image_folder), "--name", "notes", "--epochs", "1", "--image-size", "16",
                   "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")], capsys)
    assert "is not a folder of checkpoints left by the trainer, so it is left alone" in err
    assert (keep / "thesis.txt").read_text() == "precious"


def test_evaluate_asks_for_the_h5_not_the_card(built_models, image_folder, capsys):
    err = refused(["evaluate", str(built_models / "tiny.json"), "--data", str(image_folder)], capsys)
    assert "tiny.json is not a .h5 model file" in err


def test_evaluate_asks_to_rename_a_model_named_in_capitals(built_models, tmp_path, capsys):
    # Keras' load_model refuses the name, with a message about TensorFlow's SavedModel.
    shutil.copy(built_models / "tiny.h5", tmp_path / "TINY.H5")
    shutil.copy(built_models / "tiny.json", tmp_path / "TINY.json")
    err = refused(["evaluate", str(tmp_path / "TINY.H5"), "--data", str(tmp_path / "nowhere")], capsys)
    assert err == "error: Keras reads .h5 files only by that name: rename TINY.H5 to TINY.h5"


@pytest.mark.parametrize("argv, usage, message", [
    (["train", "--data", "x", "--epohcs", "3"], "usage: python -m trainer train",
     "unrecognized arguments: --epohcs 3 (did you mean --epochs?)"),
    (["evaluate", "m.h5", "--data", "x", "stray"], "usage: python -m trainer evaluate",
     "unrecognized arguments: stray"),
])
def test_a_misspelled_option_is_answered_with_its_commands_usage(argv, usage, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith(usage) and message in err
    assert len(err.splitlines()) == 2  # the usage in one line, then the error


@pytest.mark.parametrize("found, advice", [
    ({}, "resume from the last backed-up epoch (or to start over, if none had ended)"),
    ({"backed_up": (4, 12, "scratch")}, "resume after epoch 4 of 12"),
    ({"backed_up": (3, 10, "fine_tune")}, "resume after epoch 3 of 10 of the fine-tune phase"),
    ({"backed_up": (0, 5, "head")}, "start over (no epoch had ended)"),
    ({"backed_up": (0, 10, "fine_tune")}, "resume at the start of the fine-tune phase (none of its epochs had ended)"),
    ({"trained": True}, "score and save the model without training it again (every epoch had ended and is backed up)"),
])
def test_a_ctrl_c_in_training_says_where_a_rerun_goes_on(found, advice):
    interrupt = KeyboardInterrupt()
    interrupt.__dict__.update(found)
    assert _resumed_from(interrupt) == advice


class InterruptedImport(types.ModuleType):
    """Stands for a module whose import the user stops with Ctrl-C (Keras takes seconds)."""

    def __getattr__(self, name):
        raise KeyboardInterrupt


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "x"], "Run the same command again to resume"),
    (["evaluate", "m.h5", "--data", "x"], "Interrupted."),
])
def test_ctrl_c_while_keras_imports_is_one_message_not_a_traceback(monkeypatch, argv, message, capsys):
    monkeypatch.setitem(sys.modules, "trainer.train", InterruptedImport("trainer.train"))
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("Interrupted") and message in err and "Traceback" not in err


def test_a_write_that_fails_in_hdf5_while_backing_up_is_one_line_and_no_crash(image_folder, tmp_path):
    """A file-size limit fails h5py's writes as a full disk does (EFBIG for ENOSPC): the run
    says so in one line and leaves no partial backup, where it printed h5py's traceback (and
    on a full tmpfs, crashed with a segfault as Python exited)."""
    import resource

    def limited():  # in the child: files up to 100 kB, under a backup of this net
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    runs = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "trainer", "train", "--data", str(image_folder), "--name", "tiny", "--epochs", "2",
         "--batch-size", "16", "--image-size", "16", "--validation-fraction", "0.2", "--out", str(tmp_path / "models"),
         "--run-dir", str(runs)],
        capture_output=True, text=True, timeout=300, cwd=CHECKOUT, preexec_fn=limited)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: Cannot write the run's log and backup in {runs / 'tiny' / 'scratch'} (File too large); once that "
        "is put right, the same command goes on from the run's last backup, or starts afresh if it has none.")
    assert not any((runs / "tiny" / "scratch" / "backup").iterdir())


def test_evaluate_refuses_a_model_whose_outputs_are_not_probabilities(tmp_path, image_folder, capsys):
    import keras

    save_model_without_softmax(tmp_path / "logits.h5")
    (tmp_path / "logits.json").write_text(json.dumps({"classes": sorted(DATASET_CLASSES), "input_shape": [16, 16, 3]}))
    assert keras.saving.load_model(tmp_path / "logits.h5").output_shape == (None, 3)
    assert main(["evaluate", str(tmp_path / "logits.h5"), "--data", str(image_folder)]) == 2
    # After the warning that this card (without a record of its images) cannot tell what the model trained on.
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: logits.h5 gives outputs that are not probabilities (its last layer needs a softmax): retrain or replace it")


def test_evaluate_reads_images_at_the_height_and_width_of_a_model_of_another_shape(tmp_path, image_folder, capsys):
    import keras

    inputs = keras.Input((8, 24, 3))
    flat = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))  # takes that shape alone
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(flat)).save(tmp_path / "wide.h5")
    (tmp_path / "wide.json").write_text(json.dumps({"classes": sorted(DATASET_CLASSES), "input_shape": [8, 24, 3]}))
    assert main(["evaluate", str(tmp_path / "wide.h5"), "--data", str(image_folder)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_evaluate_says_a_lambda_layer_is_why_a_model_cannot_be_used(tmp_path, image_folder, capsys):
    save_lambda_model(tmp_path / "lam.h5")
    (tmp_path / "lam.json").write_text(json.dumps({"classes": sorted(DATASET_CLASSES), "input_shape": [16, 16, 3]}))
    err = refused(["evaluate", str(tmp_path / "lam.h5"), "--data", str(image_folder)], capsys)
    assert err == (f"error: Cannot use {tmp_path / 'lam.h5'}: it holds a Lambda layer, Python code that Keras does "
                   "not run from a file: build the model of Keras's own layers, without Lambda, and save it again")


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_predict_refuses_a_top_k_that_is_not_a_whole_number_of_1_or_more(value, tmp_path, capsys):
    # Refused by argparse, before the model or any image is read.
    with pytest.raises(SystemExit) as stopped:
        main(["predict", str(tmp_path / "tiny.h5"), str(tmp_path), "--top-k", value])
    assert stopped.value.code == 2
    assert f"argument --top-k: must be a whole number of 1 or more, not {value!r}" in capsys.readouterr().err
