"""Security headers on every response; pages that need no 'unsafe-inline'."""

import re

import pytest

from conftest import post_form
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


def test_pages_have_no_inline_scripts_or_styles(client):
    for url in ("/", "/models", "/models/tiny", "/missing"):
        page = client.get(url).get_data(as_text=True)
        assert "style=" not in page
        assert re.search(r"<script(?![^>]*\bsrc=)", page) is None, url
        assert "<style" not in page
        assert "http://" not in page and "https://" not in page  # no CDN


def test_a_prediction_page_is_kept_out_of_shared_caches(client, csrf_token, make_image):
    response = post_form(client, csrf_token, make_image("PNG"), model="small")
    # Kept out of shared caches, but not "no-store": Back to this page must not resend the form.
    assert response.headers["Cache-Control"] == "private, no-cache"
