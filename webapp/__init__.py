"""The web half of the image classifier: upload pages, model dashboard and a JSON API.

Built like Flask's tutorial app: `create_app` is the factory, each area is a blueprint,
settings come from `DEFAULTS`, then `IMAGEAPP_*` environment variables (or a test mapping).
Nothing here imports TensorFlow: the registry does on the first model load, so a
gunicorn master that reads this package never starts TF threads before forking workers.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

from flask import Flask, Request

ROOT = Path(__file__).resolve().parent.parent

DEFAULTS = {
    "MODELS_DIR": str(ROOT / "models"),
    "DEFAULT_MODEL": "cifar10_scratch",
    "MAX_CONTENT_LENGTH": 10_000_000,  # 10 MB, in decimal units as every size the app states
    # The forms have three fields; refuse long lists of parts or big text fields outright.
    "MAX_FORM_PARTS": 16,
    # Werkzeug counts its parser's buffer against this for files too: 64 KiB reads plus a few
    # bytes left over, so at 64 KiB most photos over a few hundred kB were refused.
    "MAX_FORM_MEMORY_SIZE": 256 * 1024,
    "WTF_CSRF_TIME_LIMIT": None,  # a token lasts as long as the session: a form left open a while still works
    "SESSION_COOKIE_SAMESITE": "Lax",
    "TOP_K": 5,
}


def whole_number(text: str, least: int = 1, most: int | None = None) -> int:
    """A setting or field as a whole number from `least` to `most`, written in ASCII digits:
    int() alone would take "1_000", "+5" or other scripts' digits. ValueError otherwise (also
    from int() itself for thousands of digits)."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    value = int(text)
    if value < least or (most is not None and value > most):
        raise ValueError(text)
    return value


# Settings read from IMAGEAPP_<NAME>, with how to parse each one and what it must be.
ENVIRONMENT = {
    "SECRET_KEY": (str, "text"),
    "MODELS_DIR": (str, "path"),
    "DEFAULT_MODEL": (str, "model name"),
    "MAX_CONTENT_LENGTH": (whole_number, "number of bytes above 0"),
}
ENV_PREFIX = "IMAGEAPP_"


class InMemoryRequest(Request):
    """Keeps uploaded files in memory (bounded by MAX_CONTENT_LENGTH): Werkzeug would spool
    files over 500 kB to a temporary file, and uploads must never touch the disk."""

    def _get_file_stream(self, *args, **kwargs):
        return io.BytesIO()


def settings_from_environment(environ=os.environ) -> dict:
    settings = {}
    for name, (parse, kind) in ENVIRONMENT.items():
        value = environ.get(ENV_PREFIX + name, "").strip()
        if value:
            try:
                settings[name] = parse(value)
            except ValueError:
                raise SystemExit(f"{ENV_PREFIX}{name}={value!r} is not a {kind}") from None
    return settings


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.request_class = InMemoryRequest
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_mapping(settings_from_environment())
        # Flask reads FLASK_DEBUG into DEBUG; a served app must never debug, whatever is set.
        app.debug = False
    else:
        app.config.from_mapping(test_config)

    if not app.config.get("SECRET_KEY"):
        # Fine for one process; several workers need the same key or CSRF tokens break.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        app.logger.warning(
            "%sSECRET_KEY is not set: using a random key, so forms break across restarts and workers.",
            ENV_PREFIX,
        )

    from . import api, dashboard, errors, formatting, pages, registry, security

    model_registry = registry.Registry(app.config["MODELS_DIR"])
    app.extensions["imageapp.registry"] = model_registry
    if not os.path.isdir(app.config["MODELS_DIR"]):  # served anyway: models may be copied in later
        app.logger.warning("The models folder %s does not exist or is not a folder: no model to serve.",
                           app.config["MODELS_DIR"])
    else:
        _warn_if_default_model_unusable(app, model_registry)
    security.init_app(app)
    errors.init_app(app)
    formatting.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(api.bp)
    return app


def _warn_if_default_model_unusable(app: Flask, model_registry) -> None:
    """Requests fall back to the most accurate usable model while the default one cannot be
    used (it may be copied in later: the folder is read on each request); say so at start."""
    from .registry import UnknownModel

    default = app.config["DEFAULT_MODEL"]
    try:
        problem = model_registry.info(default).error
    except UnknownModel:
        problem = f"{default}.h5 is not in the models folder"
    if problem:
        served = model_registry.default_name(default)
        app.logger.warning("The default model %s cannot be used (%s): %s.", default, problem,
                           f"serving {served} instead" if served else "no model is usable")
