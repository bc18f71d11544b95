"""Server-side SVG chart geometry."""

import math
from functools import partial

import pytest

from webapp.charts import (BOTTOM, LEFT, RIGHT, TOP, WIDTH, epoch_ticks, line_chart, nice_ticks,
                           side_by_side)


def test_nice_ticks_cover_the_range_with_round_steps():
    ticks, step = nice_ticks(0.23, 0.87)
    assert step == 0.2 and ticks[0] <= 0.23 and ticks[-1] >= 0.87
    assert all(math.isclose(b - a, step) for a, b in zip(ticks, ticks[1:]))
    assert nice_ticks(3, 3)[0][0] < 3 < nice_ticks(3, 3)[0][-1]  # flat series still get a range
    for flat in (1e20, -1e20, 1e-20, 1e299):  # also where adding 0.5 changes nothing
        assert nice_ticks(flat, flat)[0][0] < flat < nice_ticks(flat, flat)[0][-1]


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
    assert [label for _, label in chart.y_ticks] == ["50%", "60%", "70%", "80%", "90%"]  # round steps, no ".0"
    assert line_chart("Nothing", {"training": [], "validation": ["x", True]}) is None


def test_a_hand_edited_history_draws_nothing_rather_than_failing():
    assert line_chart("Loss", {"training": 5, "validation": "0.3"}) is None  # not lists
    assert line_chart("Loss", {"training": [-1.7e308, 1.7e308]}) is None  # no scale spans it
    assert line_chart("Loss", {"training": [0.0, 1.7e308]}) is None  # nor round ticks above it
    assert len(line_chart("Loss", {"training": [1e20, 1e20]}).y_ticks) > 1


def test_single_epoch_and_many_epochs():
    single = line_chart("Loss", {"training": [1.0]})
    assert single.series[0].points == f"{(LEFT + RIGHT) / 2:.1f},{single.series[0].dots[0][1]:.1f}"
    many = line_chart("Loss", {"training": list(range(100, 0, -1))})
    assert many.series[0].dots == [] and [label for _, label in many.x_ticks] == ["1", "20", "40", "60", "80", "100"]
    assert many.x_ticks[-1][0] == RIGHT
    assert len(line_chart("Loss", {"training": [1.0] * 40}).series[0].dots) == 40  # the most drawn with dots


def test_whole_steps_are_labelled_without_decimals():
    chart = line_chart("Loss", {"training": [0.0, 10.0]})
    assert [label for _, label in chart.y_ticks] == ["0", "2", "4", "6", "8", "10"]


def test_epoch_ticks_are_round_and_label_the_last_epoch():
    assert epoch_ticks(1) == [1] and epoch_ticks(6) == [1, 2, 3, 4, 5, 6]
    assert epoch_ticks(60) == [1, 10, 20, 30, 40, 50, 60]
    assert epoch_ticks(12) == [1, 2, 4, 6, 8, 10, 12]
    assert epoch_ticks(37) == [1, 10, 20, 30, 37]
    assert epoch_ticks(101) == [1, 20, 40, 60, 80, 101]  # 100 would crowd 101
    # Half a step from the end, but three digits apart at a narrow chart's largest text: 100 would run into them.
    assert epoch_ticks(110) == [1, 20, 40, 60, 80, 110] and epoch_ticks(112) == [1, 20, 40, 60, 80, 112]
    assert epoch_ticks(114) == [1, 20, 40, 60, 80, 100, 114]


def test_best_and_final_values_for_the_text_summary():
    loss = line_chart("Loss", {"validation": [2.0, 0.9, 1.1, 0.9, 1.2]})
    assert loss.series[0].best == (2, 0.9) and loss.series[0].final == (5, 1.2)  # the first of equal bests
    accuracy = line_chart("Accuracy", {"validation": [0.5, None, 0.8, 0.7]}, percent=True, best=max)
    assert accuracy.series[0].best == (3, 0.8) and accuracy.series[0].final == (4, 0.7)


def test_the_plot_leaves_room_for_six_character_labels():
    # At a narrow chart's largest text (24 units), "0.0125" needs more than LEFT's 84 units.
    for values, widest in (([0.0121, 0.0125], "0.0125"), ([210000, 250000], "250000")):
        chart = line_chart("Loss", {"training": values})
        assert widest in [label for _, label in chart.y_ticks] and chart.left > LEFT
        assert chart.x_ticks[0][0] == chart.left
    assert line_chart("Loss", {"training": [0.5, 0.9]}).left == LEFT


def test_charts_side_by_side_start_their_plots_at_the_same_place():
    wide_loss = partial(line_chart, "Loss", {"training": [0.0121, 0.0125]})
    accuracy = partial(line_chart, "Accuracy", {"training": [0.5, 0.9]}, percent=True)
    nothing = partial(line_chart, "Nothing", {"training": []})
    loss_chart, accuracy_chart = side_by_side([wide_loss, nothing, accuracy])
    assert loss_chart.left == accuracy_chart.left == wide_loss().left > LEFT
    assert accuracy_chart.x_ticks[0][0] == accuracy_chart.left  # its line drawn from there too
    assert side_by_side([accuracy])[0].left == LEFT and side_by_side([nothing]) == []


@pytest.mark.parametrize("epochs", [110, 999, 1000, 10000, 100000])
def test_the_last_epochs_label_fits_right_of_the_plot(epochs):
    # Centred on the plot's right edge, at a narrow chart's largest text (a digit 0.64 of 24 units).
    chart = line_chart("Loss", {"training": [1.0] * epochs})
    x, label = chart.x_ticks[-1]
    assert label == str(epochs) and x == chart.right and x + len(label) * 0.64 * 24 / 2 <= WIDTH


def test_labels_too_wide_for_a_third_of_the_drawing_are_written_in_powers_of_ten():
    # A diverged run's loss or a tiny one, written out, would be cut even with the plot moved to WIDTH // 3.
    for values, first, last in (([1e12, 2e12], "1.0e12", "2.0e12"), ([1e-8, 2e-8], "1.0e-8", "2.0e-8"),
                                ([1, 3e20], "0", "3e20")):
        labels = [label for _, label in line_chart("Loss", {"training": values}).y_ticks]
        assert (labels[0], labels[-1]) == (first, last)
        assert max(len(label) for label in labels) <= 6
    assert [label for _, label in line_chart("Loss", {"training": [1.0, 5.0]}).y_ticks][0] == "1"  # as before


def test_a_flat_accuracy_stays_between_0_and_100_percent():
    for flat, ticks in ((1.0, ["40%", "60%", "80%", "100%"]), (0.0, ["0%", "20%", "40%", "60%"])):
        chart = line_chart("Accuracy", {"training": [flat] * 5}, percent=True, best=max)
        assert [label for _, label in chart.y_ticks] == ticks
