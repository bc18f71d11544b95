"""The models dashboard: all models compared, and one model's card in full."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from flask import Blueprint, render_template

from trainer.formatting import is_number

from .charts import line_chart
from .formatting import text
from .registry import ModelInfo, get_info_or_404, get_registry, rank, section

bp = Blueprint("dashboard", __name__)

HEAT_LEVELS = 10  # shades of the confusion-matrix cells, see .heat-0 ... .heat-10 in style.css
# Beyond this many classes a confusion matrix is too big to read or send (1,000 classes made
# a 48 MB page); the per-class table still shows every class.
MAX_HEAT_MAP_CLASSES = 100
# A card's digests are 16 hex digits (trainer.data.digest); a hand-edited one that is not a
# string of at most this length is taken as not recorded.
MAX_DIGEST_LENGTH = 64

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


def summary(info: ModelInfo) -> dict:
    """One dashboard row. The file size is the file's own: the card may predate a copy."""
    card = info.card or {}
    evaluation = section(card, "evaluation")
    return {
        "name": info.name,
        "card_note": info.card_note,
        "architecture": card.get("architecture"),
        "dataset": card.get("dataset"),
        "parameters": card.get("parameters"),
        "file_size": info.file_size,
        "epochs": card.get("epochs_run"),
        "training_seconds": card.get("training_seconds"),
        "accuracy": evaluation.get("accuracy"),
        "test_accuracy": section(card, "test_evaluation").get("accuracy"),
        "precision": evaluation.get("precision_macro"),
        "recall": evaluation.get("recall_macro"),
        "f1": evaluation.get("f1_macro"),
        "loss": evaluation.get("loss"),
    }


def heat_map(matrix, classes: list[str]) -> list[dict] | None:
    """Confusion-matrix rows with a shade per cell, by the share of the true class's images."""
    size = len(classes)
    valid = (
        size <= MAX_HEAT_MAP_CLASSES
        and isinstance(matrix, list)
        and len(matrix) == size
        and all(isinstance(row, list) and len(row) == size for row in matrix)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for row in matrix for n in row)
    )
    if not valid:
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


def fingerprint(card: dict, key: str) -> str | None:
    """The card's data_digest, held_out_digest or test_digest; None when it records none."""
    value = card.get(key)
    return value if isinstance(value, str) and 0 < len(value) <= MAX_DIGEST_LENGTH else None


@dataclass
class Group:
    """The models trained on one data set, as the dashboard shows them."""
    name: str
    rows: list[dict]
    recorded: bool  # told by the images' digest, not only by the data set's name
    shared_test: bool  # all scored on the same test images: ranked by that, the fairest figure
    held_out_differs: bool
    heading: str = ""


def group(infos: list[ModelInfo], recorded: bool) -> Group:
    """One data set's models, best first."""
    cards = [info.card or {} for info in infos]
    rows = [summary(info) for info in infos]
    test_sets = {fingerprint(card, "test_digest") for card in cards}
    scored = all(is_number(row["test_accuracy"]) for row in rows)
    shared_test = scored and len(test_sets) == 1 and None not in test_sets
    if shared_test:
        rows.sort(key=lambda row: -row["test_accuracy"])  # stable: ties stay in held-out order
    return Group(
        name=", ".join(sorted({text(card.get("dataset")) for card in cards})),  # a renamed copy's two names
        rows=rows,
        recorded=recorded,
        shared_test=shared_test,
        held_out_differs=len({fingerprint(card, "held_out_digest") for card in cards} - {None}) > 1,
    )


def data_set_of(card: dict) -> tuple[str, str]:
    """What a model was trained on: its images, by their digest, or for a card without one
    (older, or hand-edited), its data set's name alone."""
    digest = fingerprint(card, "data_digest")
    return ("images", digest) if digest else ("name", text(card.get("dataset")))


def by_data_set(infos: list[ModelInfo]) -> list[Group]:
    """The models (best first) in groups by what they were trained on, in order of name, as
    accuracies on other images do not compare."""
    found: dict[tuple[str, str], list[ModelInfo]] = {}
    for info in infos:
        found.setdefault(data_set_of(info.card or {}), []).append(info)
    groups = sorted((group(members, recorded=kind == "images") for (kind, _), members in found.items()),
                    key=lambda each: (each.name, not each.recorded))
    add_headings(groups)
    return groups


def add_headings(groups: list[Group]) -> None:
    """Each group's heading: its data set's name, and for one of several data sets of that
    name, which one."""
    recorded = Counter(each.name for each in groups if each.recorded)
    numbered: Counter[str] = Counter()
    for each in groups:
        each.heading = each.name
        if not each.recorded and recorded[each.name]:
            each.heading += " (cards that do not say which images)"
        elif each.recorded and recorded[each.name] > 1:
            numbered[each.name] += 1
            each.heading += f" ({numbered[each.name]} of {recorded[each.name]} different data sets of this name)"


@bp.get("/models")
def index():
    infos = get_registry().models()
    groups = by_data_set(sorted((info for info in infos if info.available), key=rank))
    unavailable = [info for info in infos if not info.available]
    return render_template("models.html", groups=groups, unavailable=unavailable)


@bp.get("/models/<name>")
def detail(name: str):
    info = get_info_or_404(name)
    card = info.card or {}
    history = section(card, "history")
    evaluation = section(card, "evaluation")
    charts = [
        line_chart("Loss", {"training": history.get("loss"), "validation": history.get("val_loss")}),
        line_chart(
            "Accuracy",
            {"training": history.get("accuracy"), "validation": history.get("val_accuracy")},
            percent=True,
            best=max,
        ),
    ]
    per_class = section(evaluation, "per_class")
    return render_template(
        "model.html",
        info=info,
        card=card,
        charts=[chart for chart in charts if chart is not None],
        evaluations=[(title, figures) for title, figures in
                     (("Held-out images", evaluation), ("Test images", section(card, "test_evaluation"))) if figures],
        evaluation_rows=EVALUATION_ROWS,
        weighted_rows=WEIGHTED_ROWS,
        hyperparameters=section(card, "hyperparameters"),
        per_class=[(label, per_class[label]) for label in card.get("classes", []) if isinstance(per_class.get(label), dict)],
        heat_map=heat_map(evaluation.get("confusion_matrix"), card.get("classes", [])),
    )
