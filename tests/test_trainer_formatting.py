import errno

import pytest

from trainer.formatting import (DASH, filesize, first_line, is_number, one_line, os_reason, plural, reason,
                                whole_number)


def test_numbers_to_show_are_finite_and_not_bools():
    assert is_number(3) and is_number(0.5)
    assert not is_number(True) and not is_number(float("nan")) and not is_number(10**400) and not is_number("3")


def test_sizes_in_decimal_units_with_a_decimal_only_under_ten():
    assert filesize(512) == "512 bytes" and filesize(2_345_678) == "2.3 MB" and filesize(3e9) == "3.0 GB"
    assert filesize(7_988_728) == "8.0 MB" and filesize(10_000_000) == "10 MB" and filesize(15_500_000) == "16 MB"
    assert filesize(None) == DASH


def test_counts_of_things():
    assert [plural(0, "epoch"), plural(1, "epoch"), plural(2, "epoch"), plural(1, "class"), plural(1000, "class")] == [
        "0 epochs", "1 epoch", "2 epochs", "1 class", "1,000 classes"]


def test_a_library_error_as_one_plain_line():
    assert first_line("\x1b[1mBad layer\x1b[0m\n  Arguments: ...\n") == "Bad layer"
    assert first_line("  \n") == "" and len(first_line("x" * 1000)) == 300
    assert reason(ValueError("no such file\nmore")) == "no such file"
    assert reason(KeyError()) == "KeyError"


@pytest.mark.parametrize("text, least, most, value", [("7", 1, None, 7), ("0", 0, 10, 0), ("10", 1, 10, 10),
                                                     ("007", 1, None, 7)])
def test_whole_number_reads_ascii_digits_within_bounds(text, least, most, value):
    assert whole_number(text, least, most) == value


@pytest.mark.parametrize("text, least, most", [("0", 1, None), ("11", 1, 10), ("-1", 0, None), ("1.0", 1, None),
                                              ("", 1, None), (" 7", 1, None), ("9" * 5000, 1, None)])
def test_whole_number_refuses_anything_else(text, least, most):
    with pytest.raises(ValueError):
        whole_number(text, least, most)


def test_an_os_error_is_given_in_a_few_words_also_from_h5py():
    assert os_reason(OSError(errno.ENOSPC, "Can't synchronously write data (file write failed: time = ...\n, "
                                           "filename = 'x.h5', errno = 28)")) == "No space left on device"
    assert os_reason(OSError("no errno here")) == "no errno here"


def test_a_name_prints_on_one_line_with_its_spaces_and_accents_as_they_are():
    assert one_line("ok\nfake.png: cat 99.9%") == "ok\\nfake.png: cat 99.9%"  # no second answer's line
    assert one_line("red\x1b[31m\u2028.png") == "red\\x1b[31m\\u2028.png"  # nor a terminal's colour
    for name in ("Screenshot at 10.00.00\u202fAM.png", "\u5199\u771f\u30001.jpg", "cafe\u0301 au lait.png"):
        assert one_line(name) == name  # macOS's narrow no-break space, an ideographic space, an accent


def test_accuracy_short_of_perfect_is_not_printed_as_perfect():
    import numpy as np

    from trainer.formatting import percentage
    from trainer.metrics import classification_report, format_report

    assert percentage(19_999 / 20_000, 2) == ">99.99%" and percentage(1 / 30_000, 2) == "<0.01%"
    assert percentage(1.0, 2) == "100.00%" and percentage(0.0) == "0.0%" and percentage(1.0000001) == "100.0%"
    labels = np.zeros(20_000, dtype=np.int64)
    predicted = labels.copy()
    predicted[0] = 1  # one mistake in 20,000
    report = classification_report(labels, np.eye(2)[predicted], ["a", "b"])
    assert "accuracy >99.99%" in format_report(report)

