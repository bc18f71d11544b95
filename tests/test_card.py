import errno
import fcntl
import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from conftest import full_disk_in_h5py_close
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


def test_a_disk_that_fills_as_h5py_closes_the_model_is_a_full_disk_and_keeps_the_old_pair(tmp_path, monkeypatch):
    (tmp_path / "m.h5").write_text("the old model")
    (tmp_path / "m.json").write_text("the old card")
    monkeypatch.setattr(keras.Model, "save", lambda self, path, **kwargs: full_disk_in_h5py_close(path))
    with pytest.raises(OSError) as raised:
        cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert raised.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "m.json"]
    assert (tmp_path / "m.h5").read_text() == "the old model"


def test_an_h5py_error_that_names_no_errno_is_left_as_it_is(tmp_path, monkeypatch):
    def refused(self, path, **kwargs):
        raise RuntimeError("Unable to create attribute (object header message is too large)")

    monkeypatch.setattr(keras.Model, "save", refused)
    with pytest.raises(RuntimeError, match="too large"):
        cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")


def test_temporary_files_are_hidden_from_the_web_app(tmp_path, monkeypatch):
    seen = []
    original_save = keras.Model.save
    monkeypatch.setattr(keras.Model, "save", lambda self, path, **kw: seen.append(path.name) or original_save(self, path, **kw))
    cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert seen[0].startswith(".") and seen[0].endswith(".h5")


# A save in a process of its own, held inside its model's save, with part of the .h5 written by
# h5py (which holds HDF5's own lock on it), until a line comes on its standard input.
SAVE_HELD_MIDWAY = """
import sys, h5py
from pathlib import Path
from trainer import card as cards

class HeldMidway:
    def save(self, path, include_optimizer):
        with h5py.File(path, "w") as file:
            file["weights"] = [1.0, 2.0]
            file.flush()
            print("saving", flush=True)
            sys.stdin.readline()

cards.save_model_and_card(HeldMidway(), {"name": "held"}, Path(sys.argv[1]))
"""


@pytest.fixture
def save_held_midway():
    """Starts a save of a path in another process and returns it once it is held midway."""
    started = []

    def start(path):
        child = subprocess.Popen([sys.executable, "-c", SAVE_HELD_MIDWAY, str(path)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        started.append(child)
        assert child.stdout.readline() == "saving\n"
        return child

    yield start
    for child in started:
        child.kill()
        child.communicate()


def test_the_files_of_a_killed_save_are_removed_by_the_next_save_of_the_name(tmp_path, save_held_midway):
    killed = save_held_midway(tmp_path / "m.h5")
    killed.kill()  # SIGKILL, or an out-of-memory kill: no cleaning up
    killed.wait()
    left = sorted(path.suffix for path in tmp_path.iterdir())
    assert left == [".h5", ".lock"] and all(path.name.startswith(".m.") for path in tmp_path.iterdir())
    cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.h5", "m.json"]


def test_a_save_of_the_name_going_on_in_another_process_keeps_its_files(tmp_path, save_held_midway):
    other = save_held_midway(tmp_path / "m.h5")  # two runs of one name, each with its own --run-dir
    its_files = sorted(path.name for path in tmp_path.iterdir())
    cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(its_files + ["m.h5", "m.json"])
    other.communicate("go on\n", timeout=30)
    assert other.returncode == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.h5", "m.json"]
    card = json.loads((tmp_path / "m.json").read_text())  # the other save's, whole
    assert card["name"] == "held"
    assert card["file_sha256"] == hashlib.sha256((tmp_path / "m.h5").read_bytes()).hexdigest()


def test_a_save_whose_lock_file_another_save_removed_before_it_was_locked_takes_another(tmp_path, monkeypatch):
    real_flock, removed, held_while_saving = fcntl.flock, [], []

    def as_another_save_removes_it(file, operation):
        if not removed:  # it found the lock file not locked yet, and took it for a killed save's
            removed.extend(tmp_path.glob(".m.*.lock"))
            removed[0].unlink()
        real_flock(file, operation)

    def lock_file_is_held(path):
        with open(path.with_suffix(".lock"), "r+") as lock:
            try:
                real_flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
        return False

    monkeypatch.setattr(fcntl, "flock", as_another_save_removes_it)
    original_save = keras.Model.save
    monkeypatch.setattr(keras.Model, "save", lambda self, path, **kw: held_while_saving.append(
        lock_file_is_held(path)) or original_save(self, path, **kw))
    cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert len(removed) == 1 and held_while_saving == [True]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.h5", "m.json"]


def test_a_killed_saves_files_another_save_removes_first_are_left_to_it_without_a_warning(tmp_path, monkeypatch,
                                                                                          capsys):
    killed = tmp_path / ".m.abcd1234.lock"
    killed.touch()  # as a killed save leaves them
    killed.with_suffix(".h5").write_bytes(b"part of a model")
    real_flock, removed = fcntl.flock, []

    def as_another_save_removes_them_first(file, operation):
        # Between this save's opening the killed save's lock file and locking it.
        if operation & fcntl.LOCK_NB and not removed:
            removed.append(killed)
            killed.with_suffix(".h5").unlink()
            killed.unlink()
        real_flock(file, operation)

    monkeypatch.setattr(fcntl, "flock", as_another_save_removes_them_first)
    cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert removed == [killed] and capsys.readouterr().err == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.h5", "m.json"]


def test_a_save_s_lock_file_follows_the_umask_as_the_model_does(tmp_path, monkeypatch):
    # In a folder a group shares (umask 002), the group's next save of the name can then open it
    # to tell a save going on from a killed one, rather than warn that it cannot.
    modes = []
    original_save = keras.Model.save
    monkeypatch.setattr(keras.Model, "save", lambda self, path, **kw: modes.append(
        stat.S_IMODE(path.with_suffix(".lock").stat().st_mode)) or original_save(self, path, **kw))
    umask = os.umask(0o002)
    try:
        cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m.h5").stat().st_mode) == 0o664
    assert modes == [0o664]


def test_files_of_a_killed_save_that_cannot_be_removed_are_a_warning_not_a_failed_save(tmp_path, monkeypatch,
                                                                                        capsys):
    (tmp_path / ".m.abcd1234.lock").touch()  # as a killed save leaves them
    (tmp_path / ".m.abcd1234.h5").write_bytes(b"part of a model")
    unlink = Path.unlink

    def not_allowed(path, missing_ok=False):  # as in a folder with the sticky bit, of another user's files
        if "abcd1234" in path.name:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        unlink(path, missing_ok)

    monkeypatch.setattr(Path, "unlink", not_allowed)
    card = cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert card["file_size_bytes"] == (tmp_path / "m.h5").stat().st_size
    assert capsys.readouterr().err == (f"warning: cannot remove the files that killed saves of m may have left in "
                                       f"{tmp_path} (Permission denied)\n")


def test_the_files_of_a_killed_save_go_however_many_others_cannot(tmp_path, monkeypatch, capsys):
    for killed in ("abcd1234", "efgh5678"):
        (tmp_path / f".m.{killed}.lock").touch()
        (tmp_path / f".m.{killed}.h5").write_bytes(b"part of a model")
    remove_if_killed, refused = cards._remove_if_killed, []

    def refusing_the_first(lock_path, suffix):  # as another user's lock file, private to them
        if not refused:
            refused.append(lock_path)
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(lock_path))
        remove_if_killed(lock_path, suffix)

    monkeypatch.setattr(cards, "_remove_if_killed", refusing_the_first)
    cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    kept = refused[0].with_suffix("")
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([f"{kept.name}.h5", f"{kept.name}.lock",
                                                                       "m.h5", "m.json"])
    assert capsys.readouterr().err == (f"warning: cannot remove the files that killed saves of m may have left in "
                                       f"{tmp_path} (Permission denied)\n")


def test_what_only_looks_like_a_lock_file_is_no_save_s(tmp_path, capsys):
    (tmp_path / ".m.directory.lock").mkdir()
    os.mkfifo(tmp_path / ".m.fifo1234.lock")
    (tmp_path / ".m.abcd1234.lock").touch()  # as a killed save leaves them
    (tmp_path / ".m.abcd1234.h5").write_bytes(b"part of a model")
    cards.save_model_and_card(tiny_model(), {"name": "m"}, tmp_path / "m.h5")
    assert sorted(path.name for path in tmp_path.iterdir()) == [".m.directory.lock", ".m.fifo1234.lock",
                                                                "m.h5", "m.json"]
    assert capsys.readouterr().err == ""  # not "Is a directory", nor "File or stream is not seekable"


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
        (json.dumps({"classes": ["only"], "input_shape": [8, 8, 3]}), "lists one class; a classifier needs two or more"),
        (json.dumps({"classes": ["cat", "dog", "cat"], "input_shape": [8, 8, 3]}), "lists the class 'cat' more than once"),
        (json.dumps({"classes": ["a", "b"], "input_shape": [8, 8, 1]}),
         "input_shape has 1 channel, where models here take RGB images"),
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


def test_a_card_that_cannot_be_read_says_why_without_its_folder(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"classes": ["a", "b"], "input_shape": [8, 8, 3]}))

    def denied(path):  # as chmod 000 does, for any user but root
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(cards, "_card_text", denied)
    with pytest.raises(ValueError) as refused:
        cards.load_card(path)
    assert str(refused.value) == "metrics card m.json cannot be read (Permission denied)"


def test_the_summary_names_ten_classes_counts_the_rest_and_says_each_score_with_its_copies():
    scored = {"samples": 2000, "confusion_matrix": [[900, 100], [50, 950]]}
    card = {"architecture": "efficientnet_lite0", "weights": "imagenet", "dataset": "photos",
            "classes": [f"c{n}" for n in range(12)], "input_shape": [224, 192, 3], "evaluation": scored,
            "held_out_in_training": 3, "test_evaluation": scored, "test_in_training": 0}
    assert cards.in_words(card) == (
        "EfficientNet-Lite0 fine-tuned from ImageNet weights on photos. It takes an RGB picture of 224 x 192 pixels "
        "(values 0-255) and gives a probability for each of its 12 classes, in this order: c0, c1, c2, c3, c4, c5, "
        "c6, c7, c8, c9 and 2 more. On 2,000 images of photos held out from its training (3 of them copies of "
        "pictures it learned from), it was right 92.5% of the time (1,850 of 2,000). On 2,000 test images, it was "
        "right 92.5% of the time (1,850 of 2,000).")
    assert cards.in_words(card | {"architecture": "vgg16", "weights": "vgg16_notop.h5", "evaluation": None,
                                  "test_evaluation": None}).startswith(
        "VGG16 fine-tuned from the weights in vgg16_notop.h5 on photos. It takes")
    # One mistake in 2,500 is not "right 100.0% of the time".
    almost = card | {"evaluation": {"samples": 2500, "confusion_matrix": [[1249, 1], [0, 1250]]}, "test_evaluation": None}
    assert cards.in_words(almost).endswith("it was right >99.9% of the time (2,499 of 2,500).")
