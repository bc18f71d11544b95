from webapp.formatting import DASH, decimal, duration, filesize, percent, text, thousands


def test_filters_format_values_and_dash_missing_ones():
    assert percent(0.8732) == "87.3%" and percent(None) == DASH and percent(True) == DASH
    assert percent(float("nan")) == DASH and duration(float("inf")) == DASH and percent(10**400) == DASH
    assert decimal(0.123456) == "0.1235" and decimal("x") == DASH
    assert thousands(1234567) == "1,234,567"
    assert filesize(512) == "512 bytes" and filesize(2_345_678) == "2.3 MB" and filesize(3e9) == "3.0 GB"
    assert duration(12.34) == "12.3 s" and duration(192) == "3 min 12 s" and duration(7380) == "2 h 03 min"
    assert text(None) == DASH and text("") == DASH and text(3) == "3"
