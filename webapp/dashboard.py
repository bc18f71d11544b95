"""The models dashboard: all models compared, and one model's card in full."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from flask import Blueprint, abort, render_template

from trainer.formatting import DASH, filesize, is_number, is_share, plural
from trainer.metrics import averaged_classes

from .charts import line_chart, side_by_side
from .exports import Column, csv_file, markdown_file
from .forms import ALL_MODELS
from .formatting import card_time, day, decimal, duration, percent, text, thousands
from .registry import ModelInfo, get_info_or_404, get_registry, rank, section

bp = Blueprint("dashboard", __name__)

HEAT_LEVELS = 10  # shades of the confusion-matrix cells, see .heat-0 ... .heat-10 in style.css
# Beyond this many classes a confusion matrix is too big to read or send (1,000 classes made
# a 48 MB page); the per-class table still shows every class.
MAX_HEAT_MAP_CLASSES = 100
# The most frequent mistakes named above a confusion matrix, which is hard to read at a glance.
MISTAKES_SHOWN = 3
# A card's digests are 16 hex digits (trainer.data.digest); a hand-edited one that is not a
# string of at most this length is taken as not recorded.
MAX_DIGEST_LENGTH = 64
# Classes named in a heading that tells data sets of one name apart; the rest are counted.
HEADING_CLASSES = 3

EVALUATION_ROWS = [
    ("Samples", "samples"),
    ("Accuracy", "accuracy"),
    ("Loss", "loss"),
    ("Precision (macro)", "precision_macro"),
    ("Recall (macro)", "recall_macro"),
    ("F1 (macro)", "f1_macro"),
]
# Shown on request: with classes of similar size they read the same as the macro ones.
WEIGHTED_ROWS = [
    ("Precision (weighted)", "precision_weighted"),
    ("Recall (weighted)", "recall_weighted"),
    ("F1 (weighted)", "f1_weighted"),
]

# The dashboard's table as a file: a row per usable model, its data set's heading beside it.
TABLE_COLUMNS = [
    Column("name", "model", "Model", text, number=False),
    Column("data_set", "data_set", "Data set", text, number=False),
    Column("test_accuracy", "test_accuracy", "Test accuracy", percent, optional=True),
    Column("accuracy", "accuracy", "Accuracy", percent),
    Column("loss", "loss", "Loss", decimal),
    Column("precision", "precision", "Precision", percent),
    Column("recall", "recall", "Recall", percent),
    Column("f1", "f1", "F1", percent),
    Column("architecture", "architecture", "Architecture", text, number=False),
    Column("parameters", "parameters", "Parameters", thousands),
    Column("file_size", "file_size_bytes", "File size", filesize),
    Column("epochs", "epochs", "Epochs", text),
    Column("training_seconds", "training_seconds", "Training time", duration),
    Column("card_note", "card_note", "Note", text, number=False, optional=True),
]
# A model page's per-class table as a file.
PER_CLASS_COLUMNS = [
    Column("label", "class", "Class", text, number=False),
    Column("precision", "precision", "Precision", percent),
    Column("recall", "recall", "Recall", percent),
    Column("f1", "f1", "F1", percent),
    Column("support", "support", "Support", thousands),
]


def summary(info: ModelInfo) -> dict:
    """One dashboard row. The file size is the file's own: the card may predate a copy."""
    card = info.card or {}
    evaluation, test = section(card, "evaluation"), section(card, "test_evaluation")
    return {
        "name": info.name,
        "card_note": info.card_note,
        "held_out_copies": trained_count(card, "held_out_in_training"),
        "architecture": card.get("architecture"),
        "dataset": card.get("dataset"),
        "parameters": card.get("parameters"),
        "file_size": info.file_size,
        "epochs": card.get("epochs_run"),
        "training_seconds": card.get("training_seconds"),
        "accuracy": share(evaluation.get("accuracy")),
        # Not a test score where the model trained on some of those images.
        "test_accuracy": None if trained_count(card, "test_in_training") else share(test.get("accuracy")),
        "precision": share(evaluation.get("precision_macro")),
        "recall": share(evaluation.get("recall_macro")),
        "f1": share(evaluation.get("f1_macro")),
        "loss": evaluation.get("loss"),
    }


def share(value) -> float | None:
    """A card's accuracy, precision, recall or F1; None where it holds none, or a number no share can be
    (a hand-edited 1e308 would rank first and show as "inf%")."""
    return value if is_share(value) else None


def is_counts(matrix, size: int) -> bool:
    """Whether a card's confusion matrix is one: `size` rows of `size` counts."""
    return (
        isinstance(matrix, list)
        and len(matrix) == size
        and all(isinstance(row, list) and len(row) == size for row in matrix)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for row in matrix for n in row)
    )


def heat_map(matrix, classes: list[str]) -> list[dict] | None:
    """Confusion-matrix rows with a shade per cell, by the share of the true class's images."""
    if len(classes) > MAX_HEAT_MAP_CLASSES or not is_counts(matrix, len(classes)):
        return None
    rows = []
    for label, counts in zip(classes, matrix):
        total = sum(counts)
        rows.append({
            "label": label,
            "total": total,
            "cells": [(n, round(HEAT_LEVELS * n / total) if total else 0) for n in counts],
        })
    return rows


def mistakes(rows: list[dict]) -> list[dict]:
    """The confusion matrix's worst cells off its diagonal, by the share of the true class's
    images taken for another class (a count would favour the largest classes)."""
    found = [{"true": row["label"], "taken_for": rows[j]["label"], "count": n, "total": row["total"]}
             for i, row in enumerate(rows) for j, (n, _) in enumerate(row["cells"]) if i != j and n > 0]
    return sorted(found, key=lambda cell: (-cell["count"] / cell["total"], -cell["count"]))[:MISTAKES_SHOWN]


def trained_count(card: dict, key: str) -> int:
    """How many of its held-out or test images (`key`: held_out_in_training, test_in_training)
    the model trained on too, by its card; 0 where it says none or nothing readable."""
    shared = card.get(key)
    return shared if is_number(shared) and shared > 0 else 0


def figures_heading(card: dict, key: str, images: str) -> str:
    """The model page's heading for its held-out or test figures, saying when it trained on some of those images."""
    shared = trained_count(card, key)
    return f"{images}, {thousands(shared)} of them trained on" if shared else images


def fingerprint(card: dict, key: str) -> str | None:
    """The card's data_digest, held_out_digest or test_digest; None when it records none."""
    value = card.get(key)
    return value if isinstance(value, str) and 0 < len(value) <= MAX_DIGEST_LENGTH else None


@dataclass
class Group:
    """The models trained on one data set, as the dashboard shows them."""
    name: str
    rows: list[dict]
    digest: str | None  # the images', by which it is told; None for cards without one, told by name
    shared_test: bool  # all scored on the same test images: ranked by that, the fairest figure
    # Test figures shown: those they are ranked by, or the only ones they have (imported models, scored on
    # other pictures each: not ranked by). Else hidden, as figures on other images do not compare.
    tested: bool
    held_out_differs: bool
    # What may tell it from other data sets of its name, in a reader's words, the most telling
    # first; None for what its cards do not say, or do not agree on.
    traits: tuple[str | None, ...]
    heading: str = ""

    @property
    def recorded(self) -> bool:
        return self.digest is not None

    @property
    def title(self) -> str:
        """Its heading on the page, where a file or a program gets a dash for a data set no card names."""
        return "Data set not recorded" if self.heading == DASH else self.heading  # imported models, say

    @property
    def caption(self) -> str:
        """Its table's name, for screen readers."""
        return "Models whose data set is not recorded" if self.heading == DASH else f"Models trained on {self.heading}"


def group(infos: list[ModelInfo], digest: str | None) -> Group:
    """One data set's models, best first; `digest`: their images', None for cards without one."""
    cards = [info.card or {} for info in infos]
    rows = [summary(info) for info in infos]
    test_sets = {fingerprint(card, "test_digest") for card in cards}
    scored = all(is_number(row["test_accuracy"]) for row in rows)
    shared_test = scored and len(test_sets) == 1 and None not in test_sets
    if shared_test:
        rows.sort(key=lambda row: -row["test_accuracy"])  # stable: ties stay in held-out order
    classes = {named_classes(card["classes"]) for card in cards}  # every usable model's card lists them
    return Group(
        name=", ".join(sorted({text(card.get("dataset")) for card in cards})),  # a renamed copy's two names
        rows=rows,
        digest=digest,
        shared_test=shared_test,
        tested=shared_test or (not any(is_number(row["accuracy"]) for row in rows)
                               and any(is_number(row["test_accuracy"]) for row in rows)),
        held_out_differs=len({fingerprint(card, "held_out_digest") for card in cards} - {None}) > 1,
        traits=(classes.pop() if len(classes) == 1 else None, first_trained(cards)),
    )


def named_classes(classes: list[str]) -> str:
    """"3 classes: cat, dog, ship", the first few named and the rest counted."""
    more = len(classes) - HEADING_CLASSES
    named = f"{plural(len(classes), 'class')}: {', '.join(classes[:HEADING_CLASSES])}"
    return named + (f" and {more:,} more" if more > 0 else "")


def first_trained(cards: list[dict]) -> str | None:
    """"first trained 26 Nov 2026": the day the earliest of them was made, when all say when."""
    moments = [card_time(card.get("created")) for card in cards]
    if any(moment is None or moment.tzinfo is None for moment in moments):  # without a zone: not comparable
        return None
    return f"first trained {day(min(moments))}"


def data_set_of(card: dict) -> tuple[str | None, str | None]:
    """What a model was trained on: (its images' digest, None), or for a card without one
    (older, or hand-edited), (None, its data set's name)."""
    digest = fingerprint(card, "data_digest")
    return (digest, None) if digest else (None, text(card.get("dataset")))


def by_data_set(infos: list[ModelInfo]) -> list[Group]:
    """The models (best first) in groups by what they were trained on, in order of name, as
    accuracies on other images do not compare."""
    found: dict[tuple[str | None, str | None], list[ModelInfo]] = {}
    for info in infos:
        found.setdefault(data_set_of(info.card or {}), []).append(info)
    groups = sorted((group(members, digest) for (digest, _), members in found.items()),
                    key=lambda each: (each.name, not each.recorded))
    add_headings(groups)
    return groups


def add_headings(groups: list[Group]) -> None:
    """Each group's heading: its data set's name, and for one of several data sets of that
    name, what tells it from the others."""
    namesakes: dict[str, list[Group]] = {}
    for each in groups:
        each.heading = each.name
        if each.recorded:
            namesakes.setdefault(each.name, []).append(each)
    for each in groups:
        if not each.recorded and each.name in namesakes:
            each.heading += " (cards that do not say which images)"
    for alike in namesakes.values():
        if len(alike) > 1:
            for each, trait in zip(alike, telling_traits(alike)):
                each.heading += f" ({trait})"


def telling_traits(alike: list[Group]) -> tuple[str, ...]:
    """What tells these data sets of one name apart: the first of their traits that each of them
    has and no two share, else their images' digests, which always differ."""
    for traits in zip(*(each.traits for each in alike)):
        if None not in traits and len(set(traits)) == len(traits):
            return traits
    return tuple(f"data digest {each.digest}" for each in alike)


def usable_by_data_set(infos: list[ModelInfo]) -> list[Group]:
    """The usable models as the dashboard shows them: by data set, best first."""
    return by_data_set(sorted((info for info in infos if info.available), key=rank))


def table_rows() -> list[dict]:
    """The dashboard's rows in its order, each with its data set's heading."""
    return [row | {"data_set": plain_spaces(each.heading)} for each in usable_by_data_set(get_registry().models())
            for row in each.rows]


def plain_spaces(heading: str) -> str:
    """A heading for a file or a program: the page's no-break spaces, which keep a date on one
    line there, as spaces."""
    return heading.replace("\u00a0", " ")


def detailed_figures(card: dict) -> dict:
    """The figures per class and the confusion matrix are the held-out images', or for a card
    without them (an imported model's) the test images'."""
    return section(card, "evaluation") or section(card, "test_evaluation")


def per_class_figures(card: dict) -> list[tuple[str, dict]]:
    """(class, its figures) for each of the card's classes that has them, in the card's order. A
    class with no images and no predictions (an imported model scored on some of its classes) has
    no precision, recall or F1: the card's 0s are 0/0, which the macro averages leave out, so
    they are None here, a dash on the page and an empty cell in the CSV."""
    figures = detailed_figures(card)
    per_class, classes = section(figures, "per_class"), card.get("classes", [])
    unscored = unscored_classes(figures.get("confusion_matrix"), classes)
    return [(label, per_class[label] | (dict.fromkeys(("precision", "recall", "f1")) if label in unscored else {}))
            for label in classes if isinstance(per_class.get(label), dict)]


def unscored_classes(matrix, classes: list[str]) -> set[str]:
    """The classes the macro averages leave out, with neither images nor predictions, by the
    confusion matrix (none where it is not one)."""
    if not is_counts(matrix, len(classes)):
        return set()
    return {label for label, averaged in zip(classes, averaged_classes(np.asarray(matrix))) if not averaged}


@bp.get("/models")
def index():
    infos = get_registry().models()
    groups = usable_by_data_set(infos)
    unavailable = [info for info in infos if not info.available]
    return render_template("models.html", groups=groups, unavailable=unavailable, all_models=ALL_MODELS)


# Beside /models, not under it: /models/<name> is a model's page, and names may hold dots.
@bp.get("/models.csv")
def table_csv():
    return csv_file(TABLE_COLUMNS, table_rows(), "models.csv")


@bp.get("/models.md")
def table_markdown():
    return markdown_file(TABLE_COLUMNS, table_rows(), "models.md")


@bp.get("/models/<name>")
def detail(name: str):
    info = get_info_or_404(name)
    card = info.card or {}
    history = section(card, "history")
    evaluation = section(card, "evaluation")
    charts = side_by_side([
        partial(line_chart, "Loss", {"training": history.get("loss"), "validation": history.get("val_loss")}),
        partial(line_chart, "Accuracy", {"training": history.get("accuracy"), "validation": history.get("val_accuracy")},
                percent=True, best=max),
    ])
    confusion = heat_map(detailed_figures(card).get("confusion_matrix"), card.get("classes", []))
    return render_template(
        "model.html",
        info=info,
        card=card,
        charts=charts,
        evaluations=[(title, figures) for title, figures in
                     ((figures_heading(card, "held_out_in_training", "Held-out images"), evaluation),
                      (figures_heading(card, "test_in_training", "Test images"), section(card, "test_evaluation")))
                     if figures],
        evaluation_rows=EVALUATION_ROWS,
        weighted_rows=WEIGHTED_ROWS,
        data_digest=fingerprint(card, "data_digest"),  # as the dashboard's headings may name it
        hyperparameters=section(card, "hyperparameters"),
        per_class=per_class_figures(card),
        heat_map=confusion,
        mistakes=mistakes(confusion) if confusion else [],
    )


# Ends in a fixed file name, as the downloads do: a name may hold dots, so "/models/<name>.csv"
# would also be the page of a model named "<name>.csv".
@bp.get("/models/<name>/per_class.csv")
def per_class_csv(name: str):
    info = get_info_or_404(name)
    if info.card is None:  # missing or unreadable: the model's page says which
        abort(404, description=f"Model '{name}' has no card that can be read, so no per-class figures.")
    figures = per_class_figures(info.card)
    if not figures:
        abort(404, description=f"Model '{name}' has no per-class figures on its card.")
    return csv_file(PER_CLASS_COLUMNS, [{**each, "label": label} for label, each in figures], f"{name}_per_class.csv")
