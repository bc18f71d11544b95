"""Loading labelled images: CIFAR-10 from Keras, or any folder (or .zip) of class subfolders."""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import sys
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from trainer.formatting import as_typed, filesize, is_utf8, one_line, plural, reason
from trainer.images import DATASET_FORMATS, ImageError, load_rgb

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]

# Animals-10 ships with Italian folder names; its own translation table.
ANIMALS10_ENGLISH = {
    "cane": "dog", "cavallo": "horse", "elefante": "elephant", "farfalla": "butterfly",
    "gallina": "chicken", "gatto": "cat", "mucca": "cow", "pecora": "sheep",
    "ragno": "spider", "scoiattolo": "squirrel",
}


class DataError(Exception):
    """A data set that cannot be used; the message tells the user what to do."""


@dataclass
class Dataset:
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64, indexes into classes
    classes: list[str]
    name: str
    # (N,) str: each image's class and its path in the class folder (an index for downloaded
    # data), which `digest` fingerprints: the same in a zip and in its unzipped folder.
    files: np.ndarray

    def subset(self, indices: np.ndarray) -> "Dataset":
        return Dataset(self.images[indices], self.labels[indices], self.classes, self.name, self.files[indices])


def digest(files: np.ndarray) -> str:
    """A fingerprint of a set of images by their `Dataset.files` entries, in any order: a card
    keeps those of its data and of its held-out images, to find the same split again."""
    text = "\n".join(sorted(files)).encode("utf-8", "surrogateescape")  # undecodable names included
    return hashlib.sha256(text).hexdigest()[:16]


# How many fingerprints of its training images a card keeps (17 kB of text): enough to find
# that another set of images shares a few per cent of them, as `overlap` does.
SKETCH_SIZE = 1024


def _fingerprint(content) -> str:
    return hashlib.blake2b(content, digest_size=8).hexdigest()


def picture_fingerprints(images: np.ndarray) -> list[str]:
    """Each image's fingerprint by its pixels, read at one size: copies of one picture alike,
    whatever their names, and other pictures apart, whatever theirs (a test folder's
    cat/0001.png is seldom the training folder's)."""
    return [_fingerprint(np.ascontiguousarray(image)) for image in images]


def name_fingerprints(files: np.ndarray) -> list[str]:
    """Each image's fingerprint by its `Dataset.files` entry, as cards kept them before they kept pixels'."""
    return [_fingerprint(entry.encode("utf-8", "surrogateescape")) for entry in files]


def sketch(fingerprints: Iterable[str]) -> str:
    """A sample of a set of images that any other set can be checked against, so a card need
    not keep every fingerprint (a bottom-k MinHash sketch, Broder 1997): the SKETCH_SIZE
    smallest, space-separated; all of them for a smaller set."""
    return " ".join(sorted(set(fingerprints))[:SKETCH_SIZE])


def overlap(fingerprints: list[str], sketch_text: object) -> tuple[int, int] | None:
    """How many of the images `fingerprints` stand for are in the set `sketch_text` samples,
    as (found, checked), or None if it is no sketch (edited by hand, or not on the card).

    Checked are the images whose fingerprints are no larger than the sketch's largest: any of
    them in the set would be in its sketch. They are a random sample, so found / checked
    estimates the share in the set; every image is checked, and the count is exact, when the
    set was smaller than SKETCH_SIZE."""
    if not (isinstance(sketch_text, str) and re.fullmatch(r"[0-9a-f]{16}( [0-9a-f]{16})*", sketch_text)):
        return None
    kept = set(sketch_text.split())
    whole, largest = len(kept) < SKETCH_SIZE, max(kept)
    checked = [f for f in fingerprints if whole or f <= largest]
    return sum(f in kept for f in checked), len(checked)


def trained_on(data: Dataset, card: dict, besides: set[str] = frozenset()) -> tuple[int, int, str] | None:
    """How many of `data`'s images (read at the model's size) the model of `card` trained on,
    as `overlap` counts them, and how they were told: by the sample of its training pictures'
    pixels that its card keeps, or on a card from before those, of their class and file names.
    Pictures whose fingerprints are `besides` are not counted (a student's own training
    pictures, of which its held-out images may hold copies). None for a card that keeps neither."""
    pictures = [f for f in picture_fingerprints(data.images) if f not in besides]
    if (found := overlap(pictures, card.get("training_pixels_sketch"))) is not None:
        return *found, "the same pixels"
    if (found := overlap(name_fingerprints(data.files), card.get("training_sketch"))) is not None:
        return *found, "by class and name"
    return None


def shared_pictures(images: np.ndarray, seen: set[str]) -> int:
    """How many of `images` are pictures `seen` holds the fingerprints of, both read at one size."""
    return sum(f in seen for f in picture_fingerprints(images))


def overlap_words(found: int, checked: int, total: int, which: str) -> str:
    """`overlap`'s count in words, as "3 of the 40 images {which}", or an estimate from a sample:
    "about 10% (20 of the 200 that could be checked) of the 10,000 images {which}"."""
    share = f"of the {plural(total, 'image')} {which}"
    if checked == total:
        return f"{found:,} {share}"
    estimate = f"about {found / checked:.0%}"
    if estimate == "about 0%" and found:  # some were found: not none
        estimate = "under 1%"
    elif estimate == "about 100%" and found < checked:  # some were not: not all
        estimate = "over 99%"
    return f"{estimate} ({found:,} of the {checked:,} that could be checked) {share}"


# Files whose headers give a folder's typical image size: enough for a median, quick to read.
SIZE_SAMPLE = 100


def natural_size(spec: str, largest: int) -> int:
    """The side to load images at when the preset leaves it open: `largest` (the size the
    backbone sees), so photos keep the detail a pretrained backbone can use; or the images'
    own (their median shorter side) when that is at most half of it, as CIFAR-10's 32 px are,
    so that small images are enlarged inside the model rather than stored enlarged."""
    if spec == "cifar10":
        return _own_if_far_smaller(32, largest)
    path = Path(spec)
    if not path.exists() or (path.is_file() and not zipfile.is_zipfile(path)):
        return largest  # load_folder says what is wrong
    with open_tree(path) as tree:
        names = [name for files in _class_members(tree.names()).values() for name, _ in files]
        sides = []
        for name in names[:: max(1, len(names) // SIZE_SAMPLE)]:
            try:
                with Image.open(io.BytesIO(tree.read(name)), formats=list(DATASET_FORMATS)) as image:
                    sides.append(min(image.size))
            except Exception:  # Pillow raises many types for broken files; load_folder skips them
                continue
    return _own_if_far_smaller(int(np.median(sides)), largest) if sides else largest


def _own_if_far_smaller(side: int, largest: int) -> int:
    return side if side <= largest // 2 else largest


def data_name(spec: str) -> str:
    """The name a data set goes by (in cards, and in default model names): "cifar10", a
    zip's stem or a folder's name."""
    if spec == "cifar10":
        return spec
    path = Path(spec)
    # As typed: a folder named on macOS writes "é" as "e" and an accent (NFD), which a default
    # model name split at ("donne_es_scratch") and the dashboard listed beside "Données".
    return as_typed(path.stem if path.is_file() else path.resolve().name)


def load_dataset(spec: str, image_size: int) -> tuple[Dataset, Dataset | None]:
    """`spec` is "cifar10" or a path; returns (data, test set or None)."""
    if spec == "cifar10":
        return load_cifar10(image_size)
    return load_folder(Path(spec), image_size), None


def load_cifar10(image_size: int) -> tuple[Dataset, Dataset]:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # the download fails in many ways offline
        raise DataError(
            f"Could not download CIFAR-10 ({reason(error)}); without a network, pass "
            "--data PATH with a folder or .zip of class subfolders, such as the CIFAR-10 JPEGs."
        ) from None
    train = Dataset(_resized(x_train, image_size), y_train.ravel().astype(np.int64), CIFAR10_CLASSES, "cifar10",
                    files=_indexes(len(x_train)))
    test = Dataset(_resized(x_test, image_size), y_test.ravel().astype(np.int64), CIFAR10_CLASSES, "cifar10-test",
                   files=_indexes(len(x_test)))
    return train, test


def _indexes(count: int) -> np.ndarray:
    return np.arange(count).astype(str)


def _resized(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BILINEAR)) for im in images])


def check_tree(path: Path) -> None:
    """Raises DataError unless `path` is a folder or a whole .zip; its contents are not read."""
    if not path.exists():
        raise DataError(f"No such data folder or zip: {path}")
    if path.is_file():
        check_zip(path)
    if not (path.is_dir() or (path.is_file() and zipfile.is_zipfile(path))):
        raise DataError(f"{path} is neither a folder nor a .zip of class subfolders")


def check_zip(path: Path) -> None:
    """Raises DataError if the regular file `path` (a pipe's opening would wait) is a .zip, by
    its name or its first bytes, that cannot be opened as one: cut short, it lacks the list of
    files a zip ends with."""
    if (path.suffix.lower() == ".zip" or _first_bytes(path) == b"PK\x03\x04") and not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not a whole .zip (its list of files is missing): copy or download it again")


def _first_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(4)
    except OSError:  # taken for no zip; reading it says why
        return b""


def load_folder(path: Path, image_size: int | tuple[int, int], classes: list[str] | None = None,
                folder_order: bool = False) -> Dataset:
    """Read a folder or .zip whose subfolders are the classes, its images resized to
    `image_size`: a side, or (height, width) for a model of another shape.

    Wrapping folders (`train/`, `raw-img/`) are looked through; Italian Animals-10 names
    become English when every class has one; empty folders are left out, and a class whose
    files are all unreadable is an error. With `classes` given (evaluating a trained model),
    labels follow that order and unknown folders are an error. Without, the classes are in
    name order, or with `folder_order` in their folders' name order, as Keras's
    image_dataset_from_directory numbers a notebook's outputs: Animals-10's dog, horse,
    elephant... (cane, cavallo, elefante...).
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    check_tree(path)
    with open_tree(path) as tree:
        names = tree.names()  # a folder's walk, done once
        members = _class_members(names)
        if loose := _loose_images(names, members):
            print(f"warning: left out {plural(len(loose), 'image')} beside the class folders of {path} "
                  f"({_some(loose)}): an image is read only in its class's folder", file=sys.stderr)
        empty = sorted(label for label, files in members.items() if not files)
        if empty:
            print(f"warning: left out empty class folder(s) in {path}: {', '.join(map(one_line, empty))}", file=sys.stderr)
        members = _in_english(_spelled_as({label: files for label, files in members.items() if files}, classes),
                              classes)
        if not members:
            raise DataError(f"{path} has no class subfolders with images in them")
        found = sorted(members)
        _check_class_names(path, found, named_by_folders=classes is None)
        if _split_folders(members):
            unzip = "unzip it and pass" if path.is_file() else "pass"  # a .zip (check_tree)
            raise DataError(f"{path} holds {' and '.join(found)} folders of class subfolders, not classes: {unzip} "
                            "one of those folders instead (to train: the training one, with the test one as "
                            "--test-data)")
        if classes is None and len(found) < 2:  # training; evaluating on one class is fine
            raise DataError(f"{path} has one class subfolder ({found[0]}); a classifier needs two or more "
                            "(is --data one folder too deep?)")
        if classes is None and (inner := _nested_classes(members)):
            print(f"warning: each class folder of {path} holds its images in folders of its own "
                  f"({'; '.join(f'{one_line(label)}/: {_some(names)}' for label, names in inner.items())}): "
                  f"if those are the classes, pass one of {', '.join(map(one_line, found))} as --data instead",
                  file=sys.stderr)
        classes = classes or (list(members) if folder_order else found)
        unknown = sorted(set(found) - set(classes))
        if unknown:
            # Quoted: a space at a name's end ("dog ") is what tells it from the model's.
            raise DataError(f"{path} has classes the model does not know: {', '.join(map(repr, unknown))} "
                            f"(it knows {_some(list(map(repr, classes)), 10)})")

        count = sum(len(members[label]) for label in found)
        # Said first: reading takes a while for a large folder (on two cores, 50,000 CIFAR-10
        # JPEGs took 6.5 s and Animals-10's photos 1.3 ms each at 224 px). The classes named, so
        # that a folder one level off shows at once.
        print(f"Reading {plural(count, 'file')} of {plural(len(found), 'class')} ({_some(found, 10)}) "
              f"from {path}...", flush=True)
        images, labels, files, skipped = [], [], [], []  # skipped: (class, file, why)
        for label in found:
            for name, inside in members[label]:
                try:
                    images.append(read_image(tree, name, size))
                    labels.append(classes.index(label))
                    files.append(f"{label}/{inside}")
                except ImageError as error:
                    skipped.append((label, name, str(error)))
    if skipped:
        _warn_skipped(skipped, path)
    if not images:
        raise DataError(f"{path} holds no readable images")
    # A class without images would still be an output of the model, one it can never learn.
    hollow = sorted(set(found) - {classes[index] for index in set(labels)})
    if hollow:
        counts = ", ".join(f"{label} ({sum(s[0] == label for s in skipped)} unusable file(s))" for label in hollow)
        raise DataError(f"{path} has classes with no readable images: {counts}; add images to them or remove "
                        "their folders")
    return Dataset(np.stack(images), np.asarray(labels, dtype=np.int64), list(classes), data_name(str(path)),
                   np.asarray(files))


def _check_class_names(path: Path, labels: list[str], named_by_folders: bool) -> None:
    """Raises DataError for class folder names that a model's card, pages and answers could not
    carry, or, where the folders name a model's classes (training, or an import without
    --classes), two that its answers would name alike."""
    undecodable = [label.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                   for label in labels if not is_utf8(label)]
    if undecodable:  # a model's classes go into its card, its pages and its JSON answers
        raise DataError(f"{path} has class folder names that are not UTF-8: {', '.join(undecodable)}; "
                        "rename them")
    if unprintable := [label for label in labels if not label.isprintable()]:  # a line break, say
        raise DataError(f"{path} has class folder names with control characters, which would break the lines "
                        f"that name them: {', '.join(map(repr, unprintable))}; rename them")
    if named_by_folders and (alike := _alike(labels)):  # a model's answers would name two classes alike
        raise DataError(f"{path} has class folders whose names differ only in case or spaces: "
                        f"{'; '.join(' and '.join(map(repr, names)) for names in alike)}; merge or rename them")


# Skipped files named in the warning; the rest are counted.
SKIPPED_NAMED = 5


def _warn_skipped(skipped: list[tuple[str, str, str]], path: Path) -> None:
    lines = [f"warning: skipped {len(skipped)} file(s) in {path} that cannot be used:"]
    lines += [f"  {one_line(name)}: {why}" for _, name, why in skipped[:SKIPPED_NAMED]]
    if len(skipped) > SKIPPED_NAMED:
        lines.append(f"  and {len(skipped) - SKIPPED_NAMED} more")
    print("\n".join(lines), file=sys.stderr)


def read_image(tree: Folder, name: str, size: tuple[int, int]) -> np.ndarray:
    """One file of a folder or zip as RGB pixels of `size` (height, width); raises ImageError
    saying why a file cannot be used."""
    try:
        return load_rgb(tree.read(name), size, formats=DATASET_FORMATS)
    except (ImageError, OSError, RuntimeError, zipfile.BadZipFile, zlib.error) as error:
        raise ImageError(_why_unreadable(error)) from error


def _why_unreadable(error: Exception) -> str:
    if isinstance(error, ImageError):
        return str(error)
    if isinstance(error, OSError):  # a file on disk we may not read
        return f"It could not be read ({error.strerror or error})."
    return "The zip entry is damaged or encrypted."


# Files that Windows and macOS write into folders of pictures (thumbnail caches, a folder's
# view settings or icon), never images: a copied folder of good photos holds them.
CLUTTER = {"thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini", "icon\r"}


def hidden(parts: tuple[str, ...]) -> bool:
    """Whether a path, by its parts, is in or of a hidden folder or file, or is clutter of
    Windows or macOS (CLUTTER, and the __MACOSX folder of its zips): no data set's or
    photo folder's images."""
    return any(part.startswith((".", "__MACOSX")) or part.lower() in CLUTTER for part in parts)


def _class_members(names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Group file names (relative, "/" between folders, a folder's own name ending in "/") by
    class folder, looking through wrapper folders, as (name, path in the class folder); an
    empty class folder gets no files."""
    # A folder is given an empty-named entry, so that empty ones take part in finding the class level.
    entries = [(PurePosixPath(n).parts + (("",) if n.endswith("/") else ()), n) for n in names]
    entries = [(p, n) for p, n in entries if not hidden(p)]
    entries = [(p, n) for p, n in entries if len(p) > 1]  # a file at the root (LICENSE.txt) is in no class
    # Strip single wrapper folders such as "train/" until the class level is reached.
    while entries and len({p[0] for p, _ in entries}) == 1 and any(len(p) > 2 for p, _ in entries):
        entries = [(p[1:], n) for p, n in entries if len(p) > 2]  # stray files beside classes go
    members: dict[str, list[tuple[str, str]]] = {}
    for p, name in entries:
        files = members.setdefault(p[0], [])
        if not name.endswith("/"):
            files.append((name, as_typed("/".join(p[1:]))))
    return {label: _in_order(files) for label, files in members.items()}


# By name alone: a stray file is not read, and a README or LICENSE beside the classes is no slip.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jfif", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def _loose_images(names: list[str], members: dict[str, list[tuple[str, str]]]) -> list[str]:
    """The files named as images that are in no class folder: beside the class folders, or
    beside a wrapper folder around them."""
    in_classes = {name for files in members.values() for name, _ in files}
    return sorted(name for name in names if name not in in_classes and not name.endswith("/")
                  and not hidden(PurePosixPath(name).parts) and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES)


def _in_order(files: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A class's files by their NFC paths in its folder: the same order, split and digests for a
    folder and for its zip made on macOS, which writes "é" as "e" and an accent (NFD)."""
    return sorted(files, key=lambda file: (file[1], file[0]))


def _alike(labels: list[str]) -> list[list[str]]:
    """The class names that differ only in case or in spaces around them ("Cat", "cat ")."""
    spellings: dict[str, list[str]] = {}
    for label in labels:
        spellings.setdefault(label.strip().casefold(), []).append(label)
    return [names for names in spellings.values() if len(names) > 1]


def _some(names: list[str], shown: int = 3) -> str:
    """The first `shown` names, and how many more."""
    more = len(names) - shown
    return ", ".join(map(one_line, names[:shown])) + (f" and {more} more" if more > 0 else "")


def _nested_classes(members: dict[str, list[tuple[str, str]]]) -> dict[str, list[str]]:
    """Each "class" folder's own subfolders, where every one holds its files only in two or
    more of them: a folder of data sets (`raw-img/` beside `train/`), each of class folders,
    would train a model to tell the data sets apart. Only a warning: photos of one class may be
    kept in folders by year."""
    inner = {label: sorted({inside.split("/")[0] for _, inside in files}) for label, files in members.items()}
    nested = all(len(inner[label]) > 1 and all("/" in inside for _, inside in files)
                 for label, files in members.items())
    return inner if nested else {}


SPLIT_NAMES = {"train", "training", "test", "testing", "val", "valid", "validation"}


def _split_folders(members: dict[str, list[tuple[str, str]]]) -> bool:
    """Whether the "classes" found are a data set's train/test split, of class folders (a common
    layout of downloaded data, whose test folder may hold its images unlabelled), which would
    train a model to tell the splits apart. By the words in their names: Kaggle's downloads
    have `training_set`, `seg_train` and `test1` as well as `train`."""
    return all(SPLIT_NAMES & set(re.findall(r"[a-z]+", label.lower())) for label in members) and any(
        "/" in inside for files in members.values() for _, inside in files)


def _spelled_as(members: dict[str, list[tuple[str, str]]],
                classes: list[str] | None) -> dict[str, list[tuple[str, str]]]:
    """Class names as Unicode's NFC spells them, or, for a model to score (`classes`), as it
    does: macOS writes "é" in a zip's names as "e" and an accent (NFD), the same name to a
    reader, which a model that learned "café" must know."""
    spellings = {as_typed(label): label for label in classes or []}
    spelled: dict[str, list[tuple[str, str]]] = {}
    # In the order of the folders' own names, kept by _in_english, as image_dataset_from_directory
    # numbers them: a Mac's "école" ("e" and an accent) before "zèbre", where typed it sorts after.
    for label, files in sorted(members.items()):
        written = as_typed(label)
        spelled.setdefault(spellings.get(written, written), []).extend(files)
    return {label: _in_order(files) for label, files in spelled.items()}


def _in_english(members: dict[str, list[tuple[str, str]]],
                classes: list[str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """Animals-10's Italian class names in English, when every class is one of them: a `cane`
    beside `dog` or `ship` is someone's own class. For a model to score (`classes`), only where
    it knows them in English: one trained on `cane`, `gatto` and `zebra` kept those."""
    if not set(members) <= ANIMALS10_ENGLISH.keys():
        return members
    if classes is not None and not set(classes) <= set(ANIMALS10_ENGLISH.values()):
        return members
    return {ANIMALS10_ENGLISH[folder]: files for folder, files in members.items()}


# Larger files are skipped unread: a video or a disk image saved among the photos would be
# read whole into memory. The largest image `load_rgb` takes, 50 megapixels (MAX_PIXELS) of
# 16-bit RGBA stored uncompressed, is 400 MB; a phone's photo or a web upload (10 MB at most)
# is a few MB.
MAX_FILE_BYTES = 512_000_000


class Folder:
    def __init__(self, root: Path):
        self.root = root

    def names(self) -> list[str]:
        """Files, and folders with a "/" after their name (an empty one may be a class).
        Symlinked folders are followed (Path.rglob does not), except one that leads back to a
        folder it is in, which would loop forever."""
        names = []
        # For each folder still to walk, its real path and those of the folders it is in: a link to one is a loop.
        ancestors = {str(self.root): {os.path.realpath(self.root)}}
        for top, folders, files in os.walk(self.root, followlinks=True):
            above = ancestors.pop(top)
            inside = Path(top).relative_to(self.root)
            for folder in list(folders):
                real = os.path.realpath(os.path.join(top, folder))
                if real in above:
                    folders.remove(folder)  # os.walk does not go into folders taken out here
                    continue
                ancestors[os.path.join(top, folder)] = above | {real}
                names.append((inside / folder).as_posix() + "/")
            # Broken links, sockets and pipes are no images.
            names += [(inside / file).as_posix() for file in files if os.path.isfile(os.path.join(top, file))]
        return names

    def size(self, name: str) -> int:
        """A file's size; a device, pipe or socket, which may be read forever, is refused."""
        found = (self.root / name).stat()
        if not stat.S_ISREG(found.st_mode):
            raise ImageError("It is a device, pipe or socket, not a file.")
        return found.st_size

    def read(self, name: str) -> bytes:
        """A file's bytes; one that cannot be an image by its size or kind is refused unread."""
        size = self.size(name)
        if size > MAX_FILE_BYTES:
            raise ImageError(f"It is too large ({filesize(size)}) for an image; the limit is "
                             f"{filesize(MAX_FILE_BYTES)}.")
        return self._bytes(name)

    def _bytes(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Zip(Folder):
    def __init__(self, path: Path):
        self.zip = zipfile.ZipFile(path)
        self.members = {_member_name(info): info for info in self.zip.infolist()}

    def names(self) -> list[str]:
        return list(self.members)

    def size(self, name: str) -> int:
        return self.members[name].file_size  # zipfile unpacks no more than this

    def _bytes(self, name: str) -> bytes:
        return self.zip.read(self.members[name])

    def __exit__(self, *exc):
        self.zip.close()
        return False


def _member_name(info: zipfile.ZipInfo) -> str:
    """A zip member's name as the tool that wrote it meant it, so that it is the same as in
    the unzipped folder: zipfile reads a name without the format's UTF-8 flag as cp437, as the
    format says, but Linux's zip and macOS write UTF-8 names without that flag. Windows tools
    (PowerShell 5's Compress-Archive) write "\\" between folders; a name written from the root
    ("/cat/1.jpg") is unzipped under the folder, as unzip does, not in a class named "/"."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except UnicodeError:  # cp437 indeed, or another code page: as zipfile read it
            pass
    return name.replace("\\", "/").lstrip("/")


def open_tree(path: Path) -> Folder:
    """A folder, or a zip read as one."""
    return _Zip(path) if path.is_file() else Folder(path)


def stratified_split(labels: np.ndarray, fraction: float, seed: int, classes: list[str] | None = None,
                     advice: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held-out) with `fraction` of every class held out, at least one each;
    DataError, ending in `advice` (by default what helps), for a class too small for that."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = max(1, round(len(members) * fraction)) if fraction > 0 else 0
        if count >= len(members):
            name = classes[label] if classes else label
            # One image a class is held out at the least: for a class of one, holding out less cannot help.
            advice = advice or ("add images, or hold out less" if len(members) > 1 else
                                "add images: one of every class is held out, so each needs two or more")
            raise DataError(f"class {name} has too few images ({len(members)}) to hold out a share of {fraction:g} "
                            f"and train on the rest: {advice}")
        held.append(members[:count])
        train.append(members[count:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class weights that make every class count equally (1.0 when balanced)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.divide(len(labels), num_classes * counts, out=np.zeros(num_classes), where=counts > 0)
    return weights.astype(np.float32)
