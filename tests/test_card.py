import hashlib
import json
import logging
import os

import keras
import pytest

from trainer import card as cards


def tiny_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])


def test_model_and_card_are_published_together(tmp_path):
    card = cards.save_model_and_card(tiny_model(), {"name": "m", "file_size_bytes": None}, tmp_path / "m.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "m.json"]
    assert card["file_size_bytes"] == (tmp_path / "m.h5").stat().st_size > 0
    assert card["file_sha256"] == hashlib.sha256((tmp_path / "m.h5").read_bytes()).hexdigest()
    assert json.loads((tmp_path / "m.json").read_text()) == card
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o044 == 0o044  # readable by the web server's user too


def test_the_card_is_in_place_before_its_model(tmp_path, monkeypatch):
    # The web app lists .h5 files: a new model must never be seen without its card.
    published = []
    replace = cards.os.replace
    monkeypatch.setattr(cards.os, "replace", lambda source, target: published.append(target.name) or
                        replace(source, target))
    cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert published == ["m.json", "m.h5"]


def test_saving_drops_only_keras_advice_against_h5(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        cards.save_model_and_card(tiny_model(), {"name": "m", "file_size_bytes": None}, tmp_path / "m.h5")
        tiny_model().save(tmp_path / "plain.h5")  # outside the trainer Keras' advice stands
    assert [record.name for record in caplog.records] == ["absl"]
    assert "HDF5" in caplog.records[0].getMessage()


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
@pytest.mark.parametrize("fail_at", ["after writing the model", "while writing the card"])
def test_an_interrupted_save_keeps_the_old_pair_and_leaves_no_debris(tmp_path, monkeypatch, fail_at, interruption):
    (tmp_path / "m.h5").write_text("the old model")
    (tmp_path / "m.json").write_text("the old card")

    def fail(*args, **kwargs):
        raise interruption()

    if fail_at == "after writing the model":
        original_save = keras.Model.save
        monkeypatch.setattr(keras.Model, "save", lambda self, path, **kw: original_save(self, path, **kw) or fail())
    else:
        monkeypatch.setattr(cards.json, "dumps", fail)
    with pytest.raises(interruption):
        cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "m.json"]
    assert (tmp_path / "m.h5").read_text() == "the old model" and (tmp_path / "m.json").read_text() == "the old card"


def test_temporary_files_are_hidden_from_the_web_app(tmp_path, monkeypatch):
    seen = []
    original_save = keras.Model.save
    monkeypatch.setattr(keras.Model, "save", lambda self, path, **kw: seen.append(path.name) or original_save(self, path, **kw))
    cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert seen[0].startswith(".") and seen[0].endswith(".h5")


def test_card_round_trip_and_validation(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"classes": ["a", "b"], "input_shape": [8, 8, 3], "name": "m"}))
    assert cards.load_card(path)["name"] == "m"

    for bad, reason in [
        ("{not json", "unreadable"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"classes": ["a"]}), "lacks input_shape"),
        (json.dumps({"classes": [], "input_shape": [8, 8, 3]}), "class list"),
        (json.dumps({"classes": ["a"], "input_shape": [8, 8]}), "input_shape"),
        (json.dumps({"classes": ["a"], "input_shape": [0, 8, 3]}), "invalid input_shape"),
        (json.dumps({"classes": ["a"], "input_shape": [8, -8, 3]}), "invalid input_shape"),
        (json.dumps({"classes": ["a"], "input_shape": [8.5, 8, 3]}), "invalid input_shape"),
        (json.dumps({"classes": ["a"], "input_shape": [True, True, 3]}), "invalid input_shape"),
        ('{"classes": ["a"], "input_shape": [8, 8, 3], "training_seconds": NaN}', "unreadable: NaN is not a number"),
        ('{"classes": ["a"], "input_shape": [8, 8, 3], "training_seconds": 1e400}', "unreadable: 1e400 is out of range"),
        ('{"classes": ["a"], "input_shape": [8, 8, 3], "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "unreadable"),
        # Python's own refusal of a 4,300-digit number would advise sys.set_int_max_str_digits().
        ('{"classes": ["a"], "input_shape": [8, 8, 3], "x": ' + "9" * 5000 + "}",
         r"unreadable: 99999999999999999999\.\.\. is too long a number$"),
        # A class folder's name that was not UTF-8, as JSON writes it: no page could show it.
        ('{"classes": ["caf\\udce9"], "input_shape": [8, 8, 3]}', "unreadable: it holds text that is not valid Unicode"),
        (" " * cards.MAX_CARD_BYTES + "{}", "unreadable: it is over 16 MB, more than a card holds"),
    ]:
        path.write_text(bad)
        with pytest.raises(ValueError, match=reason):
            cards.load_card(path)


def test_a_card_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "m.json"  # as some Windows editors save it
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"classes": ["a", "b"], "input_shape": [8, 8, 3]}).encode())
    assert cards.load_card(path)["classes"] == ["a", "b"]


def test_a_card_that_is_not_a_regular_file_is_refused_unread(tmp_path):
    # A FIFO would block whoever reads it until something writes; /dev/zero would never end.
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    (tmp_path / "folder.json").mkdir()
    for name in ("fifo.json", "zero.json", "folder.json"):
        with pytest.raises(ValueError, match=f"^metrics card {name} is unreadable: it is not a regular file$"):
            cards.load_card(tmp_path / name)
