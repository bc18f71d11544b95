"""create_app: defaults, environment settings, the generated secret key, what the defaults allow.

In-memory uploads are checked for real, with every write watched, in test_hostile_input.py.
"""

import logging
import os
import time

import pytest
from flask import request

from conftest import make_config, post_form, scandir_refusing
from webapp import create_app
from webapp.config import DEFAULTS, ROOT
from webapp.registry import registry_of


def test_defaults(caplog):
    with caplog.at_level(logging.WARNING):
        app = create_app()
    assert app.config["MODELS_DIR"] == str(ROOT / "models")
    assert app.config["DEFAULT_MODEL"] == "cifar10_scratch"
    assert app.config["MAX_CONTENT_LENGTH"] == DEFAULTS["MAX_CONTENT_LENGTH"]
    assert app.config["MODEL_DOWNLOADS"] is True and "downloads" in app.blueprints
    assert len(app.config["SECRET_KEY"]) == 64
    assert "IMAGEAPP_SECRET_KEY is not set" in caplog.text
    assert app.template_folder == str(ROOT / "templates") and app.static_folder == str(ROOT / "static")


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IMAGEAPP_SECRET_KEY", "12345")  # stays a string, unlike a JSON parse
    monkeypatch.setenv("IMAGEAPP_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("IMAGEAPP_DEFAULT_MODEL", "mine")
    monkeypatch.setenv("IMAGEAPP_MAX_CONTENT_LENGTH", "2048")
    monkeypatch.setenv("IMAGEAPP_PROXY_HOPS", "2")
    monkeypatch.setenv("IMAGEAPP_MODEL_DOWNLOADS", "off")
    app = create_app()
    assert app.config["PROXY_HOPS"] == 2
    assert app.config["MODEL_DOWNLOADS"] is False and "downloads" not in app.blueprints
    assert app.config["SECRET_KEY"] == "12345"
    assert app.config["MODELS_DIR"] == str(tmp_path)
    assert app.config["DEFAULT_MODEL"] == "mine"
    assert app.config["MAX_CONTENT_LENGTH"] == 2048


# As a proxy passes a request on: the public Host, and the client's address and scheme. A
# forwarded host or prefix is never believed: ngrok sets neither, so a client could.
PROXIED = {"Host": "classifier.example", "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9",
           "X-Forwarded-Host": "evil.example", "X-Forwarded-Prefix": "//evil.example"}


@pytest.mark.parametrize("hops", [0, 1])
def test_the_proxies_headers_are_believed_only_when_told(models_dir, hops):
    # Behind ngrok or an HTTPS proxy, the API page's examples must give the public address; a
    # server reached directly must not take any client's word for it.
    app = create_app({"SECRET_KEY": "x", "MODELS_DIR": str(models_dir), "PROXY_HOPS": hops})
    seen = {}
    app.before_request(lambda: seen.update(client=request.remote_addr))
    page = app.test_client().get("/api", headers=PROXIED).get_data(as_text=True)
    if hops:
        assert "curl https://classifier.example/api/models" in page and seen["client"] == "203.0.113.9"
    else:
        assert "curl http://classifier.example/api/models" in page and seen["client"] == "127.0.0.1"
    assert "evil" not in page and 'href="/static/style.css?v=' in page


def test_behind_two_proxies_the_client_is_the_address_the_outer_one_saw(models_dir):
    app = create_app({"SECRET_KEY": "x", "MODELS_DIR": str(models_dir), "PROXY_HOPS": 2})
    seen = {}
    app.before_request(lambda: seen.update(client=request.remote_addr))
    app.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.1"})
    assert seen["client"] == "203.0.113.9"


def test_a_missing_models_folder_is_logged(tmp_path, caplog):
    create_app({"SECRET_KEY": "x", "MODELS_DIR": str(tmp_path / "nowhere")})
    assert f"The models folder {tmp_path / 'nowhere'} does not exist" in caplog.text


def test_a_models_folder_the_server_may_not_read_is_logged_once_not_as_empty(models_dir, monkeypatch, caplog):
    scandir, refused = os.scandir, scandir_refusing(models_dir)
    monkeypatch.setattr(os, "scandir", refused)
    with caplog.at_level(logging.WARNING):
        app = create_app(make_config(models_dir))
        for _ in range(2):
            app.test_client().get("/")
    unreadable = (f"The models folder {models_dir} cannot be read (Permission denied): no model is served until it "
                  "can be")
    assert [record.getMessage() for record in caplog.records] == [unreadable]  # not "the default is not in it" too
    monkeypatch.setattr(os, "scandir", scandir)
    assert registry_of(app).models() and registry_of(app).unreadable is None
    monkeypatch.setattr(os, "scandir", refused)
    registry_of(app).models()
    assert [record.getMessage() for record in caplog.records] == [unreadable] * 2  # again, once it is again


def test_test_config_ignores_environment(monkeypatch, models_dir):
    monkeypatch.setenv("IMAGEAPP_DEFAULT_MODEL", "from-env")
    app = create_app({"SECRET_KEY": "x", "MODELS_DIR": str(models_dir)})
    assert app.config["DEFAULT_MODEL"] == DEFAULTS["DEFAULT_MODEL"]


def test_a_default_model_that_cannot_be_used_is_logged_with_the_one_served(models_dir, tmp_path, caplog):
    # Requests fall back to the most accurate usable model; that must not go unsaid.
    create_app(make_config(models_dir, DEFAULT_MODEL="tiny"))
    assert "default model" not in caplog.text
    best = registry_of(create_app(make_config(models_dir, DEFAULT_MODEL="nosuch"))).default_name()
    assert "The default model nosuch cannot be used (nosuch.h5 is not in the models folder): " in caplog.text
    assert f"serving {best} instead; IMAGEAPP_DEFAULT_MODEL=NAME sets the default." in caplog.text

    (models_dir / "tiny.json").unlink()
    create_app(make_config(models_dir, DEFAULT_MODEL="tiny"))
    assert "The default model tiny cannot be used (no metrics card (tiny.json)): serving small instead;" in caplog.text

    (tmp_path / "empty").mkdir()
    create_app(make_config(tmp_path / "empty", DEFAULT_MODEL="tiny"))
    assert "(tiny.h5 is not in the models folder): no model is usable;" in caplog.text


def test_production_app_never_debugs(monkeypatch, models_dir):
    monkeypatch.setenv("IMAGEAPP_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("FLASK_DEBUG", "1")  # Flask reads it into DEBUG; the factory turns that off again
    app = create_app()
    assert app.debug is False and app.testing is False


def test_session_cookie_is_http_only_and_same_site(client):
    cookie = client.get("/").headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_photo_of_several_megabytes_is_classified(client, csrf_token, make_image):
    photo = make_image("JPEG", size=(2000, 1500), quality=95)  # 1.7 MB; Werkzeug once refused these
    response = post_form(client, csrf_token, photo, "photo.jpg")
    assert response.status_code == 200 and 'class="verdict"' in response.get_data(as_text=True)


def test_a_form_left_open_for_weeks_still_works(client, csrf_token, make_image, monkeypatch):
    # A tab left open over a holiday: within the signed session's 31 days (Flask's default lifetime).
    weeks_later = time.time() + 30 * 24 * 3600
    monkeypatch.setattr(time, "time", lambda: weeks_later)  # what the token's timestamp is checked against
    response = post_form(client, csrf_token, make_image())
    assert response.status_code == 200 and 'class="verdict"' in response.get_data(as_text=True)


@pytest.mark.parametrize("url, method", [("/api/predict", "POST"), ("/api/models", "GET"), ("/api/models/nope", "GET"),
                                         ("/healthz", "GET"), ("/", "GET"), ("/predict", "POST"), ("/models", "GET"),
                                         ("/static/app.js", "GET")])
def test_options_says_the_methods_with_no_content_never_html(client, url, method):
    response = client.options(url)
    assert response.status_code == 204 and response.data == b"" and "Content-Type" not in response.headers
    assert method in response.headers["Allow"]
