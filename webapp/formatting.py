"""Jinja filters for card values, which may be missing: those show as a dash. Numbers, sizes
and errors are written as the command line writes them (trainer.formatting)."""

from __future__ import annotations

import datetime as dt
import json
import re

from jinja2 import Undefined
from markupsafe import Markup

from trainer.formatting import DASH, filesize, is_number, is_share, percentage


def percent(value, digits: int = 1) -> str:
    return percentage(value, digits) if is_share(value) else DASH


# Beyond, fixed digits run to hundreds of characters (a hand-edited or diverged loss).
LARGEST_FIXED = 1e15


def decimal(value, digits: int = 4) -> str:
    if not is_number(value):
        return DASH
    return f"{value:.{digits}f}" if abs(value) < LARGEST_FIXED else f"{value:.{digits}g}"


def thousands(value) -> str:
    return f"{value:,}" if is_number(value) else DASH


def duration(seconds) -> str:
    if not is_number(seconds) or seconds < 0:
        return DASH
    if round(seconds, 1) < 60:  # 59.96 s is "1 min 00 s", not "60.0 s"
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def milliseconds(value) -> str:
    # Whole milliseconds read best; a small model's answer in under 10 ms keeps a decimal.
    if not is_number(value):
        return DASH
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def card_time(value) -> dt.datetime | None:
    """A card's ISO 8601 time, in UTC (or without a zone, where it was written without one);
    None where it is not a time, or not one that datetime can hold."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(dt.timezone.utc)
    except OverflowError:  # year 1 east of UTC, or 9999 west of it: beyond datetime's years
        return None


def day(moment: dt.datetime) -> str:
    """"26 Nov 2026", with no-break spaces: a narrow page keeps a date on one line."""
    return moment.strftime("%d\u00a0%b\u00a0%Y").lstrip("0")


def timestamp(value) -> str:
    """A card's ISO 8601 time as "26 Nov 2026, 08:53 UTC", with no-break spaces inside the
    date and the time so that a narrow page breaks the line only after the comma."""
    moment = card_time(value)
    if moment is None:
        return text(value)
    zone = "\u00a0UTC" if moment.tzinfo is not None else ""  # a time written without a zone claims none
    return f"{day(moment)}, {moment:%H:%M}{zone}"


BACKENDS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch", "numpy": "NumPy"}


def _with_article(noun: str) -> str:
    # "an NVIDIA", "an H100", "a Tesla": by the sound of the first letter, spelt out for
    # an upper-case name.
    first_word = noun.split()[0]
    vowel_sound = "AEFHILMNORSX" if first_word.isupper() else "AEIOU"
    return ("an " if noun[0].upper() in vowel_sound else "a ") + noun


def device(value) -> str:
    """The card's device as a phrase: "gpu: NVIDIA H200" is "an NVIDIA H200 GPU", "cpu (16
    cores)" is "a CPU with 16 cores"."""
    if not isinstance(value, str) or not value.strip():
        return DASH
    kind, _, name = value.partition(":")
    kind, _, detail = kind.strip().partition(" ")
    noun = f"{name.strip()} {kind.upper()}".strip()
    if not noun:  # ":" names neither a kind nor a device
        return DASH
    return _with_article(noun) + (" with " + detail.strip("()") if detail else "")


def trained_with(card: dict) -> str:
    """"JAX on an NVIDIA H200 GPU (Keras 3.15.1)", from the card's backend, device and keras_version."""
    backend, place, keras = card.get("backend"), device(card.get("device")), card.get("keras_version")
    words = BACKENDS.get(backend, backend) if isinstance(backend, str) and backend else DASH
    if place != DASH:
        words += " on " + place
    if keras:
        words += f" (Keras {keras})"
    return words


def setting(value) -> str:
    """A training setting: floats to four significant digits, booleans as yes/no, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) for item in value):
        return ", ".join(map(setting, value))
    return str(value) if isinstance(value, (str, int)) else json.dumps(value)


def text(value) -> str:
    return DASH if value is None or value == "" or isinstance(value, Undefined) else str(value)  # Undefined: no key


def breakable(value) -> Markup:
    """A model's or class's name that a narrow page may wrap after its underscores, hyphens
    and dots ("golden_<wbr>retriever"), rather than at any letter; escaped like any other text.
    Only where the element carries the plain name as its aria-label (model links, the confusion
    matrix's headers): <wbr> reads as a space to screen readers and voice control."""
    return Markup("<wbr>").join(re.split(r"(?<=[_.-])(?=.)", str(value)))


# A reason for an unavailable model longer than this carries a library's own text.
SHORT_REASON = 120


def split_reason(error: str) -> tuple[str, str | None]:
    """Why a model cannot be used, as (a plain lead, the full text for "Technical details" or
    None): a long reason leads with its first clause, before the library's own words."""
    if len(error) <= SHORT_REASON:
        return error, None
    return re.split(r": | \(", error, maxsplit=1)[0], error


FILTERS = {f.__name__: f for f in (percent, decimal, thousands, filesize, duration, milliseconds, timestamp,
                                   trained_with, setting, text, breakable, split_reason)}


def init_app(app) -> None:
    app.jinja_env.filters.update(FILTERS)
