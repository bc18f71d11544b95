"""Keras, imported without TensorFlow's start-up log lines.

TensorFlow's C++ log lines are off by default: its errors reach us as exceptions anyway, and
on a CPU every training run would end with a harmless E-level "oneDNN supports DT_UINT8 only
on platforms with AVX-512". But TensorFlow 2.21 writes its start-up lines ("oneDNN custom
operations are on", "Could not find cuda drivers", "failed call to cuInit") before it reads
TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442), straight to file descriptor 2, out of
Python's reach. So the import holds descriptor 2 in a file, then writes it back without the
lines that the level should have dropped.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager

DEFAULT_LOG_LEVEL = "3"  # TF_CPP_MIN_LOG_LEVEL: 0 shows TensorFlow's INFO lines and up, 3 only FATAL ones
SEVERITIES = b"IWEF"  # INFO, WARNING, ERROR, FATAL: levels 0 to 3
# absl's prefix: severity, date, time, thread, file:line (in the lines written before absl is
# set up, the time's seconds hold the whole Unix time)
LOG_LINE = re.compile(rb"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
EARLY_LOG_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"

_lock = threading.Lock()  # descriptor 2 is the whole process's: one redirection at a time


def import_keras():
    """The keras module, imported (and its backend's devices listed) without start-up lines
    below TF_CPP_MIN_LOG_LEVEL. Call it before anything imports keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LOG_LEVEL)
    with _lock:
        if "keras" not in sys.modules:
            with log_lines_dropped(below=log_level()):
                try:
                    import keras
                except (ImportError, ValueError) as error:  # ValueError: a backend Keras does not know
                    raise BackendError(
                        f"Keras cannot load its backend ({error}): set KERAS_BACKEND to one that is installed, "
                        "such as tensorflow (requirements.txt's); for jax on an NVIDIA GPU, "
                        ".venv/bin/pip install \"jax[cuda12]\"") from None
                keras.distribution.list_devices()  # where TensorFlow looks for a GPU and writes cuInit's line
    import keras

    return keras


class BackendError(ImportError):
    """KERAS_BACKEND (or ~/.keras/keras.json) names a backend that is not installed."""


def log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0  # as TensorFlow takes a value it cannot read


@contextmanager
def log_lines_dropped(below: int):
    """Within this block, what is written to descriptor 2 (Python's stderr included) is held,
    then written back when the block ends, even by an exception, without absl log lines of
    severity under `below`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            with open(2, "wb", closefd=False) as stderr:
                stderr.write(without_log_lines(held.read(), below))


def without_log_lines(output: bytes, below: int) -> bytes:
    def dropped(line: bytes) -> bool:
        if line == EARLY_LOG_BANNER:
            return below > 0
        match = LOG_LINE.match(line)
        return match is not None and SEVERITIES.index(match[1]) < below

    return b"".join(line for line in output.splitlines(keepends=True) if not dropped(line))
