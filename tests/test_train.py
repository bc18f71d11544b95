import errno
import fcntl
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from conftest import TINY, full_disk_in_h5py, reload_in_fresh_process, run
from trainer import resume, train as train_module
from trainer.data import load_folder, stratified_split
from trainer.metrics import classification_report
from trainer.presets import PRESETS

# VGG16 from random weights, small enough for a run in seconds.
TINY_VGG16 = PRESETS["vgg16"] | {"image_size": 16, "upscale_size": 32, "weights": "none", "dense_units": 8,
                                 "batch_size": 8, "validation_fraction": 0.2}


def narrow_vgg16(include_top=True, weights="imagenet", input_shape=None):
    """VGG16's layers by name and shape of net (five blocks of 2, 2, 3, 3 and 3 convs, each
    block ending in a pooling), at 4 or 8 filters a conv where VGG16 has 64 to 512: 5.5
    thousand parameters for its 14.7 million. Built from random weights only, as TINY_VGG16's."""
    assert not include_top and weights is None
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = inputs
    for block, (convs, width) in enumerate([(2, 4), (2, 4), (3, 8), (3, 8), (3, 8)], start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}")(x)
        x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name="vgg16")


@pytest.fixture
def narrow_vgg16_base(monkeypatch):
    """TINY_VGG16 runs on narrow_vgg16 in the tests of the two phases' bookkeeping (resuming,
    stopping, the epoch kept, the rates), which is the same on any base; the full base took
    each run nearly twice as long. test_vgg16_trains_in_two_phases keeps the real VGG16."""
    monkeypatch.setattr(keras.applications, "VGG16", narrow_vgg16)


@pytest.fixture(autouse=True)
def on_a_cpu(monkeypatch):
    """These tests expect a CPU's float32 training (and its same-weights reruns) even on a GPU
    machine; the tests of the GPU path say so themselves."""
    monkeypatch.setattr(train_module, "_device_kind", lambda: "cpu")


def test_training_writes_a_portable_model_and_a_full_card(image_folder, tmp_path, capsys):
    card = run(TINY, image_folder, tmp_path)
    model_path = tmp_path / "models" / "tiny.h5"
    saved = json.loads((tmp_path / "models" / "tiny.json").read_text())
    assert saved == json.loads(json.dumps(card))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny.h5", "tiny.json"]
    assert not (tmp_path / "runs" / "tiny").exists()  # finished: nothing left to resume

    assert saved["classes"] == ["blue", "green", "red"] and saved["input_shape"] == [16, 16, 3]
    assert saved["architecture"] == "scratch" and saved["weights"] == "none"
    assert saved["file_size_bytes"] == model_path.stat().st_size and saved["parameters"] > 0
    assert saved["epochs_run"] == 3 and saved["backend"] == "tensorflow" and saved["device"].startswith("cpu")
    assert saved["training_images"] + saved["evaluation"]["samples"] == 30  # the image folder's
    assert saved["training_precision"] == "float32"
    assert saved["test_digest"] is None and saved["test_evaluation"] is None  # no test set given
    assert saved["hyperparameters"]["widths"] == [8, 16] and saved["training_seconds"] > 0
    for key in resume.HISTORY_KEYS:
        assert len(saved["history"][key]) == 3
    assert saved["history"]["learning_rate"][0] > 0
    evaluation = saved["evaluation"]
    assert evaluation["samples"] == 6 and sum(row["support"] for row in evaluation["per_class"].values()) == 6
    assert np.array(evaluation["confusion_matrix"]).sum() == 6
    assert {"precision_macro", "recall_weighted", "f1_macro", "loss", "accuracy"} <= evaluation.keys()
    out = capsys.readouterr().out
    assert "Held out (6 images)" in out and "training on cpu" in out
    # Into a pipe or file, a line per epoch: no progress bar's redraws.
    assert out.count("Epoch 3/3\n3/3 - ") == 1 and "\x1b[" not in out and "\r" not in out

    # The reloaded model takes raw 0-255 pixels (uint8 or float) and gives the same answers.
    data = load_folder(image_folder, 16)
    here = keras.ops.convert_to_numpy(keras.saving.load_model(model_path)(data.images[:5].astype(np.float32)))
    there = reload_in_fresh_process(model_path, data.images[:5])
    assert np.allclose(here, there, atol=1e-5) and np.allclose(there.sum(axis=1), 1, atol=1e-5)


def test_training_learns_the_tinted_classes(image_folder, tmp_path):
    card = run(TINY | {"epochs": 8}, image_folder, tmp_path)
    assert card["evaluation"]["accuracy"] >= 2 / 3  # chance is 1/3


def test_the_same_run_twice_gives_the_same_model(image_folder, tmp_path):
    first = run(TINY | {"epochs": 2}, image_folder, tmp_path / "first")
    second = run(TINY | {"epochs": 2}, image_folder, tmp_path / "second")
    assert first["history"]["loss"] == pytest.approx(second["history"]["loss"], rel=1e-4)
    assert first["evaluation"]["confusion_matrix"] == second["evaluation"]["confusion_matrix"]


def test_mixed_precision_is_used_on_a_gpu_only_and_saved_as_float32(image_folder, tmp_path, monkeypatch):
    assert train_module.training_precision(TINY) == "float32"  # on a CPU
    monkeypatch.setattr(train_module, "_device_kind", lambda: "gpu")
    card = run(TINY | {"epochs": 1}, image_folder, tmp_path / "gpu")
    assert card["training_precision"] == "mixed_bfloat16"

    saved = keras.saving.load_model(tmp_path / "gpu" / "models" / "tiny.h5")
    layers = saved.layers + saved.get_layer("scratch_cnn").layers  # flip averaging wraps the classifier
    assert {layer.dtype_policy.name for layer in layers} == {"float32"}


def test_airbench_options_train_and_save_a_portable_float32_model(image_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "_device_kind", lambda: "gpu")  # the mixed-precision path too
    hp = TINY | {"activation": "gelu", "batchnorm_scale": False, "identity_init": True, "logit_scale": 1 / 9,
                 "bias_lr_scale": 64.0, "lookahead_every": 2, "residual": True, "activation_after_sum": True}
    card = run(hp, image_folder, tmp_path)
    assert card["training_precision"] == "mixed_bfloat16" and card["epochs_run"] == 3
    model_path = tmp_path / "models" / "tiny.h5"
    pixels = load_folder(image_folder, 16).images[:5]
    here = keras.ops.convert_to_numpy(keras.saving.load_model(model_path)(pixels.astype(np.float32)))
    assert np.allclose(here, reload_in_fresh_process(model_path, pixels), atol=1e-5)


def test_a_whitened_stem_is_computed_from_the_data_and_saved_untrained(image_folder, tmp_path, monkeypatch):
    samples, computed, kernel_from = [], [], train_module.models.patch_whitening_kernel

    def recording_kernel(images):
        samples.append(images)
        computed.append(kernel_from(images))
        return computed[-1]

    monkeypatch.setattr(train_module.models, "patch_whitening_kernel", recording_kernel)
    # Room for three of the 24 training images (sorted by class): one of each class, not the first three.
    monkeypatch.setattr(train_module.models, "WHITENING_PATCHES", 3 * 16 * 16)
    card = run(TINY | {"whiten_stem": True, "epochs": 2}, image_folder, tmp_path)
    assert card["hyperparameters"]["whiten_stem"] and len(computed) == 1
    assert len(samples[0]) == 3
    assert sorted(samples[0].mean(axis=(1, 2)).argmax(axis=1)) == [0, 1, 2]  # each class's tinted channel
    saved = keras.saving.load_model(tmp_path / "models" / "tiny.h5").get_layer("scratch_cnn")
    assert np.array_equal(saved.get_layer("stem_whiten").get_weights()[0], computed[0])


# `python -m trainer`, held at the end of its first epoch until its Ctrl-C has been noted (for a
# minute at most): else a test machine that stalls for a second or two lets the tiny run end
# before the Ctrl-C comes.
HELD_AFTER_FIRST_EPOCH = """
import runpy, time
from trainer.keras_import import import_keras
import_keras()
from trainer import resume

stop_at_epoch_end = resume.StopOnInterrupt.on_epoch_end

def held_until_interrupted(self, epoch, logs=None):
    deadline = time.monotonic() + 60
    while epoch == 0 and not self.interrupted and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_at_epoch_end(self, epoch, logs)

resume.StopOnInterrupt.on_epoch_end = held_until_interrupted
runpy.run_module("trainer", run_name="__main__")
"""


def test_an_interrupted_run_saves_nothing_and_resumes(image_folder, tmp_path):
    """Ctrl-C (SIGINT) a real `python -m trainer train` after its first epoch, then run the
    same command again: nothing is published in between, and training picks up where it was."""
    out, runs = tmp_path / "models", tmp_path / "runs"
    arguments = ["train", "--data", str(image_folder), "--name", "tiny", "--epochs", "3", "--batch-size", "8",
                 "--image-size", "16", "--validation-fraction", "0.2", "--out", str(out), "--run-dir", str(runs)]
    command = [sys.executable, "-m", "trainer", *arguments]
    log = runs / "tiny" / "scratch" / "history.csv"
    first = subprocess.Popen([sys.executable, "-c", HELD_AFTER_FIRST_EPOCH, *arguments],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (log.exists() and len(log.read_text().splitlines()) >= 2):  # header + one epoch
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    output, err = first.communicate(timeout=60)
    assert first.returncode == 130 and "Run the same command again to resume after epoch 1 of 3." in err, (
        output[-3000:], err[-3000:])
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())

    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Epoch 1/3" not in second.stdout and "Epoch 2/3" in second.stdout  # resumed after the first epoch
    card = json.loads((out / "tiny.json").read_text())
    assert card["epochs_run"] == 3 and len(card["history"]["val_loss"]) == 3


def test_a_second_run_on_the_same_run_folder_is_refused_while_the_first_trains(image_folder, tmp_path):
    (tmp_path / "runs").mkdir()
    with open(tmp_path / "runs" / ".tiny.lock", "w") as first:
        fcntl.flock(first, fcntl.LOCK_EX)  # as a first run holds it while it trains
        with pytest.raises(train_module.TrainingError, match="Another training run is using .*tiny: wait"):
            run(TINY, image_folder, tmp_path)
        assert not (tmp_path / "runs" / "tiny").exists() and not (tmp_path / "models").exists()
        assert (tmp_path / "runs" / ".tiny.lock").exists()  # the first run's, left to it
    assert run(TINY, image_folder, tmp_path)["epochs_run"] == 3  # once the first has ended
    assert list((tmp_path / "runs").iterdir()) == []  # its checkpoints gone, and its lock file


def test_a_run_that_opens_the_lock_file_as_the_last_run_removes_it_locks_the_new_one(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    path, real_flock = tmp_path / "runs" / ".tiny.lock", fcntl.flock
    last = open(path, "w")
    real_flock(last, fcntl.LOCK_EX)

    def as_the_last_run_ends(file, operation):
        if not last.closed:  # it removes its lock file and lets go after this run opened the file
            path.unlink()
            last.close()
        real_flock(file, operation)

    monkeypatch.setattr(fcntl, "flock", as_the_last_run_ends)
    with train_module.run_lock(tmp_path / "runs" / "tiny"):
        with open(path, "a") as another:  # as a third run would open it now
            with pytest.raises(BlockingIOError):
                real_flock(another, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert not path.exists()


def test_a_file_system_that_cannot_lock_gets_a_warning_not_a_traceback(tmp_path, monkeypatch, capsys):
    def no_locks(file, operation):  # as on some network file systems
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with train_module.run_lock(tmp_path / "runs" / "tiny"):
        pass
    assert capsys.readouterr().err.startswith(f"warning: cannot lock {tmp_path / 'runs' / '.tiny.lock'} "
                                              "(No locks available), so a second run with this name")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_that_python_ignores_in_a_finalizer_still_stops_training(image_folder, tmp_path, monkeypatch,
                                                                          capsys):
    """TensorFlow runs finalizers between batches, and a KeyboardInterrupt raised inside one
    is printed and ignored by Python. The trainer notes the SIGINT and stops at the epoch's end."""

    class SignalledWhileCollected:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)

    SignalledWhileCollected()  # on its own, Python prints the interrupt and goes on

    class CtrlCLostInAFinalizer(train_module.EpochLogger):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations == 5:  # epoch 2 of 3 steps each
                SignalledWhileCollected()

    handler = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(train_module, "EpochLogger", CtrlCLostInAFinalizer)
    with pytest.raises(KeyboardInterrupt):
        run(TINY, image_folder, tmp_path)
    out = capsys.readouterr().out
    assert "Epoch 2/3" in out and "Epoch 3/3" not in out
    assert out.count("val_loss: ") == 2  # the stopped epoch's figures are shown, as the others'
    assert len((tmp_path / "runs" / "tiny" / "scratch" / "history.csv").read_text().splitlines()) == 1 + 2
    assert not (tmp_path / "models").exists()
    assert signal.getsignal(signal.SIGINT) is handler


def interrupt_while_saving(image_folder, tmp_path, monkeypatch, hp=TINY):
    """Run `hp` to its end and stop it with Ctrl-C as the model is being saved."""
    def interrupted(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(train_module.cards, "save_model_and_card", interrupted)
        with pytest.raises(KeyboardInterrupt) as stopped:
            run(hp, image_folder, tmp_path)
    assert stopped.value.trained  # so the command line says a rerun trains nothing again


def test_a_run_interrupted_after_training_resumes_without_retraining(image_folder, tmp_path, monkeypatch, capsys):
    interrupt_while_saving(image_folder, tmp_path, monkeypatch)
    assert "Epoch 3/3" in capsys.readouterr().out and not (tmp_path / "models").exists()

    card = run(TINY, image_folder, tmp_path)
    assert "Epoch" not in capsys.readouterr().out  # nothing trained again
    assert card["epochs_run"] == 3 and (tmp_path / "models" / "tiny.h5").exists()
    assert card["training_seconds"] >= round(sum(card["history"]["seconds"]), 1)  # the first process's epochs count
    assert not (tmp_path / "runs" / "tiny").exists()


def test_the_card_says_in_words_what_the_model_takes_gives_and_how_often_it_was_right(image_folder, tmp_path):
    # Its keys alone ("evaluation", "input_shape") are explained only in trainer/card.py, which
    # whoever downloads the card from the web app does not have.
    card = run(TINY, image_folder, tmp_path)
    right = int(np.trace(np.asarray(card["evaluation"]["confusion_matrix"])))
    assert card["summary"] == (
        "A CNN trained from scratch on data. It takes an RGB picture of 16 x 16 pixels (values 0-255) and gives a "
        "probability for each of its 3 classes, in this order: blue, green, red. On 6 images of data held out from "
        f"its training, it was right {right / 6:.1%} of the time ({right} of 6).")
    assert next(iter(json.loads((tmp_path / "models" / "tiny.json").read_text()).items())) == ("summary", card["summary"])


def test_phases_that_stopped_early_are_not_trained_again_on_resuming(image_folder, narrow_vgg16_base, tmp_path,
                                                                     monkeypatch, capsys):
    class StopAfterTwoEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 1

    monkeypatch.setattr(train_module, "_stopping_callbacks", lambda *args, **kwargs: [StopAfterTwoEpochs()])
    hp = TINY_VGG16 | {"head_epochs": 4, "fine_tune_epochs": 4}
    interrupt_while_saving(image_folder, tmp_path, monkeypatch, hp)
    assert capsys.readouterr().out.count("Epoch 2/4") == 2

    card = run(hp, image_folder, tmp_path)
    out = capsys.readouterr().out
    assert "Epoch" not in out and out.count("the phase ended after 2 epochs") == 2
    assert card["epochs_run"] == 4


def test_a_run_left_by_other_settings_does_not_get_around_replace(image_folder, tmp_path, monkeypatch, capsys):
    interrupt_while_saving(image_folder, tmp_path, monkeypatch)  # an unfinished run of TINY
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.h5").write_bytes(b"an hour's work")
    data = load_folder(image_folder, TINY["image_size"])
    with pytest.raises(train_module.TrainingError, match="tiny.h5 exists: pass --replace"):
        train_module.train(TINY | {"seed": 3}, data, None, tmp_path / "models", "tiny", tmp_path / "runs" / "tiny",
                           replace=False)
    assert (tmp_path / "models" / "tiny.h5").read_bytes() == b"an hour's work"
    assert (tmp_path / "runs" / "tiny" / "scratch" / "backup").exists()  # the other run is left as it was
    # The same settings resume that run, which was started when no model was in the way.
    card = train_module.train(TINY, data, None, tmp_path / "models", "tiny", tmp_path / "runs" / "tiny", replace=False)
    assert card["epochs_run"] == 3


def test_a_changed_command_starts_afresh_rather_than_resuming(image_folder, tmp_path, monkeypatch, capsys):
    interrupt_while_saving(image_folder, tmp_path, monkeypatch)
    capsys.readouterr()

    card = run(TINY | {"epochs": 2, "learning_rate": 0.01}, image_folder, tmp_path)
    out = capsys.readouterr().out
    assert ("unfinished run with other settings (epochs 3, now 2; learning_rate 0.05, now 0.01): starting afresh"
            in out and "Epoch 1/2" in out)
    assert card["epochs_run"] == 2 and card["hyperparameters"]["learning_rate"] == 0.01


def test_the_same_files_from_another_place_are_not_called_other_data(tmp_path):
    settings = {"hyperparameters": TINY, "data": "raw-img", "files": "abc", "classes": ["cat", "dog"]}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    now = json.dumps(settings | {"data": "animals10-sample"})
    assert train_module._changes(tmp_path / "settings.json", now) == (
        'the same files from data named "raw-img", now "animals10-sample"')
    assert train_module._changes(tmp_path / "settings.json", json.dumps(settings | {"files": "abd"})) == "other data"


def test_an_older_trainers_run_folder_is_said_to_be_one_not_other_settings_or_data(tmp_path):
    settings = tmp_path / "settings.json"
    now = json.dumps({"hyperparameters": TINY | {"cutmix": 0.0}, "data": "tiny", "files": "abc",
                      "classes": ["cat", "dog"]})
    assert train_module._changes(settings, now) == "no record of its settings (an older trainer's run)"
    # As a trainer wrote it before runs recorded their files' digest and before cutmix was a setting
    # (and while another, since dropped, was one).
    older = {key: value for key, value in TINY.items() if key != "cutmix"} | {"dropped": 4}
    settings.write_text(json.dumps({"hyperparameters": older, "data": "tiny", "images": 24,
                                    "classes": ["cat", "dog"]}))
    assert train_module._changes(settings, now) == (
        "other settings (cutmix not recorded, now 0.0; dropped 4, now not a setting) "
        "and no record of its image files (an older trainer's run)")


def test_a_renamed_image_starts_afresh_though_count_and_classes_are_the_same(image_folder, tmp_path, monkeypatch,
                                                                             capsys):
    interrupt_while_saving(image_folder, tmp_path, monkeypatch)
    capsys.readouterr()
    photo = sorted(path for path in image_folder.rglob("*") if path.is_file())[0]
    photo.rename(photo.with_name("renamed" + photo.suffix))  # another image in its place

    run(TINY, image_folder, tmp_path)
    out = capsys.readouterr().out
    assert "unfinished run with other data: starting afresh" in out and "Epoch 1/3" in out


def test_a_diverging_run_stops_with_advice_and_leaves_nothing_to_resume(image_folder, tmp_path, capsys):
    with pytest.raises(train_module.TrainingError, match="Training diverged.*Lower the learning rate"):
        run(TINY | {"learning_rate": 1e30}, image_folder, tmp_path)
    assert "Epoch 1/3" in capsys.readouterr().out
    assert not (tmp_path / "runs" / "tiny").exists() and not (tmp_path / "models").exists()


def test_weights_broken_by_an_epochs_last_step_are_said_to_have_diverged(image_folder, tmp_path):
    # One step: its loss, from before the step, is finite; the weights after it give NaN.
    with pytest.raises(train_module.TrainingError, match="Training diverged.*in epoch 1.*Lower the learning rate"):
        run(TINY | {"learning_rate": 1e9, "batch_size": 256, "epochs": 1}, image_folder, tmp_path)


def test_a_trained_model_that_gives_nan_leaves_nothing_to_resume(image_folder, tmp_path, monkeypatch):
    def nan_outputs(model, data):
        raise train_module.TrainingError("The model gives NaN or infinite outputs")

    monkeypatch.setattr(train_module, "evaluate", nan_outputs)  # a rerun would resume the same weights
    with pytest.raises(train_module.TrainingError, match="NaN"):
        run(TINY, image_folder, tmp_path)
    assert not (tmp_path / "runs" / "tiny").exists() and not (tmp_path / "models").exists()


def test_a_transfer_run_whose_first_phase_diverges_does_not_go_on_to_the_second(image_folder, narrow_vgg16_base,
                                                                                tmp_path, capsys):
    with pytest.raises(train_module.TrainingError, match="diverged: the loss became NaN or infinite in epoch 1"):
        run(TINY_VGG16 | {"head_epochs": 2, "fine_tune_epochs": 2, "head_learning_rate": 1e30}, image_folder, tmp_path)
    assert "Fine-tuning" not in capsys.readouterr().out
    assert not (tmp_path / "runs" / "tiny").exists()


def interrupted_run(hp, image_folder, tmp_path, monkeypatch, as_epoch_ends: int):
    """Run `hp` and stop it with Ctrl-C as epoch `as_epoch_ends` (from 1) ends."""
    class CtrlC(train_module.EpochLogger):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch + 1 == as_epoch_ends:
                raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "EpochLogger", CtrlC)
        with pytest.raises(KeyboardInterrupt):
            run(hp, image_folder, tmp_path)


@pytest.mark.parametrize("hp, phase", [
    (TINY | {"batch_size": 4}, "scratch"),  # six batches an epoch: enough orders for a changed one to show
    # The head's dropout draws from a random-number generator, whose state the backup keeps too.
    (TINY_VGG16 | {"batch_size": 4, "head_epochs": 3, "fine_tune_epochs": 1, "dropout": 0.5}, "head"),
])
def test_a_resumed_run_ends_as_an_unbroken_one(image_folder, narrow_vgg16_base, tmp_path, monkeypatch, capsys, hp,
                                               phase):
    """Same weights, optimizer state, shuffling, augmentation and dropout after the resume: the
    last epoch's loss and the saved weights match a run that was never interrupted."""
    monkeypatch.setattr(resume, "BACKUP_SECONDS", 0.0)  # back up every epoch
    unbroken = run(hp, image_folder, tmp_path / "unbroken")

    interrupted_run(hp, image_folder, tmp_path, monkeypatch, as_epoch_ends=2)
    capsys.readouterr()
    resumed = run(hp, image_folder, tmp_path)
    assert f"Resuming from the backup in {tmp_path / 'runs' / 'tiny' / phase / 'backup'}: 1 of 3 epochs done" \
        in capsys.readouterr().out
    assert resumed["history"]["loss"] == pytest.approx(unbroken["history"]["loss"], rel=1e-5)
    weights = [keras.saving.load_model(path / "models" / "tiny.h5").get_weights() for path in (tmp_path / "unbroken", tmp_path)]
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(*weights))


@pytest.mark.parametrize("scripted, head_rates", [
    ([1.0, 2.0, 3.0, 0.5, 0.4, 0.3, 0.2], [1, 1, 1, 0.2, 0.2, 0.2]),  # the third epoch the second without progress: a cut, then on
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [1, 1, 1, 0.2]),  # and the fourth the third: the head stops
])
def test_a_resumed_phase_cuts_the_rate_and_stops_where_an_unbroken_one_would(image_folder, narrow_vgg16_base, tmp_path,
                                                                              monkeypatch, scripted, head_rates):
    """Early stopping and the rate cut on plateaus count epochs without progress; resumed, they
    go on counting from the backup rather than from nothing (which would cut later and stop at epoch 6)."""
    monkeypatch.setattr(resume, "BACKUP_SECONDS", 0.0)  # back up every epoch
    hp = TINY_VGG16 | {"head_epochs": 6, "fine_tune_epochs": 1, "patience": 3}  # cut after 2 epochs, stop after 3
    EpochLogger = train_module.EpochLogger

    def with_val_losses(interrupt_at=None):
        class Scripted(EpochLogger):
            def on_epoch_end(self, epoch, logs=None):
                super().on_epoch_end(epoch, logs)
                logs["val_loss"] = scripted[epoch]
                if epoch + 1 == interrupt_at:
                    raise KeyboardInterrupt
        return Scripted

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "EpochLogger", with_val_losses(interrupt_at=3))  # before its backup: 2 kept
        with pytest.raises(KeyboardInterrupt):
            run(hp, image_folder, tmp_path)
        patch.setattr(train_module, "EpochLogger", with_val_losses())
        resumed = run(hp, image_folder, tmp_path)
    # As an unbroken run goes: the rate cut after the second epoch without progress, the head
    # stopped after the third, then fine-tuning's one epoch.
    rates = resumed["history"]["learning_rate"]
    assert rates[:len(head_rates)] == pytest.approx([hp["head_learning_rate"] * each for each in head_rates])
    assert resumed["epochs_run"] == len(head_rates) + 1


def test_a_resumed_phase_keeps_the_best_weights_from_before_the_interruption(image_folder, narrow_vgg16_base, tmp_path,
                                                                             monkeypatch):
    """Transfer phases end on their best epoch by validation loss. After a resume, a worse
    epoch must not take the place of a better one from before the interruption."""
    monkeypatch.setattr(resume, "BACKUP_SECONDS", 0.0)  # back up every epoch
    # Phase 2 leaves the weights as they are.
    hp = TINY_VGG16 | {"head_epochs": 3, "fine_tune_epochs": 1, "fine_tune_learning_rate": 1e-12}

    interrupted_run(hp, image_folder, tmp_path, monkeypatch, as_epoch_ends=3)  # before its backup: 2 kept
    scramble_in(monkeypatch, phase=1, epoch=2)  # the resumed epoch: the worst
    card = run(hp, image_folder, tmp_path)
    assert card["epochs_run"] == 4  # the fine-tuning epoch too: phase 2 starts at its own first epoch
    val_loss = card["history"]["val_loss"]
    assert val_loss[2] > max(val_loss[:2])  # the scrambled epoch was the worst
    assert not scrambled_weights_saved(tmp_path)


@pytest.mark.parametrize("fine_tune_losses, fine_tune_epochs, said", [
    # Never below the head's best: stopped after the third, and the head's weights are kept.
    ([0.9, 1.0, 1.1], 4, ["Stopped early, after epoch 3 of 4: val_loss had not improved for 2 epochs",
                          "Keeping the head phase's weights (its epoch 2, val_loss 0.5000): no epoch of this phase "
                          "did better"]),
    # Its best in the middle, run to its end: that epoch is kept, and said.
    ([0.9, 0.4, 0.45], 3, ["Keeping the weights of epoch 2, this phase's best (val_loss 0.4000)"]),
])
def test_a_phase_says_why_it_stopped_early_and_which_epoch_it_keeps(image_folder, narrow_vgg16_base, tmp_path,
                                                                    monkeypatch, capsys, fine_tune_losses,
                                                                    fine_tune_epochs, said):
    """Otherwise "Epoch 3/4" is followed by the scores without a word, and a fine-tuning phase
    whose every epoch was worse than the head's best is dropped unseen."""
    scripted = iter([1.0, 0.5] + fine_tune_losses)  # the head's two epochs, then fine-tuning's

    class Scripted(train_module.EpochLogger):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            logs["val_loss"] = next(scripted)

    monkeypatch.setattr(train_module, "EpochLogger", Scripted)
    hp = TINY_VGG16 | {"head_epochs": 2, "fine_tune_epochs": fine_tune_epochs, "patience": 2}
    card = run(hp, image_folder, tmp_path)
    out = capsys.readouterr().out
    assert card["epochs_run"] == 2 + len(fine_tune_losses)
    fine_tuning = out[out.index("Fine-tuning"):]
    assert [line for line in fine_tuning.splitlines() if line.startswith(("Stopped", "Keeping"))] == said
    assert "Stopped" not in out[:out.index("Fine-tuning")] and "Keeping" not in out[:out.index("Fine-tuning")]


def test_best_weights_damaged_on_disk_are_reported_not_a_traceback(image_folder, narrow_vgg16_base, tmp_path,
                                                                   monkeypatch):
    hp = TINY_VGG16 | {"head_epochs": 2, "fine_tune_epochs": 3}
    interrupted_run(hp, image_folder, tmp_path, monkeypatch, as_epoch_ends=3)  # fine-tuning's third
    best = tmp_path / "runs" / "tiny" / "head" / resume.BEST_WEIGHTS
    best.write_bytes(best.read_bytes()[:1000])
    with pytest.raises(train_module.TrainingError, match=f"{best}, cannot be read .*Delete {tmp_path / 'runs' / 'tiny'}"):
        run(hp, image_folder, tmp_path)


def test_a_transfer_run_picks_its_epoch_on_training_images_never_held_out_ones(image_folder, narrow_vgg16_base,
                                                                               tmp_path, monkeypatch):
    passed = {}
    fit_transfer = train_module._fit_transfer

    def spy(hp, train_set, val_set, run_dir):
        passed.update(fit=train_set, pick=val_set)
        return fit_transfer(hp, train_set, val_set, run_dir)

    monkeypatch.setattr(train_module, "_fit_transfer", spy)
    hp = TINY_VGG16 | {"head_epochs": 1, "fine_tune_epochs": 1}
    card = run(hp, image_folder, tmp_path)
    data = load_folder(image_folder, hp["image_size"])
    _, held_idx = stratified_split(data.labels, hp["validation_fraction"], hp["seed"])
    held_out = {image.tobytes() for image in data.images[held_idx]}
    picking = {image.tobytes() for image in passed["pick"].images}
    assert picking and not picking & held_out and not picking & {i.tobytes() for i in passed["fit"].images}
    assert len(passed["fit"].labels) + len(picking) + len(held_out) == len(data.labels) == 30
    assert card["evaluation"]["samples"] == len(held_out)
    assert card["training_images"] == len(passed["fit"].labels)


def test_fine_tuning_that_never_beats_the_head_phase_leaves_its_weights(image_folder, narrow_vgg16_base, tmp_path,
                                                                        monkeypatch):
    scramble_in(monkeypatch, phase=2, epoch=0)
    card = run(TINY_VGG16 | {"head_epochs": 2, "fine_tune_epochs": 1}, image_folder, tmp_path)
    val_loss = card["history"]["val_loss"]
    assert val_loss[2] > min(val_loss[:2]) and card["epochs_run"] == 3
    assert not scrambled_weights_saved(tmp_path)


def scramble_in(monkeypatch, phase: int, epoch: int):
    """Set the head's output weights to huge random values as `epoch` of transfer `phase` begins."""
    class Scramble(keras.callbacks.Callback):
        def on_epoch_begin(self, at, logs=None):
            if at == epoch:
                layer = self.model.get_layer("logits")
                rng = np.random.default_rng(0)
                layer.set_weights([rng.normal(0, 1000, w.shape) for w in layer.get_weights()])

    phases = []
    plateau_callbacks = train_module._stopping_callbacks

    def callbacks(*args, **kwargs):
        phases.append(None)
        return [*plateau_callbacks(*args, **kwargs), *([Scramble()] if len(phases) == phase else [])]

    monkeypatch.setattr(train_module, "_stopping_callbacks", callbacks)


def scrambled_weights_saved(tmp_path) -> bool:
    kernel = keras.saving.load_model(tmp_path / "models" / "tiny.h5").get_layer("vgg16").get_layer("logits")
    return np.abs(kernel.get_weights()[0]).max() > 100


def test_cards_name_a_weights_file_without_its_folder():
    settings = train_module._without_folders(TINY_VGG16 | {"weights": "/home/alice/keras/vgg16_notop.h5"})
    assert settings["weights"] == "vgg16_notop.h5"
    assert train_module._without_folders(TINY_VGG16 | {"weights": "imagenet"})["weights"] == "imagenet"


def test_vgg16_trains_in_two_phases(image_folder, tmp_path, capsys):
    hp = TINY_VGG16 | {"head_epochs": 1, "fine_tune_epochs": 1}
    card = run(hp, image_folder, tmp_path)
    assert card["architecture"] == "vgg16" and card["epochs_run"] == 2
    assert card["input_shape"] == [16, 16, 3]
    out = capsys.readouterr().out
    assert out.index("Training the new head: the base frozen") < \
        out.index("Fine-tuning: 3 layers of the base unfrozen (block5)")


def test_fine_tuning_can_decay_the_rate_along_a_cosine_to_its_end(image_folder, narrow_vgg16_base, tmp_path,
                                                                  monkeypatch):
    callbacks_by_phase = []
    real_fit = train_module._fit

    def recording_fit(model, batches, monitor_set, epochs, phase_dir, callbacks, **options):
        callbacks_by_phase.append({type(callback).__name__ for callback in callbacks})
        return real_fit(model, batches, monitor_set, epochs, phase_dir, callbacks, **options)

    monkeypatch.setattr(train_module, "_fit", recording_fit)
    hp = TINY_VGG16 | {"head_epochs": 1, "fine_tune_epochs": 3, "fine_tune_schedule": "cosine",
                       "fine_tune_learning_rate": 1e-3, "patience": 1}
    rates = run(hp, image_folder, tmp_path)["history"]["learning_rate"]
    # Logged at each epoch's end: the head's constant 1e-3, then 1e-3 * (1 + cos(pi * k / 3)) / 2.
    assert rates == pytest.approx([1e-3, 7.5e-4, 2.5e-4, 0.0], abs=1e-7)
    # The head may stop early; the cosine phase may not, whatever its patience (its rate would
    # be left high), nor have its rate cut.
    assert callbacks_by_phase == [{"EarlyStopping", "ReduceLROnPlateau"}, set()]


def test_fine_tuning_can_warm_up_before_its_cosine():
    hp = TINY_VGG16 | {"fine_tune_schedule": "cosine", "fine_tune_learning_rate": 1e-3, "fine_tune_epochs": 4,
                       "fine_tune_warmup_fraction": 0.25}
    optimizer = train_module._fine_tune_optimizer(hp, 25)
    rates = []
    for step in (0, 10, 25, 50, 100):
        optimizer.iterations.assign(step)
        rates.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
    # Up in a line over the first 25 of the phase's 100 steps, then 1e-3 * (1 + cos(pi * k / 75)) / 2.
    assert rates == pytest.approx([0.0, 4e-4, 1e-3, 7.5e-4, 0.0], abs=1e-7)


def test_the_scratch_rate_warms_up_then_decays_to_zero_along_a_cosine():
    optimizer = train_module._scratch_optimizer(TINY | {"learning_rate": 0.4, "warmup_fraction": 0.25}, 100)
    rates = []
    for step in (0, 10, 25, 50, 100):
        optimizer.iterations.assign(step)
        rates.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
    # Up in a line to 0.4 over the first 25 steps, then 0.4 * (1 + cos(pi * k / 75)) / 2 for step 25 + k.
    assert rates == pytest.approx([0.0, 0.16, 0.4, 0.3, 0.0], abs=1e-6)


@pytest.mark.parametrize("arch", ["scratch", "efficientnet_lite0"])
def test_xla_is_off_on_tensorflows_cpu(arch):
    # Measured on the CPU box: XLA trained scratch-small 1.5x slower there, EfficientNet 8x.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    train_module._compile(model, keras.optimizers.SGD(), {"arch": arch, "label_smoothing": 0.0})
    assert model.jit_compile is False


def test_weight_decay_reaches_the_batch_norm_shifts_on_every_backend():
    # As on JAX, where every GPU figure was measured: Keras' exclusion by name matched only
    # TensorFlow's variable names, so the two backends trained different recipes.
    hp = PRESETS["scratch-small"] | {"warmup_fraction": 0.0, "weight_decay": 0.5, "lookahead_every": 0}
    norm, dense = keras.layers.BatchNormalization(name="stem_bn"), keras.layers.Dense(4, name="head")
    norm.build((None, 4))
    dense.build((None, 4))
    shift, kernel = norm.beta, dense.kernel
    for variable in (shift, kernel):
        variable.assign(np.ones(variable.shape, np.float32))
    optimizer = train_module._scratch_optimizer(hp, total_steps=10)
    optimizer.apply_gradients([(np.zeros(v.shape, np.float32), v) for v in (shift, kernel)])
    assert np.all(shift.numpy() < 1) and np.allclose(shift.numpy(), kernel.numpy()[0])


@pytest.mark.parametrize("images, batch_size, advice", [
    (81, 256, "--batch-size 16 would make it 6"), (256, 256, "--batch-size 64 would make it 4"),
    (3, 256, "--batch-size 1 would make it 3"), (257, 256, None),
])
def test_a_training_set_of_one_batch_is_warned_of(images, batch_size, advice, capsys):
    train_module._warn_if_one_batch(images, batch_size)
    err = capsys.readouterr().err
    if advice is None:
        assert err == ""
    else:
        assert err.startswith(f"warning: the {images} training images make a single batch (--batch-size "
                              f"{batch_size}), so an epoch is one step; ") and err.strip().endswith(advice)


def test_a_transfer_runs_single_batch_is_counted_without_the_images_that_pick_its_epoch(image_folder, tmp_path,
                                                                                       monkeypatch, capsys):
    monkeypatch.setattr(train_module, "_fit_transfer", lambda hp, fit_set, pick_set, run_dir: (None, {}))
    data = load_folder(image_folder, 16)
    train_module._fit_model(TINY_VGG16 | {"batch_size": 256}, "float32", data, data, tmp_path / "runs")
    out, err = capsys.readouterr()
    fit = int(re.search(r"and (\d+) train the model", out).group(1))
    assert fit < len(data.labels) and err.startswith(f"warning: the {fit} training images make a single batch")


def test_a_model_that_answers_one_class_for_every_held_out_image_is_warned_of(capsys):
    labels = np.array([0, 1, 2, 1])
    same = np.tile([0.1, 0.8, 0.1], (4, 1))  # "butterfly, 80%" for every picture
    train_module._warn_if_one_answer(classification_report(labels, same, ["ant", "butterfly", "cat"]),
                                     ["ant", "butterfly", "cat"])
    assert capsys.readouterr().err == (
        "warning: the model answers 'butterfly' for every one of the 4 held-out images: it has not learned to tell "
        "the classes apart. Train it longer (more epochs), or start from a pretrained base\n")
    train_module._warn_if_one_answer(classification_report(labels, np.eye(3)[labels], ["ant", "butterfly", "cat"]),
                                     ["ant", "butterfly", "cat"])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("images, largest, size", [
    (5000, 1024, 1000), (5000, 256, 250), (4500, 128, 125), (10, 256, 10), (1024, 1024, 1024), (1025, 1024, 513),
])
def test_evaluation_batches_are_of_one_size_where_the_count_allows(images, largest, size):
    assert train_module.even_batch_size(images, largest) == size
    batches = math.ceil(images / size)
    assert batches == math.ceil(images / largest)  # no more steps than with the largest size


@pytest.mark.parametrize("counts, warned", [
    ([29] * 10, "290 training images (29 a class)"),
    ([100] * 9 + [99], "999 training images (99 to 100 a class)"),
    ([190, 1], "191 training images (1 to 190 a class)"),  # not "95 a class"
    ([300, 2], "302 training images (2 to 300 a class)"),  # more than 100 a class on average
    ([100] * 10, None),
])
def test_few_images_for_a_scratch_net_bring_advice_to_fine_tune_a_pretrained_one(counts, warned, capsys):
    train_module._warn_if_few_for_scratch(np.repeat(np.arange(len(counts)), counts), classes=len(counts))
    err = capsys.readouterr().err
    assert (err.startswith(f"warning: {warned} are few for a net trained from scratch.")
            and "try --arch efficientnet_lite0" in err) if warned else err == ""


def test_a_save_that_fails_keeps_the_run_to_save_without_training_again(image_folder, tmp_path, monkeypatch, capsys):
    def full_disk(*args, **kwargs):  # as h5py reports it: HDF5's report, over two lines, where Python's words go
        raise OSError(errno.ENOSPC, "Unable to synchronously create file (file write failed: time = ...\n, "
                                    "errno = 28)")

    with monkeypatch.context() as patch:
        patch.setattr(train_module.cards, "save_model_and_card", full_disk)
        with pytest.raises(train_module.TrainingError, match=(
                r"^Cannot save .*tiny\.h5 \(No space left on device\); this run's weights are kept in .*tiny, and "
                r"the same command saves it without training again once that is put right\.$")):
            run(TINY, image_folder, tmp_path)
    capsys.readouterr()
    card = run(TINY, image_folder, tmp_path)
    assert "the phase ended after 3 epochs" in capsys.readouterr().out and card["epochs_run"] == 3

    # Its damaged backup, on another try, is named with what to do.
    assert (tmp_path / "models" / "tiny.h5").exists()
    with monkeypatch.context() as patch:
        patch.setattr(train_module.cards, "save_model_and_card", full_disk)
        with pytest.raises(train_module.TrainingError):
            run(TINY, image_folder, tmp_path)
    metadata = tmp_path / "runs" / "tiny" / "scratch" / "backup" / "training_metadata.json"
    metadata.write_text("")
    with pytest.raises(train_module.TrainingError, match=(
            f"^The run's backup {metadata} cannot be read .*\\. Delete {tmp_path / 'runs' / 'tiny'} to train afresh\\.$")):
        run(TINY, image_folder, tmp_path)


def test_a_model_another_run_saves_meanwhile_is_replaced_only_when_asked(image_folder, tmp_path, monkeypatch, capsys):
    # Two runs of one name, each with its own --run-dir: the lock of one does not stop the other.
    data, models = load_folder(image_folder, TINY["image_size"]), tmp_path / "models"
    real_evaluate = train_module.evaluate

    def evaluate_as_another_run_saves(model, images):
        models.mkdir(exist_ok=True)
        (models / "tiny.h5").write_bytes(b"the other run's model")
        return real_evaluate(model, images)

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "evaluate", evaluate_as_another_run_saves)
        with pytest.raises(train_module.TrainingError, match=(
                r"tiny\.h5 was saved by another run while this one trained; this run's weights are kept in .*tiny, "
                r"and the same command with --replace saves over it without training again\.$")):
            train_module.train(TINY, data, None, models, "tiny", tmp_path / "runs" / "tiny", replace=False)
    assert (models / "tiny.h5").read_bytes() == b"the other run's model"
    capsys.readouterr()
    card = train_module.train(TINY, data, None, models, "tiny", tmp_path / "runs" / "tiny", replace=True)
    assert "the phase ended after 3 epochs" in capsys.readouterr().out and card["epochs_run"] == 3


def test_a_model_deleted_while_a_resumed_run_trains_is_saved_again(image_folder, tmp_path, monkeypatch):
    # A resume of a --replace run may go on without --replace; a model gone meanwhile is no other run's.
    data, models = load_folder(image_folder, TINY["image_size"]), tmp_path / "models"
    run(TINY, image_folder, tmp_path)  # the model to replace
    with monkeypatch.context() as patch:
        patch.setattr(train_module.cards, "save_model_and_card", lambda *args, **kwargs: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            run(TINY | {"epochs": 2}, image_folder, tmp_path)  # its backup stays
    real_evaluate = train_module.evaluate

    def evaluate_as_the_model_is_deleted(model, images):
        (models / "tiny.h5").unlink(missing_ok=True)
        return real_evaluate(model, images)

    monkeypatch.setattr(train_module, "evaluate", evaluate_as_the_model_is_deleted)
    card = train_module.train(TINY | {"epochs": 2}, data, None, models, "tiny", tmp_path / "runs" / "tiny",
                              replace=False)
    assert card["epochs_run"] == 2 and (models / "tiny.h5").exists()


def test_training_fits_logits_with_a_loss_from_logits(image_folder, tmp_path, monkeypatch):
    # From probabilities, JAX's cross-entropy gives an image scored below 1e-7 no gradient.
    compiled = []
    real_compile = train_module._compile
    monkeypatch.setattr(train_module, "_compile",
                        lambda model, optimizer, hp: compiled.append(model) or real_compile(model, optimizer, hp))
    run(TINY | {"epochs": 1}, image_folder, tmp_path)
    (learner,) = compiled
    assert not isinstance(learner.layers[-1], keras.layers.Softmax) and learner.loss.get_config()["from_logits"]
    saved = keras.saving.load_model(tmp_path / "models" / "tiny.h5").get_layer("scratch_cnn")
    assert isinstance(saved.layers[-1], keras.layers.Softmax)  # served: probabilities


def test_a_full_disk_while_backing_up_is_one_sentence_and_the_run_resumes(image_folder, tmp_path, monkeypatch, capsys):
    save_weights, saves = keras.Model.save_weights, []

    def full_disk_at_the_second(model, filepath, **kwargs):
        saves.append(filepath)
        if len(saves) == 1:
            return save_weights(model, filepath, **kwargs)
        full_disk_in_h5py(filepath)

    with monkeypatch.context() as patch:
        patch.setattr(keras.Model, "save_weights", full_disk_at_the_second)
        with pytest.raises(train_module.TrainingError, match=(
                r"^Cannot write the run's log and backup in .*tiny/scratch \(No space left on device\); once that is "
                r"put right, the same command goes on from the run's last backup, or starts afresh if it has none\.$")):
            run(TINY, image_folder, tmp_path)
    backup = tmp_path / "runs" / "tiny" / "scratch" / "backup"
    assert sorted(path.name for path in backup.iterdir()) == ["latest.weights.h5", "training_metadata.json"]
    assert not (tmp_path / "models").exists()
    capsys.readouterr()
    card = run(TINY, image_folder, tmp_path)
    assert "1 of 3 epochs done" in capsys.readouterr().out and card["epochs_run"] == 3


def test_a_full_disk_for_the_run_settings_leaves_no_folder_that_reads_as_another_run(image_folder, tmp_path,
                                                                                      monkeypatch, capsys):
    write_text = type(tmp_path).write_text

    def full_disk_for_settings(path, text, *args, **kwargs):
        if path.name == "settings.json":
            write_text(path, "")  # created, then nothing fits
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_text(path, text, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(type(tmp_path), "write_text", full_disk_for_settings)
        with pytest.raises(train_module.TrainingError, match=(
                r"^Cannot write the run's settings in .*tiny \(No space left on device\); once that is put right")):
            run(TINY, image_folder, tmp_path)
    assert not (tmp_path / "runs" / "tiny").exists()
    capsys.readouterr()
    assert run(TINY, image_folder, tmp_path)["epochs_run"] == 3
    assert "starting afresh" not in capsys.readouterr().out  # no unfinished run of "other settings" was there


def test_a_run_folder_deleted_while_training_still_gives_a_card_of_every_epoch(image_folder, tmp_path, monkeypatch):
    class RunFolderDeletedAfterTheFirstEpoch(train_module.EpochLogger):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch == 1:
                shutil.rmtree(tmp_path / "runs")  # its log with it, which the card read its history from

    monkeypatch.setattr(train_module, "EpochLogger", RunFolderDeletedAfterTheFirstEpoch)
    card = run(TINY, image_folder, tmp_path)
    assert card["epochs_run"] == 3 and all(len(values) == 3 for values in card["history"].values())


def test_a_full_disk_as_a_phase_starts_is_one_sentence(image_folder, tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):  # cutting the log back to the backup's epochs, say
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(resume, "cut_log", full_disk)
    with pytest.raises(train_module.TrainingError, match=(
            r"^Cannot write the run's log in .*tiny/scratch \(No space left on device\); once that is put right")):
        run(TINY, image_folder, tmp_path)


def test_a_run_folder_deleted_before_an_interruption_does_not_hide_it(image_folder, tmp_path, monkeypatch):
    class RunFolderDeletedThenInterrupted(train_module.EpochLogger):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            shutil.rmtree(tmp_path / "runs")
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "EpochLogger", RunFolderDeletedThenInterrupted)
    with pytest.raises(KeyboardInterrupt):
        run(TINY, image_folder, tmp_path)
