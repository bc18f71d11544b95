"""Training curves as inline SVG, drawn on the server: no JavaScript chart library.

This module computes the geometry; templates/_charts.html draws it, so the markup is
escaped by Jinja like every other page. Colours come from classes in static/style.css.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from trainer.formatting import is_number

WIDTH, HEIGHT = 520, 256
# Room around the plot for its tick labels at their largest: a narrow chart sets its text in up
# to 24 of these units (style.css), so that it is drawn at a readable size. LEFT holds five
# characters ("0.015", "100%"); a chart with wider labels moves its plot's left edge.
LEFT, RIGHT, TOP, BOTTOM = 84, WIDTH - 28, 16, HEIGHT - 40
MAX_DOTS = 40  # beyond this many epochs the markers only clutter the line
X_TICKS = 6  # about this many epochs labelled: room for the larger text of a narrow chart
# A digit's width at that largest text, in a wide font (DejaVu Sans's 0.64 em), and the other
# characters of a tick label in digits.
DIGIT = 0.64 * 24
CHARACTER = {".": 0.5, "%": 1.5}
LABEL_ROOM = 14  # beside a value label's width: it ends 12 units short of the plot (_charts.html), 2 to spare
MAX_VALUE = 1e300  # beyond, a diverged run's figures: no chart


@dataclass(frozen=True)
class Series:
    label: str
    index: int  # picks the colour
    points: str  # for <polyline points="...">
    dots: list[tuple[float, float]]
    best: tuple[int, float]  # (epoch, value), for the text summary
    final: tuple[int, float]


@dataclass(frozen=True)
class LineChart:
    title: str
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    series: list[Series]
    percent: bool
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM


def nice_step(raw: float) -> float:
    """The round step (1, 2 or 5 times a power of ten) at least `raw`."""
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))


def nice_ticks(low: float, high: float, count: int = 5) -> tuple[list[float], float]:
    """Round tick values covering [low, high], and their step."""
    half = 0.5 * max(1.0, abs(high))  # relative for large values: 1e20 + 0.5 is 1e20
    if high - low < 1e-9 * half:
        low, high = low - half, high + half
    step = nice_step((high - low) / count)
    start, stop = math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step
    return [start + i * step for i in range(round((stop - start) / step) + 1)], step


def _label(value: float, step: float, percent: bool) -> str:
    if percent:
        value, step = value * 100, step * 100
    digits = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{digits}f}" + ("%" if percent else "")


def _widest(labels: list[str]) -> float:
    """The widest label's width at a narrow chart's largest text."""
    return max(sum(CHARACTER.get(c, 1) for c in label) for label in labels) * DIGIT


def _power_label(value: float, step: float) -> str:
    """`value` in powers of ten ("1.2e12", "1.5e-7"), to the step's last digit."""
    if value == 0:
        return "0"
    digits = max(0, math.floor(math.log10(abs(value))) - math.floor(math.log10(step) + 1e-9))
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def epoch_ticks(epochs: int, plot_width: float = RIGHT - LEFT) -> list[int]:
    """The first and last epochs and round ones between, none within half a step of either end,
    nor so near it that their labels, at their largest, would run together."""
    if epochs <= X_TICKS:
        return list(range(1, epochs + 1))
    step = int(nice_step((epochs - 1) / X_TICKS))
    # Two neighbours' labels need their centres a label's width apart: the last epoch's at most.
    apart = max(step / 2, _widest([str(epochs)]) * (epochs - 1) / plot_width)
    return [1, *(e for e in range(step, epochs, step) if e - 1 >= apart and epochs - e >= apart), epochs]


def line_chart(title: str, series: dict[str, list], percent: bool = False, best=min,
               least_left: int = LEFT) -> LineChart | None:
    """One line per named list of per-epoch values; None when there is nothing to draw.
    `best` picks the best value of a line (min for a loss, max for an accuracy); the plot starts
    at `least_left` or, for wider value labels, further right."""
    clean = {
        label: [(epoch, float(v)) for epoch, v in enumerate(values if isinstance(values, list) else [], start=1)
                if is_number(v)]
        for label, values in series.items()
    }
    drawn = {label: points for label, points in clean.items() if points}
    values = [v for points in drawn.values() for _, v in points]
    # Nothing, or no scale to draw it on: round ticks around values near float's limit overflow it.
    if not values or max(map(abs, values)) > MAX_VALUE:
        return None
    epochs = max(epoch for points in drawn.values() for epoch, _ in points)
    y_values, y_step = nice_ticks(min(values), max(values))
    if percent and 0 <= min(values) and max(values) <= 1:  # a flat 100% was drawn on an axis up to 160%
        y_values = [v for v in y_values if -1e-9 <= v <= 1 + 1e-9]
    y_low, y_high = y_values[0], y_values[-1]
    y_labels = [_label(v, y_step, percent) for v in y_values]
    # Wider than LEFT where a label is ("0.0125", "250000"), as far as a third of the drawing.
    widest = _widest(y_labels)
    if widest + LABEL_ROOM > WIDTH // 3:  # a diverged loss's 1000000000000 or a tiny 0.00000010: cut even at a third
        powers = [_power_label(v, y_step) for v in y_values]
        if (narrower := _widest(powers)) < widest:
            y_labels, widest = powers, narrower
    left = min(WIDTH // 3, max(least_left, math.ceil(widest) + LABEL_ROOM))
    # The last epoch's label is centred on the plot's right edge: half of it must fit beside it
    # (RIGHT's 28 units hold three digits; "1000" and "10000" were cut on a phone).
    right = min(RIGHT, WIDTH - math.ceil(_widest([str(epochs)]) / 2) - 2)

    def x(epoch: int) -> float:
        return (left + right) / 2 if epochs == 1 else left + (epoch - 1) / (epochs - 1) * (right - left)

    def y(value: float) -> float:
        return BOTTOM - (value - y_low) / (y_high - y_low) * (BOTTOM - TOP)

    return LineChart(
        title=title,
        x_ticks=[(round(x(e), 1), str(e)) for e in epoch_ticks(epochs, right - left)],
        y_ticks=[(round(y(v), 1), label) for v, label in zip(y_values, y_labels)],
        series=[
            Series(
                label=label,
                index=index,
                points=" ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in clean[label]),
                dots=[(round(x(e), 1), round(y(v), 1)) for e, v in clean[label]] if epochs <= MAX_DOTS else [],
                best=best(clean[label], key=lambda point: point[1]),
                final=clean[label][-1],
            )
            for index, label in enumerate(series)
            if label in drawn
        ],
        percent=percent,
        left=left,
        right=right,
    )


def side_by_side(drawings: list[Callable[..., LineChart | None]]) -> list[LineChart]:
    """The charts of `drawings` (line_chart with its arguments bound) that have something to draw,
    their plots starting at the same distance from the left: in a row, one whose wider labels
    moved it 16 units in looked out of line with its neighbour."""
    drawn = [(drawing, chart) for drawing in drawings if (chart := drawing())]
    left = max((chart.left for _, chart in drawn), default=LEFT)
    # Drawn again only where its plot started further left.
    return [chart if chart.left == left else drawing(least_left=left) for drawing, chart in drawn]
