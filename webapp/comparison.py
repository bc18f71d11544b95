"""Every model's answer to one picture, side by side: how a scratch CNN and fine-tuned ones
answer the same photo."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from trainer.formatting import as_typed

from .dashboard import usable_by_data_set
from .predictor import NoModel, PredictionError, Result, Upload, answer
from .registry import ModelUnavailable, UnknownModel, get_registry


@dataclass(frozen=True)
class Answer:
    """One model's part in a comparison: its answer, or why it could not give one."""
    model: str
    data_set: str  # its heading on the dashboard
    classes: frozenset[str]
    accuracy: float | None  # held out, from its card
    test_accuracy: float | None = None  # where its data set's models are ranked by it, as on the dashboard
    result: Result | None = None
    error: str | None = None


def compare(upload: Upload, top_k: int) -> list[Answer]:
    """Each usable model's answer, each at its own input size, in the dashboard's order: by data
    set, the best first within each, as accuracies on other images do not compare. A model that
    cannot answer after all (it fails to load, or gives no probabilities for this image) gives its
    reason in its place, and the others still answer."""
    registry = get_registry()
    listed = {info.name: info for info in registry.models()}  # once for the whole comparison
    ranked = [(group, row, listed[row["name"]]) for group in usable_by_data_set(list(listed.values()))
              for row in group.rows]
    if not ranked:
        raise NoModel()
    # Once for each input size, before any model is loaded: an image none can read is refused once.
    for side in {max(info.card["input_shape"][:2]) for _, _, info in ranked}:
        upload.decode_for(side)
    answers = []
    for group, row, info in ranked:
        result = error = None
        try:
            result = answer(registry.load_listed(info), upload, top_k)
        except (ModelUnavailable, UnknownModel, PredictionError) as failure:
            error = str(failure)
        answers.append(Answer(info.name, group.heading, frozenset(info.card["classes"]), row["accuracy"],
                              row["test_accuracy"] if group.shared_test else None, result, error))
    return answers


def agreement(answers: list[Answer]) -> str:
    """One sentence: whether the models that answered agree on the most likely class."""
    answered = [answer for answer in answers if answer.result]
    # One class however its card spells it: "café" typed, or as macOS names a folder ("e" and an accent).
    votes = Counter(as_typed(answer.result.predictions[0][0]) for answer in answered)
    if not answered:
        return "No model could answer."
    if len(answered) == 1:
        return f"Only {answered[0].model} answered: it says {answered[0].result.predictions[0][0]}."
    subject = f"The {len(answered)} models" + (" that answered" if len(answered) < len(answers) else "")
    if len(votes) == 1:
        return f"{subject} agree: each says {next(iter(votes))}."
    # Most votes first; a tie in the order the best models gave them.
    counts = ", ".join(f"{count} {'says' if count == 1 else 'say'} {label}" for label, count in votes.most_common())
    # A model cannot be said to disagree by not naming a class it was never taught.
    verb = "know different classes" if len({frozenset(map(as_typed, answer.classes)) for answer in answered}) > 1 \
        else "disagree"
    return f"{subject} {verb}: {counts}."

