from jinja2 import Environment

from webapp.formatting import DASH, SHORT_REASON, decimal, duration, percent, split_reason, text, thousands


def test_filters_format_values_and_dash_missing_ones():
    assert percent(0.8732) == "87.3%" and percent(None) == DASH and percent(True) == DASH
    assert percent(float("nan")) == DASH and duration(float("inf")) == DASH and percent(10**400) == DASH
    assert decimal(0.123456) == "0.1235" and decimal("x") == DASH
    assert thousands(1234567) == "1,234,567"
    assert duration(12.34) == "12.3 s" and duration(192) == "3 min 12 s" and duration(7380) == "2 h 03 min"
    assert duration(60) == "1 min 00 s" and duration(119.6) == "2 min 00 s" and duration(3600) == "1 h 00 min"
    assert text(None) == DASH and text("") == DASH and text(3) == "3"


def test_filters_dash_what_no_card_of_ours_could_hold():
    assert percent(1e308) == DASH and percent(-0.5) == DASH and percent(1.5) == DASH
    assert percent(1.0000001) == "100.0%"  # float32's softmax may sum a hair over 1
    assert decimal(1e308) == "1e+308" and decimal(-2.5e20, 2) == "-2.5e+20"  # not 300 digits
    assert duration(-5) == DASH and duration(59.96) == "1 min 00 s" and duration(59.94) == "59.9 s"
    assert text(Environment().undefined(name="architecture")) == DASH  # a key the card lacks, in a template


def test_card_values_in_plain_words():
    from webapp.formatting import milliseconds, setting, timestamp, trained_with

    assert timestamp("2026-11-26T08:53:08+00:00") == "26\u00a0Nov\u00a02026, 08:53\u00a0UTC"
    assert timestamp("2026-11-06T10:03:00+02:00") == "6\u00a0Nov\u00a02026, 08:03\u00a0UTC"
    assert timestamp("last week") == "last week" and timestamp(None) == DASH and timestamp(5) == "5"
    assert trained_with({"backend": "jax", "device": "gpu: NVIDIA H200", "keras_version": "3.15.1"}) == \
        "JAX on an NVIDIA H200 GPU (Keras 3.15.1)"
    assert trained_with({"backend": "tensorflow", "device": "cpu (16 cores)", "keras_version": "3.4.1"}) == \
        "TensorFlow on a CPU with 16 cores (Keras 3.4.1)"
    assert trained_with({"backend": "tensorflow", "device": "gpu"}) == "TensorFlow on a GPU"
    assert trained_with({"backend": "jax", "device": "gpu: Tesla T4"}) == "JAX on a Tesla T4 GPU"
    assert trained_with({}) == DASH and trained_with({"backend": ["x"], "device": 5}) == DASH
    # A hand-edited card's device that names nothing, and a time beyond datetime's years once in UTC.
    assert trained_with({"backend": "jax", "device": ":"}) == "JAX" and trained_with({"device": " : "}) == DASH
    for beyond in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        assert timestamp(beyond) == beyond
    assert [setting(v) for v in (1 / 9, 64.0, 1e-05, True, False, 8, "gelu", ["flip", 4], {"a": 1})] == \
        ["0.1111", "64", "1e-05", "yes", "no", "8", "gelu", "flip, 4", '{"a": 1}']
    assert milliseconds(43.2) == "43 ms" and milliseconds(2.345) == "2.3 ms" and milliseconds(None) == DASH
    assert milliseconds(10) == "10 ms"


def test_long_names_may_wrap_after_underscores_and_stay_escaped():
    from webapp.formatting import breakable

    assert breakable("golden_retriever-dog.v2") == "golden_<wbr>retriever-<wbr>dog.<wbr>v2"
    assert breakable("<b>_x") == "&lt;b&gt;_<wbr>x" and breakable("cat_") == "cat_"


def test_a_long_reason_leads_with_its_first_clause():
    library = "cannot be loaded (ValueError: " + "a library's long account of the layer it could not build " * 3 + ")"
    assert split_reason(library) == ("cannot be loaded", library)
    assert split_reason("tiny.h5 is not an HDF5 model file") == ("tiny.h5 is not an HDF5 model file", None)
    just_short = "a: " + "x" * (SHORT_REASON - 3)
    assert split_reason(just_short) == (just_short, None)


def test_a_share_short_of_perfect_or_above_nil_is_not_rounded_to_it():
    # 2,499 of 2,500 right is not "100.0%", and 1 of 2,500 images taken for another class not "0.0%".
    assert percent(2499 / 2500) == ">99.9%" and percent(0.9995) == ">99.9%" and percent(0.99949) == "99.9%"
    assert percent(1 / 2500) == "<0.1%" and percent(0.0005) == "0.1%"
    assert percent(1.0) == "100.0%" and percent(0.0) == "0.0%" and percent(19_999 / 20_000, 2) == ">99.99%"
