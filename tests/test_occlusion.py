"""webapp.occlusion: covering each part of an image in turn finds the part an answer rests on."""

import math

import numpy as np
import pytest

from webapp.occlusion import CHUNK, DIM, STEPS, Occlusion, occlude, spotlight


def red_in_top_left(images: np.ndarray) -> np.ndarray:
    """A two-class model that looks only at the red of the top-left 8x8 pixels of 32x32 images."""
    red = images[:, :8, :8, 0].mean(axis=(1, 2)) / 255
    return np.stack([red, 1 - red], axis=-1)


def picture_red_in_top_left() -> np.ndarray:
    pixels = np.full((32, 32, 3), 40, dtype=np.uint8)
    pixels[:8, :8] = (255, 0, 0)
    return pixels


def test_the_part_the_answer_rests_on_is_found():
    pixels = picture_red_in_top_left()
    found = occlude(red_in_top_left, pixels, 0, "red")
    assert found.label == "red" and found.probability == pytest.approx(1.0)
    assert found.drops.shape == (STEPS, STEPS) and found.telling
    # The square on the red corner lowers it most; squares off it change nothing.
    assert found.drops[0, 0] == found.drops.max() > 0.5
    assert np.all(found.drops[2:, :] == 0) and np.all(found.drops[:, 2:] == 0)
    # Covered with the picture's mean colour, which is far less red than the corner.
    mean_red = pixels[..., 0].mean() / 255
    assert found.drops[0, 0] == pytest.approx(1 - mean_red)


def test_an_answer_that_rests_on_no_part_is_not_telling():
    def constant(images):
        return np.tile([0.7, 0.3], (len(images), 1))

    found = occlude(constant, picture_red_in_top_left(), 0, "red")
    assert found.probability == pytest.approx(0.7) and not found.telling
    assert np.all(found.drops == 0)


def test_every_forward_pass_has_one_shape():
    # One shape is one trace of a model's compiled predict function, not one per chunk size.
    shapes = []

    def recording(images):
        shapes.append(images.shape)
        return red_in_top_left(images)

    occlude(recording, picture_red_in_top_left(), 0, "red")
    assert set(shapes) == {(CHUNK, 32, 32, 3)} and len(shapes) == math.ceil((STEPS**2 + 1) / CHUNK)


@pytest.mark.parametrize("size", [(32, 32), (37, 23), (640, 480), (3, 5)])
def test_the_squares_cover_every_pixel(size):
    # Every square lowering the answer alike lights every pixel alike, at full brightness.
    picture = np.full((*size, 3), 200, dtype=np.uint8)
    lit = spotlight(picture, Occlusion("red", 0.9, np.full((STEPS, STEPS), 0.5)))
    assert np.all(lit == 200)


def test_the_spotlight_lights_what_mattered_and_dims_the_rest():
    picture = np.full((320, 320, 3), 200, dtype=np.uint8)
    drops = np.zeros((STEPS, STEPS))
    drops[0, 0] = 0.6
    drops[-1, -1] = -0.3  # covering it raised the answer: no light either
    lit = spotlight(picture, Occlusion("red", 0.9, drops))
    assert lit.shape == picture.shape and lit.dtype == np.uint8
    assert lit[0, 0, 0] == 200 and lit[:, 160:].max() == lit[160:, :].max() == lit[-1, -1].min() == int(200 * DIM)


def test_the_map_lines_up_with_the_picture_at_any_size():
    # Found on the 32x32 pixels the model takes, shown on the picture at its own size.
    found = occlude(red_in_top_left, picture_red_in_top_left(), 0, "red")
    lit = spotlight(np.full((480, 640, 3), 200, dtype=np.uint8), found)
    assert lit[30, 40].min() > lit[400, 560].max() == int(200 * DIM)


@pytest.mark.parametrize("size", [(16, 16), (31, 31), (20, 400)])
def test_a_small_picture_is_lit_only_where_it_mattered(size):
    # A side under 32 pixels (a CIFAR image, shown at its own size) was smoothed to one value: all lit.
    found = occlude(red_in_top_left, picture_red_in_top_left(), 0, "red")
    lit = spotlight(np.full((*size, 3), 200, dtype=np.uint8), found)
    assert lit[0, 0].min() > lit[-1, 0].max() == lit[-1, -1].max() == int(200 * DIM)
