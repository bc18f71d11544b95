"""Jinja filters for card values, which may be missing: those show as a dash."""

from __future__ import annotations

import math

DASH = "\u2014"


def is_number(value) -> bool:
    """A card value to show, rank or plot: a finite number, and not a bool (JSON's true is
    an int to Python)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float, which no format or plot takes
        return False


def percent(value, digits: int = 1) -> str:
    return f"{value:.{digits}%}" if is_number(value) else DASH


def decimal(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if is_number(value) else DASH


def thousands(value) -> str:
    return f"{value:,}" if is_number(value) else DASH


def filesize(value) -> str:
    if not is_number(value):
        return DASH
    for unit in ("bytes", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def duration(seconds) -> str:
    if not is_number(seconds):
        return DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def text(value) -> str:
    return DASH if value is None or value == "" else str(value)


FILTERS = {f.__name__: f for f in (percent, decimal, thousands, filesize, duration, text)}


def init_app(app) -> None:
    app.jinja_env.filters.update(FILTERS)
