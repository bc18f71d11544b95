"""`python -m webapp`: arguments, the optional tunnel, and a server that never debugs."""

from flask import Flask

from webapp import __main__ as main_module


def run_main(monkeypatch, argv, environ=None):
    calls = {}
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(Flask, "run", lambda self, **kwargs: calls.setdefault("run", kwargs))
    monkeypatch.setattr(main_module.tunnel, "open_tunnel", lambda port: calls.setdefault("tunnel", port))
    main_module.main(argv)
    return calls


def test_serves_locally_without_debugger(monkeypatch, models_dir):
    calls = run_main(monkeypatch, ["--port", "8765"], {"IMAGEAPP_MODELS_DIR": str(models_dir)})
    assert calls["run"] == {"host": "127.0.0.1", "port": 8765, "debug": False, "use_reloader": False, "threaded": True}
    assert "tunnel" not in calls


def test_ngrok_flag_or_environment_opens_tunnel(monkeypatch, models_dir):
    monkeypatch.delenv("IMAGEAPP_NGROK", raising=False)
    assert run_main(monkeypatch, ["--ngrok", "--host", "0.0.0.0"], {"IMAGEAPP_MODELS_DIR": str(models_dir)})["tunnel"] == 8000
    calls = run_main(monkeypatch, ["--port", "9001"], {"IMAGEAPP_NGROK": "1"})
    assert calls["tunnel"] == 9001 and calls["run"]["port"] == 9001


def test_no_token_keeps_serving(monkeypatch, capsys, models_dir):
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    monkeypatch.setenv("IMAGEAPP_MODELS_DIR", str(models_dir))
    ran = []
    monkeypatch.setattr(Flask, "run", lambda self, **kwargs: ran.append(kwargs))
    main_module.main(["--ngrok"])
    assert ran and "NGROK_AUTHTOKEN is not set" in capsys.readouterr().out
