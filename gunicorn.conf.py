"""Gunicorn settings for a small CPU machine (2 cores) serving Keras/TensorFlow models.

Run: gunicorn -c gunicorn.conf.py wsgi:app
Environment: IMAGEAPP_BIND (default 127.0.0.1:8000), IMAGEAPP_WORKERS (default: one per
core, at most 4), IMAGEAPP_THREADS (default webapp.worker.THREADS, 4), IMAGEAPP_CLIENT_SECONDS (default 60),
IMAGEAPP_ACCESS_LOG (e.g. "-"), plus the app's own IMAGEAPP_* settings.
"""

import os
import secrets
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # read before --chdir applies
from webapp import tunnel  # noqa: E402  (no TensorFlow: safe in the master)
from trainer.formatting import whole_number  # noqa: E402
from webapp.config import settings_from_environment  # noqa: E402
from webapp.ports import cannot_listen  # noqa: E402
from webapp.worker import THREADS  # noqa: E402


def _count(name: str, default: int) -> int:
    """A whole number above 0 from the environment; unset or empty means `default`."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return whole_number(text)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name}={text!r} is not a whole number above 0") from None


# The app's own settings, checked here: a bad one stops the server with its message, where in
# the workers it would fail each one that gunicorn starts again, without end.
settings_from_environment(os.environ)
_ngrok = tunnel.requested(environ=os.environ)  # the tunnel itself opens in when_ready, once bound


def _bind(text: str) -> str:
    """HOST:PORT or unix:PATH, checked here: gunicorn would print a traceback for a bad port
    and retry an unknown host five times."""
    if text.startswith("unix:"):
        return text
    host, _, port = text.rpartition(":")
    try:
        number = whole_number(port, 0, 65535)  # 0: any free port
    except ValueError:
        number = None
    if not host or number is None:
        raise SystemExit(f"gunicorn.conf.py: IMAGEAPP_BIND={text!r} is not HOST:PORT (a port up to 65535) or unix:PATH")
    try:
        socket.getaddrinfo(host.strip("[]"), number)
    except OSError:
        raise SystemExit(f"gunicorn.conf.py: IMAGEAPP_BIND={text!r}: no such host as {host!r}") from None
    return text


bind = _bind(os.environ.get("IMAGEAPP_BIND", "").strip() or "127.0.0.1:8000")

# One process per core does the CPU work; a few threads per process overlap the network
# and decoding with TensorFlow, which releases the GIL while it computes. At most 4 by
# default: each worker holds its own TensorFlow and models (about 0.7 GB RSS).
workers = _count("IMAGEAPP_WORKERS", min(os.cpu_count() or 1, 4))
worker_class = "webapp.worker.Worker"  # gthread, with a limit on slow clients
threads = _count("IMAGEAPP_THREADS", THREADS)
# How long a client may take to send its request, headers and body: a 10 MB upload in 60 s
# needs 1.4 Mbit/s. The workers read it from the environment.
os.environ["IMAGEAPP_CLIENT_SECONDS"] = str(_count("IMAGEAPP_CLIENT_SECONDS", 60))

# TensorFlow is not fork-safe: each worker imports it and loads its models after the fork.
preload_app = False

# A worker imports TensorFlow and loads the default model before its first request.
timeout = 120
graceful_timeout = 30
keepalive = 5
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # heartbeat file in memory: no stalls on a slow disk

# No gunicornc control socket: nothing uses it, and it would be one shared path in $HOME.
control_socket_disable = True

# The scheme from X-Forwarded-Proto alone, the one header the nginx set-up in docs/web-app.md
# replaces: gunicorn's default also believes X-Forwarded-Ssl and X-Forwarded-Protocol, which
# nginx passes on from the client, and answers 400 when they disagree.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

accesslog = os.environ.get("IMAGEAPP_ACCESS_LOG", "").strip() or None  # e.g. "-" for stdout; off by default
errorlog = "-"

# The workers already fill the cores: TensorFlow's own pools at one thread each avoid
# oversubscription (measured with bench/serve.py on 2 cores: p50 at concurrency 16 about
# 10-15% lower than with TF's default pools of one thread per core).
# Set here, in the master, so that every worker inherits them before importing TensorFlow.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # over keras.json's, as webapp.registry does

# Every worker must sign forms with the same key, or a form from one fails in another.
if not os.environ.get("IMAGEAPP_SECRET_KEY", "").strip():  # blank counts as unset, as in the app
    os.environ["IMAGEAPP_SECRET_KEY"] = secrets.token_hex(32)
    print("gunicorn.conf.py: IMAGEAPP_SECRET_KEY is not set; using a random key until restart (forms left open "
          "then expire, and servers behind one address need the same key).", file=sys.stderr)


def on_starting(server):
    """Try each address before gunicorn does: it would retry a busy port for 5 s and then stop
    without naming the setting to change. Not on a re-exec (USR2), which inherits its sockets."""
    if "GUNICORN_FD" in os.environ or "LISTEN_FDS" in os.environ:
        return
    for address in server.cfg.address:
        if not isinstance(address, tuple):  # a unix socket, which gunicorn replaces if stale, or fd://N
            continue
        host, port = address[:2]
        if why := cannot_listen(host, port):
            raise SystemExit(f"gunicorn.conf.py: cannot listen on {tunnel.host_and_port(host, port)} ({why}); "
                             "set IMAGEAPP_BIND to another address, as in IMAGEAPP_BIND=127.0.0.1:8001 make serve")


def post_worker_init(worker):
    # After the fork (TensorFlow is not fork-safe), before the first request.
    from webapp.registry import make_ready

    make_ready(worker.wsgi)


def when_ready(server):
    if not _ngrok:
        return
    address = server.LISTENERS[0].getsockname()
    if isinstance(address, tuple):  # (host, port, ...) for TCP; a unix socket's is its path
        opened = tunnel.open_tunnel(address[1], address[0])
        if opened and tunnel.is_the_proxy(os.environ):
            # The workers, forked after this, read it. Not before the tunnel is open: until then
            # no proxy is in front.
            os.environ["IMAGEAPP_PROXY_HOPS"] = "1"
    else:
        print(f"ngrok: no tunnel, as ngrok needs a TCP port; still serving on the unix socket {address}.", flush=True)
