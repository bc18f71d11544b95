"""Training a classifier from a preset, then saving it with its metrics card.

Read top to bottom: `train` splits the data, builds the model, fits it (one phase for a
scratch CNN; a frozen-base phase then a fine-tuning phase for a pretrained backbone),
evaluates it and saves `<name>.h5` and `<name>.json`. Last come the run folder's lock and
the check that a folder left by an interrupted run is this command's to resume.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np

from trainer import card as cards
from trainer import locks, models, resume
from trainer.augment import AugmentedBatches
from trainer.data import Dataset, digest, picture_fingerprints, shared_pictures, sketch, stratified_split
from trainer.distillation import Distiller, load_teacher
from trainer.formatting import filesize, os_reason, percentage, plural, reason
from trainer.metrics import classification_report, format_report
from trainer.optimizers import AirbenchSGD, WarmupCosine
from trainer.predict import probabilities as checked_probabilities


class TrainingError(Exception):
    """A run that could not give a usable model; the message tells the user what to do."""


class Diverged(TrainingError):
    def __init__(self, epoch: int):
        super().__init__(f"Training diverged: the loss became NaN or infinite in epoch {epoch}. "
                         "Lower the learning rate and run again (it will start afresh).")


def train(hp: dict, data: Dataset, test: Dataset | None, out_dir: Path, name: str, run_dir: Path,
          replace: bool = True) -> dict:
    """Train, evaluate and save `out_dir/name.h5` with its card, resuming from `run_dir` a run
    of the same settings; without `replace`, a run that starts afresh refuses to save over an
    existing model."""
    with run_lock(run_dir):
        try:
            return _train(hp, data, test, out_dir, name, run_dir, replace)
        except resume.DamagedBackup as error:
            raise TrainingError(f"{error}. Delete {run_dir} to train afresh.") from None
        except resume.CannotWrite as error:
            raise TrainingError(f"{error}; once that is put right, the same command goes on from the run's last "
                                "backup, or starts afresh if it has none.") from None


# What a class too small for a transfer model's two splits needs, said at whichever refuses it.
TRANSFER_NEEDS = ("add images: a transfer model holds out one a class or more, then sets aside one or more of the "
                  "rest to pick its epoch, so it needs at least 3 a class")


def _train(hp, data, test, out_dir, name, run_dir, replace):
    model_path = out_dir / f"{name}.h5"
    found_at_start = file_identity(model_path)
    # Split first: data too small to split leaves no run folder behind.
    train_idx, val_idx = stratified_split(data.labels, hp["validation_fraction"], hp["seed"], data.classes,
                                          None if hp["arch"] == "scratch" else TRANSFER_NEEDS)
    data_digest = digest(data.files)
    _claim_run_dir(run_dir, hp, data, data_digest, model_path, replace)
    keras.utils.set_random_seed(hp["seed"])
    train_set, val_set = data.subset(train_idx), data.subset(val_idx)
    device = device_description()
    print(f"{data.name}: {len(train_set.labels)} training and {len(val_set.labels)} held-out images, "
          f"{plural(len(data.classes), 'class')}, {data.images.shape[1]}x{data.images.shape[2]} pixels; "
          f"training on {device}")
    training_pictures = picture_fingerprints(train_set.images)
    held_out_in_training, test_in_training = _copies_of_training_pictures(training_pictures, val_set, test)
    if hp["arch"] == "scratch":
        _warn_if_few_for_scratch(train_set.labels, len(data.classes))

    dtype_policy = training_precision(hp)
    earlier_seconds = resume.seconds_kept_from_earlier_processes(run_dir)
    started = time.perf_counter()
    classifier, history, images_learned_from = _fit_model(hp, dtype_policy, train_set, val_set, run_dir)
    training_seconds = earlier_seconds + time.perf_counter() - started

    # Every epoch stays backed up until the model is saved: stopped from here, a rerun scores and saves it.
    try:
        model = models.with_test_time_augmentation(classifier, hp["translate_tta"]) if hp["flip_tta"] else classifier
        evaluation = _evaluate_held_out(model, val_set, run_dir)
        test_evaluation = None
        if test is not None:
            test_evaluation = evaluate(model, test)
            print(format_report(test_evaluation, "Test"))

        settings = _without_folders(hp)
        card = {
            "format": cards.CARD_FORMAT,
            "name": name,
            "architecture": hp["arch"],
            "dataset": data.name,
            "data_digest": data_digest,
            "held_out_digest": digest(val_set.files),
            "test_digest": None if test is None else digest(test.files),
            "training_pixels_sketch": sketch(training_pictures),
            "classes": data.classes,
            "input_shape": list(model.input_shape[1:]),
            "parameters": int(model.count_params()),
            "file_size_bytes": None,  # these two filled in once the file is written
            "file_sha256": None,
            "weights": settings.get("weights", "none"),
            "hyperparameters": settings,
            "training_images": images_learned_from,
            "epochs_run": len(history["loss"]),
            "training_seconds": round(training_seconds, 1),
            "training_precision": dtype_policy,
            "backend": keras.backend.backend(),
            "device": device,
            "keras_version": keras.__version__,
            "created": cards.now_iso(),
            "history": history,
            "evaluation": evaluation,
            "test_evaluation": test_evaluation,
            "held_out_in_training": held_out_in_training,
            "test_in_training": test_in_training,
        }
        return _save(model, {"summary": cards.in_words(card)} | card, model_path, found_at_start, run_dir, replace)
    except KeyboardInterrupt as interrupt:
        interrupt.trained = True  # for the command line's last words
        raise


def _evaluate_held_out(model, val_set: Dataset, run_dir: Path) -> dict:
    """The held-out evaluation, printed, with a warning for a model that answers one class to
    all. A model whose outputs are NaN takes its run folder with it: a rerun would resume the
    same weights."""
    try:
        evaluation = evaluate(model, val_set)
    except TrainingError:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    print(format_report(evaluation, "Held out"))
    _warn_if_one_answer(evaluation, val_set.classes)
    return evaluation


def _copies_of_training_pictures(training_pictures, held_out: Dataset, test: Dataset | None):
    """How many held-out and test images (None: no test set) are pictures the run trains on,
    each count said in a warning. Copies of one picture in a data set (a scraped folder's
    "cat (1).jpg") may fall on both sides of the split; a test folder may hold training images."""
    seen = set(training_pictures)
    held_out_in_training = shared_pictures(held_out.images, seen)
    if held_out_in_training:
        print(f"warning: {held_out_in_training:,} of the {len(held_out.labels):,} held-out images are pictures this run "
              "trains on too (copies in the data), so their score will flatter the model; its card says so: remove "
              "the copies to score it fairly", file=sys.stderr)
    test_in_training = None if test is None else shared_pictures(test.images, seen)
    if test_in_training:
        print(f"warning: {test_in_training:,} of the {len(test.labels):,} test images are pictures this run trains on "
              "too, so their score will flatter the model; its card says so, and the dashboard ranks it by held-out "
              "images only", file=sys.stderr)
    return held_out_in_training, test_in_training


def _save(model, card: dict, model_path: Path, found_at_start, run_dir: Path, replace: bool) -> dict:
    """Save the model and its card, unless another run saved one there meanwhile and this run
    may not `replace` it, then delete the run's checkpoints. Returns the card as saved."""
    kept = f"this run's weights are kept in {run_dir}, and the same command"
    now = file_identity(model_path)
    if not replace and now is not None and now != found_at_start:  # another run's, saved meanwhile
        raise TrainingError(f"{model_path} was saved by another run while this one trained; {kept} with --replace "
                            "saves over it without training again.")
    try:
        card = cards.save_model_and_card(model, card, model_path)
    except OSError as error:  # a full disk, a folder made read-only meanwhile
        raise TrainingError(f"Cannot save {model_path} ({os_reason(error)}); {kept} saves it without "
                            "training again once that is put right.") from None
    try:
        shutil.rmtree(run_dir, ignore_errors=True)  # finished: nothing left to resume
        print(f"\nSaved {model_path} ({filesize(card['file_size_bytes'])}, {card['parameters']:,} parameters) "
              f"after {plural(card['epochs_run'], 'epoch')} in {card['training_seconds']:.0f} s; "
              f"held-out accuracy {percentage(card['evaluation']['accuracy'], 2)}")
    except KeyboardInterrupt as interrupt:
        interrupt.saved = model_path  # for the command line's last words: not "nothing was saved"
        raise
    return card


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """Which file is at `path` (None: none), to tell whether another run saved one there. Not
    model_file.stamp: its ctime changes with a chmod, which is no other run's model."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _without_folders(hp: dict) -> dict:
    """The settings as the card keeps them: files (starting weights, a teacher) by name alone,
    as the web app shows cards to anyone, and a path would tell where and whose they are."""
    files = {key: Path(hp[key]).name for key in ("weights", "teacher") if hp.get(key) not in (None, "imagenet", "none")}
    return hp | files


def _fit_model(hp, dtype_policy, train_set, val_set, run_dir) -> tuple[keras.Model, dict, int]:
    """The trained classifier, its history, and how many images it learned from. The run
    folder goes when nothing in it is worth resuming."""
    try:
        if hp["arch"] == "scratch":
            _warn_if_one_batch(len(train_set.labels), hp["batch_size"])
            return *_fit_scratch(hp, dtype_policy, train_set, val_set, run_dir), len(train_set.labels)
        # The epoch to keep, early stopping and the rate cuts go by a share of the training
        # images, so that the held-out ones score a model that was not picked on them.
        fit_idx, pick_idx = stratified_split(train_set.labels, hp["selection_fraction"], hp["seed"], train_set.classes,
                                             TRANSFER_NEEDS)
        print(f"Of the training images, {len(pick_idx)} pick the epoch to keep (Keras' val_ figures are theirs) "
              f"and {len(fit_idx)} train the model")
        _warn_if_one_batch(len(fit_idx), hp["batch_size"])
        fit_set, pick_set = train_set.subset(fit_idx), train_set.subset(pick_idx)
        return *_fit_transfer(hp, fit_set, pick_set, run_dir), len(fit_idx)
    except Diverged:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    except BaseException:  # a refused teacher or weights file, or Ctrl-C while the model is built
        # (A folder deleted meanwhile, or one that cannot be written, must not hide the error.)
        if run_dir.is_dir() and not any(entry.name != "settings.json" for entry in run_dir.iterdir()):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _fit_scratch(hp, dtype_policy, train_set, val_set, run_dir):
    classifier = models.preset_cnn(hp, train_set.images, len(train_set.classes), dtype_policy)
    batches = AugmentedBatches(train_set, hp)
    learner = models.logits_of(classifier)  # what `fit` trains: the classifier's logits, or a distiller around them
    if hp["teacher"]:
        teacher = load_teacher(hp["teacher"], train_set, val_set)
        learner = Distiller(learner, teacher, hp["teacher_weight"])
    _compile(learner, _scratch_optimizer(hp, hp["epochs"] * len(batches)), hp)
    # No best-epoch checkpoint: the schedule ends at a learning rate of 0, where the last
    # epoch is the recipe's result (and picking by validation score would flatter it).
    history = _fit(learner, batches, val_set, hp["epochs"], run_dir / "scratch", [], keep_best=False)
    return (classifier if dtype_policy == "float32" else models.as_float32(classifier)), history


def _scratch_optimizer(hp, total_steps):
    """SGD with Nesterov momentum along a warm-up then a cosine decay to 0, with airbench's
    faster batch-norm biases and lookahead when the preset asks for them."""
    schedule = WarmupCosine(hp["learning_rate"], int(total_steps * hp["warmup_fraction"]), total_steps)
    # Weight decay reaches every weight, batch-norm shifts included, as in airbench and in every
    # GPU run of BENCHMARKS.md. (Keras' exclusion by name would differ by backend: it sees a
    # shift as `beta` on JAX, `stem_bn/beta:0` on TensorFlow.)
    return AirbenchSGD(
        schedule, total_steps, hp["bias_lr_scale"], hp["lookahead_every"],
        momentum=hp["momentum"], nesterov=True, weight_decay=hp["weight_decay"],
    )


def _fit_transfer(hp, fit_set, pick_set, run_dir):
    classifier, base = models.transfer_model(
        hp["arch"], fit_set.images.shape[1:], len(fit_set.classes),
        hp["upscale_size"], hp["weights"], hp["dense_units"], hp["dropout"],
    )
    batches = AugmentedBatches(fit_set, hp)
    learner = models.logits_of(classifier)

    base.trainable = False
    print("Training the new head: the base frozen")
    _compile(learner, keras.optimizers.Adam(hp["head_learning_rate"]), hp)
    head_dir = run_dir / "head"
    history = _fit(learner, batches, pick_set, hp["head_epochs"], head_dir, _stopping_callbacks(hp))

    unfrozen = models.unfreeze(base, tuple(hp["unfreeze_blocks"]), hp["train_batchnorm"])
    print(f"Fine-tuning: {unfrozen} layers of the base unfrozen ({', '.join(hp['unfreeze_blocks'])}"
          f"{', batch norm too' if hp['train_batchnorm'] else ''})")
    _compile(learner, _fine_tune_optimizer(hp, len(batches)), hp)
    # A cosine phase runs to its end, its length being part of the schedule: stopped early, its
    # rate was still high (a 24-epoch phase stopped at epoch 7 with 91.3%, BENCHMARKS.md). The
    # selection share still picks the epoch to keep.
    tuned = _fit(learner, batches, pick_set, hp["fine_tune_epochs"], run_dir / "fine_tune",
                 _stopping_callbacks(hp) if hp["fine_tune_schedule"] == "plateau" else [],
                 first_epoch=len(history["loss"]), earlier_phase=head_dir)
    return classifier, {key: history[key] + tuned[key] for key in history}


def _fine_tune_optimizer(hp, steps_per_epoch):
    """Adam at a constant rate (cut on plateaus by a callback), or for "cosine" AdamW with the
    rate decaying to 0 along a cosine over the phase (a common EfficientNet fine-tuning recipe),
    after a linear warm-up over `fine_tune_warmup_fraction` of it."""
    if hp["fine_tune_schedule"] == "plateau":
        return keras.optimizers.Adam(hp["fine_tune_learning_rate"])
    total_steps = hp["fine_tune_epochs"] * steps_per_epoch
    schedule = WarmupCosine(hp["fine_tune_learning_rate"], int(total_steps * hp["fine_tune_warmup_fraction"]),
                            total_steps)
    return keras.optimizers.AdamW(schedule, weight_decay=hp["fine_tune_weight_decay"])


def _stopping_callbacks(hp):
    """Early stopping, and a learning-rate cut on plateaus: by 5x (Keras' example value), one
    epoch before the stop would come, so a cut gets its chance first."""
    return [
        keras.callbacks.EarlyStopping(patience=hp["patience"]),  # `_fit` restores the best weights
        keras.callbacks.ReduceLROnPlateau(factor=0.2, patience=max(1, hp["patience"] - 1), min_lr=1e-7),
    ]


def _compile(model, optimizer, hp):
    # XLA as Keras chooses ("auto"): on under JAX and on a GPU, off on TensorFlow's CPU, where it
    # trained scratch-small 1.5x slower on an Intel box and EfficientNet-Lite0 8x (BENCHMARKS.md).
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=hp["label_smoothing"]),
        metrics=["accuracy"],
    )


def _fit(model, batches, monitor_set, epochs, phase_dir: Path, callbacks, keep_best=True,
         first_epoch=0, earlier_phase: Path | None = None) -> dict[str, list[float]]:
    """One phase of `fit`, resumable: rerunning the same command after an interruption
    continues from the last backed-up epoch (BackupAndRestore), and the per-epoch log is
    kept in a CSV file so the card's history covers every epoch, resumed or not. With
    `keep_best`, the best weights (by validation loss) are checkpointed and restored at the end,
    the earlier phase's best among them: a phase that never beats it leaves its weights.
    `monitor_set` gives the validation figures: the held-out images for a scratch net (which
    keeps its last epoch), the share of the training images that picks the epoch for a
    transfer model. `first_epoch` counts the epochs of earlier phases, which the batches'
    randomness goes on from."""
    backup_dir, log_path, best_path = phase_dir / "backup", phase_dir / resume.LOG, phase_dir / resume.BEST_WEIGHTS
    if not backup_dir.exists():  # a fresh start: forget what an older, finished run left
        shutil.rmtree(phase_dir, ignore_errors=True)
    with resume.writing(phase_dir, "the run's log"):
        phase_dir.mkdir(parents=True, exist_ok=True)
        backed_up = resume.backed_up_epochs(backup_dir)
        resume.cut_log(log_path, backed_up)
    logged = resume.read_log(log_path)
    if backed_up:
        done = (f"{backed_up} of {epochs} epochs done" if backed_up < epochs
                else f"the phase ended after {plural(len(logged['loss']), 'epoch')}")
        print(f"Resuming from the backup in {backup_dir}: {done}")
    earlier_losses = resume.read_log(earlier_phase / resume.LOG)["val_loss"] if earlier_phase else []
    best_logged = min((loss for loss in logged["val_loss"] + earlier_losses if math.isfinite(loss)), default=None)
    batches.set_epoch(first_epoch + backed_up)  # a resumed run shuffles and augments as an unbroken one
    y_monitor = keras.utils.to_categorical(monitor_set.labels, len(monitor_set.classes))
    # BackupAndRestore leaves the epoch it restored on the model, where `fit` starts from it:
    # after a resumed first phase, the second would skip as many epochs.
    model._initial_epoch = None
    # Kept after the last epoch until the model is saved, so an interruption while evaluating
    # needs no retraining. Resumed, the best weights must beat the best so far.
    backup = resume.AtomicBackupAndRestore(str(backup_dir), resume.BACKUP_SECONDS,
                                           best_path if keep_best else None, best_logged, tuple(callbacks))
    with resume.writing(phase_dir, "the run's log and backup"), resume.StopOnInterrupt(backup) as stop_on_interrupt:
        fitted = model.fit(
            batches,
            validation_data=(monitor_set.images, y_monitor),  # uint8, as the training batches: the model casts
            # Keras' default, 32, made 157 steps of 5,000 images
            validation_batch_size=even_batch_size(len(monitor_set.labels), batches.batch_size),
            epochs=epochs,
            # The batches shuffle themselves, by epoch number; Keras' own shuffle of their order
            # draws from Python's global random state, which a resumed run does not restore.
            shuffle=False,
            callbacks=[
                EpochLogger(),  # first, so the callbacks after it see what it adds
                StopOnNaN(),
                # Logged before it is backed up: a resumed run cuts the log to the backup.
                keras.callbacks.CSVLogger(str(log_path), append=True),
                *callbacks,  # before the backup: it keeps a rate they cut, and what they counted
                backup,
                # Keras adds its own after these, where an epoch stopped by Ctrl-C never got its line.
                keras.callbacks.ProgbarLogger(),
                stop_on_interrupt,  # last: an epoch that ended is backed up, logged and shown first
            ],
            # A line per epoch into a file or pipe (a log, `| tee`, CI): a bar's redraws would fill it.
            verbose=1 if sys.stdout.isatty() else 2,
        )
    # The epochs trained now as `fit` recorded them, after those logged before: read back from
    # the log, they were lost with a run folder deleted meanwhile, and the card counted none.
    history = {key: logged[key] + fitted.history.get(key, []) for key in resume.HISTORY_KEYS}
    # A validation loss counts too: a step late in an epoch can break weights the epoch's mean loss hides.
    diverged = [epoch for epoch, losses in enumerate(zip(history["loss"], history["val_loss"]), start=first_epoch + 1)
                if not all(map(math.isfinite, losses))]
    if diverged:  # checked here, so that a diverged first phase does not go on to the second
        raise Diverged(diverged[0])
    if keep_best:
        _say_how_the_phase_ended(history["val_loss"], epochs, callbacks, earlier_losses, earlier_phase)
        _restore_best(model, best_path, earlier_phase)
    return history


def _say_how_the_phase_ended(val_losses: list[float], epochs: int, callbacks, earlier_losses: list[float],
                             earlier_phase: Path | None) -> None:
    """Say why a phase ran fewer epochs than asked, and which epoch's weights it keeps where
    that is not its last: otherwise "Epoch 6/10" is followed by the scores without a word, and
    a fine-tuning phase that never beat the head's best is dropped unseen. (Picked as
    resume.AtomicBackupAndRestore keeps them: the lowest val_loss, an earlier one on a tie.)"""
    run = len(val_losses)
    if not run:
        return
    if run < epochs:
        patience = next((callback.patience for callback in callbacks
                         if isinstance(callback, keras.callbacks.EarlyStopping)), None)
        why = f": val_loss had not improved for {plural(patience, 'epoch')}" if patience else ""
        print(f"Stopped early, after epoch {run} of {epochs}{why}")
    best, earlier_best = _lowest(val_losses), _lowest(earlier_losses)
    if earlier_best is not None and not val_losses[best] < earlier_losses[earlier_best]:
        phase = earlier_phase.name.replace("_", " ") if earlier_phase else "earlier"
        print(f"Keeping the {phase} phase's weights (its epoch {earlier_best + 1}, val_loss "
              f"{earlier_losses[earlier_best]:.4f}): no epoch of this phase did better")
    elif best + 1 < run:
        print(f"Keeping the weights of epoch {best + 1}, this phase's best (val_loss {val_losses[best]:.4f})")


def _lowest(losses: list[float]) -> int | None:
    """The epoch index of the lowest finite loss, the first of equal ones; None if none is finite."""
    return min((epoch for epoch, loss in enumerate(losses) if math.isfinite(loss)), key=losses.__getitem__,
               default=None)


def _restore_best(model, best_path: Path, earlier_phase: Path | None) -> None:
    """Load the phase's best weights, or if it never beat the earlier phase, that one's."""
    best = best_path if best_path.exists() or earlier_phase is None else earlier_phase / resume.BEST_WEIGHTS
    if best.exists():
        with warnings.catch_warnings():  # an earlier phase's file holds that phase's optimizer, since replaced
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            try:
                model.load_weights(str(best))
            except (OSError, ValueError) as error:  # damaged on disk since it was written
                raise TrainingError(f"The run's best weights so far, {best}, cannot be read "
                                    f"({reason(error)}). Delete {best.parent.parent} "
                                    "to train afresh.") from None


class EpochLogger(keras.callbacks.Callback):
    """Adds the optimizer's current learning rate and the epoch's duration to its logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            logs["seconds"] = time.perf_counter() - self.started


class StopOnNaN(keras.callbacks.Callback):
    """Stops a run whose loss, or validation loss, is no longer a number, checked per epoch: a
    per-batch check, as in Keras' TerminateOnNaN, would make it wait for the device after every step."""

    def on_epoch_end(self, epoch, logs=None):
        if not all(math.isfinite((logs or {}).get(key, 0.0)) for key in ("loss", "val_loss")):
            self.model.stop_training = True


def even_batch_size(images: int, largest: int) -> int:
    """The batch size up to `largest` that cuts `images` into batches of one size where it can
    (5,000 into five of 1,000, not four of 1,024 and one of 904): on JAX each other size is one
    more compilation, 6 s for the six-view model's predictions on an H200."""
    return math.ceil(images / math.ceil(images / largest)) if images else largest


def _warn_if_one_batch(images: int, batch_size: int) -> None:
    if 1 < images <= batch_size:  # the optimizer then takes as many steps as there are epochs, and learns little
        smaller = 2 ** int(math.log2(max(images // 4, 1)))
        print(f"warning: the {images} training images make a single batch (--batch-size {batch_size}), so an epoch "
              f"is one step; --batch-size {smaller} would make it {math.ceil(images / smaller)}", file=sys.stderr)


def _warn_if_one_answer(evaluation: dict, classes: list[str]) -> None:
    """A model that gives every held-out image one class has learned nothing to tell them apart
    (after a few steps, its batch norm may still hold its first batches' statistics): its
    answers would read as a broken app, "butterfly, 100%" for any picture."""
    answered = np.asarray(evaluation["confusion_matrix"]).sum(axis=0)
    if evaluation["samples"] > 1 and np.count_nonzero(answered) == 1:
        print(f"warning: the model answers {classes[int(answered.argmax())]!r} for every one of the "
              f"{evaluation['samples']} held-out images: it has not learned to tell the classes apart. Train it "
              "longer (more epochs), or start from a pretrained base", file=sys.stderr)


# Training images a class under which a scratch net is worth a warning: on Animals-10's photos,
# 24 a class gave it 48.5% and a pretrained net 87% (BENCHMARKS.md).
FEW_FOR_SCRATCH = 100


def _warn_if_few_for_scratch(labels: np.ndarray, classes: int) -> None:
    # By the class with fewest: a total, or a mean, would hide the one short of images.
    counts = np.bincount(labels, minlength=classes)
    if counts.min() < FEW_FOR_SCRATCH:
        each = f"{counts[0]} a class" if counts.min() == counts.max() else f"{counts.min()} to {counts.max()} a class"
        print(f"warning: {len(labels)} training images ({each}) are few for a net trained from "
              "scratch. A pretrained one learns far more from them: with 24 photos a class, EfficientNet-Lite0 "
              "scored 87% where the scratch CNN scored 48.5% (BENCHMARKS.md); try --arch efficientnet_lite0 "
              "(README.md, \"Pretrained weights\")", file=sys.stderr)


def training_precision(hp) -> str:
    """bfloat16 compute (with float32 weights) where the preset asks for it (scratch presets
    only) and a GPU runs it: GPUs have fast bfloat16 units, most CPUs do not."""
    return "mixed_bfloat16" if hp.get("mixed_precision") and _device_kind() == "gpu" else "float32"


def evaluate(model: keras.Model, data: Dataset) -> dict:
    # The model casts the uint8 pixels; 256 at a time keeps a 224 px backbone's activations small.
    probabilities = model.predict(data.images, batch_size=even_batch_size(len(data.images), 256), verbose=0)
    broken = int((~np.isfinite(probabilities).all(axis=1)).sum())
    if broken:  # scored as they are, they would read as a model that always picks one class
        raise TrainingError(f"The model gives NaN or infinite outputs for {broken} of {len(probabilities)} images "
                            "(damaged weights, or a training run that diverged): retrain it.")
    # Logits, say, from a model trained elsewhere: their loss and scores would mean nothing.
    return classification_report(data.labels, checked_probabilities(probabilities), data.classes)


def _device_kind() -> str:
    """The kind of device Keras trains on: cpu, gpu or tpu."""
    devices = keras.distribution.list_devices()
    return devices[0].split(":")[0] if devices else "cpu"


def device_description() -> str:
    kind = _device_kind()
    if kind == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    if keras.backend.backend() == "jax":
        import jax

        return f"{kind}: {jax.devices()[0].device_kind}"
    return kind


# The run folder: held by one run at a time, and resumed only by the same command.

_locked_here: set[Path] = set()  # run folders this process holds the lock of


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Held for the whole run: a second process on the same run folder would delete the first
    one's checkpoints, and both would save over one model. The lock file goes with the run.
    Taken again in the process that holds it, it is held already: the command line takes it
    before the data loads, so that a second run is refused at once, and `train` again."""
    key = run_dir.resolve()
    if key in _locked_here:
        yield
        return
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    path = run_dir.parent / f".{run_dir.name}.lock"
    with _open_locked(path, run_dir):
        _locked_here.add(key)
        try:
            yield
        finally:
            _locked_here.discard(key)
            with contextlib.suppress(OSError):  # left, an empty file does no harm
                path.unlink()  # while locked: a run that opened it meanwhile finds it gone (locks.still_names)


def _open_locked(path: Path, run_dir: Path):
    """The lock file, open and locked (released when it closes)."""
    while True:
        lock = open(path, "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise TrainingError(f"Another training run is using {run_dir}: wait for it to end, or give "
                                "this one another --name.") from None
        except OSError as error:  # some network file systems lock nothing
            print(f"warning: cannot lock {lock.name} ({error.strerror}), so a second run with this name "
                  "at the same time would not be stopped", file=sys.stderr)
            return lock
        if locks.still_names(path, lock):
            return lock
        lock.close()  # the run that held it removed it as it ended: lock the file now there


# What the trainer writes in a run's folder: anything else there is not ours to delete.
RUN_DIR_ENTRIES = {"settings.json", "scratch", "head", "fine_tune"}


def _claim_run_dir(run_dir: Path, hp: dict, data: Dataset, data_digest: str, model_path: Path,
                   replace: bool) -> None:
    """Resume from `run_dir` only a run of the same recipe on the same data (the same classes
    and image files by name, as `digest` knows them; a file changed in place goes unseen):
    checkpoints are kept by model name, and a changed command must not go on from another
    recipe's weights.
    A run that starts afresh saves over an existing model only if told to `replace` it."""
    settings = run_dir / "settings.json"
    wanted = json.dumps({"hyperparameters": hp, "data": data.name, "files": data_digest,
                         "classes": data.classes}, sort_keys=True)
    if run_dir.exists() and (not run_dir.is_dir() or not {entry.name for entry in run_dir.iterdir()} <= RUN_DIR_ENTRIES):
        raise TrainingError(f"{run_dir} is not a folder of checkpoints left by the trainer, so it is left "
                            "alone: choose another --run-dir or --name.")
    resuming = settings.exists() and settings.read_text() == wanted
    if not resuming and model_path.exists() and not replace:
        raise TrainingError(cards.exists_message(model_path))
    if run_dir.exists() and not resuming:
        print(f"{run_dir} holds an unfinished run with {_changes(settings, wanted)}: starting afresh")
        shutil.rmtree(run_dir)
    with resume.writing(run_dir, "the run's settings"):
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            settings.write_text(wanted)
        except OSError:  # left, a folder without it (or with it cut short) would read as another command's
            settings.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # if empty: nothing to resume
            raise


def _changes(settings: Path, wanted: str) -> str:
    """What differs between a run folder's settings and this run's, in words. An older trainer's
    run folder may lack settings.json or some of its entries: said as such, not as settings of
    null or as other data, which the same command rerun after an upgrade would read as wrong."""
    if not settings.exists():
        return "no record of its settings (an older trainer's run)"
    try:
        then, now = json.loads(settings.read_text()), json.loads(wanted)  # both as JSON has them: lists, not tuples
        hp_then, hp_now = then["hyperparameters"], now["hyperparameters"]
    except (OSError, ValueError, TypeError, KeyError):  # unreadable
        return "other settings or data"
    changes = [f"{key} {json.dumps(hp_then[key]) if key in hp_then else 'not recorded'}, "
               f"now {json.dumps(hp_now[key]) if key in hp_now else 'not a setting'}"
               for key in sorted(hp_then.keys() | hp_now.keys()) if hp_then.get(key, ...) != hp_now.get(key, ...)]
    parts = [f"other settings ({'; '.join(changes)})"] if changes else []
    if "files" not in then:
        parts.append("no record of its image files (an older trainer's run)")
    elif any(then.get(key) != now[key] for key in ("files", "classes")):
        parts.append("other data")
    elif then.get("data") != now["data"]:  # a folder, then its zip: the same files, read from elsewhere
        parts.append(f"the same files from data named {json.dumps(then.get('data'))}, now {json.dumps(now['data'])}")
    return " and ".join(parts) or "other settings or data"
