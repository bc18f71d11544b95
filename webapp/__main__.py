"""`python -m webapp [--host H] [--port P] [--ngrok]`: one process, for trying the app out.

Production serving is `gunicorn -c gunicorn.conf.py wsgi:app`. This runs Werkzeug's
threaded server, never with the debugger or the reloader.
"""

from __future__ import annotations

import argparse
import os

from trainer.formatting import whole_number

from . import create_app, trust_proxies, tunnel
from .ports import cannot_listen
from .registry import make_ready


def _port(text: str) -> int:
    try:
        return whole_number(text, 1, 65535)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} (--port or IMAGEAPP_PORT) is not a port number (1-65535)") from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m webapp", description="Serve the web app in one process, "
                                     "for trying it out; gunicorn (make serve) is the production server.")
    parser.add_argument("--host", default=os.environ.get("IMAGEAPP_HOST", "").strip() or "127.0.0.1",
                        help="address to listen on (default IMAGEAPP_HOST or 127.0.0.1; 0.0.0.0 for every interface)")
    # A string default goes through `type` too, so IMAGEAPP_PORT is checked like --port.
    parser.add_argument("--port", type=_port, default=os.environ.get("IMAGEAPP_PORT", "").strip() or "8000",
                        help="port to listen on (default IMAGEAPP_PORT or 8000)")
    parser.add_argument("--ngrok", action="store_true",
                        help="also open an ngrok tunnel (or set IMAGEAPP_NGROK=1); token from NGROK_AUTHTOKEN")
    return parser.parse_args(argv)


def _refuse_a_busy_port(host: str, port: int) -> None:
    """Stop in one sentence where the address cannot be listened on: a tunnel would be opened
    first, to whatever holds the port."""
    if why := cannot_listen(host, port):
        raise SystemExit(f"python -m webapp: cannot listen on {tunnel.host_and_port(host, port)} ({why}): pass "
                         "--port or --host, or set IMAGEAPP_PORT or IMAGEAPP_HOST, to another")


def main(argv=None) -> None:
    args = parse_args(argv)
    _refuse_a_busy_port(args.host, args.port)
    app = create_app()
    make_ready(app)  # as each gunicorn worker does: the first answer does not wait for TensorFlow
    if tunnel.requested(args.ngrok):
        opened = tunnel.open_tunnel(args.port, args.host)
        if opened and tunnel.is_the_proxy():
            trust_proxies(app, 1)
    app.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)


if __name__ == "__main__":
    main()
