"""gunicorn's gthread worker, with a limit on how long a client may take to send its request.

gthread reads each request in one of a few threads (IMAGEAPP_THREADS per worker) for as long
as its client takes to send it. A phone that loses its signal in the middle of an upload
would keep its thread for good: eight connections that stopped sending left the default
server (2 workers of 4 threads) answering nothing for as long as they stayed open. Here a
thread stops waiting IMAGEAPP_CLIENT_SECONDS after it took the request: the connection's
reading side is shut, as if the client had stopped sending, so gunicorn drops headers left
unfinished and the app answers a body cut short with a 400. An answer being computed or sent
then is unaffected: only reading is shut.

This bounds how long each client holds a thread, not how many clients can: a server open to
the internet still belongs behind a proxy that buffers requests (docs/web-app.md, "Serving to the internet").

A path outside the app's SCRIPT_NAME prefix (a proxy's header, or the environment) is answered
404, not gunicorn's 500: nothing is wrong with the server, the address is just not the app's.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta

from gunicorn import util
from gunicorn.http.errors import ConfigurationProblem
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker

# Threads per worker unless IMAGEAPP_THREADS says otherwise (gunicorn.conf.py; bench/serve.py
# counts them to warm every one up).
THREADS = 4


class Worker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.client_seconds = int(os.environ["IMAGEAPP_CLIENT_SECONDS"])  # checked by gunicorn.conf.py
        self.deadlines = {}  # connection -> when its thread stops waiting for it
        self.deadlines_lock = threading.Lock()  # handle() runs in the pool's threads, the rest in the main loop

    def run(self):
        # Wrapped here, after post_worker_init has readied the Flask app itself (gunicorn.conf.py).
        app = self.wsgi

        def closing_after_errors(environ, start_response):
            # An error may be answered with the body unread (a 413; a 404 or 405 for a POST; the API's
            # 400 for a body not multipart), and gunicorn drains at most 64 kB of it before the next
            # request: past that it closed the connection after announcing keep-alive, and a
            # client's next request on it failed unanswered.
            sent_body = bool(environ.get("CONTENT_LENGTH", "").lstrip("0")) or "HTTP_TRANSFER_ENCODING" in environ

            def start(status, headers, exc_info=None):
                if sent_body and status[0] in "45":
                    start_response.__self__.force_close()  # gunicorn's Response: "Connection: close"
                return start_response(status, headers, exc_info)
            return app(environ, start)

        self.wsgi = closing_after_errors
        super().run()

    def handle(self, conn):
        # From when a thread takes the request, not from its accept: time queued for a busy
        # pool is the server's, not the client's.
        with self.deadlines_lock:
            self.deadlines[conn] = time.monotonic() + self.client_seconds
        return super().handle(conn)

    def finish_request(self, conn, fs):
        with self.deadlines_lock:
            self.deadlines.pop(conn, None)
        super().finish_request(conn, fs)

    def handle_error(self, req, client, addr, exc):
        # gunicorn raises ConfigurationProblem for one thing only: a path that does not start
        # with SCRIPT_NAME, which a client behind a proxy on 127.0.0.1 (ngrok's agent) may send.
        if not isinstance(exc, ConfigurationProblem):
            return super().handle_error(req, client, addr, exc)
        self.log.warning("Not found: %s", exc.info)
        message = f"{exc.info}, the prefix the app is served under."
        if req is not None:  # in the access log too, as gunicorn logs the errors it answers
            host, port = addr or ("", -1)  # a unix socket's
            environ = default_environ(req, client, self.cfg) | {"REMOTE_ADDR": host, "REMOTE_PORT": str(port)}
            response = Response(req, client, self.cfg)
            response.status, response.response_length = "404 Not Found", len(message)
            self.log.access(response, req, environ, timedelta(0))
        try:
            util.write_error(client, 404, "Not Found", message)
        except OSError:  # the client is gone
            pass

    def murder_keepalived(self, force=False):
        # The main loop calls this about once a second: the place to look at the clock.
        super().murder_keepalived(force)
        now = time.monotonic()
        with self.deadlines_lock:
            late = [conn for conn, deadline in self.deadlines.items() if deadline <= now]
            for conn in late:
                del self.deadlines[conn]
        # An HTTP/2 connection (off by default) holds its thread for all its requests, by design.
        late = [conn for conn in late if not conn.is_http2]
        for conn in late:
            try:
                # socket.socket's own shutdown: an SSL socket's would also end its TLS
                # session, and with it the answer still to be sent.
                socket.socket.shutdown(conn.sock, socket.SHUT_RD)
            except OSError:  # closed meanwhile
                pass
