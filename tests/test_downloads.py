"""webapp.downloads: a usable model's .h5 and card as downloads, and nothing else from the disk."""

import json
import os
import shutil
from urllib.parse import quote

import numpy as np
import pytest

from conftest import SMALL_CLASSES
from webapp.registry import Registry


def test_a_model_and_its_card_download_as_their_files_and_the_model_loads(client, models_dir, tmp_path):
    import keras

    response = client.get("/models/small/model.h5")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-hdf5"
    assert response.headers["Content-Disposition"] == "attachment; filename=small.h5"
    assert response.data == (models_dir / "small.h5").read_bytes()
    assert response.headers["Content-Length"] == str(len(response.data))
    saved = tmp_path / "small.h5"
    saved.write_bytes(response.data)
    probabilities = keras.saving.load_model(saved).predict_on_batch(np.zeros((1, 24, 24, 3), np.float32))
    assert probabilities.shape == (1, len(SMALL_CLASSES))

    response = client.get("/models/small/card.json")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Disposition"] == "attachment; filename=small.json"
    assert response.data == (models_dir / "small.json").read_bytes()
    assert json.loads(response.data)["classes"] == SMALL_CLASSES

    head = client.head("/models/small/model.h5")
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == str(len(saved.read_bytes()))


def test_a_name_with_dots_has_its_page_and_its_downloads_apart(client, models_dir):
    # A model may be named "tiny.h5" (tiny.h5.h5): its page must not be tiny's download.
    for name in ("cifar.v2", "tiny.h5"):
        shutil.copy(models_dir / "small.h5", models_dir / f"{name}.h5")
        shutil.copy(models_dir / "small.json", models_dir / f"{name}.json")
    response = client.get("/models/cifar.v2/model.h5")
    assert response.headers["Content-Disposition"] == "attachment; filename=cifar.v2.h5"
    assert response.data == (models_dir / "small.h5").read_bytes()
    page = client.get("/models/tiny.h5")
    assert page.status_code == 200 and "<h1>tiny.h5</h1>" in page.get_data(as_text=True)
    assert client.get("/models/tiny.h5/model.h5").headers["Content-Disposition"] == "attachment; filename=tiny.h5.h5"


def test_a_name_with_a_newline_downloads_under_a_name_a_header_can_carry(client, models_dir):
    for suffix in (".h5", ".json"):
        shutil.copy(models_dir / f"small{suffix}", models_dir / f"two\nlines{suffix}")
    for url, sent in (("/models/two%0Alines/model.h5", "two_lines.h5"), ("/models/two%0Alines/card.json", "two_lines.json")):
        response = client.get(url)
        assert response.status_code == 200 and response.headers["Content-Disposition"] == f"attachment; filename={sent}"


@pytest.mark.parametrize(("name", "plain"), [("café", "cafe.h5"), ("猫", "%E7%8C%AB.h5"), ("a猫", "a%E7%8C%AB.h5")])
def test_a_name_that_is_not_ascii_downloads_under_it_and_an_ascii_one_that_keeps_its_letters(client, models_dir, name,
                                                                                                plain):
    for suffix in (".h5", ".json"):  # curl -OJ reads only filename, which Werkzeug's would give as ".h5" for 猫
        shutil.copy(models_dir / f"small{suffix}", models_dir / f"{name}{suffix}")
    response = client.get(f"/models/{quote(name)}/model.h5")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f"attachment; filename={plain}; filename*=UTF-8''{quote(name)}.h5"


@pytest.mark.parametrize("url", [
    "/models/..%2Fsecret/model.h5",  # the folder above, where a model file and its card wait
    "/models/..%2F..%2Fsecret/card.json",
    "/models/%2e%2e/model.h5",
    "/models/tiny%2F..%2F..%2Fsecret/model.h5",
    "/models/tiny/../../secret/model.h5",
    "/models/.tiny.a1b2c3/model.h5",  # a save's temporary files, .NAME.*
    "/models/.tiny.a1b2c3/card.json",
    "/models/notes.txt/model.h5",  # files that are not models
    "/models/orphan/card.json",
    "/models/tiny.json/model.h5",
    "/models/tiny/tiny.h5",
    "/models/tiny/model.json",
    "/models/tiny.h5",
])
def test_nothing_but_a_listed_models_files_can_be_downloaded(client, models_dir, url):
    secret = b"\x89HDF\r\n\x1a\n a secret"
    (models_dir.parent / "secret.h5").write_bytes(secret)
    shutil.copy(models_dir / "tiny.json", models_dir.parent / "secret.json")
    shutil.copy(models_dir / "tiny.h5", models_dir / ".tiny.a1b2c3.h5")
    shutil.copy(models_dir / "tiny.json", models_dir / ".tiny.a1b2c3.json")
    (models_dir / "notes.txt").write_text("notes")
    shutil.copy(models_dir / "tiny.json", models_dir / "orphan.json")
    response = client.get(url)
    assert response.status_code == 404
    assert "Content-Disposition" not in response.headers and response.mimetype == "text/html"
    assert b"a secret" not in response.data and b"HDF" not in response.data


def test_an_unknown_model_is_a_404_page_that_says_so(client):
    response = client.get("/models/nope/model.h5")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and "Unknown model &#39;nope&#39;." in page
    assert '<a class="button" href="/models">See all models</a>' in page


def test_a_model_that_cannot_be_used_is_not_offered(client, models_dir):
    (models_dir / "tiny.h5").write_bytes(b"\x89HDF\r\n\x1a\n damaged")
    for url in ("/models/tiny/model.h5", "/models/tiny/card.json"):
        response = client.get(url)
        assert response.status_code == 404 and b"damaged" not in response.data
        assert ("Model &#39;tiny&#39; cannot be used, so it is not offered for download; its page says why."
                in response.get_data(as_text=True))


def racing(monkeypatch, change):
    """Have `change` happen to the folder just after the registry has looked the model up."""
    info = Registry.info

    def looked_up(self, name):
        found = info(self, name)
        change()
        return found

    monkeypatch.setattr(Registry, "info", looked_up)


def test_a_file_removed_as_it_is_asked_for_is_a_404_not_a_500(client, models_dir, monkeypatch):
    racing(monkeypatch, lambda: (models_dir / "tiny.h5").unlink(missing_ok=True))
    response = client.get("/models/tiny/model.h5")
    assert response.status_code == 404
    assert "Model &#39;tiny&#39; has just been removed from the models folder." in response.get_data(as_text=True)


@pytest.mark.parametrize("suffix", [".h5", ".json"])
def test_a_file_replaced_as_it_is_asked_for_is_not_sent_before_it_is_checked(client, models_dir, monkeypatch, suffix):
    def replace():
        shutil.copy(models_dir / f"small{suffix}", models_dir / "new")
        os.replace(models_dir / "new", models_dir / f"tiny{suffix}")

    url = f"/models/tiny/{'model.h5' if suffix == '.h5' else 'card.json'}"
    racing(monkeypatch, replace)
    response = client.get(url)
    assert response.status_code == 503
    assert "Model &#39;tiny&#39; has just been replaced; ask again in a moment." in response.get_data(as_text=True)

    monkeypatch.undo()  # asked again: the new version, checked, is sent
    response = client.get(url)
    assert response.status_code == 200 and response.data == (models_dir / f"small{suffix}").read_bytes()


def test_a_file_that_cannot_be_read_is_a_503(client, monkeypatch):
    def unreadable(self, info, suffix):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Registry, "open_file", unreadable)
    response = client.get("/models/tiny/model.h5")
    assert response.status_code == 503
    assert "Model &#39;tiny&#39; cannot be read just now (Permission denied)." in response.get_data(as_text=True)


def test_a_browser_asking_again_gets_a_304_until_the_file_changes(client, models_dir):
    first = client.get("/models/tiny/model.h5")
    # The pages' policy: kept out of shared caches, asked about each time.
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get("/models/tiny/card.json").headers["ETag"] != etag
    for condition in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = client.get("/models/tiny/model.h5", headers=condition)
        assert again.status_code == 304 and again.data == b""

    shutil.copy(models_dir / "small.h5", models_dir / "new.h5")
    os.replace(models_dir / "new.h5", models_dir / "tiny.h5")  # retrained: same name, a new file
    again = client.get("/models/tiny/model.h5", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.data == (models_dir / "small.h5").read_bytes()
    assert again.headers["ETag"] != etag


def test_a_download_of_a_version_no_longer_there_is_refused_without_the_file(client):
    # A download tool resuming a file checks it is the same one: If-Match, or If-Unmodified-Since.
    first = client.get("/models/tiny/model.h5")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    for condition in ({"If-Match": etag}, {"If-Match": "*"}, {"If-Unmodified-Since": modified},
                      {"If-Match": etag, "If-Unmodified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"}):
        assert client.get("/models/tiny/model.h5", headers=condition).data == first.data, condition
    for condition in ({"If-Match": '"another"'}, {"If-Unmodified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"}):
        refused = client.get("/models/tiny/model.h5", headers=condition | {"Range": "bytes=100-"})
        assert refused.status_code == 412 and b"its file has changed since" in refused.data, condition
        assert len(refused.data) < 10_000 and "ETag" not in refused.headers


def test_a_resumed_download_gets_the_rest_and_a_range_not_understood_the_whole_file(client, models_dir):
    whole = (models_dir / "tiny.h5").read_bytes()
    part = client.get("/models/tiny/model.h5", headers={"Range": "bytes=100-"})
    assert part.status_code == 206 and part.data == whole[100:]
    assert client.get("/models/tiny/model.h5", headers={"Range": "bytes=-10"}).data == whole[-10:]
    # The last N bytes of a shorter file are all of it, not a 416.
    longer = client.get("/models/tiny/model.h5", headers={"Range": f"bytes=-{len(whole) + 1}"})
    assert longer.status_code == 206 and longer.data == whole
    assert longer.headers["Content-Range"] == f"bytes 0-{len(whole) - 1}/{len(whole)}"
    past_the_end = client.get("/models/tiny/model.h5", headers={"Range": f"bytes={len(whole)}-"})
    assert past_the_end.status_code == 416 and past_the_end.headers["Content-Range"] == f"bytes */{len(whole)}"
    # The last 0 bytes: a range none of the file is in, not a range not understood.
    for asked in ("bytes=-0", "Bytes=-00"):
        nothing = client.get("/models/tiny/model.h5", headers={"Range": asked})
        assert nothing.status_code == 416 and nothing.headers["Content-Range"] == f"bytes */{len(whole)}", asked
    # What is not one range of bytes is ignored, as the standard says, and the whole file sent.
    for asked in ("bytes=abc", "bytes=9-2", "items=0-5", "bytes=0-1,5-6"):
        response = client.get("/models/tiny/model.h5", headers={"Range": asked})
        assert response.status_code == 200 and response.data == whole, asked


def test_a_file_refused_by_its_conditions_is_closed(client, monkeypatch):
    opened = []
    open_file = Registry.open_file
    monkeypatch.setattr(Registry, "open_file", lambda *args: opened.append(open_file(*args)) or opened[-1])
    assert client.get("/models/tiny/model.h5", headers={"Range": "bytes=99999999-"}).status_code == 416
    assert client.get("/models/tiny/model.h5", headers={"If-Match": '"another"'}).status_code == 412
    assert len(opened) == 2 and all(file.closed for file in opened)


def test_a_range_of_a_copy_that_is_current_gets_a_304_and_a_weak_if_range_the_whole_file(client, models_dir):
    whole = (models_dir / "tiny.h5").read_bytes()
    first = client.get("/models/tiny/model.h5")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    # The cache's copy is current: 304 before any range (RFC 9110, 13.2.2).
    for condition in ({"If-None-Match": etag}, {"If-None-Match": f"W/{etag}"}, {"If-Modified-Since": modified},
                      {"If-None-Match": etag, "If-Range": etag}):
        again = client.get("/models/tiny/model.h5", headers=condition | {"Range": "bytes=100-"})
        assert again.status_code == 304 and again.data == b"", condition
    # Another copy: the range is served (If-None-Match rules If-Modified-Since out).
    other = client.get("/models/tiny/model.h5", headers={"If-None-Match": '"another"', "If-Modified-Since": modified,
                                                         "Range": "bytes=100-"})
    assert other.status_code == 206 and other.data == whole[100:]
    assert client.get("/models/tiny/model.h5", headers={"If-Range": etag, "Range": "bytes=100-"}).data == whole[100:]
    # If-Range compares strongly (13.1.5): a weak tag never matches, and the whole file comes.
    weak = client.get("/models/tiny/model.h5", headers={"If-Range": f"W/{etag}", "Range": "bytes=100-"})
    assert weak.status_code == 200 and weak.data == whole


def test_with_downloads_off_there_is_nothing_to_download(client_without_downloads):
    for url in ("/models/tiny/model.h5", "/models/tiny/card.json"):
        response = client_without_downloads.get(url)
        assert response.status_code == 404 and "There is nothing at this address." in response.get_data(as_text=True)
