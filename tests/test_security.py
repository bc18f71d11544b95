"""Security headers on every response, no debugger, no tracebacks or paths in errors."""

import io

import pytest

from webapp import security

URLS = [("GET", "/"), ("GET", "/models"), ("GET", "/models/tiny"), ("GET", "/static/style.css"),
        ("GET", "/static/app.js"), ("GET", "/api/models"), ("GET", "/healthz"), ("GET", "/nowhere"),
        ("GET", "/api/nowhere"), ("GET", "/predict"), ("POST", "/predict"), ("POST", "/api/predict")]


@pytest.mark.parametrize(("method", "url"), URLS)
def test_security_headers_on_every_response(client, method, url):
    response = client.open(url, method=method)
    for name, value in security.HEADERS.items():
        assert response.headers[name] == value
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "img-src 'self' data:" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_production_app_never_debugs(monkeypatch, models_dir):
    from webapp import create_app

    monkeypatch.setenv("IMAGEAPP_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("FLASK_DEBUG", "1")  # ignored: the factory does not read Flask's variables
    app = create_app()
    assert app.debug is False and app.testing is False


def test_unexpected_error_is_a_plain_500(app, monkeypatch, make_image):
    from webapp import predictor

    def explode(*args, **kwargs):
        raise RuntimeError(f"secret detail in {app.root_path}")

    monkeypatch.setattr(predictor, "load_rgb", explode)
    app.testing = False  # as in production: errors are answered, not raised into the test
    client = app.test_client()
    response = client.post("/api/predict", data={"image": (io.BytesIO(make_image()), "a.png")})
    assert response.status_code == 500
    assert response.get_json() == {"error": "Something went wrong on our side. The error has been logged."}

    app.config["WTF_CSRF_ENABLED"] = False
    response = client.post("/predict", data={"image": (io.BytesIO(make_image()), "a.png"), "model": "tiny"})
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in page
    assert "secret detail" not in page and "Traceback" not in page and app.root_path not in page


def test_session_cookie_is_http_only_and_same_site(client):
    cookie = client.get("/").headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
