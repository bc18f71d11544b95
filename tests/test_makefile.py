"""The README's set-up commands: `make serve` and `make test` on a fresh machine."""

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from trainer.formatting import is_utf8

CHECKOUT = Path(__file__).resolve().parents[1]


def make_serve(folder: Path, python: str) -> subprocess.CompletedProcess:
    """`make PYTHON=python serve` in a copy of the set-up files, which must stop before making .venv."""
    for name in ("Makefile", "requirements.txt"):
        shutil.copy(CHECKOUT / name, folder)
    result = subprocess.run(["make", f"PYTHON={python}", "serve"], cwd=folder, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and not (folder / ".venv").exists()
    return result


def fake_python(folder: Path, name: str, script: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("version, check, refusal", [
    # Runs, and answers as Python 3.10 would.
    ("3.10.12", "version_info < (3, 11)",
     "older than the 3.11 the pinned packages need; name a newer one, as in: make PYTHON=python3.12 serve"),
    # Runs, passes the 3.11 check, and answers as Python 3.14 would.
    ("3.14.0", "version_info >= (3, 14)",
     "newer than the 3.13 that TensorFlow 2.21 has wheels for; name an older one, as in: make PYTHON=python3.13 serve"),
])
def test_a_python_the_pins_do_not_fit_is_refused_in_one_sentence(tmp_path, version, check, refusal):
    python = fake_python(tmp_path, f"python{version[:4]}",
                         f'case "$2" in *"{check}"*) exit 1;; *python_version*) echo {version};; esac\n')
    assert make_serve(tmp_path, str(python)).stderr.startswith(f"make: {python} is Python {version}, {refusal}\n")


def test_a_python_that_does_not_run_is_said_not_to_run_not_to_be_too_old(tmp_path):
    # As pyenv's shim answers for a version it does not have.
    shim = fake_python(tmp_path, "python3.12", "echo 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    assert make_serve(tmp_path, str(shim)).stderr.startswith(
        f"make: {shim} is here but does not run (a pyenv shim of a version not installed?); name a Python 3.11 to "
        "3.13 that runs, as in: make PYTHON=/usr/bin/python3.11 serve\n")


def test_a_python_not_installed_is_said_to_be_missing_not_too_old(tmp_path):
    assert make_serve(tmp_path, "python3.99").stderr.startswith(
        "make: there is no python3.99 here; name a Python 3.11 to 3.13 that is installed, as in: "
        "make PYTHON=/usr/bin/python3.11 serve\n")


def test_every_docstring_compiles_on_python_3_13():
    # From 3.13 the compiler encodes each docstring as UTF-8: a lone surrogate in one (a "\\udc80"
    # written with its backslash not doubled) and its module no longer imports, nor the web app.
    sources = subprocess.run(["git", "ls-files", "*.py"], cwd=CHECKOUT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert len(sources) > 50
    unencodable = [(source, node.lineno if hasattr(node, "lineno") else 1)
                   for source in sources for node in ast.walk(ast.parse((CHECKOUT / source).read_bytes()))
                   if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                   and (text := ast.get_docstring(node, clean=False)) is not None and not is_utf8(text)]
    assert unencodable == []
