"""Labelling images with a saved model (trainer/predict.py), with a NumPy stand-in for the model."""

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import png
from trainer import data as data_module
from trainer import predict as predict_module
from trainer.predict import Answer, BadOutput, image_files, predict, probabilities, ranked

CLASSES = ["dark", "bright"]


class Brightness:
    """A "model" that calls an image bright by its mean pixel, and counts its calls."""

    def __init__(self):
        self.batches = []  # each batch's shape

    def predict(self, batch, verbose=0):
        self.batches.append(batch.shape)
        bright = batch.mean(axis=(1, 2, 3)) / 255
        return np.stack([1 - bright, bright], axis=1)


def grey(level: int) -> bytes:
    return png(np.full((8, 8, 3), level, dtype=np.uint8))


@pytest.fixture
def photos(tmp_path):
    """photos/: 1.png (dark), 2.png (bright), notes.txt, .hidden/3.png and sub/4.png (bright)."""
    folder = tmp_path / "photos"
    (folder / ".hidden").mkdir(parents=True)
    (folder / "sub").mkdir()
    (folder / "1.png").write_bytes(grey(0))
    (folder / "2.png").write_bytes(grey(255))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden" / "3.png").write_bytes(grey(255))
    (folder / "sub" / "4.png").write_bytes(grey(204))
    return folder


def names(answers) -> list[str]:
    return [answer.name.rsplit("/", 1)[-1] for answer in answers]


def test_a_folder_is_labelled_in_name_order_with_unreadable_files_in_their_place(photos):
    model = Brightness()
    answers = list(predict(model, CLASSES, (8, 8), [photos], top_k=2))
    assert [answer.name for answer in answers] == [f"{photos}/1.png", f"{photos}/2.png", f"{photos}/notes.txt",
                                                   f"{photos}/sub/4.png"]  # the hidden folder left out
    assert answers[0] == Answer(f"{photos}/1.png", [("dark", 1.0), ("bright", 0.0)])
    assert answers[1].predictions == [("bright", 1.0), ("dark", 0.0)]
    assert answers[2] == Answer(f"{photos}/notes.txt", None,
                                "Not a readable image (accepted formats: JPEG, PNG, GIF, BMP, WebP or TIFF).")
    assert answers[3].predictions[0] == ("bright", pytest.approx(0.8))
    assert model.batches == [(3, 8, 8, 3)]  # the unreadable file is not sent to the model


def test_a_zip_gives_the_folders_answers(photos, tmp_path):
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        for path in sorted(photos.rglob("*")):
            archive.write(path, path.relative_to(photos).as_posix())
    in_folder = list(predict(Brightness(), CLASSES, (8, 8), [photos], top_k=1))
    in_zip = list(predict(Brightness(), CLASSES, (8, 8), [tmp_path / "photos.zip"], top_k=1))
    assert [answer.name for answer in in_zip] == [f"{tmp_path}/photos.zip/{name}" for name in
                                                  ("1.png", "2.png", "notes.txt", "sub/4.png")]
    assert [answer[1:] for answer in in_zip] == [answer[1:] for answer in in_folder]


def test_the_clutter_windows_and_macos_leave_is_left_out_of_folders_and_zips_unless_named(photos, tmp_path):
    for name in ("Thumbs.db", "desktop.ini", "Icon\r", "sub/thumbs.db"):
        (photos / name).write_bytes(b"\xd0\xcf\x11\xe0 not an image")
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        for path in sorted(photos.rglob("*")):
            archive.write(path, path.relative_to(photos).as_posix())
    for given in (photos, tmp_path / "photos.zip"):
        assert names(predict(Brightness(), CLASSES, (8, 8), [given], top_k=1)) == ["1.png", "2.png", "notes.txt",
                                                                                   "4.png"]
    [answer] = predict(Brightness(), CLASSES, (8, 8), [photos / "Thumbs.db"], top_k=1)
    assert answer.error == "Not a readable image (accepted formats: JPEG, PNG, GIF, BMP, WebP or TIFF)."


@pytest.mark.timeout(30)  # unchecked, the pipe is waited on forever
def test_a_device_a_pipe_or_a_file_too_large_is_refused_unread(photos, tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "MAX_FILE_BYTES", 1_000)  # so as not to write a huge file
    os.mkfifo(tmp_path / "pipe")
    os.mkfifo(photos / "pipe")
    (tmp_path / "big.png").write_bytes(bytes(2_000))
    answers = list(predict(Brightness(), CLASSES, (8, 8), [Path("/dev/null"), tmp_path / "pipe", tmp_path / "big.png"],
                           top_k=1))
    unread = "It is a device, pipe or socket, not a file."
    assert answers == [Answer("/dev/null", None, unread), Answer(f"{tmp_path}/pipe", None, unread),
                       Answer(f"{tmp_path}/big.png", None, "It is too large (2.0 kB) for an image; the limit is 1.0 kB.")]
    # In a folder, a pipe is passed over unread.
    assert names(predict(Brightness(), CLASSES, (8, 8), [photos], top_k=1)) == ["1.png", "2.png", "notes.txt", "4.png"]


def test_files_named_are_labelled_in_the_order_given_at_the_size_the_model_takes(photos):
    model = Brightness()
    answers = list(predict(model, CLASSES, (3, 5), [photos / "2.png", photos / "1.png"], top_k=1))
    assert answers == [Answer(str(photos / "2.png"), [("bright", 1.0)]), Answer(str(photos / "1.png"), [("dark", 1.0)])]
    assert model.batches == [(2, 3, 5, 3)]


def test_images_go_to_the_model_a_chunk_at_a_time(photos, monkeypatch):
    monkeypatch.setattr(predict_module, "CHUNK", 2)
    model = Brightness()
    answers = list(predict(model, CLASSES, (8, 8), [photos, photos / "notes.txt", photos / "notes.txt"], top_k=1))
    assert names(answers) == ["1.png", "2.png", "notes.txt", "4.png", "notes.txt", "notes.txt"]
    assert [shape[0] for shape in model.batches] == [2, 1]  # a chunk of unreadable files alone costs no call


def test_an_undecodable_file_name_is_printable(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / b"caf\xe9.png".decode("utf-8", "surrogateescape")).write_bytes(grey(0))
    [answer] = predict(Brightness(), CLASSES, (8, 8), [folder], top_k=1)
    assert answer.name == f"{folder}/caf\ufffd.png"
    answer.name.encode("utf-8")  # no lone surrogates


def test_image_files_read_each_file_while_its_folder_is_open(photos):
    found = [(shown.rsplit("/", 1)[-1], tree.read(inside)[:4]) for shown, tree, inside in image_files([photos])]
    assert found == [("1.png", b"\x89PNG"), ("2.png", b"\x89PNG"), ("notes.txt", b"not "), ("4.png", b"\x89PNG")]


@pytest.mark.parametrize("outputs, message", [
    ([[np.nan, 1.0]], "NaN or infinite outputs"),
    ([[np.inf, 0.0]], "NaN or infinite outputs"),
    ([[2.0, -1.0]], "outputs that are not probabilities (its last layer needs a softmax)"),
    ([[0.5, 0.6]], "outputs that are not probabilities"),
])
def test_outputs_that_are_not_probabilities_are_refused(outputs, message):
    with pytest.raises(BadOutput, match=message.replace("(", r"\(").replace(")", r"\)")):
        probabilities(outputs)


def test_ranked_puts_equal_probabilities_in_the_classes_order():
    shares = np.array([0.2, 0.3, 0.2, 0.3])
    assert ranked(["a", "b", "c", "d"], shares, 4) == [("b", 0.3), ("d", 0.3), ("a", 0.2), ("c", 0.2)]
    assert ranked(["a", "b", "c", "d"], shares, 1)[0][0] == "abcd"[int(np.argmax(shares))]


def test_probabilities_pass_as_float64_rows():
    found = probabilities(np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32))
    assert found.dtype == np.float64 and found.tolist() == [[0.25, 0.75], [1.0, 0.0]]
