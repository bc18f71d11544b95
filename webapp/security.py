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


def set_headers(response):
    response.headers.update(HEADERS)
    if request.endpoint != "static":
        # Prediction pages embed the uploaded picture: keep them out of caches.
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> None:
    app.after_request(set_headers)
