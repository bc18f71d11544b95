"""Every model's answer to one picture, side by side: how a scratch CNN and fine-tuned ones
answer the same photo."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from trainer.formatting import is_number

from .predictor import BadImage, PredictionError, Result, classify
from .registry import get_registry, rank, section


@dataclass(frozen=True)
class Answer:
    """One model's part in a comparison: its answer, or why it could not give one."""
    model: str
    accuracy: float | None  # held out, from its card
    result: Result | None = None
    error: str | None = None


def compare(data: bytes, top_k: int) -> list[Answer]:
    """Each model's answer, best model first (as the dashboard ranks them), each at its own
    input size. A model that cannot answer (unusable, or no probabilities for this image) gives
    its reason in its place, and the others still answer."""
    models = sorted(get_registry().models(), key=rank)
    if not models:
        raise PredictionError(503, "No model is available.")
    answers = []
    for info in models:
        accuracy = section(info.card or {}, "evaluation").get("accuracy")
        accuracy = accuracy if is_number(accuracy) else None
        try:
            answers.append(Answer(info.name, accuracy, result=classify(data, info.name, top_k)))
        except BadImage:
            raise  # the same for every model: said once, as for one model
        except PredictionError as error:
            answers.append(Answer(info.name, accuracy, error=error.message))
    return answers


def agreement(answers: list[Answer]) -> str:
    """One sentence: whether the models that answered agree on the most likely class."""
    votes = Counter(answer.result.predictions[0][0] for answer in answers if answer.result)
    answered = sum(votes.values())
    if answered == 0:
        return "No model could answer."
    if answered == 1:
        model, label = next((answer.model, answer.result.predictions[0][0]) for answer in answers if answer.result)
        return f"Only {model} answered: it says {label}."
    subject = f"The {answered} models" + (" that answered" if answered < len(answers) else "")
    if len(votes) == 1:
        return f"{subject} agree: each says {next(iter(votes))}."
    # Most votes first; a tie in the order the best models gave them.
    counts = ", ".join(f"{count} {'says' if count == 1 else 'say'} {label}" for label, count in votes.most_common())
    return f"{subject} disagree: {counts}."
