"""Training batches: shuffled, flipped and shifted (and cut out) in NumPy, on the CPU, while
the device trains on the previous batch. (Keras' RandomFlip and RandomTranslation layers in
the model took a GPU step from 2-3 ms to 300 ms, as the GPU machine's own notes measured.)"""

from __future__ import annotations

import math

import keras
import numpy as np

from trainer.data import Dataset, class_weights


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled training batches with random flips and shifts (and cutout, and CutMix) done in
    NumPy, one-hot labels and class-balancing sample weights. With `alternate_flip`, an image is
    mirrored in every other epoch, starting in the first or the second at random."""

    def __init__(self, data: Dataset, hp: dict):
        super().__init__(workers=2)  # the next batch is augmented while this one trains
        pad = hp["translate"]
        self.padded = np.pad(data.images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        self.labels = keras.utils.to_categorical(data.labels, len(data.classes)).astype(np.float32)
        # Every class weighs the same in the loss however many images it has (all 1 when balanced).
        self.sample_weights = class_weights(data.labels, len(data.classes))[data.labels]
        self.batch_size, self.pad, self.cutout, self.cutmix = hp["batch_size"], pad, hp["cutout"], hp["cutmix"]
        self.size = data.images.shape[1:3]
        self.seed = hp["seed"]
        self.mirrored_first = None
        if hp["alternate_flip"]:
            self.mirrored_first = np.random.default_rng(self.seed).random(len(self.labels)) < 0.5
        self.set_epoch(0)

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def indices(self, index):
        """The images of batch `index` in this epoch's order. Every batch is full: the last one
        ends at the epoch's last image, so it repeats a few of the batch before, since a batch
        of another size makes JAX compile the training step again (13 s on an H200)."""
        start = max(0, min(index * self.batch_size, len(self.labels) - self.batch_size))
        return self.order[start:start + self.batch_size]

    def __getitem__(self, index):
        chosen = self.indices(index)
        # A generator per batch: batches made by parallel workers stay reproducible.
        rng = np.random.default_rng((self.seed, self.epoch, index))
        flip = None if self.mirrored_first is None else self.mirrored_first[chosen] ^ bool(self.epoch % 2)
        batch = augment(self.padded[chosen], self.size, self.pad, self.cutout, rng, flip)
        labels, weights = self.labels[chosen], self.sample_weights[chosen]
        if self.cutmix and rng.random() < self.cutmix:
            labels, weights = cut_mix(batch, labels, weights, rng)
        return batch, labels, weights

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int):
        """Shuffle, flip and shift as for this epoch: each epoch's randomness depends on its number."""
        self.epoch = epoch
        self.order = np.random.default_rng((self.seed, epoch)).permutation(len(self.labels))


def augment(padded: np.ndarray, size, pad: int, cutout: int, rng: np.random.Generator, flip=None) -> np.ndarray:
    """Random crops of `size` from images padded by `pad` on each side, mirrored at random (or
    where the boolean array `flip` says), with an optional random square blanked to mid grey.
    Keeps the pixels' dtype: uint8 batches cross to the GPU in a quarter of the bytes, and the
    model casts them. (A loop of slice copies: measured three times faster than a vectorised
    gather over all crops.)"""
    count, (height, width) = len(padded), size
    top = rng.integers(0, 2 * pad + 1, count)
    left = rng.integers(0, 2 * pad + 1, count)
    if flip is None:
        flip = rng.random(count) < 0.5
    out = np.empty((count, height, width, 3), dtype=padded.dtype)
    for i in range(count):
        crop = padded[i, top[i]:top[i] + height, left[i]:left[i] + width]
        out[i] = crop[:, ::-1] if flip[i] else crop
    if cutout:
        # Centred anywhere, so near an edge less is cut (DeVries and Taylor's cutout; airbench
        # keeps the whole square inside).
        tops = rng.integers(0, height, count) - cutout // 2
        lefts = rng.integers(0, width, count) - cutout // 2
        for i in range(count):
            out[i, _clipped(tops[i], cutout, height), _clipped(lefts[i], cutout, width)] = 128
    return out


def _clipped(start: int, length: int, size: int) -> slice:
    """Indices start..start+length-1 that fall within 0..size-1: a box's side, cut by the edges."""
    return slice(max(start, 0), min(start + length, size))


def cut_mix(images: np.ndarray, labels: np.ndarray, weights: np.ndarray, rng: np.random.Generator):
    """CutMix (Yun et al., 2019), in place: one random box of every image is replaced by the same
    box of another image of the batch, and each loss term becomes the two images' terms, class
    weights included, mixed by area: weight (1-t) w_a + t w_b times the cross-entropy against
    ((1-t) w_a y_a + t w_b y_b) / that weight, so a pasted rare class keeps its weight. Returns
    the mixed labels and weights. The box's share of the image is uniform from 0 to 1 before
    the edges clip it, the paper's setting for CIFAR."""
    count, height, width = images.shape[:3]
    partner = rng.permutation(count)
    side = np.sqrt(rng.random())
    box_height, box_width = int(height * side), int(width * side)
    top = rng.integers(0, height) - box_height // 2
    left = rng.integers(0, width) - box_width // 2
    rows, cols = _clipped(top, box_height, height), _clipped(left, box_width, width)
    images[:, rows, cols] = images[partner, rows, cols]  # the right side is a copy: safe in place
    taken = (rows.stop - rows.start) * (cols.stop - cols.start) / (height * width)
    own, pasted = (1 - taken) * weights[:, None], taken * weights[partner, None]
    mixed_weights = own + pasted
    mixed_labels = (own * labels + pasted * labels[partner]) / mixed_weights
    return mixed_labels.astype(labels.dtype), mixed_weights[:, 0].astype(weights.dtype)
