"""A usable model's .h5 and its card, as downloads: the file loads with plain Keras, anywhere.

Registered only while IMAGEAPP_MODEL_DOWNLOADS is on; otherwise these addresses are 404s.
Each address ends in a fixed file name: `/models/<name>.h5` would also be the page of a
model named "<name>.h5", as names may hold dots.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from datetime import datetime, timezone
from typing import BinaryIO
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, request, send_file, url_for
from werkzeug.http import is_resource_modified

from trainer.formatting import os_reason
from trainer.model_file import stamp_of

from .registry import FileChanged, ModelInfo, get_info_or_404, get_registry

bp = Blueprint("downloads", __name__)

# HDF5 has no registered media type; this is the one in use.
H5_TYPE = "application/x-hdf5"
# What filename* may hold unescaped (RFC 8187's attr-char).
ATTR_CHARS = "!#$&+-.^_`|~"


@bp.get("/models/<name>/model.h5")
def model_file(name: str):
    return send_model_file(name, ".h5", H5_TYPE)


@bp.get("/models/<name>/card.json")
def card(name: str):
    return send_model_file(name, ".json", "application/json")


def named(response, name: str, disposition: str = "attachment"):
    """`response` saved as `name`. A model's name is a file's, which may hold control characters
    (a newline, even), and no header can. A name that is not ASCII goes as UTF-8 (filename*),
    with an ASCII one for clients that read only `filename` (curl -OJ): without its accents,
    or percent-escaped where letters would be lost (Werkzeug would send "猫.h5" as ".h5")."""
    name = re.sub(r"[\x00-\x1f\x7f]", "_", name)
    if name.isascii():
        names = {"filename": name}
    else:
        plain = "".join(c for c in unicodedata.normalize("NFD", name) if not unicodedata.combining(c))
        quoted = quote(name, safe=ATTR_CHARS)
        names = {"filename": plain if plain.isascii() else quoted, "filename*": f"UTF-8''{quoted}"}
    response.headers.set("Content-Disposition", disposition, **names)
    return response


def send_model_file(name: str, suffix: str, mimetype: str):
    """One of a usable model's files, the version the registry checked, streamed as
    `<name><suffix>`. Only a name the registry lists reaches the folder, so no address can
    name another file."""
    info = get_info_or_404(name)
    if info.error:
        abort(404, description=f"Model '{name}' cannot be used, so it is not offered for download; "
                               "its page says why.")
    try:
        file = get_registry().open_file(info, suffix)
    except FileNotFoundError:
        abort(404, description=f"Model '{name}' has just been removed from the models folder.")
    except FileChanged:
        abort(503, description=f"Model '{name}' has just been replaced; ask again in a moment.")
    except OSError as error:
        abort(503, description=f"Model '{name}' cannot be read just now ({os_reason(error)}).")
    try:
        return _file_response(file, name, suffix, mimetype)
    except BaseException:  # a 412 or a 416: no response sends the file, and closes it
        file.close()
        raise


def _file_response(file: BinaryIO, name: str, suffix: str, mimetype: str):
    stat = os.fstat(file.fileno())
    # Of the version sent, and alike in every worker, so that asking again gets a 304.
    etag = hashlib.sha256(repr(stamp_of(stat)).encode()).hexdigest()[:20]
    if _precondition_failed(etag, datetime.fromtimestamp(int(stat.st_mtime), timezone.utc)):
        abort(412, description=f"Model '{name}' is no longer the version asked for: its file has changed since.")
    response = send_file(
        file, mimetype=mimetype, etag=etag, last_modified=stat.st_mtime,
        conditional=False,  # below, once the length is known
        # Not the static files' year: security.py's "no-cache" holds, as a model may be retrained.
        max_age=0,
    )
    # Given a file rather than a path, send_file leaves out the length, which ranges (a resumed
    # download) and a browser's progress bar need.
    response.content_length = stat.st_size
    named(response, name + suffix)
    environ = _standard_range(request, stat.st_size)
    if _range_ruled_out(response):
        environ = _without_range(environ)
    return response.make_conditional(environ, accept_ranges=True, complete_length=stat.st_size)


def _precondition_failed(etag: str, modified: datetime) -> bool:
    """Whether If-Match or, without it, If-Unmodified-Since rules the file out (RFC 9110,
    13.2.2): Werkzeug answers the first with a 412 and the whole file, and ignores the second."""
    if request.if_match:
        return not request.if_match.contains(etag)  # "*" is contained in any
    if request.if_unmodified_since:
        return modified > request.if_unmodified_since
    return False


# The unit and the spaces read as Werkzeug reads them.
_ZERO_SUFFIX = re.compile(r"[ \t]*bytes[ \t]*=[ \t]*-0+[ \t]*", re.IGNORECASE)


def _standard_range(request, length: int) -> dict:
    """The request's WSGI environ, its Range header read as the standard (RFC 9110, 14.1.2
    and 14.2) has it where Werkzeug answers 416: one that is not one range of bytes (one it
    cannot parse, of another unit, or several ranges, which it does not serve) is ignored and
    the whole file sent, and the last N bytes of a file shorter than N are all of it. Only a
    range that starts past the end of the file, or the last 0 bytes, is a 416."""
    asked = request.range
    if "HTTP_RANGE" not in request.environ:
        return request.environ
    if _ZERO_SUFFIX.fullmatch(request.environ["HTTP_RANGE"]):
        # Werkzeug reads "bytes=-0" as no range, so would send it all; it is one no byte is in.
        return request.environ | {"HTTP_RANGE": f"bytes={length}-"}
    if not (asked and asked.units == "bytes" and len(asked.ranges) == 1):
        return _without_range(request.environ)
    if asked.ranges[0][0] < -length:  # "bytes=-N", a suffix longer than the file
        return request.environ | {"HTTP_RANGE": "bytes=0-"}
    return request.environ


def _range_ruled_out(response: Response) -> bool:
    """Whether the request's Range is to be passed over, where Werkzeug would serve it: the
    copy its If-None-Match or If-Modified-Since holds is current, which RFC 9110 (13.2.2)
    answers with a 304 before any range; or its If-Range is a weak tag, which never matches
    (13.1.5), so the whole file is sent. Werkzeug drops the weakness, and sends the range."""
    if not is_resource_modified(request.environ, response.headers["ETag"], last_modified=response.last_modified):
        return True
    return request.headers.get("If-Range", "").lstrip().startswith("W/")


def _without_range(environ: dict) -> dict:
    return {key: value for key, value in environ.items() if key != "HTTP_RANGE"}


def links(info: ModelInfo) -> dict[str, str] | None:
    """Where to download the model and its card, for the JSON API; None when not offered."""
    if not (current_app.config["MODEL_DOWNLOADS"] and info.available):
        return None
    return {"model": url_for("downloads.model_file", name=info.name, _external=True),
            "card": url_for("downloads.card", name=info.name, _external=True)}
