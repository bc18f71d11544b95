"""Keras is imported without TensorFlow's start-up log lines, and nothing else is lost."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_image_folder
from trainer.keras_import import dropped, log_lines_dropped

CHECKOUT = Path(__file__).resolve().parents[1]

# As TensorFlow 2.21 writes them on a machine without a GPU.
ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONE_DNN = (b"I0000 00:00:1796283649.997754   31689 port.cc:153] oneDNN custom operations are on. You may see "
           b"slightly different numerical results due to floating-point round-off errors from different "
           b"computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
NO_DRIVER = (b"I0000 00:00:1796283649.998102   31689 cudart_stub.cc:31] Could not find cuda drivers on your "
             b"machine, GPU will not be used.\n")
CU_INIT = (b"E0000 00:00:1796283654.664007   31689 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
           b"error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
FATAL = b"F0000 00:00:1796283654.664999   31689 some_kernel.cc:10] Check failed: a FATAL line is always shown\n"


def kept(lines: list[bytes], below: int) -> bytes:
    return b"".join(line for line in lines if not dropped(line, below))


def test_log_lines_under_the_level_go_and_everything_else_stays():
    ours = [b"UserWarning: \xff not UTF-8\n", b"E0000 in a sentence of ours\n", b"a last line without its newline"]
    written = [ABSL, ONE_DNN, NO_DRIVER, ours[0], ABSL, ONE_DNN, NO_DRIVER, CU_INIT, FATAL, ours[1], ours[2]]
    assert kept(written, below=3) == b"".join([ours[0], FATAL, ours[1], ours[2]])
    assert kept(written, below=2) == b"".join([ours[0], CU_INIT, FATAL, ours[1], ours[2]])
    assert kept(written, below=0) == b"".join(written)


def test_held_output_comes_back_in_order_even_after_an_exception(capfd):
    with pytest.raises(KeyboardInterrupt):
        with log_lines_dropped(below=1):
            os.write(2, b"first\n" + ONE_DNN + b"second\n")
            raise KeyboardInterrupt  # as a Ctrl-C during the import would
    os.write(2, b"after\n")  # descriptor 2 is the terminal's again
    assert capfd.readouterr().err == "first\nsecond\nafter\n"


@pytest.fixture
def cifar_folder(tmp_path):
    return write_image_folder(tmp_path, per_class=2, size=32, classes=["cat", "ship"])  # two of the model's classes


EVALUATE = ["-m", "trainer", "evaluate", "models/cifar10_scratch.h5", "--data", "{data}"]
LOAD_IN_A_WORKER = ["-c", "from webapp.registry import Registry; Registry('models').load('cifar10_scratch')"]


def run_python(command: list[str], data: Path, **environ) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"} | environ
    result = subprocess.run([sys.executable, *(part.format(data=data) for part in command)], capture_output=True,
                            text=True, timeout=120, cwd=CHECKOUT, env=env)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("command", [EVALUATE, LOAD_IN_A_WORKER])
def test_the_trainer_and_the_web_app_print_no_tensorflow_log_lines(command, cifar_folder):
    stderr = run_python(command, cifar_folder).stderr
    for word in ("absl", "oneDNN", "cuda", "cuInit", "I0000", "E0000"):
        assert word not in stderr


def test_tensorflow_log_lines_show_when_asked_for(cifar_folder):
    stderr = run_python(EVALUATE, cifar_folder, TF_CPP_MIN_LOG_LEVEL="0").stderr
    assert "I0000" in stderr  # the level reaches TensorFlow, and the start-up lines stay


def test_what_is_written_before_an_abort_comes_out():
    code = ("import os; from trainer.keras_import import log_lines_dropped\n"
            "with log_lines_dropped(below=3):\n"
            f"    os.write(2, {ONE_DNN + FATAL!r}); os.abort()")  # as TensorFlow stops on a FATAL check
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, cwd=CHECKOUT)
    assert result.returncode == -6 and result.stderr == FATAL


def test_a_ctrl_c_during_the_import_does_not_stop_the_filter():
    code = ("import os, signal, time; from trainer.keras_import import log_lines_dropped\n"
            # As in a terminal, also where the suite runs as a background job, which ignores SIGINT.
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "with log_lines_dropped(below=3):\n"
            "    os.write(2, b'before\\n')\n"
            "    try:\n"
            "        os.killpg(0, signal.SIGINT)  # as Ctrl-C signals the terminal's whole process group\n"
            "        time.sleep(5)\n"
            "        os.write(2, b'no KeyboardInterrupt\\n')  # told apart from the filter losing 'after'\n"
            "    except KeyboardInterrupt:\n"
            "        os.write(2, b'after\\n')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, cwd=CHECKOUT,
                            start_new_session=True)  # a group of its own, as a terminal's job is
    assert result.returncode == 0 and result.stderr == b"before\nafter\n"


def test_keras_imports_without_a_descriptor_2():
    code = "from trainer.keras_import import import_keras; import_keras(); print('imported')"
    result = subprocess.run(f"exec {sys.executable} -c {code!r} 2>&-", shell=True, capture_output=True, text=True,
                            timeout=120, cwd=CHECKOUT)
    assert result.returncode == 0 and result.stdout == "imported\n"


@pytest.mark.parametrize("backend, prelude, cause, advice", [
    ("nonesuch", "", "(Unable to import backend : nonesuch): install it, or set KERAS_BACKEND", ""),
    ("jax", "sys.modules['jax'] = None; ", "(import of jax halted; None in sys.modules): install it",
     'for JAX on an NVIDIA GPU: .venv/bin/pip install "jax[cuda12]"'),  # as where JAX is not installed
])
def test_a_backend_that_cannot_load_is_one_clear_sentence(backend, prelude, cause, advice, cifar_folder):
    code = f"import sys; {prelude}from trainer.__main__ import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "evaluate", "models/cifar10_scratch.h5", "--data", cifar_folder],
                            capture_output=True, text=True, timeout=120, cwd=CHECKOUT,
                            env=os.environ | {"KERAS_BACKEND": backend})
    assert result.returncode == 2 and "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: Keras cannot load its backend {backend} {cause}")
    assert ("jax[cuda12]" in result.stderr) == bool(advice) and advice in result.stderr


@pytest.mark.parametrize("missing", ["keras", "PIL"])
def test_run_by_a_python_without_the_projects_packages_says_which_python_to_use(missing, cifar_folder):
    # As with `python3 -m trainer` typed for `.venv/bin/python -m trainer`: not advice to change the backend.
    code = f"import sys; sys.modules[{missing!r}] = None; from trainer.__main__ import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "evaluate", "models/cifar10_scratch.h5", "--data", cifar_folder],
                            capture_output=True, text=True, timeout=120, cwd=CHECKOUT)
    assert result.returncode == 2 and result.stderr == (
        f"error: {missing} is not installed for {sys.executable}: use .venv/bin/python, the project's Python "
        "(make test or make serve installs it), or install requirements.txt into this one\n")
