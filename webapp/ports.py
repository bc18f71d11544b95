"""Whether a server can listen on an address, asked before it tries: Werkzeug's and gunicorn's
own errors name no setting to change, and gunicorn retries a busy port for 5 s first."""

from __future__ import annotations

import errno
import socket

# Why an address cannot be listened on, in words, by errno.
BIND_ERRORS = {
    errno.EADDRINUSE: "another program is listening there: stop it",
    errno.EADDRNOTAVAIL: "that address is not one of this machine's",
}


def cannot_listen(host: str, port: int) -> str | None:
    """Why a server cannot listen on host:port now, in words; None where it can."""
    # As gunicorn and Werkzeug choose: IPv6 for a host with a colon, else IPv4, so a name such as
    # localhost is tried at its first IPv4 address, as they bind it, even where ::1 comes first.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        address = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0][4]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as both servers' own sockets
            probe.bind(address)
    except OSError as error:  # socket.gaierror too: no such host
        if error.errno == errno.EACCES and port < 1024:
            return "ports below 1024 need root"
        return BIND_ERRORS.get(error.errno, error.strerror)
    return None
