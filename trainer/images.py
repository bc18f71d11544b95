"""Turning image files into RGB pixel arrays.

The trainer (reading data sets) goes through `load_rgb`, the web app (reading uploads)
through its two steps, `decode` then `resized` (to cut several sizes from one decoding), so a
picture gets exactly the same pixels in evaluation and in serving.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from PIL import ExifTags, Image, PngImagePlugin

# Photo formats accepted from strangers, recognised by content, never by file name: Pillow's
# name for each, its MIME type and the bytes a file of it starts with. TIFF and EPS are left
# out on purpose: rare for photos and risky to parse (EPS runs Ghostscript).
UPLOAD_FORMATS = {
    "JPEG": ("image/jpeg", rb"\xff\xd8\xff"),
    "PNG": ("image/png", rb"\x89PNG\r\n\x1a\n"),
    "GIF": ("image/gif", rb"GIF8[79]a"),
    "BMP": ("image/bmp", rb"BM.{12}[\x0c\x28\x34\x38\x40\x6c\x7c]\x00{3}"),  # and a header size Pillow reads
    "WEBP": ("image/webp", rb"RIFF....WEBP"),
}

# Data sets on one's own disk may also hold TIFFs.
DATASET_FORMATS = (*UPLOAD_FORMATS, "TIFF")


def format_names(formats: tuple[str, ...]) -> str:
    """Pillow's format names as people write them: "JPEG, PNG or WebP"."""
    names = [name.replace("WEBP", "WebP") for name in formats]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


# Decompression-bomb guard: a phone's full-resolution 50-megapixel photo (8160 x 6120) is
# fine, a 30,000 x 30,000 PNG is not.
MAX_PIXELS = 50_000_000
PIXEL_LIMIT = f"the limit is {MAX_PIXELS // 1_000_000} megapixels"

# Pillow's names for a JPEG file: an MPO (a phone's photo with a depth map) is one with more
# pictures after it, decoded alike.
JPEG_KINDS = ("JPEG", "MPO")

# Scans a JPEG may hold: encoders write about ten, and libjpeg goes over every block of the image
# for each, so a 4 MB one of 120,000 near-empty scans took 43 s to decode at 1 megapixel.
MAX_SCANS = 100

# Reads Pillow may make of one file: it parses JPEG markers, PNG chunks and GIF blocks in
# Python, two or three reads each, so 10 MB of empty ones kept a worker 5-45 s (a page reads an
# upload several times). Photos take under 100, a 10 MB PNG in libpng's 8 kB chunks about 4,000.
MAX_READS = 50_000

# Pillow's own bomb check raises at twice its limit; ours comes first with a clearer message.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# EXIF orientation -> the turn that makes the picture upright.
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}


class ImageError(ValueError):
    """An image that cannot be used; the message is meant for the person who sent it."""


def upload_format(data: bytes) -> str | None:
    """The accepted upload format a file's first bytes announce (None: not one of them)."""
    return next((name for name, (_, start) in UPLOAD_FORMATS.items() if re.match(start, data, re.DOTALL)), None)


def jpeg_scans(data: bytes) -> int:
    """A JPEG's start-of-scan markers, counted in its bytes: coded data stuffs a 0 after each 0xFF,
    so only an EXIF thumbnail or an MPO's other pictures can make it count more."""
    return data.count(b"\xff\xda")


def load_rgb(
    data: bytes,
    size: tuple[int, int] | None = None,
    *,
    formats: tuple[str, ...] = tuple(UPLOAD_FORMATS),
) -> np.ndarray:
    """Decode an image file's bytes into a uint8 array of shape (H, W, 3).

    EXIF orientation is applied, any mode (grayscale, palette, RGBA, CMYK, 16-bit) becomes
    RGB, animations give their first frame, and `size=(height, width)` resizes.
    """
    image = decode(data, max(size) if size is not None else None, formats=formats)
    return resized(image, size) if size is not None else np.asarray(image, dtype=np.uint8)


def decode(
    data: bytes,
    side: int | None = None,
    *,
    formats: tuple[str, ...] = tuple(UPLOAD_FORMATS),
    scans: int | None = None,
) -> Image.Image:
    """The first step of `load_rgb`: the image as 8-bit RGB, turned upright, at full size or,
    for a JPEG, at the smallest scale still no smaller than a square of `side`. Several sizes
    can then be cut from one decoding with `resized`. `scans`: the file's `jpeg_scans`, where
    the caller has counted them already."""
    try:
        with opened_image(data, formats) as image:
            if refusal := _refusal(image, _scans(image, data, scans)):
                raise ImageError(refusal)
            if side is not None:
                # A JPEG can be decoded at 1/2 to 1/8 scale, still no smaller than wanted:
                # a 12-megapixel photo bound for 32 px decodes 3-4x faster (BENCHMARKS.md).
                image.draft(None, (side, side))
            image.load()
            return _to_rgb(_upright(image))  # leaving the block closes the file, not the loaded pixels
    except ImageError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageError(f"Image is too large; {PIXEL_LIMIT}.") from error
    except Exception as error:  # Pillow raises many types for broken files
        kind = upload_format(data)
        if kind == "PNG" and "MAX_TEXT" in str(error):  # its caps on text and colour profiles, unpacked
            raise ImageError(f"The PNG file's metadata is too large to read (over "
                             f"{PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MB unpacked): save it without metadata."
                             ) from error
        if kind in formats:  # one of ours by its first bytes, so cut short or corrupted
            raise ImageError(f"The {format_names((kind,))} file is damaged or incomplete.") from error
        raise ImageError(f"Not a readable image (accepted formats: {format_names(formats)}).") from error


@contextlib.contextmanager
def opened_image(data: bytes, formats=tuple(UPLOAD_FORMATS)) -> Iterator[Image.Image]:
    """The image in `data` with its header read and nothing decoded yet. Pillow's warnings (odd
    EXIF, palettes or MPO data, sizes near its bomb limit) are silenced: our own checks say what is wrong."""
    stream = _CountedReads(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(stream, formats=list(formats)) as image:
            if image.format == "BMP" and image.tile[0][0] == "bmp_rle":
                stream.reads_left = math.inf  # decoded a byte or two a read, charged by its pixels instead
            yield image


class _CountedReads(io.BytesIO):
    """A file's bytes, refused with ImageError after MAX_READS reads."""

    PARTS = {"JPEG": "markers", "PNG": "chunks", "GIF": "blocks"}  # what Pillow reads one by one

    def __init__(self, data: bytes):
        super().__init__(data)
        self.kind = upload_format(data)
        self.reads_left = MAX_READS

    def read(self, size: int | None = -1) -> bytes:
        self.reads_left -= 1
        if self.reads_left < 0:
            name = format_names((self.kind,)) if self.kind else "image"
            raise ImageError(f"The {name} file has too many {self.PARTS.get(self.kind, 'parts')} to read; "
                             "an image editor would save the picture in far fewer.")
        return super().read(size)


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (a copy only when turned). Not Pillow's
    `exif_transpose`, which also rewrites the EXIF and so fails on a photo with one mistyped tag."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # EXIF that cannot be read says nothing of the orientation
        return image
    turn = UPRIGHT.get(orientation)
    return image.transpose(turn) if turn is not None else image


def _scans(image: Image.Image, data: bytes, counted: int | None) -> int:
    """An opened JPEG's scans, 0 for other formats: `counted` where its caller has counted them,
    as an upload does once for all its decodings (`jpeg_scans` takes 9 ms for 10 MB)."""
    if image.format not in JPEG_KINDS:
        return 0
    return jpeg_scans(data) if counted is None else counted


def _refusal(image: Image.Image, scans: int) -> str | None:
    """Why `decode` refuses an opened image before decoding any of it, if it does."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        return f"Image is too large ({width} x {height} pixels); {PIXEL_LIMIT}."
    if scans > MAX_SCANS:
        return f"The JPEG file has {scans} scans, too many to decode; the limit is {MAX_SCANS}."
    return None


def draft_size(data: bytes, side: int) -> tuple[int, int] | None:
    """The size at which `decode(data, side)` decodes a JPEG (its own, or 1/2 to 1/8 of it, as
    stored, before it is turned upright), read from its header: sides that give one size give
    the same pixels, so can share one decoding. None for the other formats, decoded alike for
    every side, and for a file that `decode` will refuse with the reason."""
    if upload_format(data) != "JPEG":
        return None
    try:
        with opened_image(data, ["JPEG"]) as image:
            image.draft(None, (side, side))
            return image.size
    except Exception:  # Pillow raises many types for broken files
        return None


def decoding_pixels(data: bytes, sides: Iterable[int], scans: int | None = None,
                    draft: Callable[[int], tuple[int, int] | None] | None = None) -> int:
    """The pixels `decode(data, side)` will decode for all of `sides`, read from the header,
    sides that give the same `draft_size` counted once: a baseline JPEG's at the scale it is
    decoded at, any other image's at full size and once. A progressive JPEG's at full size for
    each scale: every coefficient is decoded before scaling, so 1/8 scale took as long as full
    size (0.56 s against 0.58 for a 49-megapixel one, where a baseline one took 0.12 s against
    0.33), once for every ten scans. 0 for a file that `decode` refuses before decoding
    anything: its header unreadable, over MAX_PIXELS or MAX_SCANS. A run-length coded BMP is
    charged more. `scans` as for `decode`; `draft`: a side's `draft_size`, where the caller
    keeps them (an upload reads each once for its charge and its decodings)."""
    try:
        with opened_image(data) as image:
            scans = _scans(image, data, scans)
            if _refusal(image, scans):
                return 0
            full = image.width * image.height
            if image.format == "BMP" and image.tile[0][0] == "bmp_rle":
                # Pillow runs length-coded BMPs through Python: 48 megapixels took 3.3 s, 6 a PNG's time.
                return full * 6
            if image.format not in JPEG_KINDS:
                return full
            drafts = {draft(side) if draft else draft_size(data, side) for side in sides}
            if image.info.get("progressive"):
                # Each scan goes over the whole image: the full size was measured for ten.
                return full * max(1, scans // 10) * len(drafts)
            return sum(width * height for width, height in drafts)
    except Exception:  # Pillow raises many types for broken files, and one for bombs
        return 0


def resized(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """A decoded image's pixels at `size`, (height, width)."""
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def shrunk(image: Image.Image, side: int) -> np.ndarray:
    """A decoded image's pixels shrunk in proportion to fit a square of `side` (never enlarged),
    the image itself left as it was."""
    if max(image.size) > side:
        image = image.copy()
        image.thumbnail((side, side))
    return np.asarray(image, dtype=np.uint8)


# 16-bit grey in 8 bits, floor(v * 255 / 65535), by table: float64 arithmetic on a 50-megapixel
# PNG took 2.5 s and 1.2 GB more memory; the table takes 0.3 s and gives the same levels.
SIXTEEN_TO_EIGHT_BITS = (np.arange(65536, dtype=np.uint32) * 255 // 65535).astype(np.uint8)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, putting transparency on white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # Pillow's own conversion clips 16-bit and float images; scale them instead.
        if image.mode.startswith("I;16"):
            values = np.asarray(image)
            gray = SIXTEEN_TO_EIGHT_BITS[values]
        else:
            values = np.asarray(image, dtype=np.float64)
            top = 65535.0 if values.max() > 255 else 255.0
            gray = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        if "transparency" in image.info:  # a PNG's colour key: that grey is transparent
            gray[values == image.info["transparency"]] = 255
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode in ("P", "L", "RGB") and "transparency" in image.info:
        image = image.convert("RGBA")  # a palette's transparent entries, or a PNG's colour key
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")  # convert() would copy it
