import json
import os
import signal

import keras
import numpy as np
import pytest

from conftest import full_disk_in_h5py, full_disk_in_h5py_close
from trainer import resume


def backup_of_a_toy_model(backup_dir, every_seconds, best_path=None):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    backup = resume.AtomicBackupAndRestore(str(backup_dir), every_seconds, best_path)
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
    log.write_text("epoch,loss\n0,2.0\n1,1.5\n2,1.2\n")  # one epoch past the backup
    resume.cut_log(log, 2)
    assert log.read_text() == "epoch,loss\n0,2.0\n1,1.5\n"


def test_a_resumed_run_counts_the_seconds_of_the_backed_up_epochs_only(tmp_path):
    phase = tmp_path / "scratch"
    (phase / "backup").mkdir(parents=True)
    rows = "".join(f"1,0.5,1,0.5,0.1,{seconds}\n" for seconds in (10, 10, 10))
    (phase / "history.csv").write_text(",".join(resume.HISTORY_KEYS) + "\n" + rows)
    (phase / "backup" / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    assert resume.seconds_kept_from_earlier_processes(tmp_path) == 20  # the third is trained again
    with open(phase / "history.csv", "a") as log:
        log.write("1,0.5,1,")  # a fourth epoch's row, cut short by the interruption
    assert resume.seconds_kept_from_earlier_processes(tmp_path) == 20  # after the backup: not read


def test_best_weights_are_written_whole_and_only_with_a_backup_of_their_epoch(tmp_path, monkeypatch):
    """A resumed run trains again the epochs after its backup, so the best weights must never
    come from one of those: an epoch that improves is backed up first, due or not."""
    best_path = tmp_path / "best.weights.h5"
    backup, model = backup_of_a_toy_model(tmp_path / "backup", every_seconds=3600, best_path=best_path)
    backup.set_params({"epochs": 9})

    def epoch_end(epoch, val_loss, kernel):
        model.layers[0].set_weights([np.full((2, 1), kernel), np.zeros(1)])
        backup.on_epoch_end(epoch, {"val_loss": val_loss})
        return json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"]

    def best_kernel():
        model.load_weights(best_path)
        return model.layers[0].get_weights()[0][0, 0]

    assert epoch_end(0, 1.0, kernel=1.0) == 1 and best_kernel() == 1.0  # the first epoch
    assert epoch_end(1, 2.0, kernel=2.0) == 1 and best_kernel() == 1.0  # worse, backup not due
    assert epoch_end(2, 0.5, kernel=3.0) == 3 and best_kernel() == 3.0  # better: backed up too
    assert epoch_end(3, float("nan"), kernel=4.0) == 3 and best_kernel() == 3.0

    save_weights = model.save_weights

    def cut_short_if_best(filepath, **kwargs):
        if "best" not in os.path.basename(filepath):
            return save_weights(filepath, **kwargs)
        open(filepath, "wb").write(b"\x89HDF half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save_weights", cut_short_if_best)
    with pytest.raises(KeyboardInterrupt):
        epoch_end(4, 0.1, kernel=5.0)
    monkeypatch.undo()
    assert best_kernel() == 3.0


def test_ctrl_c_stops_once_the_epoch_has_ended_and_is_backed_up(tmp_path, capsys):
    backup, _ = backup_of_a_toy_model(tmp_path, every_seconds=3600)
    backup.set_params({"epochs": 9})
    with resume.StopOnInterrupt(backup) as stop:
        for epoch in range(3):
            backup.on_epoch_end(epoch)
            stop.on_epoch_end(epoch)
        assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 1  # the next not due
        os.kill(os.getpid(), signal.SIGINT)  # noted, training goes on to the epoch's end
        assert "Stopping once this epoch has ended and is backed up" in capsys.readouterr().err
        backup.on_epoch_end(3)
        with pytest.raises(KeyboardInterrupt):
            stop.on_epoch_end(3)
        assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 4
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C: at once
            os.kill(os.getpid(), signal.SIGINT)


def test_a_ctrl_c_ignored_from_the_start_stays_ignored(tmp_path):
    # As for a job a script starts in the background: a Ctrl-C is the script's to act on.
    backup, _ = backup_of_a_toy_model(tmp_path, every_seconds=3600)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with resume.StopOnInterrupt(backup) as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            stop.on_epoch_end(0)  # goes on
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_nan_validation_loss_is_never_the_best(tmp_path):
    best_path = tmp_path / "best.weights.h5"
    backup, _ = backup_of_a_toy_model(tmp_path / "backup", every_seconds=3600, best_path=best_path)
    backup.set_params({"epochs": 9})
    backup.on_epoch_end(0, {"val_loss": float("nan")})
    assert not best_path.exists()
    backup.on_epoch_end(1, {"val_loss": 2.0})
    assert backup.best == 2.0 and best_path.exists()
    written = best_path.stat().st_ino  # each writing is a new file renamed into place
    backup.on_epoch_end(2, {"val_loss": 2.0})  # a tie: the earlier epoch stays the best
    assert best_path.stat().st_ino == written


def test_damaged_files_of_a_run_are_named_not_a_traceback(tmp_path):
    backup, model = backup_of_a_toy_model(tmp_path / "backup", every_seconds=0)
    backup.on_epoch_end(0)
    metadata, weights = tmp_path / "backup" / "training_metadata.json", tmp_path / "backup" / "latest.weights.h5"
    metadata.write_text("{cut sho")
    with pytest.raises(resume.DamagedBackup, match=f"^The run's backup {metadata} cannot be read \\(Expecting"):
        resume.backed_up_epochs(tmp_path / "backup")
    metadata.write_text('{"epoch": "one"}')
    with pytest.raises(resume.DamagedBackup, match="cannot be read \\(its epoch is 'one'\\)"):
        resume.backed_up_epochs(tmp_path / "backup")

    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(resume.DamagedBackup, match=f"^The run's backup in {tmp_path / 'backup'} cannot be read"):
        backup._load_model()

    log = tmp_path / resume.LOG
    log.write_text("epoch,what\n0,1\n")
    with pytest.raises(resume.DamagedBackup, match=f"^The run's log {log} cannot be read \\('loss' is missing\\)"):
        resume.read_log(log)


@pytest.mark.parametrize("full_disk", [full_disk_in_h5py, full_disk_in_h5py_close])
def test_a_backup_that_a_full_disk_stops_leaves_the_previous_one_and_no_partial_files(tmp_path, monkeypatch,
                                                                                     full_disk):
    backup, model = backup_of_a_toy_model(tmp_path, every_seconds=0)
    backup.on_epoch_end(0)
    saved = (tmp_path / "latest.weights.h5").read_bytes()

    monkeypatch.setattr(model, "save_weights", full_disk)
    with pytest.raises(OSError):
        backup.on_epoch_end(1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["latest.weights.h5", "training_metadata.json"]
    assert (tmp_path / "latest.weights.h5").read_bytes() == saved
    assert resume.backed_up_epochs(tmp_path) == 1
    with pytest.raises(resume.CannotWrite, match=r"^Cannot write the run's backup in .* \(No space left on device\)$"):
        with resume.writing(tmp_path, "the run's backup"):
            backup.on_epoch_end(1)


def test_a_backup_stopped_between_its_two_renames_is_completed(tmp_path, monkeypatch):
    backup, model = backup_of_a_toy_model(tmp_path, every_seconds=0)
    backup.on_epoch_end(0)
    renamed, rename = [], os.replace

    def killed_after_the_first_rename(source, target):  # as SIGKILL would leave it
        if renamed:
            raise KeyboardInterrupt
        renamed.append(rename(source, target))

    with monkeypatch.context() as patch:
        patch.setattr(resume.os, "replace", killed_after_the_first_rename)
        with pytest.raises(KeyboardInterrupt):
            backup.on_epoch_end(4)
    # The weights are epoch 5's: the metadata must say so, or a resumed run would train 2-5 again.
    assert resume.backed_up_epochs(tmp_path) == 5
    assert sorted(path.name for path in tmp_path.iterdir()) == ["latest.weights.h5", "training_metadata.json"]


def test_discard_empties_a_file_still_held_open_before_removing_it(tmp_path):
    """h5py keeps open a file it failed to write: removed only, its blocks stay taken until the process exits."""
    path = tmp_path / "partial.weights.h5"
    with open(path, "wb") as held:
        held.write(b"\x89HDF" + bytes(100_000))
        held.flush()
        resume.discard(path)
        assert not path.exists() and os.fstat(held.fileno()).st_size == 0
    resume.discard(path)  # gone already: nothing to say


def test_a_backup_stopped_before_its_first_rename_is_not_completed(tmp_path):
    """Both partial files written, neither renamed: the new metadata must not go with the old weights."""
    backup, _ = backup_of_a_toy_model(tmp_path, every_seconds=0)
    backup.on_epoch_end(0)
    (tmp_path / "partial.weights.h5").write_bytes((tmp_path / "latest.weights.h5").read_bytes())
    (tmp_path / "partial_metadata.json").write_text('{"epoch": 5, "batch": 0}')
    assert resume.backed_up_epochs(tmp_path) == 1
    assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 1


@pytest.mark.parametrize("full_disk", [full_disk_in_h5py, full_disk_in_h5py_close])
def test_best_weights_that_a_full_disk_stops_leave_the_previous_ones_and_no_partial_file(tmp_path, monkeypatch,
                                                                                       full_disk):
    best_path = tmp_path / "best.weights.h5"
    backup, model = backup_of_a_toy_model(tmp_path / "backup", every_seconds=0, best_path=best_path)
    backup.set_params({"epochs": 9})
    backup.on_epoch_end(0, {"val_loss": 1.0})
    saved, save_weights = best_path.read_bytes(), model.save_weights

    def full_disk_for_the_best(filepath, **kwargs):
        if "best" not in os.path.basename(filepath):
            return save_weights(filepath, **kwargs)
        full_disk(filepath)

    monkeypatch.setattr(model, "save_weights", full_disk_for_the_best)
    with pytest.raises(OSError):
        backup.on_epoch_end(1, {"val_loss": 0.5})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["backup", "best.weights.h5"]
    assert best_path.read_bytes() == saved
