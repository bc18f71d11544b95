"""Server-side SVG chart geometry."""

import math

from webapp.charts import BOTTOM, LEFT, RIGHT, TOP, line_chart, nice_ticks


def test_nice_ticks_cover_the_range_with_round_steps():
    ticks, step = nice_ticks(0.23, 0.87)
    assert step == 0.2 and ticks[0] <= 0.23 and ticks[-1] >= 0.87
    assert all(math.isclose(b - a, step) for a, b in zip(ticks, ticks[1:]))
    assert nice_ticks(3, 3)[0][0] < 3 < nice_ticks(3, 3)[0][-1]  # flat series still get a range


def test_line_chart_geometry():
    chart = line_chart("Loss", {"training": [2.0, 1.0, 0.5], "validation": [2.2, 1.4, 1.1]})
    assert [s.label for s in chart.series] == ["training", "validation"]
    first = [tuple(map(float, p.split(","))) for p in chart.series[0].points.split()]
    assert first[0][0] == LEFT and first[-1][0] == RIGHT
    assert all(TOP <= y <= BOTTOM for _, y in first)
    assert first[0][1] < first[-1][1]  # higher loss drawn higher
    assert [label for _, label in chart.x_ticks] == ["1", "2", "3"]


def test_percent_labels_and_missing_values():
    chart = line_chart("Accuracy", {"training": [0.5, None, float("nan"), 0.9], "validation": None}, percent=True)
    assert [s.label for s in chart.series] == ["training"]
    assert len(chart.series[0].dots) == 2
    assert all(label.endswith("%") for _, label in chart.y_ticks)
    assert line_chart("Nothing", {"training": [], "validation": ["x", True]}) is None


def test_a_hand_edited_history_draws_nothing_rather_than_failing():
    assert line_chart("Loss", {"training": 5, "validation": "0.3"}) is None  # not lists
    assert line_chart("Loss", {"training": [-1.7e308, 1.7e308]}) is None  # no scale spans it


def test_single_epoch_and_many_epochs():
    single = line_chart("Loss", {"training": [1.0]})
    assert single.series[0].points == f"{(LEFT + RIGHT) / 2:.1f},{single.series[0].dots[0][1]:.1f}"
    many = line_chart("Loss", {"training": list(range(100, 0, -1))})
    assert many.series[0].dots == [] and len(many.x_ticks) == 10
