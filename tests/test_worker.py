"""webapp/worker.py through a real gunicorn: a client that stops sending gives its thread
back after IMAGEAPP_CLIENT_SECONDS, and an answer slower than that is still sent."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from conftest import copy_models, gunicorn
from webapp.config import ROOT


def stalled(url: str, start: bytes) -> socket.socket:
    """A connection that sent the `start` of a request and then nothing more."""
    connection = socket.create_connection(("127.0.0.1", urllib.parse.urlsplit(url).port), timeout=30)
    connection.sendall(start)
    return connection


@contextlib.contextmanager
def serving(tmp_path: Path, app_source: str, client_seconds: str):
    """The address of gunicorn with this worker, one thread, serving the WSGI `app` of `app_source`."""
    (tmp_path / "one_app.py").write_text(app_source)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--worker-class", "webapp.worker.Worker", "--threads", "1",
         "--bind", "127.0.0.1:0", "--no-control-socket", "one_app:app"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), "IMAGEAPP_CLIENT_SECONDS": client_seconds},
        stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if listening := re.search(r"Listening at: (http://\S+)", line):
                break
        else:
            raise AssertionError(f"gunicorn exited with {process.wait()} before listening")
        yield listening.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_client_that_stops_sending_frees_its_thread(built_models, tmp_path):
    # One thread in all: while a stalled client held it for good, nothing else was answered.
    models = copy_models(built_models, tmp_path / "models")
    with gunicorn(models, tmp_path, IMAGEAPP_WORKERS="1", IMAGEAPP_THREADS="1",
                  IMAGEAPP_CLIENT_SECONDS="2") as server:
        unfinished_headers = stalled(server["url"], b"GET / HTTP/1.1\r\nHost: x\r\n")
        unfinished_body = stalled(server["url"], b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n"
                                                 b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")
        with urllib.request.urlopen(server["url"] + "/healthz", timeout=30) as response:
            assert json.loads(response.read())["status"] == "ok"
        assert unfinished_headers.recv(1000) == b""  # closed unanswered, as gunicorn does a client gone
        answer = unfinished_body.makefile("rb").read()  # the app's answer to a body cut short
        assert answer.startswith(b"HTTP/1.1 400 ") and b"or the body cut short?" in answer
        unfinished_headers.close()
        unfinished_body.close()
        assert "Traceback" not in Path(server["log"]).read_text()


SLOW_APP = """
import time

def app(environ, start_response):
    body = environ["wsgi.input"].read()
    time.sleep(3)
    answer = b"%d bytes, then 3 s of work" % len(body)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]
"""


def test_an_answer_slower_than_the_limit_is_still_sent(tmp_path):
    # Only reading is shut at the limit: the answer the app then computes goes out whole.
    with serving(tmp_path, SLOW_APP, client_seconds="1") as url:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"hello"), timeout=30) as response:
            assert response.read() == b"5 bytes, then 3 s of work"


REFUSING_APP = """
STATUSES = {"/413": "413 Request Entity Too Large", "/404": "404 Not Found", "/405": "405 Method Not Allowed"}


def app(environ, start_response):
    # As Werkzeug answers a body over MAX_CONTENT_LENGTH, or Flask a POST to no route: at once, without reading it.
    start_response(STATUSES[environ["PATH_INFO"]], [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"no"]
"""


def test_a_body_refused_unread_closes_the_connection_as_announced(tmp_path):
    # gunicorn drains 64 kB of a body left unread, then closed the connection after saying
    # "Connection: keep-alive": a client's next request on it then failed unanswered.
    with serving(tmp_path, REFUSING_APP, client_seconds="60") as url:
        for code in (b"413", b"404", b"405"):
            body = b"x" * 1_000_000
            connection = stalled(url, b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (code, len(body)))
            try:
                connection.sendall(body)
            except OSError:  # closed as soon as answered: the answer is still there to read
                pass
            head = connection.makefile("rb").read().split(b"\r\n\r\n")[0].lower()
            connection.close()
            assert head.startswith(b"http/1.1 %s " % code) and b"connection: close" in head, code
        # Without a body nothing is left unread: the connection is kept.
        connection = stalled(url, b"GET /404 HTTP/1.1\r\nHost: x\r\n\r\n")
        head = connection.recv(1000).split(b"\r\n\r\n")[0].lower()
        connection.close()
        assert head.startswith(b"http/1.1 404 ") and b"connection: keep-alive" in head
