"""webapp.config: settings from the environment, checked as they are read."""

import re

import pytest

from webapp.config import settings_from_environment, whole_number


def test_bad_environment_value_stops_with_a_clear_message():
    for value in ("ten", "0", "10MB", "1_000", "+5", "\u0661\u0660"):  # int() takes the last three
        with pytest.raises(SystemExit, match=re.escape(f"IMAGEAPP_MAX_CONTENT_LENGTH='{value}' is not a number of bytes above 0")):
            settings_from_environment({"IMAGEAPP_MAX_CONTENT_LENGTH": value})


def test_environment_values_are_read_without_surrounding_blanks():
    # A value written to a file with echo ends in a newline; a blank one counts as unset.
    settings = settings_from_environment({"IMAGEAPP_MAX_CONTENT_LENGTH": " 5000\n", "IMAGEAPP_DEFAULT_MODEL": "  "})
    assert settings == {"MAX_CONTENT_LENGTH": 5000}


@pytest.mark.parametrize("text, least, most, value", [("7", 1, None, 7), ("0", 0, 10, 0), ("10", 1, 10, 10),
                                                     ("007", 1, None, 7)])
def test_whole_number_reads_ascii_digits_within_bounds(text, least, most, value):
    assert whole_number(text, least, most) == value


@pytest.mark.parametrize("text, least, most", [("0", 1, None), ("11", 1, 10), ("-1", 0, None), ("1.0", 1, None),
                                              ("", 1, None), (" 7", 1, None), ("9" * 5000, 1, None)])
def test_whole_number_refuses_anything_else(text, least, most):
    with pytest.raises(ValueError):
        whole_number(text, least, most)
