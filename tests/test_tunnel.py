"""The ngrok tunnel, with pyngrok replaced: nothing outside this machine is reachable."""

import types

import pytest
from pyngrok import ngrok
from pyngrok.exception import PyngrokNgrokInstallError

from webapp import tunnel


def test_requested_by_flag_or_environment():
    assert tunnel.requested(True, {})
    assert tunnel.requested(False, {"IMAGEAPP_NGROK": "1"})
    assert tunnel.requested(False, {"IMAGEAPP_NGROK": "True"})
    assert not tunnel.requested(False, {"IMAGEAPP_NGROK": "0"})
    assert not tunnel.requested(False, {})


@pytest.mark.parametrize("value", ["2", "maybe", "ture"])
def test_a_value_that_is_neither_yes_nor_no_stops_with_one_sentence(value):
    with pytest.raises(SystemExit, match=f"IMAGEAPP_NGROK='{value}' is not 1 or 0"):
        tunnel.requested(False, {"IMAGEAPP_NGROK": value})


@pytest.mark.parametrize("environ", [{}, {"NGROK_AUTHTOKEN": "  "}])
def test_without_token_says_so_in_one_line(capsys, monkeypatch, environ):
    monkeypatch.setattr(ngrok, "connect", lambda *a, **k: pytest.fail("must not connect"))
    assert tunnel.open_tunnel(8000, environ=environ) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "NGROK_AUTHTOKEN is not set" in out and "8000" in out


def test_connects_with_token_and_basic_auth(capsys, monkeypatch):
    calls = []

    def connect(addr, proto, pyngrok_config=None, **options):
        calls.append((addr, proto, pyngrok_config.auth_token, options))
        return types.SimpleNamespace(public_url="https://example.ngrok.app")

    monkeypatch.setattr(ngrok, "connect", connect)
    environ = {"NGROK_AUTHTOKEN": "tok", "IMAGEAPP_NGROK_BASIC_AUTH": "me:longpassword"}
    assert tunnel.open_tunnel(8123, environ=environ) == "https://example.ngrok.app"
    assert calls == [("8123", "http", "tok", {"basic_auth": ["me:longpassword"]})]
    assert "public URL https://example.ngrok.app -> local port 8123" in capsys.readouterr().out
    tunnel.open_tunnel(8123, environ={"NGROK_AUTHTOKEN": "tok"})
    assert calls[1] == ("8123", "http", "tok", {})  # no basic_auth option, not an empty one


@pytest.mark.parametrize("host, target", [("", "8000"), ("0.0.0.0", "8000"), ("::", "8000"), ("localhost", "8000"),
                                          ("127.0.0.2", "127.0.0.2:8000"), ("::1", "[::1]:8000")])
def test_the_tunnel_reaches_the_address_the_server_listens_on(monkeypatch, host, target):
    # Given the port alone, ngrok dials localhost, where a server on 127.0.0.2 does not answer.
    calls = []
    monkeypatch.setattr(ngrok, "connect", lambda addr, *args, **kwargs: calls.append(addr) or
                        types.SimpleNamespace(public_url="https://example.ngrok.app"))
    tunnel.open_tunnel(8000, host, environ={"NGROK_AUTHTOKEN": "tok"})
    assert calls == [target]


def test_failure_is_one_line_and_not_raised(capsys, monkeypatch):
    def connect(*args, **kwargs):
        print("Downloading ngrok ...", end="\r")  # pyngrok's own progress output
        raise PyngrokNgrokInstallError("An error occurred while downloading ngrok\nlong details\nmore")

    monkeypatch.setattr(ngrok, "connect", connect)
    assert tunnel.open_tunnel(8000, environ={"NGROK_AUTHTOKEN": "tok"}) is None
    out = capsys.readouterr().out
    assert out == "ngrok: no tunnel (An error occurred while downloading ngrok); still serving on local port 8000.\n"


@pytest.mark.parametrize("host, written", [("127.0.0.1", "127.0.0.1:8000"), ("::1", "[::1]:8000"),
                                           ("[::1]", "[::1]:8000"), ("localhost", "localhost:8000")])
def test_an_address_is_written_as_urls_write_it(host, written):
    assert tunnel.host_and_port(host, 8000) == written
