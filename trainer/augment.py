"""Training batches: shuffled, flipped and shifted (and cut out) in NumPy, on the CPU, while
the device trains on the previous batch. (Keras' RandomFlip and RandomTranslation layers in
the model took a GPU step from 2-3 ms to 300 ms, as the GPU machine's notes measured: see
BENCHMARKS.md.)"""

from __future__ import annotations

import math

import keras
import numpy as np

from trainer.data import Dataset, class_weights


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled training batches with random flips and shifts (and cutout) done in NumPy,
    one-hot labels and class-balancing sample weights. With `alternate_flip`, an image is
    mirrored in every other epoch, starting in the first or the second at random."""

    def __init__(self, data: Dataset, hp: dict):
        super().__init__(workers=2)  # the next batch is augmented while this one trains
        pad = hp["translate"]
        self.padded = np.pad(data.images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        self.labels = keras.utils.to_categorical(data.labels, len(data.classes)).astype(np.float32)
        # Every class weighs the same in the loss however many images it has (all 1 when balanced).
        self.sample_weights = class_weights(data.labels, len(data.classes))[data.labels]
        self.batch_size, self.pad, self.cutout = hp["batch_size"], pad, hp["cutout"]
        self.size = data.images.shape[1:3]
        self.seed = hp["seed"]
        self.mirrored_first = None
        if hp["alternate_flip"]:
            self.mirrored_first = np.random.default_rng(self.seed).random(len(self.labels)) < 0.5
        self.set_epoch(0)

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        # A generator per batch: batches made by parallel workers stay reproducible.
        rng = np.random.default_rng((self.seed, self.epoch, index))
        flip = None if self.mirrored_first is None else self.mirrored_first[chosen] ^ bool(self.epoch % 2)
        batch = augment(self.padded[chosen], self.size, self.pad, self.cutout, rng, flip)
        return batch, self.labels[chosen], self.sample_weights[chosen]

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
            out[i, max(0, tops[i]):tops[i] + cutout, max(0, lefts[i]):lefts[i] + cutout] = 128
    return out
