"""Keras, imported without TensorFlow's start-up log lines.

TensorFlow's C++ log lines are off by default: its errors reach us as exceptions anyway, and
on a CPU every training run would end with a harmless E-level "oneDNN supports DT_UINT8 only
on platforms with AVX-512". But TensorFlow 2.21 writes its start-up lines ("oneDNN custom
operations are on", "Could not find cuda drivers", "failed call to cuInit") before it reads
TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442), straight to file descriptor 2, out of
Python's reach. So while Keras imports, descriptor 2 goes through a filter that leaves out the
lines the level should have dropped.

Run as a script, this file is that filter: `python keras_import.py LEVEL` copies its input to
its output without absl log lines of severity under LEVEL.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from contextlib import contextmanager

DEFAULT_LOG_LEVEL = "3"  # TF_CPP_MIN_LOG_LEVEL: 0 shows TensorFlow's INFO lines and up, 3 only FATAL ones
SEVERITIES = b"IWEF"  # INFO, WARNING, ERROR, FATAL: levels 0 to 3
# absl's prefix: severity, date, time, thread, file:line (in the lines written before absl is
# set up, the time's seconds hold the whole Unix time)
LOG_LINE = re.compile(rb"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
EARLY_LOG_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"


class _NoRetracingWarning(logging.Filter):
    """TensorFlow counts the traces of every Keras model's predict function as one function's,
    and from the fifth model in a row (the web app's comparison loads them all, `import` scores
    five) warns of "retracing" and how to avoid it: a paragraph in the log for what is one trace
    per model, as it should be."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


# On the logger TensorFlow writes to once it is imported; setting it up imports nothing.
logging.getLogger("tensorflow").addFilter(_NoRetracingWarning())


_lock = threading.Lock()  # descriptor 2 is the whole process's: one redirection at a time


class BackendError(ImportError):
    """Keras cannot load its backend: one not installed, or not one Keras knows."""


def import_keras():
    """The keras module, imported (and its backend's devices listed) without start-up lines
    below TF_CPP_MIN_LOG_LEVEL. Call it before anything imports keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LOG_LEVEL)
    with _lock:
        if "keras" not in sys.modules:
            with log_lines_dropped(below=_log_level()):
                try:
                    import keras
                except ModuleNotFoundError as error:
                    if error.name == "keras":  # not the backend's fault: Keras itself is missing
                        raise
                    raise _backend_error(error) from None
                except (ImportError, ValueError) as error:  # ValueError: a backend Keras does not know
                    raise _backend_error(error) from None
                keras.distribution.list_devices()  # where TensorFlow looks for a GPU and writes cuInit's line
    import keras

    return keras


def _backend_error(error: Exception) -> BackendError:
    backend = os.environ.get("KERAS_BACKEND", "").strip() or "tensorflow"
    where = ' (for JAX on an NVIDIA GPU: .venv/bin/pip install "jax[cuda12]")' if backend == "jax" else ""
    return BackendError(f"Keras cannot load its backend {backend} ({error}): install it{where}, or set "
                        "KERAS_BACKEND to one that is installed (requirements.txt installs tensorflow)")


def _log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0  # as TensorFlow takes a value it cannot read


@contextmanager
def log_lines_dropped(below: int):
    """Within this block, descriptor 2 (Python's stderr included) goes through this file run as
    a filter. A child process, not a thread: if TensorFlow aborts, the child still passes on what
    was written before, such as the FATAL line that says why."""
    if sys.stderr is not None:
        sys.stderr.flush()
    started = _start_filter(below)
    if started is None:
        yield
        return
    stderr, child = started
    try:
        os.dup2(child.stdin.fileno(), 2)
        child.stdin.close()  # descriptor 2 is now the pipe's only writing end
        yield
    finally:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
        finally:
            os.dup2(stderr, 2)  # closes the pipe, so the child reads to its end and stops
            os.close(stderr)
            child.wait()  # what the block wrote comes out before anything after it


def _start_filter(below: int) -> tuple[int, subprocess.Popen] | None:
    """A copy of descriptor 2, and the filter writing to it; None without a descriptor 2 (2>&-)
    or a process to be had, when nothing is filtered."""
    try:
        stderr = os.dup(2)
    except OSError:
        return None
    try:
        # In a session of its own, so that the Ctrl-C meant for the import does not stop it too.
        return stderr, subprocess.Popen([sys.executable, "-I", __file__, str(below)], stdin=subprocess.PIPE,
                                        stdout=stderr, start_new_session=True)
    except OSError:
        os.close(stderr)
        return None


def dropped(line: bytes, below: int) -> bool:
    """Whether the filter leaves out `line`: an absl log line of severity under `below`."""
    if line == EARLY_LOG_BANNER:
        return below > 0
    match = LOG_LINE.match(line)
    return match is not None and SEVERITIES.index(match[1]) < below


if __name__ == "__main__":
    level = int(sys.argv[1])
    for line in sys.stdin.buffer:
        if not dropped(line, level):
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()  # at once: the process writing may be about to abort
