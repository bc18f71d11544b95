import numpy as np

from conftest import TINY
from trainer.augment import AugmentedBatches, augment
from trainer.data import Dataset


def test_augment_shifts_and_flips_within_the_padding():
    rng = np.random.default_rng(0)
    image = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(1, 4, 4, 3)
    padded = np.pad(image, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    seen = set()
    for _ in range(50):
        out = augment(padded, (4, 4), 2, 0, rng)
        assert out.shape == (1, 4, 4, 3) and out.dtype == np.uint8
        seen.add(out.tobytes())
    assert len(seen) > 10


def test_augment_takes_each_crop_from_its_own_image():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (16, 6, 6, 3), dtype=np.uint8)
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    out = augment(padded, (6, 6), 2, 0, rng)
    for image, crop in zip(padded, out):
        candidates = [image[t:t + 6, left:left + 6] for t in range(5) for left in range(5)]
        assert any(np.array_equal(crop, c) or np.array_equal(crop[:, ::-1], c) for c in candidates)


def test_the_batches_weigh_a_rare_class_up():
    images = np.zeros((40, 4, 4, 3), dtype=np.uint8)
    data = Dataset(images, np.array([0] * 30 + [1] * 10), ["common", "rare"], "toy")
    batches = AugmentedBatches(data, TINY | {"batch_size": 40})
    _, labels, weights = batches[0]
    assert np.allclose(weights[labels[:, 1] == 1], 2.0) and np.allclose(weights[labels[:, 0] == 1], 2 / 3)


def test_alternate_flip_mirrors_each_image_in_every_other_epoch():
    images = np.random.default_rng(2).integers(0, 256, (40, 4, 4, 3), dtype=np.uint8)
    data = Dataset(images, np.arange(40) % 2, ["a", "b"], "toy")
    batches = AugmentedBatches(data, TINY | {"translate": 0, "alternate_flip": True})

    def mirrored_in_this_epoch():
        mirrored = np.zeros(40, dtype=bool)
        for index in range(len(batches)):
            chosen = batches.order[index * batches.batch_size:(index + 1) * batches.batch_size]
            out = batches[index][0]
            assert all(np.array_equal(o, images[c][:, ::-1]) != np.array_equal(o, images[c]) for o, c in zip(out, chosen))
            mirrored[chosen] = [np.array_equal(o, images[c][:, ::-1]) for o, c in zip(out, chosen)]
        batches.on_epoch_end()
        return mirrored

    first, second, third = mirrored_in_this_epoch(), mirrored_in_this_epoch(), mirrored_in_this_epoch()
    assert 10 < first.sum() < 30  # a random half
    assert np.array_equal(second, ~first) and np.array_equal(third, first)


def test_cutout_blanks_a_square():
    image = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    out = augment(image, (8, 8), 0, 4, np.random.default_rng(0))
    assert 1 <= (out[0, ..., 0] == 128).sum() <= 16
