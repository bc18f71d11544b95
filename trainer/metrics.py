"""Classification metrics, computed with NumPy so that the product needs no scikit-learn
(the tests compare against it)."""

from __future__ import annotations

import unicodedata

import numpy as np

from trainer.formatting import percentage, plural


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def averaged_classes(matrix: np.ndarray) -> np.ndarray:
    """Which classes the macro averages count: those with images or predictions (all of them
    when there are no images at all)."""
    present = (matrix.sum(axis=1) > 0) | (matrix.sum(axis=0) > 0)
    return present if present.any() else np.ones_like(present)


def classification_report(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict:
    """Loss, accuracy, macro and weighted precision / recall / F1, per-class figures and the
    confusion matrix, as stored in a metrics card. As in scikit-learn (`zero_division=0`), a
    class never predicted has precision 0, one with no images recall 0, and the macro averages
    leave out classes with neither: scoring a 10-class model on photos of 3 classes averages
    over those 3 (and any others it wrongly predicts), not over 7 zeros too."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_pred = probabilities.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, len(classes))

    true_positives = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros_like(true_positives), where=predicted > 0)
    recall = np.divide(true_positives, support, out=np.zeros_like(true_positives), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(both), where=both > 0)
    weights = support / max(support.sum(), 1)
    present = averaged_classes(matrix)

    picked = probabilities[np.arange(len(y_true)), y_true]
    # Clipped at Keras' epsilon, as its cross-entropy is: one confident miss stays finite.
    # The mean log is never positive: its absolute value is the loss, 0.0 (not -0.0) when perfect.
    loss = abs(float(np.mean(np.log(np.clip(picked, 1e-7, 1.0))))) if len(y_true) else 0.0

    return {
        "samples": int(len(y_true)),
        "loss": loss,
        "accuracy": float(np.mean(y_pred == y_true)) if len(y_true) else 0.0,
        "precision_macro": float(precision[present].mean()),
        "recall_macro": float(recall[present].mean()),
        "f1_macro": float(f1[present].mean()),
        "precision_weighted": float(precision @ weights),
        "recall_weighted": float(recall @ weights),
        "f1_weighted": float(f1 @ weights),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(classes)
        },
        "confusion_matrix": matrix.tolist(),
    }


MAX_LABEL_WIDTH = 41  # columns of the table's class column, its space included


def format_report(report: dict, title: str = "Evaluation") -> str:
    """The summary table printed at the end of training and by `trainer evaluate`."""
    # The classes the macro averages leave out are left out of the table too.
    shown = averaged_classes(np.asarray(report["confusion_matrix"]))
    rows = [(label, row) for (label, row), show in zip(report["per_class"].items(), shown) if show]
    # As wide as the longest name, within reason: golden_retriever_puppy and _adult must differ.
    width = min(max([14] + [_columns(label) + 1 for label, _ in rows]), MAX_LABEL_WIDTH)
    lines = [
        f"{title} ({report['samples']:,} images)",
        f"  loss {report['loss']:.4f}   accuracy {percentage(report['accuracy'], 2)}",
        f"  {'':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}",
    ]
    for label, row in rows:
        if _columns(label) >= width:
            while _columns(label) > width - 2:
                label = label[:-1]
            label += "\u2026"
        label += " " * (width - _columns(label))
        lines.append(
            f"  {label}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>9}"
        )
    for kind in ("macro", "weighted"):
        lines.append(
            f"  {kind + ' avg':<{width}}{report['precision_' + kind]:>10.3f}"
            f"{report['recall_' + kind]:>10.3f}{report['f1_' + kind]:>10.3f}{report['samples']:>9}"
        )
    absent = int((~shown).sum())
    if absent:
        lines.append(f"  ({plural(absent, 'class')} of the model left out: no images here, never predicted)")
    return "\n".join(lines)


def _columns(text: str) -> int:
    """How many columns a terminal gives `text`: two for a Chinese or Japanese character or an
    emoji, none for a combining accent (macOS's "e" and accent), which str's padding counts as one."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
