"""Error answers: a styled page, JSON under /api, never a traceback or a path."""

import io

import pytest
from werkzeug.exceptions import RequestEntityTooLarge

from conftest import make_config, post_api
from webapp import create_app, errors


def test_unknown_page_is_a_styled_404(client):
    response = client.get("/no/such/page")
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert '<h1>Page not found <small class="status-code">Error 404</small></h1>' in page and "style.css" in page
    assert "<title>Page not found" in page and "Not Found" not in page  # not Werkzeug's wording
    assert 'href="/">Back to the upload form</a>' in page


def test_errors_under_api_are_json_but_not_on_the_api_page_itself(client):
    for url in ("/api/", "/api/nope"):
        assert client.get(url).is_json
    assert client.post("/api").status_code == 405 and not client.post("/api").is_json


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [("GET", "/api/predict", 405), ("GET", "/api/nothing", 404), ("DELETE", "/api/models", 405),
     ("POST", "/healthz", 405), ("GET", "/api/", 404),  # /api itself is the documentation page
     ("GET", "/api//models", 404), ("POST", "/api//predict", 404)],  # not an HTML redirect
)
def test_werkzeug_errors_under_api_are_json(client, method, url, status):
    response = client.open(url, method=method)
    assert response.status_code == status
    assert response.is_json and set(response.get_json()) == {"error"}
    assert "<" not in response.get_data(as_text=True)


@pytest.mark.parametrize(("method", "url", "allowed"), [
    ("PUT", "/api/predict", {"OPTIONS", "POST"}), ("POST", "/models", {"GET", "HEAD", "OPTIONS"}),
])
def test_a_405_lists_the_methods_allowed(client, method, url, allowed):
    response = client.open(url, method=method)
    assert response.status_code == 405 and set(response.headers["Allow"].split(", ")) == allowed
    assert response.is_json == url.startswith("/api/")  # the error's own HTML type is not sent


def test_health_with_a_slash_is_still_answered_in_json(client):
    response = client.get("/healthz/")
    assert response.status_code == 404 and response.is_json


@pytest.mark.parametrize("limit, said", [(1_000_000, "1.0 MB"), (300_000, "300 kB"), (999, "999 bytes")])
def test_too_large_under_api_is_json(models_dir, limit, said):
    client = create_app(make_config(models_dir, MAX_CONTENT_LENGTH=limit)).test_client()
    response = post_api(client, b"\xff\xd8\xff" + bytes(2 * limit))
    assert response.status_code == 413
    assert response.get_json() == {"error": f"The request is too large: send images of at most {said} in all."}


@pytest.mark.parametrize("length, message", [
    (10_000_001, "The request is too large: send images of at most 10 MB in all."),
    # Within the size limit, a request is refused for its form fields (MAX_FORM_PARTS, MAX_FORM_MEMORY_SIZE).
    (10_000_000, "The request is too large: it has too many or too long form fields or file names (or a wrong "
                 "multipart boundary); send up to 30 images and no fields but model, top_k, compare and explain."),
])
def test_a_413_says_which_limit_the_request_passed(app, length, message):
    with app.test_request_context("/api/predict", method="POST", environ_overrides={"CONTENT_LENGTH": str(length)}):
        assert errors.message_for(RequestEntityTooLarge()) == message


def test_a_413_of_a_chunked_body_says_which_limit_it_passed(models_dir, make_image):
    client = create_app(make_config(models_dir, MAX_CONTENT_LENGTH=1_000_000)).test_client()
    # As gunicorn passes a chunked body on: no length, its end told by the server.
    chunked = {"headers": {"Transfer-Encoding": "chunked"}, "environ_overrides": {"wsgi.input_terminated": True}}
    response = client.post("/api/predict", data={"image": (io.BytesIO(bytes(2_000_000)), "big.jpg")}, **chunked)
    assert response.status_code == 413
    assert response.get_json() == {"error": "The request is too large: send images of at most 1.0 MB in all."}
    response = client.post("/api/predict", data={"image": (io.BytesIO(make_image()), "x" * 300_000 + ".png")},
                           **chunked)
    assert response.status_code == 413
    assert response.get_json()["error"].startswith("The request is too large: it has too many or too long form fields")


def test_a_form_413_names_only_the_forms_own_field(app):
    with app.test_request_context("/predict", method="POST", environ_overrides={"CONTENT_LENGTH": "10000000"}):
        assert errors.message_for(RequestEntityTooLarge()).endswith("send up to 30 images and at most a model name.")


def test_unexpected_error_is_a_plain_500(app, monkeypatch, make_image):
    from webapp import predictor

    def explode(*args, **kwargs):
        raise RuntimeError(f"secret detail in {app.root_path}")

    monkeypatch.setattr(predictor, "decode", explode)
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


@pytest.mark.parametrize("host", ["a..b", ".", "x" * 64 + ".example"])
def test_a_host_header_that_is_no_host_name_is_a_400_not_a_500(client, host):
    # Werkzeug cannot build the page's links for it: before, the error page failed in turn.
    said = "The request's Host header is not a valid host name"
    for url in ("/", "/models", "/static/style.css", "/models/tiny/model.h5"):
        response = client.get(url, headers={"Host": host})
        assert response.status_code == 400 and response.get_data(as_text=True).startswith(said), url
    for url in ("/api/models", "/healthz"):
        response = client.get(url, headers={"Host": host})
        assert response.status_code == 400 and response.get_json()["error"].startswith(said), url
