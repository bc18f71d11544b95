"""Numbers and errors as people read and write them, alike in the command line and the web
app (whose Jinja filters in webapp.formatting build on these)."""

from __future__ import annotations

import math
import os
import re
import sys
import unicodedata

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


def is_share(value) -> bool:
    """An accuracy, a precision or a probability to show or rank: a number from 0 to 1 (with
    float32's rounding, a hair over it)."""
    return is_number(value) and -1e-6 <= value <= 1 + 1e-6


def percentage(share: float, digits: int = 1) -> str:
    """A share as a percentage that rounding never makes perfect or nil: 2,499 right of 2,500
    (0.9996) is ">99.9%", not "100.0%", and 1 of 2,500 is "<0.1%", not "0.0%". Exactly 1 and 0
    (and float32's hair over 1) are "100.0%" and "0.0%"."""
    shown = f"{share:.{digits}%}"
    if shown == f"{1:.{digits}%}" and share < 1:
        return f">{100 - 10 ** -digits:.{digits}f}%"
    if shown == f"{0:.{digits}%}" and share > 0:
        return f"<{10 ** -digits:.{digits}f}%"
    return shown


def is_utf8(text: str) -> bool:
    """False for text holding lone surrogates: Python's stand-ins for a file name's bytes that
    are not UTF-8, and what JSON's "\\udc80" reads as. No page or JSON answer can carry them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def whole_number(text: str, least: int = 1, most: int | None = None) -> int:
    """A setting or field as a whole number from `least` to `most`, written in ASCII digits:
    int() alone would take "1_000", "+5" or other scripts' digits. ValueError otherwise (also
    from int() itself for thousands of digits)."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    value = int(text)
    if value < least or (most is not None and value > most):
        raise ValueError(text)
    return value


def filesize(value) -> str:
    """In decimal units, as the project states sizes everywhere (a model's 8.7 MB, the 10 MB
    upload limit), with a decimal only under 10."""
    if not is_number(value):
        return DASH
    for unit in ("bytes", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "bytes" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def plural(number: int, noun: str) -> str:
    """"1 epoch", "2 epochs", "1 class", "1,000 classes"."""
    many = noun + ("es" if noun.endswith(("s", "x")) else "s")
    return f"{number:,} {noun if number == 1 else many}"


# Control and format characters, lone surrogates, line and paragraph separators: not Unicode's
# spaces, which a name may well hold (macOS writes a narrow no-break space before "PM").
UNPRINTABLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def as_typed(text: str) -> str:
    """`text` spelled as typed (Unicode NFC): macOS names files and folders with "é" as "e" and an
    accent (NFD), which reads alike but compares unequal."""
    return unicodedata.normalize("NFC", text)


def one_line(name: str) -> str:
    """A file's name to print on a line of its own: its control characters (a line break that
    would fake another line, a terminal's escape sequence) written as Python writes them, "\\n"."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in UNPRINTABLE else c for c in name)


def first_line(message: str) -> str:
    """A library's error as one line of plain text: Keras colours its messages with terminal
    escapes and adds lines of arguments."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", message).strip().splitlines()
    return lines[0][:300] if lines else ""


def reason(error: BaseException) -> str:
    """Why something failed, in one line: the error's first line, or its type's name."""
    return first_line(str(error)) or type(error).__name__


def os_reason(error: OSError) -> str:
    """Why a file could not be written or read, in a few words ("No space left on device"):
    h5py puts HDF5's whole report, over several lines, where Python puts those words."""
    return os.strerror(error.errno) if error.errno else error.strerror or reason(error)


def not_installed(package: str) -> str:
    """Advice for another Python than the project's, without its packages: `python3 -m trainer`
    typed for `.venv/bin/python -m trainer`, say, or a gunicorn installed elsewhere."""
    return (f"{package} is not installed for {sys.executable}: use .venv/bin/python, the project's Python "
            "(make test or make serve installs it), or install requirements.txt into this one")
