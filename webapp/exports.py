"""Tables to take away: CSV for a spreadsheet or pandas, Markdown to paste into a README or a
notebook. The CSV holds the card's values, numbers as plain numbers; the Markdown shows them
as the page does (92.1%, 8.7 MB)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Callable

from flask import send_file

from trainer.formatting import DASH, is_number

from .downloads import named

# A spreadsheet takes a text cell starting with one of these for a formula ("CSV injection"):
# a model or data set named "=HYPERLINK(...)" would run in whoever opens the file. A leading
# apostrophe, as OWASP advises, makes it text; that some programs show it is the lesser harm.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel reads a CSV without a byte-order mark in the local code page, garbling names beyond
# ASCII; pandas, LibreOffice and Google Sheets skip the mark.
BOM = "\ufeff"
# What Markdown acts on within a line: a cell's end, emphasis, code, links and images, HTML,
# entities, strike-through; and what GitHub adds: math between dollars, links from "www." and
# "http://", e-mail addresses, @mentions and emoji (":cat:").
MARKDOWN_ACTIVE = re.compile(r"[\\|*`\[\]<>&!~$@]|_+|(?<=www)\.|:(?=//|[\w+-]+:)")
# GitHub finds math, addresses, mentions and emoji after parsing, where a backslash is gone, but
# only within one element: a <span> around the character keeps it from the rest.
SEEN_AFTER_PARSING = ("$", "@", ":")


@dataclass(frozen=True)
class Column:
    key: str  # in the table's rows
    field: str  # its name in the CSV, for code: "file_size_bytes"
    heading: str  # the Markdown's, as the page's: "File size"
    shown: Callable[[object], str]  # the page's filter for it, for the Markdown
    number: bool = True  # else text
    optional: bool = False  # left out of the Markdown where no row has it


def csv_value(column: Column, value):
    """The value as the card holds it, or "" where it is missing or of another type."""
    if column.number:
        return value if is_number(value) else ""
    if not isinstance(value, str) or value == DASH:  # a data set's heading where no card names it
        return ""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def markdown_cell(column: Column, value) -> str:
    """The value as the page shows it, on one line, with what Markdown would act on escaped."""
    shown = MARKDOWN_ACTIVE.sub(_escaped, column.shown(value))
    return " ".join(shown.splitlines())  # a table's row is one line


def _escaped(found: re.Match) -> str:
    text, start, end = found.string, found.start(), found.end()
    # Underscores with a letter or digit on both sides (cifar10_scratch) cannot start emphasis:
    # left bare, the table reads as well as text.
    if found[0][0] == "_" and 0 < start and end < len(text) and text[start - 1].isalnum() and text[end].isalnum():
        return found[0]
    escaped = "".join("\\" + character for character in found[0])
    return f"<span>{escaped}</span>" if found[0] in SEEN_AFTER_PARSING else escaped


def to_csv(columns: list[Column], rows: list[dict]) -> str:
    out = io.StringIO()
    # Text quoted, numbers not: a spreadsheet that splits on ";" (as in much of Europe) keeps a name whole.
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(column.field for column in columns)
    writer.writerows([csv_value(column, row.get(column.key)) for column in columns] for row in rows)
    return BOM + out.getvalue()


def to_markdown(columns: list[Column], rows: list[dict]) -> str:
    shown = [column for column in columns
             if not column.optional or any(csv_value(column, row.get(column.key)) != "" for row in rows)]
    lines = [[column.heading for column in shown],
             ["---:" if column.number else "---" for column in shown]]
    lines += [[markdown_cell(column, row.get(column.key)) for column in shown] for row in rows]
    return "".join(f"| {' | '.join(line)} |\n" for line in lines)


def csv_file(columns: list[Column], rows: list[dict], name: str):
    return _text_file(to_csv(columns, rows), "text/csv", name, "attachment")


def markdown_file(columns: list[Column], rows: list[dict], name: str):
    # Shown in the browser, to copy (a browser would only save text/markdown); saved as `name`.
    return _text_file(to_markdown(columns, rows), "text/plain", name, "inline")


def _text_file(text: str, mimetype: str, name: str, disposition: str):
    # max_age 0: made anew from the models folder on each request, not a static file to cache for a year.
    return named(send_file(io.BytesIO(text.encode()), mimetype=mimetype, max_age=0), name, disposition)
