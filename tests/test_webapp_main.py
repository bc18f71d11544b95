"""`python -m webapp`: arguments, the optional tunnel, and a server that never debugs."""

import json
import os
import socket
import subprocess
import sys
import urllib.request

import psutil
import pytest
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from conftest import free_port, save_model_without_softmax, wait_until_serving

from webapp.config import ROOT
from webapp import __main__ as main_module


def run_main(monkeypatch, argv, environ=None, url="https://example.ngrok.app"):
    """main(argv) with `environ` set, serving nothing; a tunnel opens at `url` (None: fails)."""
    calls = {}
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(Flask, "run", lambda self, **kwargs: calls.update(run=kwargs, app=self))
    monkeypatch.setattr(main_module, "_refuse_a_busy_port", lambda host, port: None)  # the ports named are not bound
    monkeypatch.setattr(main_module.tunnel, "open_tunnel",
                        lambda port, host: calls.setdefault("tunnel", (port, host)) and url)
    main_module.main(argv)
    return calls


def test_serves_locally_without_debugger(monkeypatch, models_dir):
    calls = run_main(monkeypatch, ["--port", "8765"], {"IMAGEAPP_MODELS_DIR": str(models_dir)})
    assert calls["run"] == {"host": "127.0.0.1", "port": 8765, "debug": False, "use_reloader": False, "threaded": True}
    assert "tunnel" not in calls


def test_the_default_model_is_loaded_before_serving_as_in_a_gunicorn_worker(monkeypatch, models_dir):
    save_model_without_softmax(models_dir / "tiny.h5")  # passes the file checks, fails at load
    calls = run_main(monkeypatch, [], {"IMAGEAPP_MODELS_DIR": str(models_dir), "IMAGEAPP_DEFAULT_MODEL": "tiny"})
    listed = {entry["name"]: entry for entry in calls["app"].test_client().get("/api/models").get_json()["models"]}
    # Found before the first request: not offered as usable, nor as the default.
    assert not listed["tiny"]["available"] and "not probabilities" in listed["tiny"]["error"]
    assert listed["small"]["default"]


def test_settings_are_read_without_surrounding_blanks(monkeypatch, models_dir):
    # As gunicorn.conf.py and the app read theirs: a blank one counts as unset.
    calls = run_main(monkeypatch, [], {"IMAGEAPP_MODELS_DIR": str(models_dir), "IMAGEAPP_HOST": " ",
                                       "IMAGEAPP_PORT": "8123\n"})
    assert calls["run"]["host"] == "127.0.0.1" and calls["run"]["port"] == 8123


def test_a_port_in_use_is_one_sentence_naming_the_options_before_anything_starts(monkeypatch):
    monkeypatch.setattr(Flask, "run", pytest.fail)
    monkeypatch.setattr(main_module.tunnel, "open_tunnel", pytest.fail)
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            main_module.main(["--port", str(port), "--ngrok"])
    assert stopped.value.code == (f"python -m webapp: cannot listen on 127.0.0.1:{port} (another program is listening there: stop it): "
                                  "pass --port or --host, or set IMAGEAPP_PORT or IMAGEAPP_HOST, to another")


@pytest.mark.parametrize("argv, environ", [(["--port", "99999"], {}), ([], {"IMAGEAPP_PORT": "abc"})])
def test_a_bad_port_is_one_line_not_a_traceback(monkeypatch, capsys, argv, environ):
    with pytest.raises(SystemExit) as stopped:
        run_main(monkeypatch, argv, environ)
    assert stopped.value.code == 2 and "is not a port number (1-65535)" in capsys.readouterr().err


def test_ngrok_flag_or_environment_opens_tunnel(monkeypatch, models_dir):
    monkeypatch.delenv("IMAGEAPP_NGROK", raising=False)
    calls = run_main(monkeypatch, ["--ngrok", "--host", "0.0.0.0"], {"IMAGEAPP_MODELS_DIR": str(models_dir)})
    assert calls["tunnel"] == (8000, "0.0.0.0")
    # The tunnel's agent is a proxy: its X-Forwarded-* headers are believed.
    assert isinstance(calls["app"].wsgi_app, ProxyFix) and calls["app"].wsgi_app.x_proto == 1
    calls = run_main(monkeypatch, ["--port", "9001"], {"IMAGEAPP_NGROK": "1"})
    assert calls["tunnel"] == (9001, "127.0.0.1") and calls["run"]["port"] == 9001
    assert not isinstance(run_main(monkeypatch, [], {"IMAGEAPP_NGROK": "0"})["app"].wsgi_app, ProxyFix)
    # Without a tunnel, or told 0 proxies, the server is reached directly: no header is believed.
    assert not isinstance(run_main(monkeypatch, [], {"IMAGEAPP_NGROK": "1"}, url=None)["app"].wsgi_app, ProxyFix)
    calls = run_main(monkeypatch, [], {"IMAGEAPP_NGROK": "1", "IMAGEAPP_PROXY_HOPS": "0"})
    assert "tunnel" in calls and not isinstance(calls["app"].wsgi_app, ProxyFix)


def serving_on_a_free_port(arguments: list[str], env: dict) -> tuple[subprocess.Popen, int]:
    """`python -m webapp` with `arguments` on a free port, once it answers, and the port. A port
    found free can be taken by another test's server before this one listens on it: then the
    server says so, and another port is tried."""
    for _ in range(3):
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "webapp", "--port", str(port), *arguments], cwd=ROOT,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until_serving(process, f"http://127.0.0.1:{port}", timeout=30)
        except AssertionError:
            process.kill()
            if "cannot listen on" not in process.communicate(timeout=10)[1]:
                raise
            continue
        # What answered may be the other test's server, while this one is still starting.
        if any(each.status == psutil.CONN_LISTEN and each.laddr.port == port
               for each in psutil.Process(process.pid).net_connections("tcp")):
            return process, port
        process.kill()
        process.communicate(timeout=10)
    raise AssertionError("three free ports were taken before the server could listen on them")


def test_real_process_without_token_says_one_line_and_serves(models_dir):
    env = {key: value for key, value in os.environ.items() if key != "NGROK_AUTHTOKEN"}
    env.update(IMAGEAPP_MODELS_DIR=str(models_dir), IMAGEAPP_SECRET_KEY="x", PYTHONUNBUFFERED="1")
    process, port = serving_on_a_free_port(["--ngrok"], env)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert json.load(response) == {"status": "ok", "models": 2}
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    ngrok_lines = [line for line in output.splitlines() if "ngrok" in line]
    assert ngrok_lines == [f"ngrok: no tunnel, NGROK_AUTHTOKEN is not set; still serving on local port {port}."]


@pytest.mark.parametrize("module, package", [("flask", "flask"), ("PIL", "pillow")])
def test_run_by_a_python_without_the_projects_packages_says_which_python_to_use(module, package):
    # As with `python3 -m webapp` typed for `.venv/bin/python -m webapp`; the package by its pip name.
    code = f"import sys; sys.modules[{module!r}] = None; import runpy; runpy.run_module('webapp', run_name='__main__')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1 and result.stderr == (
        f"error: {package} is not installed for {sys.executable}: use .venv/bin/python, the project's Python "
        "(make test or make serve installs it), or install requirements.txt into this one\n")


def test_a_module_that_our_own_code_fails_to_find_keeps_its_traceback():
    # As a typo, `import numpyy` in webapp/cors.py (imported by config.py), would: not "not installed".
    code = """import importlib.abc, sys
class Typo(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "webapp.cors":
            raise ModuleNotFoundError("No module named 'numpyy'", name="numpyy")
sys.meta_path.insert(0, Typo())
import runpy; runpy.run_module("webapp", run_name="__main__")"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1 and "Traceback" in result.stderr and "not installed" not in result.stderr
