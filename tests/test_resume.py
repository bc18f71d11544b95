import json

import keras
import pytest

from trainer import resume


def backup_of_a_toy_model(backup_dir, every_seconds):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    backup = resume.AtomicBackupAndRestore(str(backup_dir), every_seconds)
    backup.set_model(model)
    return backup, model


def test_a_backup_cut_short_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    backup, model = backup_of_a_toy_model(tmp_path, every_seconds=0)
    backup.on_epoch_end(0)
    saved = (tmp_path / "latest.weights.h5").read_bytes()

    def half_written(filepath, **kwargs):
        open(filepath, "wb").write(b"\x89HDF half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save_weights", half_written)
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1)
    assert (tmp_path / "latest.weights.h5").read_bytes() == saved
    assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 1


def test_backups_are_made_after_the_first_and_last_epochs_and_every_so_often(tmp_path, monkeypatch):
    backup, _ = backup_of_a_toy_model(tmp_path, every_seconds=10)
    backup.set_params({"epochs": 6})
    now = [100.0]
    monkeypatch.setattr(resume.time, "monotonic", lambda: now[0])
    backed_up = []
    backup.on_train_begin()
    for epoch, seconds in enumerate([1, 4, 4, 4, 1, 1]):  # each epoch's length
        now[0] += seconds
        backup.on_epoch_end(epoch)
        backed_up.append(json.loads((tmp_path / "training_metadata.json").read_text())["epoch"])
    assert backed_up == [1, 1, 1, 4, 4, 6]  # the first; 12 s later; the last


def test_on_resuming_the_log_keeps_only_the_backed_up_epochs(tmp_path):
    log = tmp_path / "history.csv"
    log.write_text("epoch,loss\n0,2.0\n1,1.5\n2,1.2\n3,1.1\n")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    resume.cut_log(log, resume.backed_up_epochs(tmp_path / "backup"))
    assert log.read_text() == "epoch,loss\n0,2.0\n1,1.5\n"
