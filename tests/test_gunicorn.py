"""The real thing: gunicorn with gunicorn.conf.py and wsgi:app on a free localhost port,
driven over HTTP. One server for the whole module."""

from __future__ import annotations

import gzip
import http.client
import http.cookiejar
import json
import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
import types
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from conftest import copy_models, damage, encode_image, gunicorn, make_config
from webapp import create_app, security, tunnel
from webapp.config import ROOT
from webapp.registry import registry_of
from webapp.uploads import CHUNKS_ENDED

LIMIT = 1024 * 1024


def multipart(fields: dict) -> tuple[bytes, str]:
    """Encode fields (str, or (filename, bytes) for files) as multipart/form-data."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in fields.items():
        if isinstance(value, tuple):
            filename, data = value
            head = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            head += "Content-Type: application/octet-stream\r\n"
        else:
            head, data = f'Content-Disposition: form-data; name="{name}"\r\n', value.encode()
        body += f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request(url, fields=None, opener=None, method=None):
    """(status, headers, body bytes) without raising on HTTP errors."""
    data, headers = None, {}
    if fields is not None:
        data, headers["Content-Type"] = multipart(fields)
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_config_suits_tensorflow_on_a_small_machine(monkeypatch):
    environ = {"IMAGEAPP_WORKERS": "3"}
    monkeypatch.setattr(os, "environ", environ)  # the config file sets defaults in the environment
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["preload_app"] is False  # TensorFlow is imported after the fork, in each worker
    assert config["workers"] == 3 and config["worker_class"] == "webapp.worker.Worker" and config["threads"] == 4
    assert environ["IMAGEAPP_CLIENT_SECONDS"] == "60"  # read by each worker
    assert config["timeout"] >= 60 and config["bind"] == "127.0.0.1:8000"
    assert environ["TF_NUM_INTRAOP_THREADS"] == "1" and environ["TF_NUM_INTEROP_THREADS"] == "1"
    assert len(environ["IMAGEAPP_SECRET_KEY"]) == 64  # one key shared by all workers


def test_the_master_imports_none_of_the_code_that_answers_requests():
    # kill -HUP forks new workers from the master: a module it holds is served as it was when
    # the server started, whatever was changed since.
    script = "import runpy, sys; runpy.run_path('gunicorn.conf.py'); import webapp.worker; print(*sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                            env=os.environ | {"IMAGEAPP_SECRET_KEY": "x"}).stdout.split()
    ours = {module for module in loaded if module.split(".")[0] in ("webapp", "trainer")}
    assert ours == {"trainer", "trainer.formatting", "webapp", "webapp.config", "webapp.ports", "webapp.tunnel",
                    "webapp.worker"}


@pytest.mark.parametrize("default", ["tiny", "nowhere"])
def test_each_worker_loads_the_default_model_and_traces_it_for_explaining_before_any_request(app, monkeypatch,
                                                                                          default):
    from webapp.occlusion import CHUNK
    from webapp.registry import Classifier

    batches = []
    predict = Classifier.predict
    monkeypatch.setattr(Classifier, "predict", lambda self, batch: batches.append(batch.shape) or predict(self, batch))
    app.config["DEFAULT_MODEL"] = default  # missing: the best usable model stands in, as for requests
    runpy.run_path(str(ROOT / "gunicorn.conf.py"))["post_worker_init"](types.SimpleNamespace(wsgi=app))
    loaded = registry_of(app).load_default(default)
    assert batches == [(1, *loaded.input_size, 3), (CHUNK, *loaded.input_size, 3)]


@pytest.mark.parametrize("left", ["none", "damaged"])
def test_a_worker_with_no_usable_model_starts_and_answers_that_it_has_none(models_dir, left):
    # A fresh install's empty models folder: the worker must boot and say so on /healthz, not crash in make_ready.
    if left == "damaged":
        damage(models_dir, "broken")
    for path in models_dir.iterdir():
        if path.stem != "broken":
            path.unlink()
    app = create_app(make_config(models_dir))
    runpy.run_path(str(ROOT / "gunicorn.conf.py"))["post_worker_init"](types.SimpleNamespace(wsgi=app))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json() == {"status": "no usable model", "models": 0}


def test_a_worker_that_cannot_trace_for_batches_serves_on(app, monkeypatch, caplog):
    from webapp import registry

    def out_of_memory(predict, size):
        raise RuntimeError("OOM when allocating tensor with shape[13,224,224,32]\nand more lines")

    monkeypatch.setattr(registry, "warm_up", out_of_memory)
    runpy.run_path(str(ROOT / "gunicorn.conf.py"))["post_worker_init"](types.SimpleNamespace(wsgi=app))
    assert [record.getMessage() for record in caplog.records if record.levelname == "WARNING"] == [
        "model tiny could not be made ready for batches (OOM when allocating tensor with shape[13,224,224,32]); "
        "the first explained answer, or answer to several pictures, will try again"]


def test_access_log_on_request(monkeypatch):
    monkeypatch.setattr(os, "environ", {})
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["accesslog"] is None
    monkeypatch.setattr(os, "environ", {"IMAGEAPP_ACCESS_LOG": "-"})
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["accesslog"] == "-"


def when_ready(monkeypatch, environ, address, url="https://example.ngrok.app") -> list[tuple[int, str]]:
    """The (port, host) gunicorn.conf.py's when_ready opens a tunnel to, listening on `address`;
    the tunnel opens at `url` (None: it fails)."""
    opened = []
    monkeypatch.setattr(tunnel, "open_tunnel", lambda port, host: opened.append((port, host)) or url)
    monkeypatch.setattr(os, "environ", environ)
    listener = types.SimpleNamespace(getsockname=lambda: address)
    runpy.run_path(str(ROOT / "gunicorn.conf.py"))["when_ready"](types.SimpleNamespace(LISTENERS=[listener]))
    return opened


@pytest.mark.parametrize("asked", [False, True])
def test_a_tunnel_when_asked_to_the_port_gunicorn_listens_on(monkeypatch, asked):
    environ = {"IMAGEAPP_NGROK": "1"} if asked else {}  # the values it takes: test_tunnel.py
    assert when_ready(monkeypatch, environ, ("127.0.0.1", 8123)) == ([(8123, "127.0.0.1")] if asked else [])
    # The tunnel's agent is a proxy: the workers believe its X-Forwarded-* headers, unless told.
    assert environ.get("IMAGEAPP_PROXY_HOPS") == ("1" if asked else None)
    environ = {"IMAGEAPP_NGROK": "1", "IMAGEAPP_PROXY_HOPS": "0"}
    when_ready(monkeypatch, environ, ("127.0.0.1", 8123))
    assert environ["IMAGEAPP_PROXY_HOPS"] == "0"
    environ = {"IMAGEAPP_NGROK": "1"}  # no tunnel opened (no token, say): no proxy to believe
    when_ready(monkeypatch, environ, ("127.0.0.1", 8123), url=None)
    assert "IMAGEAPP_PROXY_HOPS" not in environ


def test_no_tunnel_to_a_unix_socket(monkeypatch, capsys):
    # Its address is a path, not (host, port): its second character is no port.
    assert when_ready(monkeypatch, {"IMAGEAPP_NGROK": "1", "IMAGEAPP_BIND": "unix:/tmp/app.sock"}, "/tmp/app.sock") == []
    assert capsys.readouterr().out == \
        "ngrok: no tunnel, as ngrok needs a TCP port; still serving on the unix socket /tmp/app.sock.\n"


@pytest.mark.parametrize("environ, message", [
    ({"IMAGEAPP_WORKERS": "abc"}, "IMAGEAPP_WORKERS='abc' is not a whole number above 0"),
    ({"IMAGEAPP_THREADS": "0"}, "IMAGEAPP_THREADS='0' is not a whole number above 0"),
    ({"IMAGEAPP_CLIENT_SECONDS": "1.5"}, "IMAGEAPP_CLIENT_SECONDS='1.5' is not a whole number above 0"),
    ({"IMAGEAPP_MAX_CONTENT_LENGTH": "10MB"}, "IMAGEAPP_MAX_CONTENT_LENGTH='10MB' is not a number of bytes above 0"),
    ({"IMAGEAPP_BIND": "127.0.0.1:99999"}, r"IMAGEAPP_BIND='127.0.0.1:99999' is not HOST:PORT \(a port up to 65535\)"),
    ({"IMAGEAPP_BIND": "127.0.0.1:65536"}, "IMAGEAPP_BIND='127.0.0.1:65536' is not HOST:PORT"),
    ({"IMAGEAPP_BIND": "nonsense"}, "IMAGEAPP_BIND='nonsense' is not HOST:PORT"),
    ({"IMAGEAPP_BIND": "nonsense.invalid:8000"}, "IMAGEAPP_BIND='nonsense.invalid:8000': no such host as 'nonsense.invalid'"),
    ({"IMAGEAPP_NGROK": "maybe"}, "IMAGEAPP_NGROK='maybe' is not 1 or 0"),  # before binding, not once bound
    ({"IMAGEAPP_MODEL_DOWNLOADS": "maybe"}, "IMAGEAPP_MODEL_DOWNLOADS='maybe' is not 1 or 0"),
    ({"IMAGEAPP_API_ORIGINS": "https://me.github.io/"}, "IMAGEAPP_API_ORIGINS='https://me.github.io/' is not \\* or origins"),
])
def test_a_bad_setting_stops_the_master_with_its_message(monkeypatch, environ, message):
    monkeypatch.setattr(os, "environ", environ)
    with pytest.raises(SystemExit, match=message):
        runpy.run_path(str(ROOT / "gunicorn.conf.py"))


@pytest.mark.parametrize("cores, workers", [(1, 1), (2, 2), (16, 4)])
def test_empty_settings_mean_the_defaults(monkeypatch, cores, workers):
    environ = {"IMAGEAPP_WORKERS": "", "IMAGEAPP_THREADS": " ", "IMAGEAPP_BIND": "", "IMAGEAPP_ACCESS_LOG": "",
               "IMAGEAPP_SECRET_KEY": " ", "IMAGEAPP_CLIENT_SECONDS": ""}
    monkeypatch.setattr(os, "environ", environ)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    # One worker per core, at most 4: each holds its own TensorFlow.
    assert config["workers"] == workers and config["threads"] == 4 and config["bind"] == "127.0.0.1:8000"
    assert config["accesslog"] is None and environ["IMAGEAPP_CLIENT_SECONDS"] == "60"
    assert len(environ["IMAGEAPP_SECRET_KEY"]) == 64  # a blank key is none: one key for all workers


def test_addresses_gunicorn_takes(monkeypatch):
    for bind in ("0.0.0.0:8000", "localhost:80", "[::1]:8000", "unix:/tmp/imageapp.sock"):
        monkeypatch.setattr(os, "environ", {"IMAGEAPP_BIND": bind})
        assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == bind


def test_a_busy_port_stops_the_master_at_once_naming_the_setting(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as other_program:
        bind = "127.0.0.1:%d" % other_program.getsockname()[1]
        started = subprocess.run(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env={**os.environ, "IMAGEAPP_BIND": bind}, capture_output=True, text=True, timeout=60,
        )
    assert started.returncode == 1
    # Gunicorn's own lines would be "Connection in use" five times, a second apart.
    assert started.stderr.splitlines()[-1] == (
        f"gunicorn.conf.py: cannot listen on {bind} (another program is listening there: stop it); "
        "set IMAGEAPP_BIND to another address, as in IMAGEAPP_BIND=127.0.0.1:8001 make serve")
    assert "Connection in use" not in started.stderr


@pytest.mark.parametrize("inherited", ["GUNICORN_FD", "LISTEN_FDS"])
def test_a_master_given_its_sockets_does_not_try_their_addresses(monkeypatch, inherited):
    # After a USR2 the new master takes over the old one's sockets, and under systemd's socket
    # activation gunicorn is given them: their address is in use.
    monkeypatch.setattr(os, "environ", {inherited: "5"})
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    with socket.create_server(("127.0.0.1", 0)) as listening:
        config["on_starting"](types.SimpleNamespace(cfg=types.SimpleNamespace(address=[listening.getsockname()])))


def test_a_unix_socket_is_left_to_gunicorn(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "environ", {"IMAGEAPP_BIND": f"unix:{tmp_path / 'app.sock'}"})
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    config["on_starting"](types.SimpleNamespace(cfg=types.SimpleNamespace(address=[str(tmp_path / "app.sock")])))


@pytest.fixture(scope="module")
def server(built_models, tmp_path_factory):
    models = copy_models(built_models, tmp_path_factory.mktemp("gunicorn") / "models")
    with gunicorn(models, tmp_path_factory.mktemp("gunicorn-log"), IMAGEAPP_MAX_CONTENT_LENGTH=str(LIMIT),
                  IMAGEAPP_WORKERS="2", IMAGEAPP_ACCESS_LOG="-") as serving:
        yield serving


def test_health_and_workers(server):
    status, _, body = request(server["url"] + "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "models": 2}
    workers = psutil.Process(server["process"].pid).children()
    assert len(workers) == 2
    # Each worker imported TensorFlow itself, after the fork; the master never did.
    assert "tensorflow" not in " ".join(m.path for m in psutil.Process(server["process"].pid).memory_maps())


@pytest.mark.parametrize("fmt, size", [("JPEG", (40, 30)), ("PNG", (40, 30)), ("JPEG", (1200, 900))])  # 617 kB
def test_api_predict(server, fmt, size):
    image = encode_image(fmt, size=size, quality=95) if fmt == "JPEG" else encode_image(fmt, size=size)
    status, headers, body = request(server["url"] + "/api/predict", {"image": (f"photo.{fmt.lower()}", image)})
    result = json.loads(body)
    assert status == 200, result
    assert result["model"] == "tiny" and len(result["predictions"]) == 3
    for name, value in security.HEADERS.items():
        assert headers[name] == value


def test_concurrent_requests_all_succeed(server):
    image = encode_image("JPEG")
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: request(server["url"] + "/api/predict", {"image": ("a.jpg", image)})[0],
                                 range(64)))
    assert statuses == [200] * 64


def test_every_model_answers_concurrent_comparisons(server):
    # Threads of both workers asking every model at once, each loading the ones it has not yet.
    image = encode_image("JPEG")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: request(server["url"] + "/api/predict",
                                                  {"image": ("a.jpg", image), "compare": "1"}), range(16)))
    for status, _, body in answers:
        assert status == 200, body
        assert [answer["model"] for answer in json.loads(body)["answers"]] == ["small", "tiny"]
        assert all(len(answer["predictions"]) == {"small": 4, "tiny": 3}[answer["model"]]
                   for answer in json.loads(body)["answers"])


def test_html_form_with_csrf_across_workers(server):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    for _ in range(6):  # enough round trips to land on both workers
        status, _, page = request(server["url"] + "/", opener=opener)
        token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1).decode()
        status, _, page = request(server["url"] + "/predict", {
            "csrf_token": token, "model": "small", "image": ("cat.png", encode_image("PNG"))}, opener=opener)
        assert status == 200, page[-500:]
        assert b"data:image/jpeg;base64," in page and b'href="/models/small"' in page


def send_as_is(url: str, method: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """(status, body) of a request sent with exactly these headers and body bytes, which
    urllib would otherwise set or check itself."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, parts.path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_announcing_too_much(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    """POST that declares the whole `body` but sends only its first kilobyte, then reads the
    answer. The server refuses an over-limit body unread and closes the connection; a client
    still busy sending the full body would race that close (a broken pipe, not an answer)."""
    return send_as_is(url, "POST", {"Content-Type": content_type, "Content-Length": str(len(body))}, body[:1024])


MALFORMED_CHUNKS = b"zz\r\nabc\r\n0\r\n\r\n"  # the first chunk's size is no number


def post_chunks(url: str, chunks: bytes, codings: str = "chunked",
                content_type: str = "multipart/form-data; boundary=X") -> tuple[int, bytes]:
    """POST `chunks`, a body already in chunked framing, in Transfer-Encoding `codings`."""
    return send_as_is(url, "POST", {"Content-Type": content_type, "Transfer-Encoding": codings}, chunks)


def post_chunks_ending_early(url: str) -> tuple[int, bytes]:
    """POST a chunked body that declares a chunk of 1,000 bytes, sends 10 and stops sending."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           "Content-Type: multipart/form-data; boundary=X\r\n\r\n3e8\r\n--X\r\nabcde".encode())
        connection.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, response.read()


def test_errors_over_http(server):
    body, content_type = multipart({"image": ("big.jpg", b"\xff\xd8\xff" + bytes(LIMIT))})
    status, body = post_announcing_too_much(server["url"] + "/api/predict", body, content_type)
    assert status == 413 and json.loads(body)["error"].startswith("The request is too large")
    status, headers, body = request(server["url"] + "/api/nothing")
    assert status == 404 and headers["Content-Type"] == "application/json"
    status, _, body = request(server["url"] + "/api/predict", {"image": ("x.jpg", b"<html>")})
    assert status == 415
    status, body = post_chunks(server["url"] + "/api/predict", MALFORMED_CHUNKS)
    assert status == 400 and json.loads(body) == {
        "error": "The request's body is malformed (InvalidChunkSize): check how the client sends it."}
    status, body = post_chunks(server["url"] + "/predict", MALFORMED_CHUNKS)
    assert status == 400 and b"The request&#39;s body is malformed (InvalidChunkSize)" in body
    # gunicorn takes gzip before chunked, undoes only chunked, and passes the header on.
    body, content_type = multipart({"image": ("x.png", encode_image())})
    chunk = gzip.compress(body)
    status, body = post_chunks(server["url"] + "/api/predict", b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk),
                               "gzip, chunked", content_type)
    assert status == 415 and json.loads(body) == {
        "error": "A body in Transfer-Encoding gzip, chunked cannot be read: send it uncompressed."}
    status, body = post_chunks_ending_early(server["url"] + "/api/predict")
    assert status == 400 and json.loads(body) == {"error": CHUNKS_ENDED}
    status, body = post_chunks_ending_early(server["url"] + "/predict")  # the form again, saying so
    assert status == 400 and CHUNKS_ENDED.replace("'", "&#39;").encode() in body and b'type="file"' in body
    status, _, body = request(server["url"] + "/nothing")
    assert status == 404 and b"<!doctype html>" in body
    assert request(server["url"] + "/models")[0] == 200


def test_a_path_prefix_set_by_the_proxy(server):
    status, body = send_as_is(server["url"] + "/classifier/", "GET", {"SCRIPT_NAME": "/classifier"})
    assert status == 200 and b'action="/classifier/predict"' in body
    # A path outside the prefix is not the app's: gunicorn's own answer was a 500.
    status, body = send_as_is(server["url"] + "/healthz", "GET", {"SCRIPT_NAME": "/classifier"})
    assert status == 404 and b"does not start with SCRIPT_NAME &#x27;/classifier&#x27;" in body
    assert '"GET /healthz HTTP/1.1" 404 ' in Path(server["log"]).read_text()  # logged as it was answered


def test_only_x_forwarded_proto_names_the_scheme(server):
    # nginx as docs/web-app.md sets it replaces X-Forwarded-Proto but passes on what else a client
    # sent: gunicorn, believing three such headers, answered their contradiction with a 400.
    address = server["url"].split("//")[1].encode()
    for sent in ({"X-Forwarded-Ssl": "on"}, {"X-Forwarded-Protocol": "ssl"}):
        status, body = send_as_is(server["url"] + "/api", "GET", {"X-Forwarded-Proto": "http", **sent})
        assert status == 200, body[:300]
        assert b"http://" + address + b"/api/predict" in body
    status, body = send_as_is(server["url"] + "/api", "GET", {"X-Forwarded-Proto": "https"})
    assert status == 200 and b"https://" + address + b"/api/predict" in body


def test_a_model_downloads_whole_and_alike_from_every_worker(server):
    # gunicorn sends the open file itself (sendfile); enough requests to reach both workers.
    answers = [request(server["url"] + "/models/small/model.h5") for _ in range(6)]
    assert all(status == 200 and body == (server["models"] / "small.h5").read_bytes() for status, _, body in answers)
    assert all(headers["Content-Length"] == str(len(body)) for _, headers, body in answers)
    assert len({headers["ETag"] for _, headers, _ in answers}) == 1


def publish(models, source: str, name: str) -> None:
    """Put a copy of model `source` in place as `name`, as the trainer does: a dotfile, renamed."""
    for suffix in (".h5", ".json"):
        shutil.copy2(models / f"{source}{suffix}", models / f".tmp{suffix}")
        os.replace(models / f".tmp{suffix}", models / f"{name}{suffix}")


def test_models_added_replaced_and_removed_while_serving(server):
    # On a model of its own, "spare": the module's other tests keep theirs, in any order.
    models, url = server["models"], server["url"] + "/api/predict"
    image = ("a.png", encode_image("PNG"))
    publish(models, "tiny", "spare")
    status, _, body = request(url, {"image": image, "model": "spare"})
    assert status == 200 and len(json.loads(body)["predictions"]) == 3
    publish(models, "small", "spare")  # replaced: every worker answers with the new one
    for _ in range(4):
        status, _, body = request(url, {"image": image, "model": "spare"})
        assert status == 200 and len(json.loads(body)["predictions"]) == 4
    # Damaged: unavailable with a reason, the other models keep answering.
    (models / "spare.h5").write_bytes(b"broken")
    status, _, body = request(url, {"image": image, "model": "spare"})
    assert status == 503 and "not an HDF5 model file" in json.loads(body)["error"]
    assert b"not an HDF5 model file" in request(server["url"] + "/models")[2]
    # Removed: gone from the list, unknown to the API.
    (models / "spare.h5").unlink()
    (models / "spare.json").unlink()
    status, _, body = request(url, {"image": image, "model": "spare"})
    assert status == 404
    status, _, body = request(url, {"image": image, "model": "small"})
    assert status == 200
    assert json.loads(request(server["url"] + "/healthz")[2])["models"] == 2
    assert server["process"].poll() is None
    log = open(server["log"]).read()
    assert "Traceback" not in log and "oneDNN" not in log  # nor TensorFlow's start-up lines
    # The app writes to gunicorn's log in its format: the time, the worker's pid, the level.
    assert re.search(r"^\[[^]]+\] \[\d+\] \[WARNING\] model spare ", log, re.M), log[-2000:]


def test_a_gunicorn_run_by_a_python_without_the_projects_packages_says_which_python_to_use():
    # A gunicorn on PATH that is not the project's: its master reads the app through gunicorn.conf.py.
    code = ("import sys; sys.modules['flask_wtf'] = None; sys.argv = ['gunicorn', '-c', 'gunicorn.conf.py', "
            "'wsgi:app']; from gunicorn.app.wsgiapp import run; run()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1 and result.stderr.splitlines()[-1] == (
        f"error: flask-wtf is not installed for {sys.executable}: use .venv/bin/python, the project's Python "
        "(make test or make serve installs it), or install requirements.txt into this one")
