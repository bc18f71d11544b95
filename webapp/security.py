"""Headers on every response: security, and caching.

The pages have no inline scripts or styles, so the policy needs no 'unsafe-inline'; the
uploaded picture is shown as a data: URI and the charts are inline SVG, hence img-src data:.
"""

import functools
import hashlib
from pathlib import Path

from flask import current_app, request
from flask.sessions import SecureCookieSessionInterface

from trainer import model_file

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    # The upload form's camera (app.js), for this origin's pages only; no microphone or location.
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}


# Prediction pages embed the uploaded picture: "private" keeps them out of shared caches.
# "no-store" kept them off the user's own disk too, but then Back to one (from a link on it)
# asked to send the form again. The trade: the browser keeps its copy, so someone else at
# that browser could go back to the picture.
CACHE_CONTROL = "private, no-cache"


def set_headers(response):
    response.headers.update(HEADERS)
    if request.endpoint != "static":
        response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def static_version(endpoint: str, values: dict) -> None:
    """Static files' addresses carry a hash of their content (?v=...), so a browser may keep
    them for SEND_FILE_MAX_AGE_DEFAULT without asking again, and fetches a changed one anew."""
    if endpoint == "static" and "filename" in values:
        path = Path(current_app.static_folder, values["filename"])
        stamp = model_file.stamp(path)  # not mtime alone: a copy with `cp -p` keeps it
        if stamp is not None:  # else no such file: its address as it is, and a 404 when asked for
            values["v"] = _content_hash(path, stamp)


@functools.lru_cache(maxsize=32)
def _content_hash(path: Path, stamp: tuple) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()[:12]


class SessionCookie(SecureCookieSessionInterface):
    """The session cookie (it holds the form's CSRF token) is marked Secure when the page came
    over https, directly or as a believed proxy says: never sent back over plain http then. A
    server reached over http keeps a cookie it can use."""

    def get_cookie_secure(self, app) -> bool:
        return super().get_cookie_secure(app) or request.is_secure


def init_app(app) -> None:
    app.after_request(set_headers)
    app.session_interface = SessionCookie()
    app.url_defaults(static_version)
