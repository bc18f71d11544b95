"""Untrusted uploads: every hostile or odd input gets the right status and a clear message,
nothing is written to disk, and the server keeps answering afterwards.

All files are generated here, small: the decompression bomb is a ~100 kB PNG that claims
30000 x 30000 pixels.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib

import numpy as np
import psutil
import pytest
from PIL import Image

from conftest import copy_models, encode_image, make_config
from webapp import create_app
from webapp.registry import registry_of

LIMIT = 1024 * 1024


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 30000) -> bytes:
    """A valid 1-bit PNG of side x side black pixels: 112 MB of rows, ~110 kB compressed."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row * 1000) for _ in range(side // 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def huge_canvas_gif() -> bytes:
    """A 1x1 GIF whose logical screen claims 65535 x 65535 pixels."""
    data = bytearray(encode_image("GIF", size=(1, 1)))
    data[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (12, 12), color) for color in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buffer.getvalue()


def sixteen_bit_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.linspace(0, 65535, 400, dtype=np.uint16).reshape(20, 20)).save(buffer, "PNG")
    return buffer.getvalue()


def random_bytes() -> bytes:
    return b"\x00RND" + np.random.default_rng(7).bytes(4000)


ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(200)
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"

UNSUPPORTED = "Unsupported file type: send a JPEG, PNG, GIF, BMP or WebP image."
TOO_LARGE = "Image is too large"

# (id, image bytes or None, extra form fields, expected status, expected message part)
UPLOADS = [
    ("zero-bytes", lambda: b"", {}, 400, "The file is empty."),
    ("random-bytes", random_bytes, {}, 415, UNSUPPORTED),
    ("truncated-jpeg", lambda: encode_image("JPEG", size=(64, 64))[:300], {}, 400,
     "The JPEG file is damaged or incomplete."),
    ("truncated-png", lambda: encode_image("PNG", size=(64, 64))[:200], {}, 400,
     "The PNG file is damaged or incomplete."),
    ("jpeg-header-only", lambda: b"\xff\xd8\xff\xe0", {}, 400, "The JPEG file is damaged or incomplete."),
    ("text-as-jpg", lambda: b"just some text, honestly\n" * 20, {}, 415, UNSUPPORTED),
    ("html-as-jpg", lambda: b"<!doctype html><script>alert(1)</script>", {}, 415, UNSUPPORTED),
    ("svg-as-jpg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', {}, 415, UNSUPPORTED),
    ("pdf-as-jpg", lambda: b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", {}, 415, UNSUPPORTED),
    ("elf-as-jpg", lambda: ELF, {}, 415, UNSUPPORTED),
    ("tiff", lambda: encode_image("TIFF"), {}, 415, UNSUPPORTED),
    ("eps", lambda: EPS, {}, 415, UNSUPPORTED),
    ("decompression-bomb", bomb_png, {}, 400, TOO_LARGE),
    ("gif-huge-canvas", huge_canvas_gif, {}, 400, TOO_LARGE),
    ("animated-gif", animated_gif, {}, 200, None),
    ("one-pixel", lambda: encode_image("PNG", size=(1, 1)), {}, 200, None),
    ("strip-10000x3", lambda: encode_image("PNG", size=(10000, 3)), {}, 200, None),
    ("png-16-bit", sixteen_bit_png, {}, 200, None),
    ("jpeg-cmyk", lambda: encode_image("JPEG", mode="CMYK"), {}, 200, None),
    ("grayscale", lambda: encode_image("PNG", mode="L"), {}, 200, None),
    ("palette", lambda: encode_image("PNG", mode="P"), {}, 200, None),
    ("rgba", lambda: encode_image("PNG", mode="RGBA"), {}, 200, None),
    ("bmp", lambda: encode_image("BMP"), {}, 200, None),
    ("webp", lambda: encode_image("WEBP"), {}, 200, None),
    ("gif", lambda: encode_image("GIF"), {}, 200, None),
    ("over-size-limit", lambda: b"\xff\xd8\xff" + bytes(LIMIT + 1000), {}, 413, "send images of at most"),
    ("unknown-model", encode_image, {"model": "resnet9000"}, 404, "Unknown model 'resnet9000'."),
    ("path-traversal-model", encode_image, {"model": "../../etc/passwd"}, 404, "Unknown model '../../etc/passwd'."),
    ("absolute-path-model", encode_image, {"model": "/etc/passwd"}, 404, "Unknown model"),
    ("long-text-field", encode_image, {"model": "x" * 300_000}, 413, "too many or too long form fields"),
    ("photo-of-600-kilobytes", lambda: encode_image("JPEG", size=(1200, 900), quality=95), {}, 200, None),
]


@pytest.fixture(scope="module")
def hostile_app(built_models, tmp_path_factory):
    models = copy_models(built_models, tmp_path_factory.mktemp("hostile") / "models")
    app = create_app(make_config(models, MAX_CONTENT_LENGTH=LIMIT))
    registry_of(app).load_default("tiny")
    return app


@pytest.fixture
def client(hostile_app):
    return hostile_app.test_client()


# What a request must not do: write a file (open() for writing, os.open, temporary files
# alike), change the folders, or start a program (Pillow's EPS reader would run Ghostscript).
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
FORBIDDEN_EVENTS = ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.move", "subprocess.Popen",
                    "os.system", "os.exec", "os.posix_spawn", "os.fork")
watched: list[list[str]] = []  # the misdeeds seen by the test now watching, if any


def _audit(event, args):
    if not watched:
        return
    if event == "open" and isinstance(args[2], int) and args[2] & WRITE_FLAGS:
        watched[-1].append(f"wrote {args[0]}")
    elif event in FORBIDDEN_EVENTS:
        watched[-1].append(f"{event} {args[0]!r}")


sys.addaudithook(_audit)  # Python's audit events see every way in; a hook cannot be removed, so it idles


@pytest.fixture
def no_disk_writes(hostile_app, monkeypatch):
    """Fail the test if the app, handling its requests, wrote a file, touched the folders or
    started a program. Only while the app runs: Flask's test client spools big requests it
    builds to a temporary file."""
    seen: list[str] = []
    app = hostile_app.wsgi_app

    def watched_app(environ, start_response):
        watched.append(seen)
        try:
            return app(environ, start_response)
        finally:
            watched.remove(seen)

    monkeypatch.setattr(hostile_app, "wsgi_app", watched_app)
    yield
    assert not seen


def models_listing(app):
    folder = registry_of(app).folder
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())


def post(client, parts):
    return client.post("/api/predict", data=parts, content_type="multipart/form-data")


def assert_still_serving(client):
    response = post(client, {"image": (io.BytesIO(encode_image()), "ok.png")})
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(("make", "fields", "status", "message"),
                         [case[1:] for case in UPLOADS], ids=[case[0] for case in UPLOADS])
def test_hostile_upload(client, hostile_app, no_disk_writes, make, fields, status, message):
    before = models_listing(hostile_app)
    response = post(client, {"image": (io.BytesIO(make()), "upload.jpg"), **fields})
    body = response.get_json()
    assert response.status_code == status, body
    assert response.is_json
    if message is None:
        assert len(body["predictions"]) == 3
    else:
        assert message in body["error"]
        assert "Traceback" not in body["error"]
        assert str(registry_of(hostile_app).folder) not in body["error"]
    assert models_listing(hostile_app) == before
    assert_still_serving(client)


@pytest.mark.parametrize(
    ("parts", "status", "message"),
    [
        ({"model": "tiny"}, 400, "field named 'image'"),  # no file at all
        ({"picture": (io.BytesIO(b"x"), "a.png")}, 400, "field named 'image'"),  # wrong field name
        ({"image": "not a file, a text field"}, 400, "came as plain text, not as a file"),
        ({f"field{i}": "x" for i in range(50)}, 413, "too many or too long form fields"),  # many parts
        # A small image: its part's headers are what is too long.
        ({"image": (io.BytesIO(encode_image()), "x" * 300_000 + ".png")}, 413, "too long form fields or file names"),
    ],
    ids=["no-file", "wrong-field-name", "image-as-text-field", "many-parts", "long-file-name"],
)
def test_hostile_form(client, no_disk_writes, parts, status, message):
    response = post(client, parts)
    assert response.status_code == status
    assert message in response.get_json()["error"]
    assert_still_serving(client)


def test_a_big_body_without_its_boundary_is_not_blamed_on_its_fields(client):
    # A small one is "not valid multipart/form-data" (test_uploads.py); past MAX_FORM_MEMORY_SIZE, a 413.
    response = client.post("/api/predict", data=bytes(300_000), content_type="multipart/form-data; boundary=elsewhere")
    assert response.status_code == 413 and "(or a wrong multipart boundary)" in response.get_json()["error"]


def test_body_that_is_not_multipart(client):
    response = client.post("/api/predict", data=encode_image("JPEG"), content_type="image/jpeg")
    assert response.status_code == 400
    assert "field named 'image'" in response.get_json()["error"]


def test_html_form_with_hostile_file(client, no_disk_writes, csrf_token):
    response = client.post("/predict", data={"image": (io.BytesIO(ELF), "evil.jpg"), "model": "tiny",
                                             "csrf_token": csrf_token}, content_type="multipart/form-data")
    assert response.status_code == 415
    assert UNSUPPORTED in response.get_data(as_text=True)


def test_large_upload_stays_in_memory(client, no_disk_writes):
    # Werkzeug would spool a file over 500 kB to disk; the app keeps it in memory.
    big = encode_image("PNG", size=(700, 700), seed=3)
    assert len(big) > 500_000
    assert post(client, {"image": (io.BytesIO(big), "big.png")}).status_code == 200


def predictions(client, image: bytes) -> dict:
    body = post(client, {"image": (io.BytesIO(image), "photo.jpg"), "top_k": "3"}).get_json()
    return {p["label"]: p["probability"] for p in body["predictions"]}


def test_exif_rotated_photo_predicts_like_upright(client):
    # A camera stores the sensor's pixels and an EXIF tag saying "turn 90 degrees clockwise".
    stored = Image.open(io.BytesIO(encode_image("PNG", size=(30, 18), seed=5))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    tagged = io.BytesIO()
    stored.save(tagged, "JPEG", quality=95, exif=exif)
    untagged = io.BytesIO()
    stored.save(untagged, "JPEG", quality=95)

    # The upright picture, from the same decoded pixels, turned by hand and saved losslessly.
    decoded = Image.open(io.BytesIO(untagged.getvalue())).convert("RGB")
    upright = io.BytesIO()
    decoded.transpose(Image.Transpose.ROTATE_270).save(upright, "PNG")

    expected = predictions(client, upright.getvalue())
    assert predictions(client, tagged.getvalue()) == pytest.approx(expected, abs=1e-6)
    assert predictions(client, untagged.getvalue()) != pytest.approx(expected, abs=1e-6)


def test_memory_stays_bounded_under_hostile_uploads(client):
    process = psutil.Process()
    payloads = [bomb_png(), huge_canvas_gif(), ELF, encode_image("PNG", size=(10000, 3))]
    for payload in payloads:  # warm up
        post(client, {"image": (io.BytesIO(payload), "x.png")})
    before = process.memory_info().rss
    for _ in range(10):
        for payload in payloads:
            post(client, {"image": (io.BytesIO(payload), "x.png")})
    assert process.memory_info().rss - before < 50 * 1024 * 1024
