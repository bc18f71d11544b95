import io
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin, PngImagePlugin

from webapp.config import ROOT

from trainer import images
from trainer.images import (DATASET_FORMATS, UPLOAD_FORMATS, ImageError, decode, decoding_pixels, draft_size,
                            format_names, load_rgb, shrunk, upload_format)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge canvas but carries almost no data: a decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def sized_jpeg(data: bytes, width: int, height: int) -> bytes:
    """A baseline JPEG whose header (SOF0) declares another size, with the data of its own."""
    start = data.index(b"\xff\xc0") + 5  # past the marker, its length and the sample precision
    return data[:start] + struct.pack(">HH", height, width) + data[start + 4:]


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "LA", "CMYK", "1", "I;16", "I", "F"])
def test_every_mode_becomes_rgb(mode):
    image = Image.new("RGB", (12, 8), (200, 40, 90)).convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    pixels = load_rgb(encode(image, fmt), formats=DATASET_FORMATS)
    assert pixels.shape == (8, 12, 3) and pixels.dtype == np.uint8


def test_sixteen_bit_gray_is_scaled_not_clipped():
    values = np.array([[0, 256, 257, 32768, 65279, 65535]], dtype=np.uint16)  # 32768: mid-grey in 16 bits
    pixels = load_rgb(encode(Image.fromarray(values), "PNG"))
    assert pixels[0, :, 0].tolist() == [0, 0, 1, 127, 254, 255]  # floor(v * 255 / 65535), in every channel
    assert (pixels == pixels[..., :1]).all()
    # 32-bit gray (TIFF) within 0-255 is taken as 8-bit: white stays white.
    white = Image.fromarray(np.full((4, 4), 255, dtype=np.int32), "I")
    assert (load_rgb(encode(white, "TIFF"), formats=DATASET_FORMATS) == 255).all()


def test_transparency_is_put_on_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert (load_rgb(encode(image, "PNG")) == 255).all()
    palette = Image.new("P", (4, 4), 0)  # a GIF's or PNG's transparent palette entry, black beneath
    palette.putpalette([0, 0, 0] * 256)
    assert (load_rgb(encode(palette, "PNG", transparency=0)) == 255).all()


def test_a_colour_key_is_put_on_white_too():
    # A PNG's tRNS chunk in an RGB, grey or 16-bit grey image: pixels of that value are transparent.
    pixels = np.zeros((4, 4, 3), np.uint8)
    pixels[1:3, 1:3] = (200, 30, 30)
    keyed = load_rgb(encode(Image.fromarray(pixels), "PNG", transparency=(0, 0, 0)))
    assert (keyed[0, 0] == 255).all() and (keyed[1, 1] == (200, 30, 30)).all()
    grey = load_rgb(encode(Image.fromarray(pixels[..., 0]), "PNG", transparency=0))
    assert (grey[0, 0] == 255).all() and (grey[1, 1] == 200).all()
    deep = load_rgb(encode(Image.fromarray(pixels[..., 0].astype(np.uint16) * 257), "PNG", transparency=0))
    assert (deep[0, 0] == 255).all() and (deep[1, 1] == 200).all()


def exif_jpeg(image: Image.Image, entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A JPEG of `image` with an EXIF block written by hand: (tag, type, count, value) each, so
    that a tag can have the wrong type, as some cameras and editors write them."""
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", *entry[:3]) + entry[3] for entry in entries)
    app1 = b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd + b"\0\0\0\0"
    data = encode(image, "JPEG", quality=95)
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (30, 10), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 10))  # white square on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    pixels = load_rgb(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert pixels.shape == (30, 10, 3)
    assert pixels[:10].mean() > 200 and pixels[20:].mean() < 50  # the square is now on top


def test_a_photo_with_a_mistyped_exif_tag_is_still_turned_upright():
    image = Image.new("RGB", (30, 10), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 10))
    orientation, resolution_as_text = (0x0112, 3, 1, struct.pack("<HH", 6, 0)), (0x011A, 2, 3, b"ab\0\0")
    pixels = load_rgb(exif_jpeg(image, [orientation, resolution_as_text]))
    assert pixels.shape == (30, 10, 3) and pixels[:10].mean() > 200


def test_unreadable_exif_leaves_the_picture_as_stored():
    app1 = b"Exif\0\0" + b"MM\0*" + b"\xff" * 20  # a TIFF header pointing nowhere
    data = encode(Image.new("RGB", (30, 10)), "JPEG")
    assert load_rgb(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]).shape == (10, 30, 3)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_exif_that_pillow_refuses_to_read_leaves_the_picture_as_stored(fmt):
    # Pillow 13 swallows a JPEG's unreadable EXIF itself (the test above), but raises for a PNG's
    # or WebP's: only these reach _upright's own `except`.
    data = encode(Image.new("RGB", (30, 10)), fmt, exif=b"Exif\0\0XX*\0\x08\0\0\0")  # no TIFF byte order
    with pytest.raises(SyntaxError, match="not a TIFF file"):
        Image.open(io.BytesIO(data)).getexif()
    assert load_rgb(data).shape == (10, 30, 3)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def flooded(fmt: str, parts: int) -> bytes:
    """A small picture with `parts` empty markers, chunks or blocks in it, each read on its own."""
    data = encode(Image.new("RGB" if fmt != "GIF" else "P", (16, 16)), fmt)
    if fmt == "JPEG":  # empty comments after the start marker
        return data[:2] + b"\xff\xfe\x00\x02" * parts + data[2:]
    if fmt == "PNG":  # empty private chunks after the header chunk
        return data[:33] + png_chunk(b"prVt", b"") * parts + data[33:]
    start = 13 + 3 * 2 ** ((data[10] & 7) + 1)  # past the header and the global colour table
    return data[:start] + b"\x21\xfe" + b"\x01a" * parts + b"\x00" + data[start:]  # a comment of 1-byte blocks


@pytest.mark.parametrize(("fmt", "parts"), [("JPEG", "markers"), ("PNG", "chunks"), ("GIF", "blocks")])
def test_a_file_of_too_many_parts_is_refused_unread(fmt, parts):
    # Pillow reads each in Python: 10 MB of empty ones kept a worker busy for seconds.
    assert load_rgb(flooded(fmt, 1_000)).shape == (16, 16, 3)
    with pytest.raises(ImageError, match=f"^The {fmt} file has too many {parts} to read; an image editor would"):
        load_rgb(flooded(fmt, 30_000))
    empty_data = encode(Image.new("RGB", (16, 16)), "PNG")  # and after the header: empty data chunks
    end = empty_data.rindex(b"IEND") - 4
    with pytest.raises(ImageError, match="too many chunks"):
        load_rgb(empty_data[:end] + png_chunk(b"IDAT", b"") * 30_000 + empty_data[end:])


def test_the_reads_are_not_counted_for_a_run_length_coded_bmp(monkeypatch):
    # Pillow decodes one in Python a byte or two a read; it is charged by its pixels (decoding_pixels).
    monkeypatch.setattr(images, "MAX_READS", 5)
    assert load_rgb(rle_bmp()).shape == (1, 2, 3)
    with pytest.raises(ImageError, match="too many chunks"):
        load_rgb(encode(Image.new("RGB", (4, 4)), "PNG"))


def test_resize_to_height_and_width():
    assert load_rgb(encode(Image.new("RGB", (50, 20)), "PNG"), size=(8, 6)).shape == (8, 6, 3)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (6, 6), color) for color in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    pixels = load_rgb(data)
    assert pixels[..., 0].mean() > 200 and pixels[..., 2].mean() < 50


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageError, match="too large"):
        load_rgb(png_header_only(30_000, 30_000))


def test_an_image_just_over_the_limit_is_refused_without_pillows_warning():
    # Past MAX_PIXELS but under Pillow's error at twice it: Pillow would warn, with its own path.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageError, match=r"Image is too large \(9000 x 7000 pixels\)"):
            load_rgb(png_header_only(9000, 7000))
    with pytest.raises(ImageError, match="damaged or incomplete"):  # at the limit: read, and found short of data
        load_rgb(png_header_only(10_000, 5_000))


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"%!PS-Adobe-3.0 EPSF-3.0\n"])
def test_unreadable_bytes_raise_image_error(data):
    with pytest.raises(ImageError, match=r"Not a readable image \(accepted formats: JPEG, PNG, GIF, BMP or WebP\)"):
        load_rgb(data)


def test_format_names_are_written_as_people_write_them():
    assert format_names(tuple(UPLOAD_FORMATS)) == "JPEG, PNG, GIF, BMP or WebP"
    assert format_names(DATASET_FORMATS).endswith("WebP or TIFF")
    assert format_names(("PNG",)) == "PNG"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "WEBP"])
@pytest.mark.parametrize("cut", [18, 0.5])  # 18: just the bytes that say the format
def test_a_cut_short_image_is_called_damaged_not_unreadable(fmt, cut):
    data = encode(Image.new("RGB", (64, 64), (10, 200, 30)), fmt)
    with pytest.raises(ImageError, match=f"The {format_names((fmt,))} file is damaged or incomplete."):
        load_rgb(data[:cut] if isinstance(cut, int) else data[:int(len(data) * cut)])


def test_a_png_with_too_much_metadata_is_told_so_not_called_damaged():
    # Photoshop's XMP can grow to megabytes; packed, it is a few kilobytes of the file.
    metadata = PngImagePlugin.PngInfo()
    metadata.add_itxt("XML:com.adobe.xmp", "<x/>" * 500_000, zip=True)
    data = encode(Image.new("RGB", (8, 8)), "PNG", pnginfo=metadata)
    with pytest.raises(ImageError, match=r"^The PNG file's metadata is too large to read \(over 1 MB unpacked\)"):
        load_rgb(data)


def test_a_bomb_past_pillows_own_limit_is_told_the_limit():
    with pytest.raises(ImageError, match="Image is too large; the limit is 50 megapixels."):
        load_rgb(png_header_only(12_000, 12_000))


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_big_jpeg_is_decoded_at_reduced_scale_to_nearly_the_same_pixels(mode, monkeypatch):
    decoded_sizes = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def recorded_draft(image, *args):
        result = draft(image, *args)
        decoded_sizes.append(image.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recorded_draft)
    rng = np.random.default_rng(3)
    smooth = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((1600, 1200))
    data = encode(smooth.convert(mode), "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as image:
        full = np.asarray(image.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR), dtype=int)
    reduced = load_rgb(data, (32, 32)).astype(int)
    assert decoded_sizes == [(200, 150)]  # an eighth of 1600 x 1200: the smallest scale still over 32 px
    assert reduced.shape == (32, 32, 3) and np.abs(reduced - full).mean() < 1.0


@pytest.mark.parametrize("fmt", ["JPEG", "MPO"])
def test_a_baseline_jpeg_is_charged_the_pixels_it_is_decoded_at(fmt):
    photo = Image.new("RGB", (1600, 1200))
    data = encode(photo, fmt, **({"save_all": True, "append_images": [photo]} if fmt == "MPO" else {}))
    width, height = decode(data, 32).size
    assert decoding_pixels(data, [32]) == width * height == 200 * 150


def test_sides_decoded_alike_are_charged_once():
    # 1600x1200 decodes at 200x150 for 32 and 64 px, at 400x300 for 224; a PNG whole for any side.
    jpeg = encode(Image.new("RGB", (1600, 1200)), "JPEG")
    assert decoding_pixels(jpeg, [32, 64]) == 30_000 and decoding_pixels(jpeg, [32, 224]) == 150_000
    progressive = encode(Image.new("RGB", (1600, 1200)), "JPEG", progressive=True)
    assert decoding_pixels(progressive, [32, 64]) == 1_920_000 and decoding_pixels(progressive, [32, 224]) == 3_840_000
    assert decoding_pixels(encode(Image.new("RGB", (400, 300)), "PNG"), [32, 224]) == 120_000


def test_scans_counted_by_the_caller_are_taken_as_given():
    data = encode(Image.new("L", (100, 100)), "JPEG", progressive=True)  # six scans
    assert decoding_pixels(data, [32], scans=25) == 20_000 and decoding_pixels(data, [32], scans=101) == 0
    with pytest.raises(ImageError, match="101 scans"):
        decode(data, 32, scans=101)


def scans_repeated(progressive: bytes, copies: int) -> bytes:
    """A progressive JPEG with its last scan sent `copies` more times: libjpeg decodes each again."""
    last = progressive.rindex(b"\xff\xda")
    return progressive[:-2] + progressive[last:-2] * copies + progressive[-2:]


def test_a_progressive_jpeg_is_charged_its_full_size_for_every_ten_scans():
    data = encode(Image.new("L", (100, 100)), "JPEG", progressive=True)  # six scans
    assert [decoding_pixels(scans_repeated(data, copies), [32]) for copies in (0, 14, 24)] == [10_000, 20_000, 30_000]


def test_a_jpeg_of_too_many_scans_is_refused_before_decoding():
    data = scans_repeated(encode(Image.new("L", (100, 100)), "JPEG", progressive=True), 100)
    with pytest.raises(ImageError, match="The JPEG file has 106 scans, too many to decode; the limit is 100."):
        decode(data, 32)
    assert decoding_pixels(data, [32]) == 0


def rle_bmp() -> bytes:
    """A 2 x 1 BMP, run-length coded in 8 bits."""
    header = struct.pack("<IiiHHIIiiII", 40, 2, 1, 1, 8, 1, 4, 0, 0, 0, 0)
    body = b"\x02\x00\x00\x01"  # two pixels of colour 0, end of bitmap
    return b"BM" + struct.pack("<IHHI", 54 + 1024 + 4, 0, 0, 54 + 1024) + header + bytes(1024) + body


def test_a_run_length_coded_bmp_is_charged_six_times_its_pixels():
    data = rle_bmp()
    assert decode(data, 32).size == (2, 1) and decoding_pixels(data, [32]) == 12


def test_tiff_is_for_data_sets_not_uploads():
    data = encode(Image.new("RGB", (4, 4)), "TIFF")
    with pytest.raises(ImageError):
        load_rgb(data)
    assert load_rgb(data, formats=DATASET_FORMATS).shape == (4, 4, 3)


def test_an_upload_format_is_read_from_content_not_name(make_image):
    assert upload_format(make_image("PNG")) == "PNG"
    assert upload_format(make_image("JPEG")) == "JPEG"
    assert upload_format(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    # Two letters are not enough to call a file a damaged BMP: a BMP's header size follows.
    assert upload_format(b"BMW service invoice\n" * 10) is None
    assert [upload_format(encode(Image.new("RGB", (4, 4)), "BMP")), upload_format(rle_bmp())] == ["BMP", "BMP"]


def test_shrunk_keeps_proportions_and_never_enlarges():
    assert shrunk(decode(encode(Image.new("RGB", (1600, 900)), "JPEG"), 640), 640).shape == (360, 640, 3)
    assert shrunk(decode(encode(Image.new("RGB", (32, 20)), "PNG"), 640), 640).shape == (20, 32, 3)


def test_a_large_image_is_held_in_memory_once(tmp_path):
    # A 36-megapixel PNG of 200 kB decodes to 144 MB (Pillow keeps RGB in 4 bytes a pixel): at
    # 4 threads per web worker, each extra copy would cost hundreds of MB. Measured in a fresh
    # process, as the growth of its peak resident memory (VmHWM: ru_maxrss would count pytest's).
    array = np.zeros((6000, 6000, 3), np.uint8)
    array[::7] = 200
    path = tmp_path / "big.png"
    Image.fromarray(array).save(path)
    del array
    script = """
import sys
from trainer.images import load_rgb
def peak():
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
data = open(sys.argv[1], "rb").read()
before = peak()
load_rgb(data, size=(32, 32))
print(peak() - before)
"""
    grown = int(subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout)
    assert grown < 1.5 * 6000 * 6000 * 4, f"{grown / 1e6:.0f} MB"


def test_the_size_a_jpeg_decodes_at_is_read_from_its_header_alone():
    photo = encode(Image.new("RGB", (400, 300), "teal"), "JPEG")
    for side in (16, 32, 37, 75, 76, 224, 300, 1000):
        assert draft_size(photo, side) == decode(photo, side).size, side
    assert draft_size(photo, 32) == (50, 38) and draft_size(photo, 224) == (400, 300)
    # Other formats decode alike for every side; a broken JPEG is for decode to refuse.
    assert draft_size(encode(Image.new("RGB", (400, 300)), "PNG"), 32) is None
    assert draft_size(photo[:200], 32) is None
    # One just over the limit is refused by decode, without Pillow's warning from either.
    large = sized_jpeg(photo, 9000, 7000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert draft_size(large, 32) == (1125, 875)
        with pytest.raises(ImageError, match=r"Image is too large \(9000 x 7000 pixels\)"):
            decode(large, 32)
    assert caught == []
