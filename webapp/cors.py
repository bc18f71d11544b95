"""Cross-origin calls to the JSON API (IMAGEAPP_API_ORIGINS), for a front-end of one's own on
another site: a React app on localhost:5173, a page on GitHub Pages.

Only the API's addresses answer other sites' pages, and never with credentials: the API reads
no cookie, so such a page can do with it only what any program can. The pages, the upload form
(its CSRF token is in the session cookie) and the model downloads stay same-origin.
"""

from __future__ import annotations

from flask import current_app, request

from .config import ANY
from .errors import wants_json

METHODS = ["GET", "POST"]
# FormData's multipart type needs no permission: Content-Type is allowed so that a page that
# sends another (JSON, say) reads the API's 400 saying what to send, not a CORS error. ngrok's
# free addresses may answer a browser with a warning page, skipped for a request with its header.
HEADERS = ["Content-Type", "ngrok-skip-browser-warning"]
MAX_AGE = 7200  # Chromium's ceiling: one preflight per two hours, not one per upload


def add_headers(response):
    """On every answer of the API, errors too: without these a page cannot read the error's
    sentence, only that the request failed."""
    if not wants_json():  # the API's addresses are those answered in JSON
        return response
    origins = current_app.config["API_ORIGINS"]
    if ANY in origins:
        response.access_control_allow_origin = ANY
    else:
        response.vary.add("Origin")  # a cache must not give one origin's answer to another
        if request.origin not in origins:
            return response
        response.access_control_allow_origin = request.origin
    if request.method == "OPTIONS" and request.access_control_request_method:  # a preflight
        response.access_control_allow_methods = METHODS
        response.access_control_allow_headers = HEADERS
        response.access_control_max_age = MAX_AGE
    return response


def init_app(app) -> None:
    if app.config["API_ORIGINS"]:  # unset: no header at all, as before the setting
        app.after_request(add_headers)
