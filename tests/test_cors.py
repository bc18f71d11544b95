"""webapp.cors: IMAGEAPP_API_ORIGINS lets pages on other sites call the JSON API from a browser,
and nothing else of the app."""

import re

import pytest

from conftest import damage, make_config, post_api
from webapp import create_app
from webapp.config import DEFAULTS, settings_from_environment

SITE = "https://me.github.io"
DEV_SERVER = "http://localhost:5173"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


def client_for(models_dir, origins, origin=SITE, **settings):
    """A test client of an app whose API answers `origins`, each request sent as by a page on `origin`
    (None: by a program, with no Origin header)."""
    client = create_app(make_config(models_dir, API_ORIGINS=origins, **settings)).test_client()
    if origin is not None:
        client.environ_base["HTTP_ORIGIN"] = origin
    return client


def cors_headers(response) -> dict:
    return {name: value for name, value in response.headers if name.lower().startswith("access-control-")}


def test_the_setting_is_any_origin_or_a_list_of_exact_ones():
    assert DEFAULTS["API_ORIGINS"] == ()
    assert settings_from_environment({"IMAGEAPP_API_ORIGINS": " \n"}) == {}
    assert settings_from_environment({"IMAGEAPP_API_ORIGINS": " *\n"}) == {"API_ORIGINS": ("*",)}
    listed = settings_from_environment({"IMAGEAPP_API_ORIGINS": "https://me.github.io, http://localhost:5173\n"})
    assert listed == {"API_ORIGINS": (SITE, DEV_SERVER)}
    # Written as a browser writes its Origin header, so that a request's matches as it is.
    written = "HTTPS://Me.GitHub.io:443,http://[::1]:80,http://127.0.0.1:08000"
    assert settings_from_environment({"IMAGEAPP_API_ORIGINS": written}) == {
        "API_ORIGINS": (SITE, "http://[::1]", "http://127.0.0.1:8000")}


@pytest.mark.parametrize("value", [
    "https://me.github.io/",  # as an address bar shows it: would never match
    "https://me.github.io/app", "me.github.io", "localhost:5173", "https://*.github.io", "*, https://me.github.io",
    "ftp://me.github.io", "null", "https://me.github.io:0", "https://me.github.io:65536", "https://me.github.io,",
    "https://me.github.io;http://localhost:5173", "https://user@me.github.io", "https://me.github.io?x=1",
    "https://caf\u00e9.example", "https://me.github.io:\u0661",
])
def test_a_bad_origin_stops_the_server_with_one_sentence(value):
    message = (f"IMAGEAPP_API_ORIGINS={value!r} is not * or origins separated by commas, each http(s)://host[:port] "
               "without a path or a trailing / (https://me.github.io,http://localhost:5173)")
    with pytest.raises(SystemExit, match=f"^{re.escape(message)}$"):
        settings_from_environment({"IMAGEAPP_API_ORIGINS": value})


def test_a_listed_origin_is_answered_with_its_own_name(models_dir, make_image):
    client = client_for(models_dir, (SITE, DEV_SERVER), origin=DEV_SERVER)
    response = post_api(client, make_image())
    assert response.status_code == 200 and len(response.get_json()["predictions"]) == 3
    assert cors_headers(response) == {"Access-Control-Allow-Origin": DEV_SERVER}  # no credentials
    assert "Origin" in response.vary
    for url in ("/api/models", "/api/models/tiny", "/healthz"):
        response = client.get(url)
        assert response.status_code == 200 and response.access_control_allow_origin == DEV_SERVER, url


def test_a_preflight_is_answered_for_a_listed_origin(models_dir):
    response = client_for(models_dir, (SITE,)).options("/api/predict", headers=PREFLIGHT)
    assert response.status_code == 204  # a success, with no content
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": SITE, "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "Content-Type, ngrok-skip-browser-warning", "Access-Control-Max-Age": "7200"}
    assert "Origin" in response.vary


def test_the_apis_errors_are_readable_by_a_listed_origin(models_dir, make_image):
    damage(models_dir, "broken")
    client = client_for(models_dir, (SITE,), MAX_CONTENT_LENGTH=5000)
    answers = {
        400: post_api(client, None),
        404: client.get("/api/models/nobody"),
        405: client.get("/api/predict"),
        413: post_api(client, bytes(6000)),
        415: post_api(client, b"not a picture"),
        503: post_api(client, make_image(), model="broken"),
    }
    for status, response in answers.items():
        assert response.status_code == status and set(response.get_json()) == {"error"}
        assert response.access_control_allow_origin == SITE and "Origin" in response.vary, status
    # Not even a route: the page learns that from the answer too.
    response = client.options("/api/nowhere", headers=PREFLIGHT)
    assert response.status_code == 404 and response.access_control_allow_origin == SITE


@pytest.mark.parametrize("origin", [
    "https://other.github.io", "http://me.github.io", "https://me.github.io.evil.example", "https://me.github.io:8443",
    "null", None,
])
def test_other_origins_get_no_leave(models_dir, make_image, origin):
    client = client_for(models_dir, (SITE,), origin=origin)
    for response, status in ((post_api(client, make_image()), 200), (client.options("/api/predict", headers=PREFLIGHT), 204)):
        assert response.status_code == status and cors_headers(response) == {}
        assert "Origin" in response.vary  # another origin's answer has the header


def test_any_origin_gets_a_star_that_does_not_vary(models_dir, make_image):
    client = client_for(models_dir, ("*",), origin="null")  # a page opened from a file
    response = post_api(client, make_image())
    assert response.status_code == 200 and cors_headers(response) == {"Access-Control-Allow-Origin": "*"}
    assert "Origin" not in response.vary
    assert client.options("/api/models", headers=PREFLIGHT).access_control_allow_origin == "*"


@pytest.mark.parametrize("origins", [(SITE,), ("*",)])
def test_only_the_apis_addresses_answer_other_origins(models_dir, origins):
    client = client_for(models_dir, origins)
    assert client.get("/api/models").access_control_allow_origin
    # The pages, the form (CSRF-protected) and the downloads stay same-origin.
    for method, url in [("GET", "/"), ("GET", "/api"), ("GET", "/models"), ("GET", "/models.csv"),
                        ("GET", "/models/tiny/model.h5"), ("GET", "/static/app.js"), ("POST", "/predict"),
                        ("OPTIONS", "/predict"), ("GET", "/nowhere")]:
        response = client.open(url, method=method, headers=PREFLIGHT)
        assert cors_headers(response) == {} and "Origin" not in response.vary, url


def test_the_api_page_says_which_sites_pages_may_call_it(models_dir):
    def said(origins):
        page = client_for(models_dir, origins).get("/api").get_data(as_text=True)
        return " ".join(re.search(r'<p id="origins">(.*?)</p>', page, re.S).group(1).split())

    assert said(()).startswith("Only this site's own pages may call this API from a browser;")
    assert said(("*",)).startswith("Pages on any site may call this API")
    assert said((SITE, DEV_SERVER)).startswith(
        "Pages on <code>https://me.github.io</code> and <code>http://localhost:5173</code> may call this API")
