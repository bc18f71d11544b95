"""The models dashboard: all models compared, and one model's card in full."""

from __future__ import annotations

from flask import Blueprint, render_template

from .charts import line_chart
from .registry import ModelInfo, get_info_or_404, get_registry, rank, section

bp = Blueprint("dashboard", __name__)

HEAT_LEVELS = 10  # shades of the confusion-matrix cells, see .heat-0 ... .heat-10 in style.css
# Beyond this many classes a confusion matrix is too big to read or send (1,000 classes made
# a 48 MB page); the per-class table still shows every class.
MAX_HEAT_MAP_CLASSES = 100

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


@bp.get("/models")
def index():
    infos = get_registry().models()
    rows = [summary(info) for info in sorted((info for info in infos if info.available), key=rank)]
    # Accuracies on different data sets do not compare: each data set's models together.
    by_dataset = len({str(row["dataset"]) for row in rows}) > 1
    if by_dataset:
        rows.sort(key=lambda row: str(row["dataset"]))  # stable: best first within each
    unavailable = [info for info in infos if not info.available]
    return render_template("models.html", rows=rows, by_dataset=by_dataset, unavailable=unavailable)


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
