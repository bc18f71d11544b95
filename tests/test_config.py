"""webapp.config: settings from the environment, checked as they are read."""

import re

import pytest

from webapp.config import DEFAULTS, settings_from_environment


def test_bad_environment_value_stops_with_a_clear_message():
    for value in ("ten", "0", "10MB", "1_000", "+5", "\u0661\u0660"):  # int() takes the last three
        with pytest.raises(SystemExit, match=re.escape(f"IMAGEAPP_MAX_CONTENT_LENGTH='{value}' is not a number of bytes above 0")):
            settings_from_environment({"IMAGEAPP_MAX_CONTENT_LENGTH": value})


def test_environment_values_are_read_without_surrounding_blanks():
    # A value written to a file with echo ends in a newline; a blank one counts as unset.
    settings = settings_from_environment({"IMAGEAPP_MAX_CONTENT_LENGTH": " 5000\n", "IMAGEAPP_DEFAULT_MODEL": "  "})
    assert settings == {"MAX_CONTENT_LENGTH": 5000}


def test_proxy_hops_are_a_count_from_zero():
    assert settings_from_environment({"IMAGEAPP_PROXY_HOPS": "0"}) == {"PROXY_HOPS": 0}
    with pytest.raises(SystemExit, match=re.escape("IMAGEAPP_PROXY_HOPS='-1' is not a number of proxies (0 or more)")):
        settings_from_environment({"IMAGEAPP_PROXY_HOPS": "-1"})


def test_model_downloads_are_on_unless_turned_off_with_a_yes_or_no_word():
    assert DEFAULTS["MODEL_DOWNLOADS"] is True
    for value, on in [("0", False), ("off", False), ("No", False), ("false", False),
                      ("1", True), (" TRUE\n", True), ("yes", True), ("On", True)]:
        assert settings_from_environment({"IMAGEAPP_MODEL_DOWNLOADS": value}) == {"MODEL_DOWNLOADS": on}
    assert settings_from_environment({"IMAGEAPP_MODEL_DOWNLOADS": " "}) == {}  # blank: the default, on
    for value in ("2", "maybe", "ture", "of"):  # a typo must not quietly mean either
        message = f"IMAGEAPP_MODEL_DOWNLOADS='{value}' is not 1 or 0 (nor true/false, yes/no, on/off)"
        with pytest.raises(SystemExit, match=re.escape(message)):
            settings_from_environment({"IMAGEAPP_MODEL_DOWNLOADS": value})
