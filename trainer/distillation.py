"""Knowledge distillation: a small net learns from a trained bigger one as well as from the
labels (Hinton et al., 2015), as in the keras-io example "Knowledge Distillation".

The teacher sees the same augmented images as the student in every step, so its predictions
are a soft label for exactly what the student sees ("consistent" teaching, Beyer et al., 2022).
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np

from trainer import model_file
from trainer.card import load_card
from trainer.data import Dataset, digest, overlap_words, picture_fingerprints, trained_on
from trainer.formatting import reason
from trainer.models import WeightsError


class Distiller(keras.Model):
    """Trains `student` against targets blending the labels with `teacher`'s predictions,
    `teacher_weight` of the teacher's; the compiled loss and metrics are the student's own,
    and validation scores the student against the labels alone. The student may give logits
    (with a loss compiled `from_logits`); the teacher gives probabilities."""

    def __init__(self, student: keras.Model, teacher: keras.Model, teacher_weight: float):
        super().__init__(name=f"{student.name}_distiller")
        teacher.trainable = False
        self.student, self.teacher, self.teacher_weight = student, teacher, teacher_weight
        self.build(student.input_shape)  # resuming from a backup needs a built model

    def call(self, x, training=False):
        return self.student(x, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training:
            taught = keras.ops.cast(self.teacher(x, training=False), y.dtype)
            # The compiled loss smooths the targets it is given, as the labels need; the teacher's
            # predictions are soft already. Smoothing is affine, so they go in "unsmoothed" and come
            # out as they were: the target is (1 - w) * the smoothed labels + w * the predictions.
            smoothing = getattr(self.loss, "label_smoothing", 0.0)
            taught = (taught - smoothing / y.shape[-1]) / (1 - smoothing)
            y = (1 - self.teacher_weight) * y + self.teacher_weight * taught
        return super().compute_loss(x, y, y_pred, sample_weight, training)


def teacher_card(path: str) -> dict | None:
    """The teacher's card (None without one), once its file is read through and found to be
    the card's: checked before the data loads, and again as the teacher is loaded."""
    card_path = Path(path).with_suffix(".json")
    try:
        card = load_card(card_path) if card_path.is_file() else None
        # Read through in a child process: some damaged files crash HDF5 itself, and NaN weights
        # would pass for a run that diverged. Its card must be its own: the check of its
        # training images goes by it.
        problem = model_file.problem(Path(path), card or {}) or model_file.card_of_another_file(Path(path), card or {})
    except (OSError, ValueError) as error:  # a card that cannot be read, a file gone meanwhile
        problem = reason(error)
    if problem:
        raise WeightsError(f"Cannot use the teacher {path} ({problem}).")
    return card


def refuse_other_input(path: str, card: dict | None, image_size: int) -> None:
    """A teacher whose card says it takes images of another size than the run's, refused before
    the data loads (its classes can be checked only once the data is read)."""
    wanted = (image_size, image_size, 3)
    if card is not None and tuple(card["input_shape"]) != wanted:
        raise WeightsError(f"The teacher {path} takes {tuple(card['input_shape'])} images; this run needs {wanted}.")


def load_teacher(path: str, train_set: Dataset, held_out: Dataset) -> keras.Model:
    """A saved model of this product to learn from. It must take the student's images and,
    if its card says which classes it knows, know the same ones in the same order; and it must
    not have trained on the student's held-out images (as far as its card's sample of its
    training images shows, or, on a card from before samples, its digests), or it would pass
    on what it learned of them."""
    input_shape, classes = train_set.images.shape[1:], train_set.classes
    card = teacher_card(path)
    try:
        teacher = keras.saving.load_model(path, compile=False)
    except Exception as error:  # a missing or damaged file fails inside h5py or Keras in many ways
        raise WeightsError(f"Cannot use the teacher {path} ({model_file.keras_refusal(error) or reason(error)}).") \
            from None
    if tuple(teacher.input_shape[1:]) != tuple(input_shape) or teacher.output_shape[-1] != len(classes):
        raise WeightsError(
            f"The teacher {path} takes {tuple(teacher.input_shape[1:])} images into {teacher.output_shape[-1]} "
            f"classes; this run needs {tuple(input_shape)} into {len(classes)}.")
    if card is not None and card["classes"] != classes:
        raise WeightsError(f"The teacher {path} knows the classes {card['classes']}, not this data's {classes}.")
    # Copies of a picture on both sides of the split, which the student trains on too, teach it nothing new.
    found = trained_on(held_out, card, set(picture_fingerprints(train_set.images))) if card is not None else None
    if found and found[0]:
        shared = overlap_words(*found[:2], len(held_out.files), "this run holds out")
        raise WeightsError(f"The teacher {path} was trained on {shared} ({found[2]}), and would pass on "
                           "what it learned of them; train the teacher on this same data with this run's --seed and "
                           "--validation-fraction, or on data without them.")
    # Of the same data, the same images must be held out: all a card from before samples can tell,
    # and a check that holds where a sample misses (another Pillow may decode the images otherwise).
    if found is None and "data_digest" not in (card or {}):  # no card, an imported model's, or one from before
        why = "it has no card" if card is None else "its card does not record them"
        print(f"warning: nothing says which images the teacher {path} trained on ({why}), so nothing checks that "
              "it left out the ones this run holds out: if it trained on them, it passes on what it learned of "
              "them and the held-out score comes out too high", file=sys.stderr)
    same_data = card is not None and card.get("data_digest") == digest(
        np.concatenate([train_set.files, held_out.files]))
    if same_data and card.get("held_out_digest") != digest(held_out.files):
        raise WeightsError(f"The teacher {path} was trained on this data with other images held out, some of which "
                           "this run holds out; train it with this run's --seed and --validation-fraction.")
    return teacher
