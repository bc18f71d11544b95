"""Tables as CSV and Markdown files: values, CSV injection, escaping."""

import pytest

from conftest import read_csv
from webapp.exports import Column, to_csv, to_markdown
from webapp.formatting import percent, text

COLUMNS = [
    Column("name", "model", "Model", text, number=False),
    Column("accuracy", "accuracy", "Accuracy", percent),
    Column("test_accuracy", "test_accuracy", "Test accuracy", percent, optional=True),
]


def test_csv_holds_numbers_as_numbers_and_odd_values_as_empty_cells():
    rows = [{"name": "cat_net", "accuracy": 0.919, "test_accuracy": 0.9},
            {"name": 5, "accuracy": "91%", "test_accuracy": True},
            {"accuracy": float("nan"), "test_accuracy": 10**400}]
    assert read_csv(to_csv(COLUMNS, rows)) == [["model", "accuracy", "test_accuracy"],
                                                ["cat_net", 0.919, 0.9], ["", "", ""], ["", "", ""]]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_text_that_a_spreadsheet_would_take_for_a_formula_is_made_text(start):
    name = start + "HYPERLINK(\"http://example.com\",\"x\")"
    assert read_csv(to_csv(COLUMNS, [{"name": name, "accuracy": -0.5}]))[1] == ["'" + name, -0.5, ""]


def test_csv_keeps_names_beyond_ascii_commas_quotes_and_line_breaks():
    names = ["chat_noir_café", "猫", 'a,"b"', "two\nlines"]
    assert [row[0] for row in read_csv(to_csv(COLUMNS, [{"name": name} for name in names]))[1:]] == names


def test_markdown_shows_values_as_the_page_does_and_escapes_what_would_break_the_table():
    rows = [{"name": "a|b", "accuracy": 0.919}, {"name": "back\\slash|", "accuracy": None},
            {"name": "two\nlines\r\nthree"}]
    assert to_markdown(COLUMNS, rows).splitlines() == [
        "| Model | Accuracy |",
        "| --- | ---: |",
        "| a\\|b | 91.9% |",
        "| back\\\\slash\\| | \u2014 |",
        "| two lines three | \u2014 |",
    ]


def name_cells(names):
    return [line.split(" | ")[0][2:] for line in to_markdown(COLUMNS, [{"name": name} for name in names]).splitlines()[2:]]


def test_markdown_shows_names_as_they_are_not_as_markup():
    names = ["*best*", "__init__", "cifar10_scratch", "a__b_", "[x](http://e.com)", "![i](x.png)",
             "<b>bold</b>", "`code`", "~~gone~~", "&amp;"]
    assert name_cells(names) == ["\\*best\\*", "\\_\\_init\\_\\_", "cifar10_scratch", "a__b\\_",
                                 "\\[x\\](http<span>\\:</span>//e.com)", "\\!\\[i\\](x.png)", "\\<b\\>bold\\</b\\>",
                                 "\\`code\\`", "\\~\\~gone\\~\\~", "\\&amp;"]


def test_markdown_shows_names_as_they_are_on_github_not_as_math_links_or_emoji():
    shown = {
        "cost$5_vs$6": "cost<span>\\$</span>5_vs<span>\\$</span>6",
        "$$x$$": "<span>\\$</span><span>\\$</span>x<span>\\$</span><span>\\$</span>",
        "www.cat.com": "www\\.cat.com",
        "a_www.cat.com": "a_www\\.cat.com",  # "_" may start a link from "www."
        "https://cat.com": "https<span>\\:</span>//cat.com",
        "user@example.com": "user<span>\\@</span>example.com",
        "@octocat": "<span>\\@</span>octocat",
        "a:cat:b": "a<span>\\:</span>cat:b",
        ":a:cat:": "<span>\\:</span>a<span>\\:</span>cat:",
    }
    ordinary = ["cifar10_scratch", "vgg16-finetune", "resnet50 v1.2", "awwwards.net", "synthetic (3 classes: cat, dog)"]
    assert name_cells(shown) == list(shown.values())
    assert name_cells(ordinary) == ordinary


def test_markdown_leaves_out_an_optional_column_only_where_no_row_has_it():
    table = to_markdown(COLUMNS, [{"name": "a", "test_accuracy": 0.5}, {"name": "b"}])
    assert table.splitlines()[0] == "| Model | Accuracy | Test accuracy |"
    assert table.splitlines()[3] == "| b | \u2014 | \u2014 |"
    assert to_markdown(COLUMNS, []) == "| Model | Accuracy |\n| --- | ---: |\n"
