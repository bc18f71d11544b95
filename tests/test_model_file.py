"""trainer.model_file: what is wrong with a .h5 file, found without opening it in this process."""

import builtins
import errno
import os
from pathlib import Path

import pytest

from trainer import model_file
from trainer.formatting import filesize

REMEDY = "copy it again, or train it again"


@pytest.fixture
def files(built_models, tmp_path):
    """tiny.h5 whole, cut to 2 kB, and not HDF5 at all, each with tiny's card."""
    from trainer.card import load_card

    data, card = (built_models / "tiny.h5").read_bytes(), load_card(built_models / "tiny.json")
    contents = {"whole.h5": data, "cut.h5": data[:2000], "text.h5": b"hello"}
    for name, content in contents.items():
        (tmp_path / name).write_bytes(content)
    return {tmp_path / name: (len(content), card) for name, content in contents.items()}, len(data)


def test_problems_of_whole_cut_and_foreign_files(files):
    sizes_and_cards, whole = files
    found = {path.name: problem for path, problem in model_file.problems(sizes_and_cards).items()}
    assert found == {"whole.h5": None,
                     "cut.h5": f"cut.h5 is incomplete: 2.0 kB of the {filesize(whole)} its card records; {REMEDY}",
                     "text.h5": f"text.h5 is not an HDF5 model file; {REMEDY}"}


def test_a_file_that_is_not_a_regular_one_is_refused_unread(tmp_path):
    os.mkfifo(tmp_path / "fifo.h5")  # opening it would wait for a writer
    (tmp_path / "folder.h5").mkdir()
    found = model_file.problems({tmp_path / name: (0, {}) for name in ("fifo.h5", "folder.h5")})
    assert {path.name: problem for path, problem in found.items()} == {
        "fifo.h5": f"fifo.h5 is not a regular file; {REMEDY}", "folder.h5": f"folder.h5 is not a regular file; {REMEDY}"}


def test_without_a_size_on_the_card_hdf5s_header_tells_a_file_cut_short(files):
    sizes_and_cards, whole = files
    cut = next(path for path in sizes_and_cards if path.name == "cut.h5")
    assert model_file.problems({cut: (2000, {})})[cut] == (
        f"cut.h5 is incomplete: 2.0 kB of the {filesize(whole)} it should hold; {REMEDY}")


def test_a_file_a_few_bytes_short_is_told_in_bytes(files, tmp_path):
    sizes_and_cards, whole = files
    short = tmp_path / "short.h5"
    short.write_bytes(next(path for path in sizes_and_cards if path.name == "whole.h5").read_bytes()[:-1])
    assert model_file.problems({short: (whole - 1, {"file_size_bytes": whole})})[short] == (
        f"short.h5 is incomplete: {whole - 1:,} of the {whole:,} bytes its card records; {REMEDY}")


def test_a_file_damaged_inside_gives_hdf5s_reason(files, tmp_path):
    sizes_and_cards, whole = files
    damaged = tmp_path / "damaged.h5"
    data = next(path for path in sizes_and_cards if path.name == "whole.h5").read_bytes()
    damaged.write_bytes(data[:100] + bytes(1000) + data[1100:])
    problem = model_file.problems({damaged: (whole, {"file_size_bytes": whole})})[damaged]
    assert problem.startswith("damaged.h5 cannot be read: Unable to ") and problem.endswith(REMEDY)
    assert str(tmp_path) not in problem


def test_a_file_that_crashes_hdf5_is_reported_and_this_process_lives(files, monkeypatch):
    sizes_and_cards, _ = files
    monkeypatch.setattr(model_file, "HDF5_READ_CHECK", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    whole = next(path for path in sizes_and_cards if path.name == "whole.h5")
    assert model_file.problems({whole: sizes_and_cards[whole]})[whole] == (
        f"whole.h5 is damaged: reading it crashes HDF5 (signal 11); {REMEDY}")


def test_a_single_nan_number_is_found_too(tmp_path):
    import h5py

    path = tmp_path / "scalar.h5"
    with h5py.File(path, "w") as f:
        f["model_weights/scale"] = float("nan")
        f["model_weights/steps"] = 3
    assert "holds NaN or infinite weights (in model_weights/scale)" in model_file.problems({path: (1, {})})[path]
    with h5py.File(path, "w") as f:
        f["model_weights/kernel"] = [1.0, float("nan"), 2.0]  # one among finite ones
    assert "holds NaN or infinite weights (in model_weights/kernel)" in model_file.problems({path: (1, {})})[path]


def test_messages_name_files_without_their_folders():
    path = Path("/home/alice/tiny.h5")
    assert model_file.without_folder(f"cannot open {path} in /home/alice", path) == "cannot open tiny.h5 in models"
    # A file named without a folder: nothing else in the message is taken for one.
    assert model_file.without_folder("cannot open ./tiny.h5 (v1.2)", Path("tiny.h5")) == "cannot open ./tiny.h5 (v1.2)"
    assert model_file.without_folder("cannot open /tiny.h5: see a/b", Path("/tiny.h5")) == "cannot open tiny.h5: see a/b"


def test_a_file_with_nan_weights_is_reported(built_models, tmp_path):
    import keras
    import numpy as np

    model = keras.saving.load_model(built_models / "tiny.h5")
    model.set_weights([w if i else np.full_like(w, np.inf) for i, w in enumerate(model.get_weights())])
    model.save(tmp_path / "inf.h5")
    path = tmp_path / "inf.h5"
    problem = model_file.problems({path: (path.stat().st_size, {})})[path]
    assert problem.startswith("inf.h5 holds NaN or infinite weights (in model_weights/") and "conv2d" in problem
    assert problem.endswith(f"/kernel): it is damaged, or its training diverged; {REMEDY}")


def test_a_card_put_beside_another_file_is_told(built_models, tmp_path):
    from trainer.card import load_card

    card = load_card(built_models / "tiny.json")
    path = tmp_path / "tiny.h5"
    path.write_bytes((built_models / "tiny.h5").read_bytes())
    assert model_file.card_of_another_file(path, card) is None
    assert model_file.card_of_another_file(path, {k: v for k, v in card.items() if k != "file_sha256"}) is None  # older
    assert model_file.card_of_another_file(path, card | {"file_sha256": card["file_sha256"].upper()}) is None

    path.write_bytes((built_models / "small.h5").read_bytes())  # as by a kill between the save's two renames
    assert model_file.card_of_another_file(path, card) == (
        "tiny.json was written for another tiny.h5 (the file's SHA-256 is not the card's file_sha256), so its "
        "figures may be another model's: put the card that came with this file beside it, or train it again")
    damaged = bytearray((built_models / "tiny.h5").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # a weight's byte: the file still loads, and answers wrongly
    path.write_bytes(damaged)
    assert model_file.card_of_another_file(path, card).startswith(
        "tiny.h5 has the size tiny.json gives but not its SHA-256 (file_sha256): it may be damaged")
    for written in ("", "not a digest", card["file_sha256"][:-1]):  # the card edited by hand
        assert model_file.card_of_another_file(path, card | {"file_sha256": written}).startswith(
            "tiny.json's file_sha256 is no SHA-256 (64 hexadecimal digits), so whether the card was written for "
            "this tiny.h5 cannot be told")
    path.unlink()  # removed meanwhile: its next version is checked anew
    assert model_file.card_of_another_file(path, card) is None


def test_a_weights_only_file_is_told_from_a_model(built_models, tmp_path):
    import keras

    keras.saving.load_model(built_models / "tiny.h5").save_weights(tmp_path / "tiny.weights.h5")
    path = (tmp_path / "tiny.weights.h5").rename(tmp_path / "tiny.h5")
    # Smaller than the card records, yet whole: not to be called cut short.
    problem = model_file.problems({path: (path.stat().st_size, {"file_size_bytes": 10**9})})[path]
    assert problem == ("tiny.h5 holds no Keras model, only weights or other data (as save_weights writes, or a save "
                       "that failed part-way): save the whole model with model.save(), or train one with python -m "
                       "trainer")


def test_a_model_without_its_weights_is_called_damaged_not_cut_short(built_models, tmp_path):
    import h5py

    path = tmp_path / "tiny.h5"
    path.write_bytes((built_models / "tiny.h5").read_bytes())
    with h5py.File(path, "a") as f:
        del f["model_weights"]
    problem = model_file.problems({path: (path.stat().st_size, {"file_size_bytes": 10**9})})[path]
    assert problem == f"tiny.h5 holds a model's layout but not its weights; {REMEDY}"


def test_nan_weights_in_a_file_smaller_than_its_card_are_named_as_such(tmp_path):
    import h5py

    path = tmp_path / "nan.h5"
    with h5py.File(path, "w") as f:
        f["model_weights/kernel"] = [float("nan")]
    problem = model_file.problems({path: (path.stat().st_size, {"file_size_bytes": 10**9})})[path]
    assert problem.startswith("nan.h5 holds NaN or infinite weights (in model_weights/kernel)")


def test_an_empty_file_and_a_keras_zip_are_named_as_such(built_models, tmp_path):
    import keras

    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    assert model_file.problems({empty: (0, {"file_size_bytes": 2000})})[empty] == (
        f"empty.h5 is incomplete: 0 bytes of the 2.0 kB its card records; {REMEDY}")
    assert model_file.problems({empty: (0, {})})[empty] == f"empty.h5 is empty; {REMEDY}"
    keras.saving.load_model(built_models / "tiny.h5").save(tmp_path / "tiny.keras")
    renamed = (tmp_path / "tiny.keras").rename(tmp_path / "tiny.h5")
    assert model_file.problems({renamed: (renamed.stat().st_size, {})})[renamed] == (
        'tiny.h5 is a zip file, as Keras\'s .keras format is, not an HDF5 one: save the model with model.save("tiny.h5")')


def test_a_file_this_process_may_not_read_is_named_not_a_traceback(built_models, tmp_path, monkeypatch):
    # chmod 000 would not do: the tests may run as root. The server's user may not read a model copied in by another.
    path = tmp_path / "locked.h5"
    path.write_bytes((built_models / "tiny.h5").read_bytes())

    def open_refused(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(model_file, "open", open_refused, raising=False)
    assert model_file.problems({path: (path.stat().st_size, {})}) == {path: "locked.h5 cannot be read (Permission denied)"}


def test_a_full_temporary_folder_leaves_the_check_to_go_on(files, monkeypatch):
    sizes_and_cards, _ = files

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(model_file.tempfile, "TemporaryFile", full)
    found = {path.name: problem for path, problem in model_file.problems(sizes_and_cards).items()}
    assert found["whole.h5"] is None and found["cut.h5"].startswith("cut.h5 is incomplete")
    monkeypatch.setattr(model_file, "HDF5_READ_CHECK", "import sys; sys.exit('the reason, unkept')")
    whole = next(path for path in sizes_and_cards if path.name == "whole.h5")
    assert model_file.problems({whole: sizes_and_cards[whole]})[whole] == (
        f"whole.h5 cannot be read: exit code 1; {REMEDY}")
