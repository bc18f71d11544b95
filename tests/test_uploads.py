"""How request bodies are read (webapp.uploads): a body that does not parse is refused with
its reason, on the upload form or in JSON, never read as an empty form."""

import gzip

import pytest

from conftest import encode_image
from webapp.uploads import NAMELESS

BOUNDARY = "b0undary"


def multipart(token: str | None, filename: bytes, image: bytes) -> bytes:
    fields = [(b'name="model"', b"tiny"), (b'name="image"; filename="' + filename + b'"', image)]
    if token:
        fields.append((b'name="csrf_token"', token.encode()))
    body = b"".join(b"--%s\r\nContent-Disposition: form-data; %s\r\n\r\n%s\r\n" % (BOUNDARY.encode(), head, data)
                    for head, data in fields)
    return body + b"--%s--\r\n" % BOUNDARY.encode()


NOT_UTF8 = "The upload's part headers are not UTF-8 (a file name in another encoding?): rename the file, or send its name as UTF-8."


def test_a_file_name_in_latin_1_is_said_so_not_taken_for_no_file(client, csrf_token):
    # Werkzeug reads part headers as UTF-8, and dropped the whole body when one was not.
    body = multipart(csrf_token, "caf\xe9.png".encode("latin-1"), encode_image())
    response = client.post("/api/predict", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status_code == 400 and response.get_json() == {"error": NOT_UTF8}
    response = client.post("/predict", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "<form" in page  # the form again, to choose the file anew
    assert f"<p>{NOT_UTF8}</p>" in page.replace("&#39;", "'")


def test_the_same_upload_with_a_utf_8_name_is_classified(client, csrf_token):
    body = multipart(csrf_token, "caf\xe9.png".encode("utf-8"), encode_image())
    response = client.post("/api/predict", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status_code == 200 and response.get_json()["model"] == "tiny"


@pytest.mark.parametrize("path", ["/api/predict", "/predict"])
@pytest.mark.parametrize("boundary", ["", f"; boundary={BOUNDARY}x"])
def test_a_multipart_body_that_does_not_parse_is_said_so(client, path, boundary):
    body = multipart(None, b"photo.png", encode_image())
    response = client.post(path, data=body, content_type="multipart/form-data" + boundary)
    assert response.status_code == 400
    assert "The request's body is not valid multipart/form-data (its boundary missing or wrong, or the body cut " \
           "short?): check how the client sends it." in response.get_data(as_text=True).replace("&#39;", "'")


@pytest.mark.parametrize("path", ["/api/predict", "/predict"])
@pytest.mark.parametrize("head", [b'filename="notes.txt"', b""], ids=["file", "field"])
def test_a_part_without_a_name_is_said_so(client, path, head):
    # Beside a field of another name, the API's list of unknown fields was a 500.
    parts = b"".join(b"--%s\r\nContent-Disposition: form-data; %s\r\n\r\nx\r\n" % (BOUNDARY.encode(), disposition)
                     for disposition in (head, b'name="note"'))
    response = client.post(path, data=parts + multipart(None, b"photo.png", encode_image()),
                           content_type=f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status_code == 400 and NAMELESS in response.text.replace("&#39;", "'")


@pytest.mark.parametrize("path", ["/api/predict", "/predict"])
# gunicorn passes a body in Transfer-Encoding gzip, chunked on still compressed (test_gunicorn.py).
@pytest.mark.parametrize("header, coding", [("Content-Encoding", "gzip"), ("Transfer-Encoding", "gzip, chunked")])
def test_a_compressed_body_is_refused_not_read_as_an_empty_form(client, path, header, coding):
    body = gzip.compress(multipart(None, b"photo.png", encode_image()))
    response = client.post(path, data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}",
                           headers={header: coding})
    assert response.status_code == 415
    assert f"A body in {header} {coding} cannot be read: send it uncompressed." in response.text


def test_form_fields_that_are_not_utf_8_are_said_so(client):
    response = client.post("/api/predict", data=b"model=caf\xe9", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.get_json() == {"error": "The form's fields are not UTF-8 text: send them as UTF-8."}


def test_a_content_encoding_on_a_request_without_a_body_is_ignored(client):
    assert client.get("/healthz", headers={"Content-Encoding": "gzip"}).status_code == 200


@pytest.mark.parametrize("coding", ["identity", "Identity", "identity, ", ""])
def test_an_uncompressed_body_is_read_whatever_coding_names_it(client, coding):
    # "identity" is the HTTP name for "no coding": some clients send it, and it must not be a 415.
    body = multipart(None, b"photo.png", encode_image())
    response = client.post("/api/predict", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}",
                           headers={"Content-Encoding": coding})
    assert response.status_code == 200 and response.get_json()["model"] == "tiny"
