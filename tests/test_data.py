import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DATASET_CLASSES, encode_image, write_image_folder
from trainer import data as data_module
from trainer.data import (SKETCH_SIZE, DataError, class_weights, data_name, digest, load_dataset, load_folder,
                          name_fingerprints, natural_size, overlap, overlap_words, picture_fingerprints, shared_pictures,
                          sketch, stratified_split, trained_on)


def test_folder_of_class_subfolders(image_folder):
    data = load_folder(image_folder, 8)
    assert data.classes == sorted(DATASET_CLASSES)
    assert data.images.shape == (30, 8, 8, 3) and data.images.dtype == np.uint8
    assert np.bincount(data.labels).tolist() == [10, 10, 10]
    # The class tint survives loading: "red" images are reddest.
    red = data.images[data.labels == data.classes.index("red")]
    assert red[..., 0].mean() > red[..., 1].mean() + 50


def test_zip_with_a_wrapper_folder_and_junk(tmp_path, capsys):
    folder = write_image_folder(tmp_path / "train", per_class=3)
    (folder / "README.txt").write_text("not a class")  # a file at class level is ignored
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in folder.rglob("*"):
            z.write(path, path.relative_to(tmp_path).as_posix())
        # As macOS's Compress writes it: folder entries too, which make __MACOSX a second top
        # folder beside the wrapper, unless it is left out.
        for entry in ("__MACOSX/", "__MACOSX/train/", "__MACOSX/train/red/"):
            z.writestr(entry, b"")
        z.writestr("__MACOSX/train/red/._0.png", b"resource fork")
        z.writestr("train/.DS_Store", b"junk")
    data = load_folder(archive, 8)
    assert data.classes == sorted(DATASET_CLASSES) and len(data.labels) == 9
    assert "skipped" not in capsys.readouterr().err  # junk is not an unreadable image
    assert data.name == "photos"
    # Each image is known by its class and path in the class folder, as in the unzipped folder.
    assert data.files.tolist()[:3] == ["blue/0.png", "blue/1.png", "blue/2.png"]
    unzipped = load_folder(folder, 8)
    assert digest(data.files) == digest(unzipped.files) and np.array_equal(data.labels, unzipped.labels)


def test_the_digest_tells_sets_of_images_apart_in_any_order(image_folder):
    files = load_folder(image_folder, 8).files
    assert digest(files) == digest(files[::-1])
    assert digest(files[1:]) != digest(files) != digest(np.char.replace(files, "0.png", "00.png"))


def test_a_small_sets_sketch_holds_it_whole_and_counts_exactly(image_folder):
    pictures = picture_fingerprints(load_folder(image_folder, 8).images)
    assert sketch(pictures) == sketch(pictures[::-1]) and len(sketch(pictures).split()) == 30
    assert overlap(pictures[:12], sketch(pictures[5:])) == (7, 12)  # every picture checked
    assert overlap(picture_fingerprints(load_folder(image_folder, 9).images), sketch(pictures)) == (0, 30)  # other pixels
    assert overlap_words(7, 12, 12, "of data") == "7 of the 12 images of data"


def test_the_training_pictures_are_told_by_their_pixels_whatever_their_names(image_folder, tmp_path):
    data = load_folder(image_folder, 8)
    card = {"training_pixels_sketch": sketch(picture_fingerprints(data.images[:20]))}
    renamed = tmp_path / "renamed"  # copies under other names: found
    for path in image_folder.rglob("*.png"):
        (renamed / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, renamed / path.parent.name / f"copy of {path.name}")
    assert trained_on(load_folder(renamed, 8), card) == (20, 30, "the same pixels")
    # Other pictures under the same names (a test folder numbered as the training one): none.
    assert trained_on(load_folder(write_image_folder(tmp_path / "other", seed=1), 8), card) == (0, 30, "the same pixels")
    # A card from before pixels kept names.
    old_card = {"training_sketch": sketch(name_fingerprints(data.files[:20]))}
    assert trained_on(load_folder(renamed, 8), old_card) == (0, 30, "by class and name")
    assert trained_on(data, old_card) == (20, 30, "by class and name") and trained_on(data, {}) is None


def test_a_large_sets_sketch_estimates_what_another_set_shares():
    names = name_fingerprints(np.array([f"class{i % 10}/{i}.jpg" for i in range(55_000)]))
    kept = sketch(names[:45_000])  # a CIFAR-10 training split
    assert len(kept.split()) == SKETCH_SIZE
    for shared in (10_000, 5_000, 500):  # test sets of 10,000 sharing that many images
        found, checked = overlap(names[45_000 - shared:][:10_000], kept)
        assert 150 < checked < 300 and abs(found / checked - shared / 10_000) < 0.05
    assert overlap(names[45_000:], kept)[0] == 0  # apart: never a false match
    assert overlap_words(20, 200, 10_000, "of test") == ("about 10% (20 of the 200 that could be checked) "
                                                         "of the 10,000 images of test")
    # Some found is never "0%", and some not found never "100%".
    assert overlap_words(2, 1_000, 50_000, "of test").startswith("under 1% (2 of ")
    assert overlap_words(999, 1_000, 50_000, "of test").startswith("over 99% (999 of ")


def test_the_sketchs_largest_fingerprint_is_checked_too():
    """Any image whose fingerprint is no larger than the sketch's largest is checked, that one included:
    a set sharing only that image with the training images is warned of."""
    names = name_fingerprints(np.array([f"class{i % 10}/{i}.jpg" for i in range(3_000)]))
    kept = sketch(names)
    assert overlap([max(kept.split())], kept) == (1, 1)
    assert overlap(names, kept) == (SKETCH_SIZE, SKETCH_SIZE)


def test_a_sample_found_whole_is_about_100_not_over_99():
    assert overlap_words(1_000, 1_000, 50_000, "of test").startswith("about 100% (1,000 of the 1,000 ")
    assert overlap_words(1, 1_000, 50_000, "of test").startswith("under 1% (1 of ")


def test_undecodable_file_names_are_sketched_and_found():
    """Linux gives a name that is not UTF-8 (a Latin-1 "café.png") as surrogate escapes, which digest keeps."""
    names = name_fingerprints(np.array(["red/caf\udce9.png", "red/0.png"]))
    assert overlap(names[:1], sketch(names)) == (1, 1)


@pytest.mark.parametrize("kept", [None, 7, "", "not hex", "0123456789abcdef  fedcba9876543210", "0123456789ABCDEF"])
def test_what_is_no_sketch_checks_nothing(kept):  # a card from before sketches, or edited by hand
    assert overlap(["0123456789abcdef"], kept) is None


def test_italian_animals10_names_become_english(tmp_path):
    for italian in ("cane", "gatto", "ragno"):
        (tmp_path / "raw-img" / italian).mkdir(parents=True)
        Image.new("RGB", (20, 30)).save(tmp_path / "raw-img" / italian / "x.jpeg")
    assert load_folder(tmp_path / "raw-img", 8).classes == ["cat", "dog", "spider"]
    # A notebook's model numbers them as its folders sort: cane, gatto, ragno.
    assert load_folder(tmp_path / "raw-img", 8, folder_order=True).classes == ["dog", "cat", "spider"]


def test_folder_order_is_that_of_the_folders_as_named_on_macos(tmp_path):
    # A notebook's model numbers its outputs as the folders' names sort: "e" and an accent (NFD)
    # put "école" before "zèbre", where spelled as typed (NFC) "é" sorts after "z".
    for folder in ("chat", "e\u0301cole", "ze\u0300bre"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (20, 30)).save(tmp_path / folder / "x.jpeg")
    assert load_folder(tmp_path, 8, folder_order=True).classes == ["chat", "\u00e9cole", "z\u00e8bre"]
    assert load_folder(tmp_path, 8).classes == ["chat", "z\u00e8bre", "\u00e9cole"]  # training's own order: as typed


def test_zip_with_a_wrapper_folder_and_a_loose_file_at_its_root(tmp_path):
    archive = tmp_path / "myphotos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for italian in ("cane", "gatto"):
            z.writestr(f"myphotos/{italian}/x.jpeg", encode_image("JPEG"))
        z.writestr("LICENSE.txt", "not a class member")
    assert load_folder(archive, 8).classes == ["cat", "dog"]


def test_zip_with_windows_backslash_names(tmp_path, image_folder):
    archive = tmp_path / "photos.zip"  # as PowerShell 5's Compress-Archive writes them
    with zipfile.ZipFile(archive, "w") as z:
        for path in image_folder.rglob("*.png"):
            z.write(path, "photos\\" + str(path.relative_to(image_folder)).replace("/", "\\"))
    data = load_folder(archive, 8)
    assert data.classes == sorted(DATASET_CLASSES) and len(data.labels) == 30


def test_zip_with_names_written_from_the_root_reads_as_unzipped(tmp_path, image_folder):
    archive = tmp_path / "photos.zip"  # unzip strips the "/" ("stripped absolute path spec")
    with zipfile.ZipFile(archive, "w") as z:
        for n, path in enumerate(sorted(image_folder.rglob("*.png"))):
            z.writestr(("/" if n % 2 else "") + path.relative_to(image_folder).as_posix(), path.read_bytes())
    data = load_folder(archive, 8)
    assert data.classes == sorted(DATASET_CLASSES) and len(data.labels) == 30


def test_zip_with_utf8_names_not_flagged_as_utf8(tmp_path):
    folder = write_image_folder(tmp_path / "photos", per_class=2, classes=["café", "日本"])
    archive = tmp_path / "photos.zip"  # as Linux's zip and macOS write them: UTF-8 bytes, no UTF-8 flag
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(folder.rglob("*.png")):  # ASCII stand-ins of the names' byte lengths
            z.write(path, str(path.relative_to(folder)).replace("café", "caf__").replace("日本", "ri_ben"))
    raw = archive.read_bytes()
    archive.write_bytes(raw.replace(b"caf__", "café".encode()).replace(b"ri_ben", "日本".encode()))
    assert zipfile.ZipFile(archive).infolist()[0].flag_bits & 0x800 == 0
    data = load_folder(archive, 8)
    assert data.classes == ["café", "日本"] and digest(data.files) == digest(load_folder(folder, 8).files)

    # A name in a legacy code page is read as the zip format says: cp437.
    archive.write_bytes(raw.replace(b"caf__", "café".encode("cp437") + b"_"))
    assert load_folder(archive, 8).classes[0] == "café_"


def test_italian_names_become_english_only_in_an_all_animals10_set(tmp_path):
    for labels in (["cane", "dog"], ["cane", "ship"]):
        for label in labels:
            (tmp_path / "-".join(labels) / label).mkdir(parents=True)
            Image.new("RGB", (20, 30)).save(tmp_path / "-".join(labels) / label / "x.jpeg")
        assert load_folder(tmp_path / "-".join(labels), 8).classes == labels


def test_italian_names_are_english_for_scoring_only_a_model_that_knows_them_so(tmp_path):
    for italian in ("cane", "gatto"):
        (tmp_path / "test" / italian).mkdir(parents=True)
        Image.new("RGB", (20, 30)).save(tmp_path / "test" / italian / "x.jpeg")
    assert load_folder(tmp_path / "test", 8, classes=["cat", "dog", "spider"]).classes == ["cat", "dog", "spider"]
    # A model trained on cane, gatto and zebra (its own class, so nothing was translated) kept them.
    scored = load_folder(tmp_path / "test", 8, classes=["cane", "gatto", "zebra"])
    assert scored.classes == ["cane", "gatto", "zebra"] and sorted(scored.labels) == [0, 1]


def test_class_names_that_read_alike_are_one_class_spelled_as_the_model_spells_it(tmp_path):
    # macOS zips write "é" as "e" and a combining accent (NFD); typed, it is one character (NFC).
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    for folder, label in (("typed", nfc), ("typed", "th\u00e9"), ("mac", nfd), ("mac", "the\u0301"), ("both", nfc),
                          ("both", nfd)):
        (tmp_path / folder / label).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / folder / label / f"{len(list((tmp_path / folder).rglob('*.png')))}.png")
    typed = load_folder(tmp_path / "typed", 8)
    assert typed.classes == [nfc, "th\u00e9"] and load_folder(tmp_path / "mac", 8).classes == typed.classes
    assert load_folder(tmp_path / "mac", 8, classes=typed.classes).labels.tolist() == [0, 1]
    assert load_folder(tmp_path / "typed", 8, classes=[nfd, "the\u0301"]).classes == [nfd, "the\u0301"]  # an older card's
    both = load_folder(tmp_path / "both", 8, classes=[nfc, "tea"])
    assert both.classes == [nfc, "tea"] and both.labels.tolist() == [0, 0]


def test_a_data_set_named_on_macos_goes_by_its_name_as_typed(tmp_path):
    # Its card's, and the default model name's: donne_es_scratch, split at the accent.
    nfd = tmp_path / "Donne\u0301es"
    for label in ("cat", "dog"):
        (nfd / label).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(nfd / label / "1.png")
    shutil.make_archive(str(tmp_path / "E\u0301te\u0301"), "zip", nfd)
    assert data_name(str(nfd)) == load_folder(nfd, 8).name == "Donn\u00e9es"
    assert data_name(str(tmp_path / "E\u0301te\u0301.zip")) == "\u00c9t\u00e9"


def test_a_folder_and_its_zip_made_on_macos_give_the_same_images_in_the_same_order(tmp_path):
    # NFC "è" sorts after "f", NFD "e" and a combining accent before it: the order, and so the
    # held-out split, would differ; and the names, and so the card's digests.
    names = {"cr\u00e8me.png": "cre\u0300me.png", "crf.png": "crf.png"}
    with zipfile.ZipFile(tmp_path / "mac.zip", "w") as archive:
        for shade, (typed, mac) in enumerate(names.items()):
            for label in ("a", "b"):
                (tmp_path / "typed" / label).mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 8), (shade * 200,) * 3).save(tmp_path / "typed" / label / typed)
                archive.write(tmp_path / "typed" / label / typed, f"{label}/{mac}")
    typed, mac = load_folder(tmp_path / "typed", 8), load_folder(tmp_path / "mac.zip", 8)
    assert mac.files.tolist() == typed.files.tolist() == ["a/crf.png", "a/cr\u00e8me.png", "b/crf.png", "b/cr\u00e8me.png"]
    np.testing.assert_array_equal(mac.images, typed.images)
    assert digest(mac.files) == digest(typed.files)


def test_class_folders_whose_names_differ_only_in_case_or_spaces_are_refused(image_folder):
    for twin in ("Red", "blue "):
        shutil.copytree(image_folder / twin.strip().lower(), image_folder / twin)
    with pytest.raises(DataError, match=r"names differ only in case or spaces: 'Red' and 'red'; 'blue' and 'blue '; "
                                        r"merge or rename them$"):
        load_folder(image_folder, 8)


def test_a_class_of_only_unreadable_files_is_refused_by_name(image_folder):
    for other in ("green", "blue"):
        shutil.rmtree(image_folder / other)
    (image_folder / "misc").mkdir()
    (image_folder / "misc" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not an image")
    with pytest.raises(DataError, match=r"classes with no readable images: misc \(1 unusable file\(s\)\)"):
        load_folder(image_folder, 8)


def test_empty_class_folders_are_left_out_with_a_warning(tmp_path, image_folder, capsys):
    (image_folder / "empty").mkdir()
    (image_folder / "hidden").mkdir()
    (image_folder / "hidden" / ".DS_Store").write_bytes(b"junk")
    assert load_folder(image_folder, 8).classes == sorted(DATASET_CLASSES)
    assert capsys.readouterr().err == f"warning: left out empty class folder(s) in {image_folder}: empty, hidden\n"
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(image_folder.rglob("*")):
            z.write(path, "photos/" + path.relative_to(image_folder).as_posix())
    assert load_folder(archive, 8).classes == sorted(DATASET_CLASSES)
    assert capsys.readouterr().err.endswith(": empty, hidden\n")


def test_the_clutter_windows_and_macos_leave_is_neither_read_nor_warned_of(tmp_path, image_folder, capsys):
    for name in ("blue/Thumbs.db", "red/desktop.ini", "red/Icon\r", "green/thumbs.db", "misc/Thumbs.db"):
        (image_folder / name).parent.mkdir(exist_ok=True)
        (image_folder / name).write_bytes(b"\xd0\xcf\x11\xe0 not an image")
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(image_folder.rglob("*")):
            z.write(path, path.relative_to(image_folder).as_posix())
    for given in (image_folder, archive):
        data = load_folder(given, 8)
        assert data.classes == sorted(DATASET_CLASSES) and len(data.labels) == 30
        # A folder of nothing else is empty, as Windows' Explorer and macOS's Finder show it.
        assert capsys.readouterr().err == f"warning: left out empty class folder(s) in {given}: misc\n"


def test_odd_modes_and_a_corrupt_file_among_good_ones(image_folder, capsys):
    Image.new("L", (9, 9), 80).save(image_folder / "red" / "gray.png")
    Image.new("CMYK", (9, 9)).save(image_folder / "red" / "cmyk.jpg")
    Image.new("P", (9, 9)).save(image_folder / "red" / "palette.gif")
    Image.new("RGBA", (9, 9)).save(image_folder / "red" / "alpha.png")
    Image.fromarray(np.full((9, 9), 40000, dtype=np.uint16)).save(image_folder / "red" / "deep.png")
    (image_folder / "green" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (image_folder / "blue" / "notes.txt").write_text("hello")
    data = load_folder(image_folder, 8)
    assert len(data.labels) == 35
    assert "skipped 2 file(s)" in capsys.readouterr().err


def test_skipped_files_are_named_with_the_reason(image_folder, capsys):
    for name in ("blue/clip.mp4", "blue/notes\n.doc", "green/notes.txt", "red/a.txt", "red/b.txt"):
        (image_folder / name).write_text("not an image")
    (image_folder / "green" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    load_folder(image_folder, 8)
    err = capsys.readouterr().err
    assert "skipped 6 file(s)" in err and "and 1 more" in err and "red/b.txt" not in err
    assert "\n  blue/clip.mp4: Not a readable image (accepted formats: JPEG," in err
    assert "\n  blue/notes\\n.doc: Not a readable image" in err  # one line each, a line break in a name too
    assert "\n  green/broken.jpg: The JPEG file is damaged or incomplete.\n" in err


def test_a_file_too_large_for_an_image_is_skipped_unread(image_folder, capsys):
    huge = image_folder / "red" / "huge.png"
    huge.touch()
    os.truncate(huge, 300_000_000_000)  # sparse: no disk used, but reading it would fill any memory
    assert len(load_folder(image_folder, 8).labels) == 30
    assert ("\n  red/huge.png: It is too large (300.0 GB) for an image; the limit is 512 MB.\n"
            in capsys.readouterr().err)
    assert natural_size(str(image_folder), 224) == 16


def test_a_zip_member_too_large_for_an_image_is_skipped_unread(tmp_path, image_folder, capsys, monkeypatch):
    monkeypatch.setattr(data_module, "MAX_FILE_BYTES", 1_000_000)  # so as not to write a huge member
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(image_folder.rglob("*.png")):
            z.write(path, path.relative_to(image_folder).as_posix())
        z.writestr("blue/clip.mp4", bytes(2_000_000))
    assert len(load_folder(archive, 8).labels) == 30
    assert "\n  blue/clip.mp4: It is too large (2.0 MB) for an image; the limit is 1.0 MB.\n" in capsys.readouterr().err


def test_natural_size_is_the_backbones_or_the_images_own_if_far_smaller(tmp_path, image_folder):
    assert natural_size(str(image_folder), 224) == 16  # the fixture's 16 px images are not enlarged
    assert natural_size(str(image_folder), 24) == 24  # over half the backbone's size: loaded at it
    assert natural_size(str(image_folder), 32) == 16  # exactly half: its own, as CIFAR-10's 32 px for VGG16's 64
    photos = tmp_path / "photos"
    for label, sizes in {"cat": [(300, 200), (640, 480)], "dog": [(500, 500), (1000, 90)]}.items():
        (photos / label).mkdir(parents=True)
        for n, size in enumerate(sizes):
            Image.new("RGB", size).save(photos / label / f"{n}.jpg")
    (photos / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert natural_size(str(photos), 1000) == 340  # the median shorter side of the readable ones
    assert natural_size(str(photos), 600) == 600
    assert natural_size(str(photos), 224) == 224
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in photos.rglob("*.jpg"):
            z.write(path, path.relative_to(tmp_path).as_posix())
    assert natural_size(str(archive), 1000) == 340
    assert natural_size("cifar10", 224) == 32 and natural_size("cifar10", 64) == 32


def test_a_damaged_zip_member_is_skipped_like_a_broken_image(tmp_path, image_folder, capsys):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for path in sorted(image_folder.rglob("*.png")):
            z.write(path, path.relative_to(image_folder).as_posix())
    raw = bytearray(archive.read_bytes())
    first = zipfile.ZipFile(archive).infolist()[0]
    raw[first.header_offset + 30 + len(first.filename) + 40] ^= 0xFF  # inside its data: a bad CRC
    archive.write_bytes(bytes(raw))
    data = load_folder(archive, 8)
    assert len(data.labels) == 29
    err = capsys.readouterr().err
    assert f"skipped 1 file(s) in {archive} that cannot be used:\n  {first.filename}: The zip entry is damaged" in err


def test_symlinked_class_folders_subfolders_and_files_are_followed(tmp_path, image_folder, capsys):
    elsewhere = write_image_folder(tmp_path / "elsewhere", per_class=2, classes=["violet", "more", "single"])
    (image_folder / "violet").symlink_to(elsewhere / "violet", target_is_directory=True)
    (image_folder / "red" / "more").symlink_to(elsewhere / "more", target_is_directory=True)
    (image_folder / "red" / "single.png").symlink_to(elsewhere / "single" / "0.png")
    data = load_folder(image_folder, 8)
    assert data.classes == sorted(DATASET_CLASSES + ["violet"]) and len(data.labels) == 35
    assert {"violet/0.png", "red/more/1.png", "red/single.png"} <= set(data.files.tolist())
    assert capsys.readouterr().err == ""


def test_a_symlink_loop_in_a_class_folder_is_walked_once(image_folder, capsys):
    (image_folder / "red" / "self").symlink_to(".", target_is_directory=True)
    (image_folder / "red" / "loop").symlink_to("..", target_is_directory=True)
    data = load_folder(image_folder, 8)
    assert len(data.labels) == 30 and len(set(data.files.tolist())) == 30
    assert capsys.readouterr().err == ""


def test_one_class_is_refused_for_training_but_fine_for_evaluating(image_folder):
    for other in ("green", "blue"):
        shutil.rmtree(image_folder / other)
    with pytest.raises(DataError, match=r"has one class subfolder \(red\); a classifier needs two or more"):
        load_folder(image_folder, 8)
    assert len(load_folder(image_folder, 8, classes=DATASET_CLASSES).labels) == 10


def test_a_class_folder_name_that_is_not_utf8_is_refused(image_folder):
    # caf\xe9: Latin-1; its name would go into the card and the pages, which must be text.
    os.rename(os.path.join(os.fsencode(image_folder), b"red"), os.path.join(os.fsencode(image_folder), b"caf\xe9"))
    with pytest.raises(DataError, match="has class folder names that are not UTF-8: caf\ufffd; rename them$"):
        load_folder(image_folder, 8)


def test_a_class_folder_name_with_a_line_break_is_refused(image_folder):
    # It would break the lines that name it: predict's output, the training report.
    os.rename(image_folder / "red", image_folder / "re\nd")
    with pytest.raises(DataError, match=r"has class folder names with control characters, which would break the "
                                        r"lines that name them: 're\\nd'; rename them$"):
        load_folder(image_folder, 8)


def test_a_train_and_test_split_of_class_folders_is_not_taken_for_two_classes(tmp_path):
    write_image_folder(tmp_path / "download" / "train")
    write_image_folder(tmp_path / "download" / "Test")
    message = (r"download holds Test and train folders of class subfolders, not classes: pass one of those folders "
               r"instead \(to train: the training one, with the test one as --test-data\)")
    with pytest.raises(DataError, match=message):
        load_folder(tmp_path / "download", 8)
    assert load_folder(tmp_path / "download" / "train", 8).classes == sorted(DATASET_CLASSES)
    # A test folder of unlabelled images, as some downloads have, does not hide the layout.
    shutil.rmtree(tmp_path / "download" / "Test")
    (tmp_path / "download" / "test").mkdir()
    (tmp_path / "download" / "test" / "1.png").write_bytes(encode_image())
    with pytest.raises(DataError, match="download holds test and train folders"):
        load_folder(tmp_path / "download", 8)


@pytest.mark.parametrize("splits", [("training_set", "test_set"), ("seg_train", "seg_test"), ("train", "test1")])
def test_a_split_with_other_names_is_not_taken_for_classes_either(tmp_path, splits):
    for split in splits:
        write_image_folder(tmp_path / "download" / split)
    with pytest.raises(DataError, match=f"download holds {' and '.join(sorted(splits))} folders of class subfolders"):
        load_folder(tmp_path / "download", 8)


def test_a_zipped_split_is_to_be_unzipped_before_one_of_its_folders_is_passed(tmp_path):
    for split in ("train", "val"):
        write_image_folder(tmp_path / "download" / split)
    shutil.make_archive(str(tmp_path / "download"), "zip", tmp_path / "download")
    with pytest.raises(DataError, match=r"download\.zip holds train and val folders of class subfolders, not classes: "
                                        r"unzip it and pass one of those folders instead"):
        load_folder(tmp_path / "download.zip", 8)


def test_a_folder_of_data_sets_is_trained_on_with_a_warning_that_names_their_classes(tmp_path, capsys):
    # Two downloads unzipped side by side: the model would learn to tell them apart.
    write_image_folder(tmp_path / "both" / "raw-img", per_class=2, classes=["cane", "gatto", "ragno"])
    shutil.copytree(tmp_path / "both" / "raw-img" / "cane", tmp_path / "both" / "raw-img" / "pecora")
    write_image_folder(tmp_path / "both" / "train", per_class=2, classes=["cat", "dog"])
    assert load_folder(tmp_path / "both", 8).classes == ["raw-img", "train"]  # a layout photos may have too
    out, err = capsys.readouterr()
    assert err == (f"warning: each class folder of {tmp_path / 'both'} holds its images in folders of its own "
                   "(raw-img/: cane, gatto, pecora and 1 more; train/: cat, dog): if those are the classes, "
                   "pass one of raw-img, train as --data instead\n")
    assert f"Reading 12 files of 2 classes (raw-img, train) from {tmp_path / 'both'}..." in out
    load_folder(tmp_path / "both" / "train", 8)
    assert capsys.readouterr().err == ""


def test_images_beside_the_class_folders_are_named_as_left_out(image_folder, capsys):
    (image_folder / "chelsea.jpg").write_bytes(encode_image())  # meant for a class, put one level too high
    (image_folder / "README.txt").write_text("about these pictures")  # no slip: not an image
    (image_folder / ".DS_Store").write_bytes(b"clutter")
    load_folder(image_folder, 8)
    assert capsys.readouterr().err == (f"warning: left out 1 image beside the class folders of {image_folder} "
                                       "(chelsea.jpg): an image is read only in its class's folder\n")


def test_classes_named_like_splits_are_classes_when_they_hold_images(tmp_path):
    for label in ("train", "test"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for n in range(3):
            (tmp_path / "data" / label / f"{n}.png").write_bytes(encode_image())
    assert load_folder(tmp_path / "data", 8).classes == ["test", "train"]


def test_labels_follow_a_given_class_order(image_folder):
    # A model's card order, not the folders' (alphabetical), as when evaluating on a subset.
    order = ["violet", "red", "green", "blue"]
    data = load_folder(image_folder, 8, classes=order)
    assert data.classes == order
    assert [data.classes[label] for label in data.labels] == [file.split("/")[0] for file in data.files]
    assert sorted(set(data.labels.tolist())) == [1, 2, 3]  # no violet folder
    shutil.copytree(image_folder / "red", image_folder / "mauve")
    shutil.copytree(image_folder / "red", image_folder / "blue ")
    with pytest.raises(DataError, match=r"has classes the model does not know: 'blue ', 'mauve' "
                                        r"\(it knows 'blue', 'green', 'red'\)$"):
        load_folder(image_folder, 8, classes=["blue", "green", "red"])


@pytest.mark.parametrize("setup, message", [
    (lambda p: p / "missing", "No such"),
    (lambda p: (p / "x.txt").write_text("hi") and p / "x.txt", "neither a folder nor a .zip"),
    (lambda p: p, "no class subfolders"),
    (lambda p: os.mkfifo(p / "pipe") or p / "pipe", "neither a folder nor a .zip"),
])
def test_unusable_data_gives_a_clear_error(tmp_path, setup, message):
    with pytest.raises(DataError, match=message):
        load_folder(setup(tmp_path), 8)


def test_a_zip_cut_short_is_called_so(image_folder, tmp_path):
    whole = shutil.make_archive(str(tmp_path / "data"), "zip", image_folder)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(Path(whole).read_bytes()[:2000])
    with pytest.raises(DataError, match=r"cut.zip is not a whole .zip .*: copy or download it again"):
        load_folder(cut, 8)
    # A download saved under another name, or a zip's name on a web server's error page.
    cut.rename(tmp_path / "data.download")
    (tmp_path / "page.zip").write_text("<html>404 Not Found</html>")
    for path in (tmp_path / "data.download", tmp_path / "page.zip"):
        with pytest.raises(DataError, match=f"{path} is not a whole .zip"):
            load_folder(path, 8)


def test_shared_pictures_are_found_by_their_pixels_not_their_names(image_folder, tmp_path):
    # A test folder numbered like the training one (cat/0001.png in each) shares no picture by that.
    test = tmp_path / "test"
    for entry, source in (("red/0.png", "red/0.png"), ("red/new.png", "blue/0.png"), ("green/0.png", "green/1.png")):
        (test / entry).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image_folder / source, test / entry)
    (test / "blue").mkdir()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(test / "blue" / "0.png")  # a name the data has, another picture
    seen = set(picture_fingerprints(load_folder(image_folder, 16).images))
    assert shared_pictures(load_folder(test, 16).images, seen) == 3
    assert shared_pictures(load_folder(image_folder, 16).images[:0], seen) == 0


def test_stratified_split_is_seeded_disjoint_and_per_class():
    labels = np.repeat(np.arange(4), [50, 30, 11, 13])
    train, held = stratified_split(labels, 0.2, seed=3)
    assert np.bincount(labels[held]).tolist() == [10, 6, 2, 3]  # 2.2 and 2.6 rounded to the nearest
    assert not set(train) & set(held) and len(train) + len(held) == len(labels)
    again, _ = stratified_split(labels, 0.2, seed=3)
    other, _ = stratified_split(labels, 0.2, seed=4)
    assert (again == train).all() and not (other == train).all()


def test_split_refuses_a_class_too_small_to_hold_out_saying_what_helps():
    with pytest.raises(DataError, match=r"class pear has too few images \(2\) to hold out a share of 0.8 and train "
                                        r"on the rest: add images, or hold out less$"):
        stratified_split(np.array([0, 0, 0, 0, 0, 1, 1]), 0.8, seed=0, classes=["apple", "pear"])
    # At least one is held out: for a class of one, holding out less would not help.
    with pytest.raises(DataError, match=r"class pear has too few images \(1\) to hold out a share of 0.2 and train "
                                        r"on the rest: add images: one of every class is held out, so each needs two "
                                        r"or more$"):
        stratified_split(np.array([0, 0, 0, 1]), 0.2, seed=0, classes=["apple", "pear"])


def test_class_weights_balance_an_imbalanced_set():
    weights = class_weights(np.array([0] * 30 + [1] * 10), 2)
    assert weights.tolist() == pytest.approx([40 / 60, 40 / 20])
    assert class_weights(np.array([0, 1, 0, 1]), 2).tolist() == [1.0, 1.0]


def test_cifar10_offline_names_the_folder_alternative(monkeypatch):
    def offline():
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/: None -- [Errno -3]")

    monkeypatch.setattr("keras.datasets.cifar10.load_data", offline)
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10", 32)
    message = str(caught.value)
    assert message.startswith("Could not download CIFAR-10 (URL fetch failure on https://www.cs.toronto.edu/: ")
    assert "--data PATH" in message and "Traceback" not in message and len(message.splitlines()) == 1


def test_cifar10_online_gives_train_and_test(monkeypatch):
    fake = (np.zeros((4, 32, 32, 3), np.uint8), np.arange(4).reshape(4, 1)), (np.zeros((2, 32, 32, 3), np.uint8), np.array([[1], [2]]))
    monkeypatch.setattr("keras.datasets.cifar10.load_data", lambda: fake)
    train, test = load_dataset("cifar10", 16)
    assert train.images.shape == (4, 16, 16, 3) and test.labels.tolist() == [1, 2]
    assert train.classes == data_module.CIFAR10_CLASSES
    assert train.files.tolist() == ["0", "1", "2", "3"]  # by index: the download's order is fixed
