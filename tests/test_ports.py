"""Whether a server can listen on an address, said in words before it tries (webapp/ports.py)."""

import errno
import socket

import pytest

from webapp.ports import cannot_listen


def test_a_free_address_can_be_listened_on():
    assert cannot_listen("127.0.0.1", 0) is None
    assert cannot_listen("localhost", 0) is None  # a name, resolved as the servers resolve it


def test_a_port_another_program_listens_on_is_said_so():
    with socket.create_server(("127.0.0.1", 0)) as other_program:
        assert cannot_listen("127.0.0.1", other_program.getsockname()[1]) == "another program is listening there: stop it"


def test_an_address_of_another_machine_is_said_so():
    assert cannot_listen("192.0.2.1", 8000) == "that address is not one of this machine's"  # TEST-NET-1


@pytest.mark.parametrize("port, why", [(80, "ports below 1024 need root"), (8000, "Permission denied")])
def test_a_port_refused_to_this_user_is_said_so(monkeypatch, port, why):
    # The tests may run as root, who may take any port: the refusal is the kernel's, as a user gets it.
    def refused(self, address):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refused)
    assert cannot_listen("127.0.0.1", port) == why


def test_a_host_that_does_not_resolve_is_said_in_the_resolvers_words():
    why = cannot_listen("no-such-host.invalid", 8000)
    assert why and "listening" not in why


def test_a_name_is_tried_at_the_address_the_servers_bind(monkeypatch):
    # Where /etc/hosts has "::1 localhost" too, localhost resolves to ::1 first; gunicorn and Werkzeug
    # bind a name with an IPv4 socket, at its first IPv4 address (an IPv6 one only for a host with ':').
    real = socket.getaddrinfo

    def both(host, port, family=0, type=0, *rest):
        if host != "localhost":
            return real(host, port, family, type, *rest)
        v4 = real("127.0.0.1", port, socket.AF_INET, socket.SOCK_STREAM)
        v6 = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0))]
        return {0: v6 + v4, socket.AF_INET: v4, socket.AF_INET6: v6}[family]

    with socket.create_server(("127.0.0.1", 0)) as other_program:
        monkeypatch.setattr(socket, "getaddrinfo", both)
        assert cannot_listen("localhost", other_program.getsockname()[1]) == "another program is listening there: stop it"
