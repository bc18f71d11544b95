"""Which parts of a picture an answer rests on, found by occlusion: each part in turn is covered
with the picture's mean colour, and the drop in the answer's probability says how much the
model needed that part. It takes forward passes only, so it works for every saved model on
every backend, test-time views inside the model included; Grad-CAM would need gradients,
which each backend takes its own way, and a convolution layer to look into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

# A covered square's side, as a share of the picture's, and squares per row and per column:
# overlapping, so each pixel is covered 1 to 9 times and the map comes out smooth. Chosen by
# bench/explain.py on the shipped model's held-out images: as telling as 7 x 7 squares of a
# quarter side, and at half the cost (BENCHMARKS.md).
PATCH_SHARE = 0.375
STEPS = 5
# Images per forward pass: STEPS**2 covered ones and the picture itself in two, few enough to
# keep a large model's memory in bounds.
CHUNK = 13
# A drop smaller than this (2 points of probability) is noise: the map says nothing.
MIN_DROP = 0.02
# How bright the parts that did not matter stay in the spotlight picture: dim, still visible.
DIM = 0.25


@dataclass(frozen=True)
class Occlusion:
    label: str
    probability: float  # the label's, on the whole picture
    drops: np.ndarray  # (STEPS, STEPS): how much covering each square lowered it, top row first

    @property
    def largest_drop(self) -> float:
        return float(self.drops.max())

    @property
    def telling(self) -> bool:
        """Whether some part mattered: else the model rests on no single part of the picture."""
        return self.largest_drop >= MIN_DROP


def occlude(predict: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray, index: int,
            label: str) -> Occlusion:
    """How much covering each of STEPS x STEPS overlapping squares of `pixels` (H, W, 3, as the
    model takes them) lowers the probability `predict` gives class `index`."""
    height, width = pixels.shape[:2]
    covered = [covering(pixels, np.s_[top:bottom, left:right]) for top, left, bottom, right in _boxes(height, width)]
    # The picture itself goes in the same passes: alone, in a batch of one, its probability can
    # differ in the last digits, which would show as drops where nothing mattered.
    probabilities = _predict_in_chunks(predict, np.stack([pixels.astype(np.float32), *covered]))[:, index]
    drops = probabilities[0] - probabilities[1:]
    return Occlusion(label, float(probabilities[0]), drops.reshape(STEPS, STEPS))


def warm_up(predict: Callable[[np.ndarray], np.ndarray], size: tuple[int, int]) -> None:
    """Run `predict` once on a batch of the shape `occlude` sends: the first one traces the model
    for that shape (0.8 s for the shipped model on two cores, against 0.16 s later)."""
    predict(np.zeros((CHUNK, *size, 3), np.float32))


def spotlight(picture: np.ndarray, occlusion: Occlusion) -> np.ndarray:
    """`picture` (any size, uint8 RGB) lit where covering lowered the answer most, dimmed where
    it did not matter. For a telling occlusion: on another, all is dim."""
    lit = DIM + (1 - DIM) * heat(occlusion, *picture.shape[:2])
    return np.uint8(picture * lit[..., np.newaxis])


def heat(occlusion: Occlusion, height: int, width: int) -> np.ndarray:
    """How much each pixel of a picture of that size mattered, from 0 to 1: the drops spread over
    the pixels each square covered, scaled to the largest; none where covering raised the answer."""
    total = np.zeros((height, width))
    cover = np.zeros((height, width))
    for drop, (top, left, bottom, right) in zip(occlusion.drops.ravel(), _boxes(height, width)):
        total[top:bottom, left:right] += drop
        cover[top:bottom, left:right] += 1
    mean = np.clip(total / cover, 0, None)
    # Smoothed through a 16th of the size, as the squares' edges would otherwise show as steps;
    # never through fewer cells than squares a side, which would blur a small picture's map flat.
    small = Image.fromarray(mean.astype(np.float32)).resize((max(STEPS, width // 16), max(STEPS, height // 16)),
                                                            Image.Resampling.BOX)
    smooth = np.asarray(small.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64)
    return np.clip(smooth / max(smooth.max(), MIN_DROP), 0, 1)


def _boxes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """The squares, as (top, left, bottom, right), row by row; together they cover every pixel."""
    patch_height, patch_width = max(1, round(height * PATCH_SHARE)), max(1, round(width * PATCH_SHARE))
    tops = np.linspace(0, height - patch_height, STEPS).round().astype(int)
    lefts = np.linspace(0, width - patch_width, STEPS).round().astype(int)
    return [(top, left, top + patch_height, left + patch_width) for top in tops for left in lefts]


def covering(pixels: np.ndarray, where) -> np.ndarray:
    """`pixels` as floats, with the part `where` (a square's slices, or a mask) in their mean colour."""
    copy = pixels.astype(np.float32)
    copy[where] = pixels.mean(axis=(0, 1))
    return copy


def _predict_in_chunks(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
    """`predict` on CHUNK images at a time, the last chunk filled up with copies of the first
    image: passes of one shape, so a model's compiled predict function is traced once for them."""
    count = len(images)
    filled = np.concatenate([images, np.repeat(images[:1], -count % CHUNK, axis=0)])
    return np.concatenate([predict(filled[start:start + CHUNK]) for start in range(0, len(filled), CHUNK)])[:count]
