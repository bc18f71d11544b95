"""How a request's body is read: uploads kept in memory, and a body that does not parse
refused with the reason, rather than read as an empty form."""

from __future__ import annotations

import io

from flask import Request, abort, request
from werkzeug.exceptions import BadRequest, ClientDisconnected
from werkzeug.formparser import FormDataParser


CHUNKS_ENDED = "The request's body ended before its last chunk (the connection closed?): send it again."
NAMELESS = ("A part of the request's body has no name (its Content-Disposition header has no name parameter): "
            "check how the client sends it.")


class UnreadableBody(BadRequest):
    """A form body that Werkzeug's parser cannot read; the upload form answers it on itself."""


class StrictFormDataParser(FormDataParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Werkzeug's parser drops a body it cannot read, silently: a file name in Latin-1 was
        # then answered "Choose an image", about an upload that had one.
        self.silent = False

    def parse(self, stream, mimetype, *args, **kwargs):
        try:
            stream, form, files = super().parse(stream, mimetype, *args, **kwargs)
        except UnicodeDecodeError:
            if mimetype != "multipart/form-data":
                raise UnreadableBody("The form's fields are not UTF-8 text: send them as UTF-8.") from None
            raise UnreadableBody("The upload's part headers are not UTF-8 (a file name in another encoding?): "
                                 "rename the file, or send its name as UTF-8.") from None
        except ClientDisconnected:  # a chunked body that ends before its last chunk
            raise UnreadableBody(CHUNKS_ENDED) from None
        except ValueError:  # in Werkzeug's own words, such as "cannot parse beyond State.PREAMBLE"
            raise UnreadableBody("The request's body is not valid multipart/form-data (its boundary missing or "
                                 "wrong, or the body cut short?): check how the client sends it.") from None
        # Werkzeug keys a part without a name None, which the API's field names do not sort with (a 500).
        if None in form or None in files:
            raise UnreadableBody(NAMELESS)
        return stream, form, files


class UploadRequest(Request):
    form_data_parser_class = StrictFormDataParser

    def _get_file_stream(self, *args, **kwargs):
        # Werkzeug would spool files over 500 kB to a temporary file, and uploads must never
        # touch the disk; memory is bounded by MAX_CONTENT_LENGTH.
        return io.BytesIO()


def refuse_encoded_body() -> None:
    # Werkzeug does not decode a compressed body: it would be read as a form with no fields. Nor
    # does gunicorn, which takes gzip, deflate or compress before chunked and undoes only chunked:
    # the compressed bytes were read as multipart that did not parse.
    if request.method != "POST":
        return
    for header in ("Content-Encoding", "Transfer-Encoding"):
        coding = request.headers.get(header, "")
        if {name.strip().lower() for name in coding.split(",")} - {"", "identity", "chunked"}:
            abort(415, description=f"A body in {header} {coding[:40]} cannot be read: send it uncompressed.")


def init_app(app) -> None:
    app.request_class = UploadRequest
    app.before_request(refuse_encoded_body)
