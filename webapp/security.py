"""Security headers on every response.

The pages have no inline scripts or styles, so the policy needs no 'unsafe-inline'; the
uploaded picture is shown as a data: URI and the charts are inline SVG, hence img-src data:.
"""

from flask import request

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
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
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


def init_app(app) -> None:
    app.after_request(set_headers)
