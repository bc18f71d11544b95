"""The app's settings: `DEFAULTS`, then `IMAGEAPP_*` environment variables, each checked
when read, so that a bad one stops the server with one sentence."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from flask import current_app

from trainer.formatting import whole_number

ROOT = Path(__file__).resolve().parent.parent

DEFAULTS = {
    "MODELS_DIR": str(ROOT / "models"),
    "DEFAULT_MODEL": "cifar10_scratch",
    "MAX_CONTENT_LENGTH": 10_000_000,  # 10 MB, in decimal units as every size the app states
    # Up to 30 images (webapp.batch) and the forms' few fields; refuse long lists of parts or big
    # text fields outright.
    "MAX_FORM_PARTS": 40,
    # Werkzeug counts its parser's buffer against this for files too: 64 KiB reads plus a few
    # bytes left over, so at 64 KiB most photos over a few hundred kB were refused.
    "MAX_FORM_MEMORY_SIZE": 256 * 1024,
    "WTF_CSRF_TIME_LIMIT": None,  # a token lasts as long as the session: a form left open a while still works
    "SESSION_COOKIE_SAMESITE": "Lax",
    # A year: static files' addresses change with their content (security.static_version), so
    # a browser asks again only for a changed one, where each page cost a round trip per file.
    "SEND_FILE_MAX_AGE_DEFAULT": 365 * 24 * 3600,
    "TOP_K": 5,
    # Proxies in front whose X-Forwarded-* headers are believed (webapp.trust_proxies).
    "PROXY_HOPS": 0,
    # Not Flask's "session": another app on the same host, under another path, would share it.
    "SESSION_COOKIE_NAME": "imageapp_session",
    # Anyone who reaches the app may download the models it serves (webapp.downloads).
    "MODEL_DOWNLOADS": True,
    # Other sites whose pages may call the JSON API from a browser (webapp.cors): none.
    "API_ORIGINS": (),
}

YES, NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
YES_OR_NO = "1 or 0 (nor true/false, yes/no, on/off)"


def yes_or_no(text: str) -> bool:
    """A setting that turns something on or off, in any case; ValueError for any other word,
    as a typo must not quietly mean either."""
    word = text.strip().lower()
    if word not in YES + NO:
        raise ValueError(text)
    return word in YES


# IMAGEAPP_API_ORIGINS (webapp.cors): any site, or these.
ANY = "*"
# As a browser writes an origin: a host name, an IPv4 or a bracketed IPv6 address; no path.
ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<host>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]+))?", re.I)
DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origins(text: str) -> tuple[str, ...]:
    """IMAGEAPP_API_ORIGINS: "*", or origins separated by commas, each rewritten as a browser
    sends it (scheme and host in lower case, no default port) so that a request's Origin
    matches by comparison. ValueError for anything else: an entry with a path, even a trailing
    slash, would never match."""
    if text == ANY:
        return (ANY,)
    return tuple(_origin(entry.strip()) for entry in text.split(","))


def _origin(text: str) -> str:
    match = ORIGIN.fullmatch(text)
    if not match:
        raise ValueError(text)
    scheme, host, port = match["scheme"].lower(), match["host"].lower(), match["port"]
    number = whole_number(port, 1, 65535) if port else DEFAULT_PORTS[scheme]
    return f"{scheme}://{host}" if number == DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{number}"


# Settings read from IMAGEAPP_<NAME>, with how to parse each one and what it must be.
ENVIRONMENT = {
    "SECRET_KEY": (str, "text"),
    "MODELS_DIR": (str, "a path"),
    "DEFAULT_MODEL": (str, "a model name"),
    "MAX_CONTENT_LENGTH": (whole_number, "a number of bytes above 0"),
    "PROXY_HOPS": (functools.partial(whole_number, least=0), "a number of proxies (0 or more)"),
    "MODEL_DOWNLOADS": (yes_or_no, YES_OR_NO),
    "API_ORIGINS": (parse_origins, "* or origins separated by commas, each http(s)://host[:port] without a path "
                                   "or a trailing / (https://me.github.io,http://localhost:5173)"),
}
ENV_PREFIX = "IMAGEAPP_"


def settings_from_environment(environ=os.environ) -> dict:
    settings = {}
    for name, (parse, kind) in ENVIRONMENT.items():
        value = environ.get(ENV_PREFIX + name, "").strip()
        if value:
            try:
                settings[name] = parse(value)
            except ValueError:
                raise SystemExit(f"{ENV_PREFIX}{name}={value!r} is not {kind}") from None
    return settings


def models_folder() -> str | None:
    """The models folder as the no-model notice names it, relative to the project; None when
    outside it, as a page open to anyone should not tell where the server keeps its files."""
    folder = os.path.abspath(current_app.config["MODELS_DIR"])
    inside = os.path.commonpath([folder, str(ROOT)]) == str(ROOT)
    return os.path.relpath(folder, ROOT) + "/" if inside else None


def models_folder_missing() -> bool:
    """Whether the models folder is not there (a setting mistyped, say), which the no-model notice
    says without saying where it is."""
    return not os.path.isdir(current_app.config["MODELS_DIR"])


def init_app(app) -> None:
    # For the no-model notice, on the upload form and on the models page alike.
    app.add_template_global(models_folder)
    app.add_template_global(models_folder_missing)
    app.add_template_global(ENV_PREFIX + "MODELS_DIR", "models_folder_variable")
