import numpy as np
import pytest

from conftest import TINY
from trainer.augment import AugmentedBatches, augment
from trainer.data import Dataset, class_weights


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
    # Every shift from -2 to +2 on both axes, and a mirror image about half the time.
    shifts = set()
    for _ in range(400):
        out = augment(padded, (4, 4), 2, 0, rng, flip=np.zeros(1, dtype=bool))[0]
        shifts |= {(t, left) for t in range(5) for left in range(5)
                   if np.array_equal(out, padded[0, t:t + 4, left:left + 4])}
    assert len(shifts) == 25
    mirrored = sum(np.array_equal(augment(image, (4, 4), 0, 0, rng)[0], image[0, :, ::-1]) for _ in range(200))
    assert 60 < mirrored < 140


def toy_data(images):
    count = len(images)
    return Dataset(images, np.arange(count) % 2, ["a", "b"], "toy", np.arange(count).astype(str))


def test_every_image_is_in_a_full_batch_and_each_epoch_is_shuffled_and_shifted_anew():
    images = np.random.default_rng(3).integers(0, 256, (1, 4, 4, 3), dtype=np.uint8).repeat(41, axis=0)
    batches = AugmentedBatches(toy_data(images), TINY | {"batch_size": 8})
    assert len(batches) == 6 and all(len(batches[i][0]) == 8 for i in range(6))
    chosen = [batches.indices(i) for i in range(6)]
    assert set(np.concatenate(chosen)) == set(range(41))
    # The last batch ends at the 41st image and tops itself up from the end of the one before.
    assert chosen[5][-1] == batches.order[40] and set(chosen[5][:-1]) <= set(chosen[4])
    order, first = batches.order.copy(), batches[0][0]
    batches.on_epoch_end()
    assert sorted(batches.order) == sorted(order) and not np.array_equal(batches.order, order)
    assert not np.array_equal(batches[0][0], first)  # the same images, cropped and flipped otherwise
    few = AugmentedBatches(toy_data(images[:5]), TINY | {"batch_size": 8})
    assert len(few) == 1 and sorted(few.indices(0)) == list(range(5))  # fewer than a batch: each once


def test_shifts_fill_the_border_by_reflection_not_black():
    white = np.full((16, 4, 4, 3), 255, dtype=np.uint8)
    batches = AugmentedBatches(toy_data(white), TINY | {"batch_size": 16, "translate": 2, "cutout": 0})
    assert (batches[0][0] == 255).all()
    # Columns 50, 100, 150, 200: reflected, a shifted row never repeats a value in two neighbouring
    # pixels; black (0) or the edge's own value (50 50 50 100) would.
    ramp = np.broadcast_to(np.array([50, 100, 150, 200], np.uint8)[None, None, :, None], (16, 4, 4, 3)).copy()
    shifted = AugmentedBatches(toy_data(ramp), TINY | {"batch_size": 16, "translate": 2, "cutout": 0})[0][0]
    assert (np.diff(shifted.astype(int), axis=2) != 0).all()
    assert not np.array_equal(shifted, ramp)  # some were moved


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
    data = Dataset(images, np.array([0] * 30 + [1] * 10), ["common", "rare"], "toy", np.arange(40).astype(str))
    batches = AugmentedBatches(data, TINY | {"batch_size": 40})
    _, labels, weights = batches[0]
    assert np.allclose(weights[labels[:, 1] == 1], 2.0) and np.allclose(weights[labels[:, 0] == 1], 2 / 3)


def test_alternate_flip_mirrors_each_image_in_every_other_epoch():
    images = np.random.default_rng(2).integers(0, 256, (40, 4, 4, 3), dtype=np.uint8)
    data = Dataset(images, np.arange(40) % 2, ["a", "b"], "toy", np.arange(40).astype(str))
    batches = AugmentedBatches(data, TINY | {"translate": 0, "alternate_flip": True})

    def mirrored_in_this_epoch():
        mirrored = np.zeros(40, dtype=bool)
        for index in range(len(batches)):
            chosen = batches.indices(index)
            out = batches[index][0]
            assert all(np.array_equal(o, images[c][:, ::-1]) != np.array_equal(o, images[c]) for o, c in zip(out, chosen))
            mirrored[chosen] = [np.array_equal(o, images[c][:, ::-1]) for o, c in zip(out, chosen)]
        batches.on_epoch_end()
        return mirrored

    first, second, third = mirrored_in_this_epoch(), mirrored_in_this_epoch(), mirrored_in_this_epoch()
    assert 10 < first.sum() < 30  # a random half
    assert np.array_equal(second, ~first) and np.array_equal(third, first)


@pytest.mark.parametrize("side", [5, 8])
def test_cutout_blanks_a_square_of_its_side_cut_only_by_the_edges(side):
    images = np.zeros((500, 16, 16, 3), dtype=np.uint8)
    blanked = augment(images, (16, 16), 0, side, np.random.default_rng(0))[..., 0] == 128
    for mask in blanked:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert mask.sum() == len(rows) * len(cols)  # one rectangle
        assert len(rows) <= side and len(cols) <= side
        assert len(rows) == side or rows[0] == 0 or rows[-1] == 15  # shorter only at an edge
        assert len(cols) == side or cols[0] == 0 or cols[-1] == 15
    assert max(mask.sum() for mask in blanked) == side * side
    rows = [np.flatnonzero(mask.any(axis=1)) for mask in blanked]  # centred anywhere: cut by every edge
    assert any(len(r) < side and r[0] == 0 for r in rows) and any(len(r) < side and r[-1] == 15 for r in rows)


def test_cutmix_pastes_a_box_from_another_image_and_mixes_the_loss_by_its_area():
    # Black images of the common class "dark", white ones of the rare class "light": each loss
    # term must weigh a class by its class weight times its share of the image's pixels.
    images = np.zeros((64, 8, 8, 3), dtype=np.uint8)
    images[48:] = 255
    labels = np.array([0] * 48 + [1] * 16)
    data = Dataset(images, labels, ["dark", "light"], "toy", np.arange(64).astype(str))
    hp = TINY | {"batch_size": 16, "translate": 0, "cutout": 0, "cutmix": 1.0}
    batches = AugmentedBatches(data, hp)
    dark_weight, light_weight = class_weights(labels, 2)
    mixed = 0
    for epoch in range(3):
        batches.set_epoch(epoch)
        for index in range(len(batches)):
            batch, targets, weights = batches[index]
            assert batch.dtype == np.uint8 and targets.dtype == np.float32 and weights.dtype == batches.sample_weights.dtype
            white = (batch[..., 0] == 255).mean(axis=(1, 2))
            assert np.allclose(weights * targets[:, 1], white * light_weight)
            assert np.allclose(weights * targets[:, 0], (1 - white) * dark_weight)
            assert np.allclose(targets.sum(axis=1), 1)
            mixed += int(((white > 0) & (white < 1)).sum())
    assert mixed > 0  # some image got a box of the other class

    again = AugmentedBatches(data, hp)  # the same seed and epoch give the same batch
    again.set_epoch(2)
    assert all(np.array_equal(a, b) for a, b in zip(again[1], batches[1]))

    plain = AugmentedBatches(data, TINY | {"batch_size": 16, "translate": 0, "cutout": 0})
    assert all(set(np.unique(plain[i][1])) <= {0.0, 1.0} for i in range(len(plain)))
