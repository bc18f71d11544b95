"""What makes a training run resumable: a backup of the model and optimizer that an
interruption never leaves half-written, a per-epoch log kept in step with it, and Ctrl-C
honoured at the end of an epoch.

A run's folder (`runs/NAME/`) holds its settings and a folder per phase of training; each
phase's holds `backup/`, the log `history.csv` and, for phases that keep their best epoch,
`best.weights.h5`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np

from trainer.formatting import os_reason, reason
from trainer.model_file import writing_h5

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")
LOG, BEST_WEIGHTS = "history.csv", "best.weights.h5"  # a phase's, in its folder of the run's
# Back up for resuming after the first and the last epoch and at most this often in between: on
# a GPU an epoch can take a second and a backup of the large net 0.16 s. A crash loses at most
# this much training; on a CPU, where an epoch takes a minute, every epoch is still backed up.
BACKUP_SECONDS = 10.0


class DamagedBackup(Exception):
    """A file in a run's folder that cannot be read back; the message names it and says why."""


class CannotWrite(Exception):
    """A run's folder that cannot be written (a full disk, a folder made read-only); the
    message says where and why. What was backed up before stays whole."""


@contextlib.contextmanager
def writing(folder: Path, what: str):
    """OSError while writing `what` in `folder`, as CannotWrite: one sentence, not h5py's
    traceback of several screens."""
    try:
        yield
    except OSError as error:
        raise CannotWrite(f"Cannot write {what} in {folder} ({os_reason(error)})") from None


def discard(path: str | os.PathLike) -> None:
    """Remove a file whose writing failed. Emptied first: h5py keeps open a file it failed to
    write, and HDF5 writes to it again as Python exits, which on a full disk crashed the process
    (a segfault); emptying it frees the room for that."""
    for remove in (lambda: os.truncate(path, 0), lambda: os.unlink(path)):
        with contextlib.suppress(OSError):
            remove()


def complete_backup(backup_dir: Path) -> None:
    """Finish a backup that an interruption (SIGKILL, a power cut) stopped between its two
    renames: the weights in place, the metadata not. Left so, the metadata would give the
    previous backup's epoch, and a resumed run would train again epochs these weights learned."""
    partial_metadata = backup_dir / "partial_metadata.json"
    if partial_metadata.exists() and not (backup_dir / "partial.weights.h5").exists():
        with writing(backup_dir, "the run's backup"):
            os.replace(partial_metadata, backup_dir / "training_metadata.json")


def seconds_kept_from_earlier_processes(run_dir: Path) -> float:
    """The training time a resumed run carries over: the logged seconds of the epochs that its
    phases' backups hold, which this process will not train again."""
    phases = [entry for entry in run_dir.iterdir() if entry.is_dir()]
    return sum(sum(read_log(phase / LOG, backed_up_epochs(phase / "backup"))["seconds"]) for phase in phases)


def read_log(log_path: Path, epochs: int | None = None) -> dict[str, list[float]]:
    """The logged figures of every epoch, or of the first `epochs` (those after a backup may
    have been cut short by the interruption it resumes from)."""
    if not log_path.exists():
        return {key: [] for key in HISTORY_KEYS}
    try:
        with open(log_path, newline="") as f:
            rows = list(csv.DictReader(f))[:epochs]
        return {key: [float(row[key]) for row in rows] for key in HISTORY_KEYS}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as error:
        raise DamagedBackup(f"The run's log {log_path} cannot be read ({_why(error)})") from None


def backed_up_epochs(backup_dir: Path) -> int:
    """How many epochs the phase's backup holds, from which `fit` resumes (0: none)."""
    complete_backup(backup_dir)
    metadata = backup_dir / "training_metadata.json"
    if not metadata.exists():
        return 0
    try:
        epoch = json.loads(metadata.read_text())["epoch"]
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise DamagedBackup(f"The run's backup {metadata} cannot be read ({_why(error)})") from None
    if type(epoch) is not int or epoch < 0:
        raise DamagedBackup(f"The run's backup {metadata} cannot be read (its epoch is {epoch!r})")
    return epoch


def _why(error: Exception) -> str:
    if isinstance(error, KeyError):  # its message would be the key alone
        return f"{error} is missing"
    return reason(error)


def cut_log(log_path: Path, epochs: int) -> None:
    """Keep the first `epochs` logged epochs: training resumes from the backup, which holds
    that many, and logs the later ones again."""
    if not log_path.exists():
        return
    with open(log_path, newline="") as f:
        lines = f.readlines()
    kept = 1 + epochs  # the header, then an epoch a line
    if len(lines) > kept:
        with open(log_path, "w", newline="") as f:
            f.writelines(lines[:kept])


# What EarlyStopping and ReduceLROnPlateau count from epoch to epoch, and reset as `fit` begins.
CALLBACK_STATE = ("wait", "best", "best_epoch", "cooldown_counter")


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore writes its files in place, so a Ctrl-C during a save leaves a
    backup that cannot be resumed. This one writes beside them and renames into place. It
    backs up after the first and the last epoch and, in between, once `every_seconds` have
    passed since the last backup, and when training stops early; the backup is kept when
    training ends.

    With `best_path`, it also keeps there the weights of the epoch with the lowest val_loss
    (below `best`, the lowest logged so far), written the same way and only after a backup of
    that epoch: a resumed run, which trains again the epochs after its backup, never finds
    best weights from one of those.

    The `stateful` callbacks (EarlyStopping, ReduceLROnPlateau: before this one in `fit`'s list,
    so that it backs up what they made of the epoch, and restores after they reset) get back
    what they counted: resumed, they cut the rate and stop where an unbroken run would."""

    def __init__(self, backup_dir: str, every_seconds: float, best_path: Path | None = None,
                 best: float | None = None, stateful: tuple = ()):
        super().__init__(backup_dir, delete_checkpoint=False)
        self.every_seconds, self.last_saved, self.saved_epoch = every_seconds, None, None
        self.best_path, self.best, self.stateful = best_path, best, stateful

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        val_loss = (logs or {}).get("val_loss", math.nan)
        improved = (self.best_path is not None and math.isfinite(val_loss)
                    and (self.best is None or val_loss < self.best))
        due = self.last_saved is None or time.monotonic() - self.last_saved >= self.every_seconds
        if due or improved or epoch + 1 == self.params["epochs"]:
            self.back_up()
        if improved:
            self.best = val_loss
            partial = self.best_path.with_name("partial_" + self.best_path.name)
            try:
                with writing_h5():
                    self.model.save_weights(str(partial))
            except OSError:  # a full disk, say: the best weights so far stay whole
                discard(partial)
                raise
            os.replace(partial, self.best_path)

    def on_train_end(self, logs=None):
        # A phase that stopped early has ended: backed up as if every epoch had run, a rerun
        # (after an interruption while saving, say) trains it no further.
        if self.model.stop_training:
            self._current_epoch = self.params["epochs"]
            self.back_up()

    def back_up(self):
        """Back up the epoch that ended last, unless that is done."""
        if self.saved_epoch != self._current_epoch:
            self._save_model()
            self.saved_epoch, self.last_saved = self._current_epoch, time.monotonic()

    def _save_model(self):
        final = self._weights_path, self._training_metadata_path
        partial = (os.path.join(self.backup_dir, "partial.weights.h5"),
                   os.path.join(self.backup_dir, "partial_metadata.json"))
        self._weights_path, self._training_metadata_path = partial
        try:
            with writing_h5():
                super()._save_model()
            metadata = json.loads(Path(partial[1]).read_text())
            metadata["seed_states"] = [keras.ops.convert_to_numpy(state).tolist() for state in _seed_states(self.model)]
            metadata["callback_states"] = [{key: _plain(getattr(callback, key)) for key in CALLBACK_STATE
                                            if hasattr(callback, key)} for callback in self.stateful]
            Path(partial[1]).write_text(json.dumps(metadata))
        except OSError:  # a full disk, say: the previous backup stays whole
            for path in reversed(partial):  # never the metadata alone, which `complete_backup` would take
                discard(path)
            raise
        finally:
            self._weights_path, self._training_metadata_path = final
        # Weights first: `complete_backup` finishes a backup stopped between the two renames.
        for source, target in zip(partial, final):
            os.replace(source, target)

    def _load_model(self):
        try:
            super()._load_model()
        except Exception as error:  # h5py and Keras raise many types for a damaged file
            raise DamagedBackup(f"The run's backup in {self.backup_dir} cannot be read ({_why(error)})") from None
        path = Path(self._training_metadata_path)
        metadata = json.loads(path.read_text()) if path.exists() else {}
        for state, value in zip(_seed_states(self.model), metadata.get("seed_states", [])):
            state.assign(np.asarray(value, dtype=state.dtype))
        for callback, state in zip(self.stateful, metadata.get("callback_states", [])):
            for key, value in state.items():
                setattr(callback, key, value)


def _plain(value):
    """A callback's count as JSON takes it: NumPy's numbers as Python's (infinity too, as JSON's
    Infinity, which Python reads back)."""
    return value.item() if isinstance(value, np.generic) else value


def _seed_states(model: keras.Model) -> list:
    """The states of the model's random-number generators (a Dropout layer's), which
    `save_weights` leaves out: restored from a backup, they drop the units an unbroken run
    would, so that a resumed run ends as an unbroken one."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


class StopOnInterrupt(keras.callbacks.Callback):
    """Used as a context manager around `fit`: the first Ctrl-C stops training once the epoch
    under way has ended and `backup` holds it (its backups, seconds apart, would lose the epochs
    since the last one); a second stops it at once. Raising KeyboardInterrupt at the first
    would also lose it whenever Python is in a finalizer, which TensorFlow runs between batches:
    Python prints the exception there and carries on (2 SIGINTs in 60 were lost so, measured).
    The check is at epoch ends, not batch ends: batch hooks would make Keras wait for the
    device after every step."""

    def __init__(self, backup: AtomicBackupAndRestore):
        super().__init__()
        self.backup = backup

    def __enter__(self):
        self.interrupted, self.previous = False, None
        # Only the main thread can set handlers. A SIGINT ignored from the start (a job started in
        # the background by a script) is meant for the script, as Python itself leaves it ignored.
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self.previous = signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(self, kind, error, traceback):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if isinstance(error, KeyboardInterrupt) and self.params:  # for the message saying where a rerun goes on
            backup_dir = Path(self.backup.backup_dir)
            try:
                error.backed_up = (backed_up_epochs(backup_dir), self.params["epochs"], backup_dir.parent.name)
            except DamagedBackup:
                pass  # the rerun says so

    def _note(self, signum, frame):
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        print("\nStopping once this epoch has ended and is backed up; Ctrl-C again stops at once, losing "
              "the epochs since the last backup.", file=sys.stderr, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.interrupted:
            self.backup.back_up()
            raise KeyboardInterrupt

    def on_train_end(self, logs=None):
        if self.interrupted:  # the last epoch is backed up already
            raise KeyboardInterrupt
