"""A saved model's .h5 file, checked before Keras opens it, by `trainer evaluate` and by the
web app: that it is an HDF5 file, that HDF5 reads it through, that it holds a whole Keras
model (its layout and its weights), that its weights are finite numbers, and, for one that
does not read through but is smaller than its card records (or its own header says), that
it is incomplete: a copy or download cut short, said more plainly than HDF5 says it."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from trainer.formatting import filesize, is_number

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"

# Reads every attribute and dataset of each HDF5 file named on its command line, in turn, and
# prints a line per file as soon as it is done: JSON null, {"error": why h5py refuses the file}
# (truncated, say), {"not_finite": the first dataset holding NaN or infinity}, or {"missing":
# the part of a whole Keras model the file lacks, its layout or its weights}. Run in a child
# process, as some damaged files crash HDF5's C library, which would take the process that reads
# them down with it (a web app worker, and every request in it, again on each try). One child
# reads all the files it is given, as each child costs 0.2 s to start.
HDF5_READ_CHECK = """
import json, sys, h5py, numpy
class NotFinite(Exception):
    pass
def read(name, item):
    for key in item.attrs:
        item.attrs[key]
    if isinstance(item, h5py.Dataset):
        value = numpy.asarray(item[()])
        if value.dtype.kind == "f" and not numpy.isfinite(value).all():
            raise NotFinite(name)
for path in sys.argv[1:]:
    found = None
    try:
        with h5py.File(path, "r") as f:
            read("/", f)
            f.visititems(read)
            if "model_config" not in f.attrs:
                found = {"missing": "model_config"}
            elif "model_weights" not in f:
                found = {"missing": "model_weights"}
    except NotFinite as error:
        found = {"not_finite": str(error)}
    except Exception as error:
        found = {"error": " ".join(str(error).split()) or type(error).__name__}
    print(json.dumps(found), flush=True)
"""
READ_TIMEOUT = 60  # seconds a file may take to read through, the child's start included for the first
REMEDY = "copy it again, or train it again"  # for a file that is damaged or cut short
# How Keras names a layer class it does not know, in a legacy .h5 file's layout or a .keras one's.
UNKNOWN_LAYER = re.compile(r"(?:Unknown layer: |Could not locate class )'([^']+)'")
# How HDF5 tells a file shorter than its own header says it is.
TRUNCATED = re.compile(r"truncated file: eof = \d+, .*stored_eof = (\d+)")
# How HDF5 tells the errno of a write that failed.
WRITE_ERRNO = re.compile(r"\berrno = (\d+)")


def problems(files: dict[Path, tuple[int, dict]]) -> dict[Path, str | None]:
    """Why each .h5 file, given with its size and its card, cannot be used (None: no reason
    found), without opening any in this process; the files are read through in one child."""
    not_hdf5 = {path: _signature_error(path, card) for path, (_, card) in files.items()}
    found = _read_through([path for path, error in not_hdf5.items() if error is None])
    return {path: not_hdf5[path] or _found_problem(path, size, card, found[path]) for path, (size, card) in files.items()}


def problem(path: Path, card: dict) -> str | None:
    """Why one .h5 file, with its card, cannot be used (None: no reason found), as `problems`
    finds it."""
    return problems({path: (path.stat().st_size, card)})[path]


def sha256(path: Path) -> str:
    """The file's SHA-256, which its card keeps as file_sha256."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def card_of_another_file(path: Path, card: dict) -> str | None:
    """Why `card` may not describe the .h5 file beside it (None: it does, or its card keeps no
    file_sha256, as cards before it did not): a card put beside another model's file, or a save
    stopped between renaming its card and its model into place. The model can still be used;
    the card's classes and image size are checked when it loads, its figures are not."""
    recorded = card.get("file_sha256")
    if isinstance(recorded, str) and not re.fullmatch(r"[0-9a-fA-F]{64}", recorded):  # the card is at fault, not the file
        return (f"{path.stem}.json's file_sha256 is no SHA-256 (64 hexadecimal digits), so whether the card was "
                f"written for this {path.name} cannot be told: put the card that came with this file beside it, "
                "or train it again")
    try:
        if not isinstance(recorded, str) or recorded.lower() == sha256(path):
            return None
        size = path.stat().st_size
    except OSError:  # removed or replaced meanwhile: its next version is checked anew
        return None
    if size == card.get("file_size_bytes"):  # HDF5 keeps no checksums, so a damaged file loads
        return (f"{path.name} has the size {path.stem}.json gives but not its SHA-256 (file_sha256): it may be "
                "damaged, as by a copy or download gone wrong, or be another model of the same shape, so neither "
                "its answers nor the card's figures can be trusted: copy it again with its card, or train it again")
    return (f"{path.stem}.json was written for another {path.name} (the file's SHA-256 is not the card's "
            "file_sha256), so its figures may be another model's: put the card that came with this file beside it, "
            "or train it again")


def keras_refusal(error: Exception) -> str | None:
    """Why Keras would not load a model file that reads through, in words with a remedy, where
    its own words ask for code this project has not: the maker's, another library's, or
    operations a functional model did on tensors, which Keras writes to .h5 but cannot read
    back (None: another reason). The project serves models built of Keras's own layers."""
    text = str(error)
    if "`Lambda` layer" in text and "safe_mode" in text:
        return ("it holds a Lambda layer, Python code that Keras does not run from a file: build the model "
                "of Keras's own layers, without Lambda, and save it again")
    if match := UNKNOWN_LAYER.search(text):
        return (f"it uses a layer that Keras cannot rebuild from the file ({match[1]}): a class of its maker's own "
                "or of another library, or arithmetic done on tensors outside layers (preprocess_input, x / 255); "
                "build it of Keras's own layers, as docs/web-app.md shows, and save it again")
    return None


def without_folder(message: str, path: Path) -> str:
    """An error message about `path` with the file named alone and its folder called "models":
    messages reach people (a web page, say) who have no business knowing where and whose the
    files are."""
    message = message.replace(str(path), path.name)
    folder = str(path.parent)
    return message if folder in (".", "/") else message.replace(folder, "models")


def is_dangling_link(path: Path) -> bool:
    """Whether `path` is a link to a file that is not there (or through a file as if a folder, or
    in a loop of links); not one into a folder that cannot be entered (no error raised)."""
    try:
        os.stat(path)
    except OSError as error:
        return error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP) and os.path.islink(path)
    return False


def _signature_error(path: Path, card: dict) -> str | None:
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO would block the reader; a folder is no model
        return f"{path.name} is not a regular file; {REMEDY}"
    if is_dangling_link(path):
        return f"{path.name} is a link to a file that is not there: link it to the model again, or copy the model in"
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(HDF5_SIGNATURE))
    except OSError as error:
        return f"{path.name} cannot be read ({error.strerror or type(error).__name__})"
    if start == HDF5_SIGNATURE:
        return None
    if not start:  # a copy stopped before its first byte, say
        return _cut_short(path, 0, card, "") or f"{path.name} is empty; {REMEDY}"
    if start.startswith(ZIP_SIGNATURE):  # copying it again would not help
        return (f"{path.name} is a zip file, as Keras's .keras format is, not an HDF5 one: save the model with "
                f'model.save("{path.name}")')
    return f"{path.name} is not an HDF5 model file; {REMEDY}"


def _found_problem(path: Path, size: int, card: dict, found: dict | None) -> str | None:
    """Why a file cannot be used, from what reading it found (None: nothing wrong)."""
    if found is None:
        return None
    if "not_finite" in found:
        return (f"{path.name} holds NaN or infinite weights (in {found['not_finite'][:100]}): it is damaged, or its "
                f"training diverged; {REMEDY}")
    if found.get("missing") == "model_config":  # what Keras's save_weights writes, a common mix-up
        return (f"{path.name} holds no Keras model, only weights or other data (as save_weights writes, or a save "
                "that failed part-way): save the whole model with model.save(), or train one with python -m trainer")
    if "missing" in found:
        return f"{path.name} holds a model's layout but not its weights; {REMEDY}"
    # Only a file that does not read through may be cut short: one that does is whole, whatever its size.
    return _cut_short(path, size, card, found.get("error", "")) or _unreadable(path, found)


def _cut_short(path: Path, size: int, card: dict, unread: str) -> str | None:
    """For a file that does not read through: that it is smaller than its card records, or
    than HDF5's header says, if it is."""
    recorded = card.get("file_size_bytes")
    if is_number(recorded) and size < recorded:
        return f"{path.name} is incomplete: {_part_of(size, recorded)} its card records; {REMEDY}"
    if match := TRUNCATED.search(unread):
        return f"{path.name} is incomplete: {_part_of(size, int(match[1]))} it should hold; {REMEDY}"
    return None


def _part_of(size: int, whole: int) -> str:
    """"2.0 kB of the 8.7 MB", or in bytes where the two would read alike (a byte short)."""
    if filesize(size) == filesize(whole):
        return f"{size:,} of the {whole:,} bytes"
    return f"{filesize(size)} of the {filesize(whole)}"


def _unreadable(path: Path, found: dict) -> str:
    if "hangs" in found:
        return f"{path.name} is damaged: reading it does not finish; {REMEDY}"
    if "signal" in found:  # such as SIGSEGV
        return f"{path.name} is damaged: reading it crashes HDF5 (signal {found['signal']}); {REMEDY}"
    return _cannot_read(path, found["error"])


def _read_through(paths: list[Path]) -> dict[Path, dict | None]:
    """What reading each file through in a child process found (None: nothing wrong); the
    files after one that crashes the child, or hangs it, are read in a fresh one."""
    found: dict[Path, dict | None] = {}
    while len(found) < len(paths):
        found |= _read_in_child(paths[len(found):])
    return found


def _read_in_child(paths: list[Path]) -> dict[Path, dict | None]:
    """What reading each file through found, for the files one child process gets through:
    all of them, or those before the first that crashes or hangs it, and that one."""
    found: dict[Path, dict | None] = {}
    # Unbuffered, the pipe's readline() reads no further than the line, so the selector sees the
    # next one; stderr goes to a file, which never fills up as a pipe would and stop the child.
    with _stderr_file() as stderr, subprocess.Popen(
        [sys.executable, "-c", HDF5_READ_CHECK, *map(str, paths)], stdout=subprocess.PIPE, stderr=stderr, bufsize=0
    ) as child, selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        for path in paths:
            if not selector.select(READ_TIMEOUT):
                child.kill()
                return found | {path: {"hangs": True}}
            line = child.stdout.readline()
            if not line.endswith(b"\n"):  # the child ended while reading this file
                return found | {path: _end_reason(child.wait(), stderr)}
            found[path] = json.loads(line)
    return found


def _stderr_file() -> BinaryIO:
    """A temporary file for the child's stderr; where the temporary folder is full or cannot be
    written, none: the check goes on without the child's last words (a full /tmp made every page
    that lists a model not checked yet a 500)."""
    try:
        return tempfile.TemporaryFile()
    except OSError:
        return open(os.devnull, "w+b")


def _end_reason(returncode: int, stderr: BinaryIO) -> dict:
    """Why a child process ended while reading a file, from its exit status and its stderr file."""
    if returncode < 0:  # killed by a signal
        return {"signal": -returncode}
    stderr.seek(0)
    lines = stderr.read().decode(errors="replace").strip().splitlines() or [f"exit code {returncode}"]
    return {"error": lines[-1]}  # the last line: the reason


def _cannot_read(path: Path, reason: str) -> str:
    return f"{path.name} cannot be read: {without_folder(reason, path)[:200]}; {REMEDY}"


@contextmanager
def writing_h5() -> Iterator[None]:
    """h5py's RuntimeError from a write that failed, as the OSError it is: a disk that fills as
    HDF5 flushes a file's last bytes fails it in h5py's close, as RuntimeError ("Slist already
    enabled?", with the errno only in the error before it), which passed the savers' handling of
    a full disk as a traceback."""
    try:
        yield
    except RuntimeError as error:
        cause = error
        while cause is not None and not (match := WRITE_ERRNO.search(str(cause))):
            cause = cause.__context__
        if cause is None:
            raise
        raise OSError(int(match[1]), os.strerror(int(match[1]))) from error


def stamp(path: Path) -> tuple[int, int, int, int] | None:
    """Which version of a file is at `path` (None: none): its size, mtime, ctime and inode.
    ctime and inode see what mtime and size miss: a chmod that makes a file readable, a file
    of the same size and mtime moved over the old one."""
    try:
        return stamp_of(path.stat())
    except OSError:
        return None


def stamp_of(info: os.stat_result) -> tuple[int, int, int, int]:
    """`stamp` from a stat, such as an open file's os.fstat: the version that was opened."""
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino
