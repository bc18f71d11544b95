"""An optional public URL for the local server, through an ngrok tunnel (pyngrok).

Asked for with `python -m webapp --ngrok` or IMAGEAPP_NGROK=1 (also under gunicorn).
The auth token comes from NGROK_AUTHTOKEN; IMAGEAPP_NGROK_BASIC_AUTH="user:password"
puts basic auth in front of the tunnel. When ngrok cannot start (no token, no network,
no ngrok binary) one line says so and the server keeps serving locally.
"""

from __future__ import annotations

import contextlib
import io
import os

from trainer.formatting import reason

from .config import YES_OR_NO, yes_or_no


def requested(flag: bool = False, environ=os.environ) -> bool:
    value = environ.get("IMAGEAPP_NGROK", "").strip()
    try:
        wanted = bool(value) and yes_or_no(value)  # empty: no tunnel
    except ValueError:
        raise SystemExit(f"IMAGEAPP_NGROK={value!r} is not {YES_OR_NO}") from None
    return flag or wanted


def is_the_proxy(environ=os.environ) -> bool:
    """Whether an open tunnel's agent counts as the one proxy in front, whose X-Forwarded-For
    and -Proto are believed: unless IMAGEAPP_PROXY_HOPS says otherwise (a 0 that is set stays)."""
    return not environ.get("IMAGEAPP_PROXY_HOPS", "").strip()


def _say(line: str) -> None:
    print(line, flush=True)


# Addresses that ngrok's agent reaches as localhost: every interface's, and localhost itself.
EVERY_INTERFACE = ("", "0.0.0.0", "::", "localhost")


def host_and_port(host: str, port: int) -> str:
    """"127.0.0.1:8000", or "[::1]:8000" for an IPv6 host (given bracketed or not), as URLs, ngrok
    and IMAGEAPP_BIND write it."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def open_tunnel(port: int, host: str = "", environ=os.environ) -> str | None:
    """Open an HTTP tunnel to the server listening on `host`:`port`; return its public URL,
    or None."""
    target = str(port) if host in EVERY_INTERFACE else host_and_port(host, port)
    token = environ.get("NGROK_AUTHTOKEN", "").strip()
    if not token:
        _say(f"ngrok: no tunnel, NGROK_AUTHTOKEN is not set; still serving on local port {port}.")
        return None
    options = {}
    basic_auth = environ.get("IMAGEAPP_NGROK_BASIC_AUTH", "").strip()
    if basic_auth:
        options["basic_auth"] = [basic_auth]
    try:
        from pyngrok import conf, ngrok

        # pyngrok prints download progress on first use; the outcome gets one line below.
        with contextlib.redirect_stdout(io.StringIO()):
            tunnel = ngrok.connect(target, "http", pyngrok_config=conf.PyngrokConfig(auth_token=token), **options)
    except Exception as error:  # the tunnel is optional: whatever ngrok does, keep serving
        _say(f"ngrok: no tunnel ({reason(error)}); still serving on local port {port}.")
        return None
    _say(f"ngrok: public URL {tunnel.public_url} -> local port {port}")
    return tunnel.public_url
