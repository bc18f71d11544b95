"""Error answers: JSON under /api (and /healthz), a page elsewhere; never a traceback or a path."""

from __future__ import annotations

from flask import Response, jsonify, render_template, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import BadHost, HTTPException

from trainer.formatting import filesize

from .api import FIELDS_IN_WORDS
from .batch import MAX_PICTURES
from .uploads import UnreadableBody

# Headings in plain words; the status code is shown beside them, small. No 413: the API answers
# it in JSON and the upload form (pages.unread_body) on the form itself.
TITLES = {
    400: "Bad request",
    404: "Page not found",
    405: "Not allowed here",
    500: "Something went wrong",
}
MESSAGES = {
    400: "The request could not be understood.",
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
    500: "Something went wrong on our side. The error has been logged.",
}


def wants_json() -> bool:
    # /api itself is the API's documentation page, for people.
    return request.path.rstrip("/") == "/healthz" or request.path.startswith("/api/")


def message_for(error: HTTPException) -> str:
    if error.code == 413:
        limit = request.max_content_length or 0
        if within_size(limit):  # the fields
            fields = f"no fields but {FIELDS_IN_WORDS}" if wants_json() else "at most a model name"
            # Werkzeug's parser holds a part's headers, and the body before its first boundary, within
            # MAX_FORM_MEMORY_SIZE too: a long file name passes it, as does a boundary not in the body.
            return (f"The request is too large: it has too many or too long form fields or file names (or a wrong "
                    f"multipart boundary); send up to {MAX_PICTURES} images and {fields}.")
        return f"The request is too large: send images of at most {filesize(limit)} in all."
    # Our own abort() calls carry a specific description; Werkzeug's defaults are replaced.
    default = type(error).description
    if error.description and error.description != default:
        return error.description
    return MESSAGES.get(error.code, error.name + ".")


def within_size(limit: int) -> bool:
    if request.content_length is None:
        # A chunked body: read no further than the limit, so one refused short of it was for its form.
        return not getattr(request.stream, "is_exhausted", True)
    return request.content_length <= limit


def handle_http_error(error: HTTPException):
    # Unhandled exceptions arrive here as InternalServerError; Flask has logged them already.
    message = message_for(error)
    if wants_json():
        response = jsonify(error=message)
    else:
        title = getattr(error, "title", None) or TITLES.get(error.code, error.name)
        response = render_template("error.html", code=error.code, title=title, message=message)
    # The error's own headers, such as the methods a 405 must list in Allow, but not its HTML type.
    headers = [(key, value) for key, value in error.get_headers() if key.lower() != "content-type"]
    return response, error.code, headers


def handle_bad_host(error: BadHost):
    # A Host header that is no host name (`a..b`) leaves the request without the URLs that
    # every page links to, so the answer is plain text.
    message = "The request's Host header is not a valid host name: check the address, or how a proxy passes it on."
    if wants_json():
        return jsonify(error=message), 400
    return Response(message + "\n", 400, mimetype="text/plain")


def handle_malformed_body(error: ParseException):
    # gunicorn raises these from the body's stream as the form is read, for a chunked body that
    # breaks its own encoding (one that ends early is uploads.CHUNKS_ENDED): the client's fault.
    return handle_http_error(UnreadableBody(f"The request's body is malformed ({type(error).__name__}): "
                                            "check how the client sends it."))


def init_app(app) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(BadHost, handle_bad_host)
    app.register_error_handler(ParseException, handle_malformed_body)
