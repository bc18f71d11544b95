"""The web half of the image classifier: upload pages, model dashboard and a JSON API.

Built like Flask's tutorial app: `create_app` is the factory, each area is a blueprint,
settings come from `config.DEFAULTS`, then `IMAGEAPP_*` environment variables (or a test
mapping).
Nothing here imports TensorFlow: the registry does on the first model load, so a
gunicorn master that reads this package never starts TF threads before forking workers.
"""

from __future__ import annotations

import importlib.util
import logging
import secrets

from trainer.formatting import not_installed

# The installed packages (requirements.txt) that this package's modules import as they load:
# looked for first, so that another Python than the project's is said in one line, while a
# module that our own code fails to find (a typo) keeps its traceback.
for _module, _package in (("flask", "flask"), ("flask_wtf", "flask-wtf"), ("wtforms", "wtforms"),
                          ("gunicorn", "gunicorn"), ("numpy", "numpy"), ("PIL", "pillow")):
    if importlib.util.find_spec(_module) is None:
        raise SystemExit(f"error: {not_installed(_package)}")  # python -m webapp's, or gunicorn's

from flask import Flask, Response, request  # noqa: E402
from werkzeug.middleware.proxy_fix import ProxyFix  # noqa: E402

from .config import DEFAULTS, ENV_PREFIX, ROOT, settings_from_environment  # noqa: E402


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    # Werkzeug would answer /api//models with an HTML redirect; an address that is no route is a 404.
    app.url_map.merge_slashes = False
    # JSON answers keep the order they are built in, the API page's: "model" before 30 "answers".
    app.json.sort_keys = False
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_mapping(settings_from_environment())
        # Flask reads FLASK_DEBUG into DEBUG; a served app must never debug, whatever is set.
        app.debug = False
    else:
        app.config.from_mapping(test_config)

    _log_through_gunicorn(app)
    if not app.config.get("SECRET_KEY"):
        # Fine for one process; several workers need the same key or CSRF tokens break.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        app.logger.warning(
            "%sSECRET_KEY is not set: using a random key, so forms break across restarts and workers.",
            ENV_PREFIX,
        )

    from . import api, config, cors, dashboard, downloads, errors, formatting, pages, registry, security, uploads

    if app.config["PROXY_HOPS"]:
        trust_proxies(app, app.config["PROXY_HOPS"])

    registry.init_app(app)
    config.init_app(app)
    security.init_app(app)
    uploads.init_app(app)
    errors.init_app(app)
    cors.init_app(app)
    formatting.init_app(app)
    app.after_request(_no_content_for_options)
    app.register_blueprint(pages.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(api.bp)
    if app.config["MODEL_DOWNLOADS"]:  # off, its addresses are no routes: 404s
        app.register_blueprint(downloads.bp)
    return app


def trust_proxies(app: Flask, hops: int) -> None:
    """Believe the X-Forwarded-For and -Proto headers that the `hops` proxies in front add
    (ngrok's agent, nginx): the client's address in the access log, https in the API page's
    examples. Never on a server reached directly, whose clients could set them to anything.
    The host comes from the Host header, which proxies pass on; a path prefix from gunicorn's
    SCRIPT_NAME header (docs/web-app.md)."""
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def _no_content_for_options(response: Response) -> Response:
    # Flask answers OPTIONS itself (the methods in Allow), with an empty body typed as HTML.
    if request.method == "OPTIONS" and response.status_code == 200 and not response.get_data():
        response.status_code = 204
        del response.headers["Content-Type"]
    return response


def _log_through_gunicorn(app: Flask) -> None:
    """In a gunicorn worker, the app (and the registry, its child logger) writes to gunicorn's
    error log at its level: one format for the whole log, with the pid of the worker that
    speaks. Elsewhere Flask's own handler stays."""
    gunicorn_log = logging.getLogger("gunicorn.error")
    if gunicorn_log.handlers:
        app.logger.handlers[:] = gunicorn_log.handlers
        app.logger.setLevel(gunicorn_log.level)
