"""Security headers on every response; pages that need no 'unsafe-inline'; static files
cached at addresses that change with their content."""

import hashlib
import os
import re

import pytest
from flask import url_for

from conftest import post_form
from webapp.config import ROOT

URLS = [("GET", "/"), ("GET", "/models"), ("GET", "/models/tiny"), ("GET", "/models/tiny/model.h5"), ("GET", "/static/style.css"),
        ("GET", "/static/app.js"), ("GET", "/api/models"), ("GET", "/healthz"), ("GET", "/nowhere"),
        ("GET", "/api/nowhere"), ("GET", "/predict"), ("POST", "/predict"), ("POST", "/api/predict")]

# Written out here rather than read from webapp.security, so that weakening a header there fails.
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}
POLICY = {  # Content-Security-Policy, directive by directive
    "default-src": "'self'",
    "img-src": "'self' data:",  # the uploaded picture is shown as a data: URI
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


@pytest.mark.parametrize(("method", "url"), URLS)
def test_security_headers_on_every_response(client, method, url):
    response = client.open(url, method=method)
    for name, value in HEADERS.items():
        assert response.headers[name] == value
    directives = [d.strip().split(" ", 1) for d in response.headers["Content-Security-Policy"].split(";")]
    assert dict(directives) == POLICY


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


def test_static_files_are_cached_at_addresses_that_change_with_their_content(client):
    page = client.get("/").get_data(as_text=True)
    for name in ("style.css", "app.js", "favicon.svg"):
        version = hashlib.sha256((ROOT / "static" / name).read_bytes()).hexdigest()[:12]
        address = f"/static/{name}?v={version}"
        assert f'"{address}"' in page
        response = client.get(address)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "public, max-age=31536000"


def test_a_static_files_address_changes_with_its_content_even_at_the_same_mtime(app, tmp_path):
    app.static_folder = str(tmp_path)
    style = tmp_path / "style.css"
    style.write_text("body { color: black; }")
    with app.test_request_context():
        before = url_for("static", filename="style.css")
        mtime = style.stat().st_mtime_ns
        style.write_text("body { color: navy; }")  # as `cp -p` or an archive would leave it
        os.utime(style, ns=(mtime, mtime))
        assert url_for("static", filename="style.css") != before
        assert url_for("static", filename="nowhere.css") == "/static/nowhere.css"


@pytest.mark.parametrize("scheme, secure", [("http", False), ("https", True)])
def test_the_session_cookie_is_secure_over_https(client, scheme, secure):
    response = client.get("/", base_url=f"{scheme}://localhost")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("imageapp_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("; Secure" in cookie) is secure
