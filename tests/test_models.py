import keras
import numpy as np
import pytest

from trainer import card, models
from trainer.presets import PRESETS

RNG = np.random.default_rng(0)


def raw_pixels(count, size):
    return (RNG.random((count, size, size, 3)) * 255).astype(np.float32)


def preset_cnn(name, classes=10, images=None):
    """The net the trainer builds for a scratch preset, here from 8 random training images."""
    return models.preset_cnn(PRESETS[name], raw_pixels(8, 32) if images is None else images, classes)


def default_cnn(classes=10):
    return preset_cnn("scratch-small", classes)


def test_default_cnn_shape_and_size():
    model = default_cnn()
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    # 0.66M parameters: about 2.7 MB as float32, far under the 10 MB budget; the saved model,
    # with test-time augmentation around the net, counts the 659,210 of BENCHMARKS.md.
    assert model.count_params() == 658_186
    assert models.with_test_time_augmentation(model, True).count_params() == 659_210


def test_gpu_presets_sizes():
    # The medium preset, the shipped model's, within a default's 10 MB: the shipped card counts
    # 2,159,880 parameters, these and the 1,024 of the test-time flip's mirror matrix.
    medium = preset_cnn("scratch-medium")
    assert medium.count_params() == 2_158_856 and medium.count_params() * 4 < 10e6
    large = preset_cnn("scratch-large")
    assert 9e6 < large.count_params() < 11e6  # airbench96's size
    for net in medium, large:  # both are residual nets, the large one wider
        assert [layer.name for layer in net.layers if isinstance(layer, keras.layers.Add)] == [
            "block1_residual", "block2_residual", "block3_residual"]


def test_residual_blocks_add_a_skip_around_their_last_two_convs():
    model = models.scratch_cnn((8, 8, 3), 2, [4], 4, [0.0] * 3, [1.0] * 3, residual=True)
    skip = model.get_layer("block1_residual")
    assert [node.operation.name for node in skip._inbound_nodes[0].parent_nodes] == ["block1a_relu", "block1c_relu"]


def test_activation_after_sum_moves_the_last_activation_past_the_skip():
    model = models.scratch_cnn((8, 8, 3), 2, [4], 4, [0.0] * 3, [1.0] * 3, residual=True, activation_after_sum=True)
    skip = model.get_layer("block1_residual")
    assert [node.operation.name for node in skip._inbound_nodes[0].parent_nodes] == ["block1a_relu", "block1c_bn"]
    after = model.get_layer("block1_residual_relu")
    assert after._inbound_nodes[0].parent_nodes[0].operation is skip


def test_airbench_options_change_the_net_as_named():
    model = models.scratch_cnn((16, 16, 3), 3, [4, 8], 4, [0.0] * 3, [1.0] * 3, activation="gelu",
                               batchnorm_scale=False, identity_init=True, logit_scale=1 / 9)
    assert model.get_layer("block1a_gelu").get_config()["activation"] == "gelu"
    assert [w.name for w in model.get_layer("block1a_bn").trainable_weights] == ["beta"]  # no learned scale
    # A conv's first filters copy their own input channel: all 4 of block1b's (4 -> 4 channels),
    # 4 of block2a's 8 (4 -> 8), whose other 4 keep their random start.
    identity = np.zeros((3, 3, 4, 4), np.float32)
    identity[1, 1, np.arange(4), np.arange(4)] = 1.0
    assert np.array_equal(model.get_layer("block1b_conv").get_weights()[0], identity)
    kernel = model.get_layer("block2a_conv").get_weights()[0]
    assert np.array_equal(kernel[..., :4], identity) and np.abs(kernel[..., 4:]).min() > 0
    # The logits are divided by 9 before the softmax.
    pixels = raw_pixels(2, 16)
    logits = keras.Model(model.input, model.get_layer("logits").output)(pixels)
    expected = keras.ops.softmax(logits / 9)
    assert np.allclose(keras.ops.convert_to_numpy(model(pixels)), keras.ops.convert_to_numpy(expected), atol=1e-6)


def correlated_images(count, size):
    """Normalised-looking images whose neighbouring pixels and channels are correlated."""
    noise = RNG.normal(size=(count, size + 1, size + 1, 3))
    return (noise[:, 1:, 1:] + 0.8 * noise[:, :-1, :-1] + 0.5 * noise[:, 1:, 1:, ::-1]).astype(np.float32)


def test_patch_whitening_kernel_decorrelates_2x2_patches():
    images = correlated_images(100, 16)
    kernel = models.patch_whitening_kernel(images)
    assert kernel.shape == (2, 2, 3, 24)  # 12 filters for 12 patch values, and their negations
    assert np.array_equal(kernel[..., 12:], -kernel[..., :12])
    out = keras.ops.convert_to_numpy(keras.ops.conv(images, kernel, padding="valid"))
    assert out.shape == (100, 15, 15, 24)
    flat = out[..., :12].reshape(-1, 12)
    assert np.allclose(flat.T @ flat / len(flat), np.eye(12), atol=0.01)


def test_a_whitened_stem_is_frozen_and_replaces_the_learned_one():
    kernel = models.patch_whitening_kernel(correlated_images(20, 16))
    model = models.scratch_cnn((32, 32, 3), 10, [8, 16], 8, [0.0] * 3, [1.0] * 3, whitening=kernel)
    stem = model.get_layer("stem_whiten")
    assert not stem.trainable and np.array_equal(stem.get_weights()[0], kernel)
    assert "stem_conv" not in [layer.name for layer in model.layers]
    assert model.get_layer("stem_relu").output.shape == (None, 31, 31, 24)  # 2x2 "valid" conv


def test_stem_float32_keeps_the_input_side_out_of_bfloat16_and_epsilon_reaches_every_batch_norm():
    kernel = models.patch_whitening_kernel(correlated_images(20, 16))
    model = models.scratch_cnn((16, 16, 3), 3, [8, 16], 8, [120.0] * 3, [4000.0] * 3, whitening=kernel,
                               dtype="mixed_bfloat16", batchnorm_epsilon=1e-5, stem_float32=True)
    for name in ("normalize", "stem_whiten", "stem_bn"):  # its output normalised, bfloat16 is fine after
        assert model.get_layer(name).compute_dtype == "float32", name
    assert model.get_layer("block1a_conv").compute_dtype == "bfloat16"
    epsilons = {layer.epsilon for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert epsilons == {1e-5}
    x = raw_pixels(2, 16)
    assert np.allclose(keras.ops.convert_to_numpy(models.as_float32(model)(x)),
                       keras.ops.convert_to_numpy(model(x)), atol=0.02)


def test_float32_copy_of_a_mixed_precision_model():
    mixed = models.scratch_cnn((16, 16, 3), 3, [8, 16], 8, [120.0] * 3, [4000.0] * 3, dtype="mixed_bfloat16")
    assert mixed.get_layer("block1a_conv").compute_dtype == "bfloat16"
    assert mixed.get_layer("predictions").compute_dtype == "float32"  # softmax in full precision
    copy = models.as_float32(mixed)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    for ours, theirs in zip(copy.get_weights(), mixed.get_weights()):
        assert np.array_equal(ours, theirs)
    x = raw_pixels(4, 16)
    assert np.allclose(keras.ops.convert_to_numpy(copy(x)), keras.ops.convert_to_numpy(mixed(x)), atol=0.02)


def test_scratch_cnn_normalizes_raw_pixels_inside_by_the_training_images():
    images = raw_pixels(8, 32) * [1.0, 0.9, 0.8]  # a mean and a variance per channel
    normalize = preset_cnn("scratch-small", images=images).get_layer("normalize")
    x = raw_pixels(2, 32)
    expected = (x - images.mean(axis=(0, 1, 2))) / images.std(axis=(0, 1, 2))
    assert np.allclose(keras.ops.convert_to_numpy(normalize(x)), expected, atol=1e-4)
    probabilities = keras.ops.convert_to_numpy(default_cnn()(x))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_vgg16_preprocessing_is_bgr_minus_the_imagenet_mean():
    layer = models._vgg16_preprocess()
    pixel = np.array([[[[10.0, 20.0, 30.0]]]], dtype=np.float32)
    out = keras.ops.convert_to_numpy(layer(pixel))[0, 0, 0]
    assert out == pytest.approx([30 - 103.939, 20 - 116.779, 10 - 123.68], abs=1e-4)
    assert not layer.trainable


def test_vgg16_transfer_model_upscales_and_unfreezes_only_the_top_block():
    model, base = models.transfer_model("vgg16", (16, 16, 3), 4, 32, "none", dense_units=8, dropout=0.5)
    assert model.input_shape == (None, 16, 16, 3) and model.output_shape == (None, 4)
    assert model.get_layer("upscale").output.shape[1:3] == (32, 32)
    base.trainable = False
    frozen_trainable = len(model.trainable_weights)
    assert frozen_trainable == 4  # the head's two Dense layers
    unfrozen = models.unfreeze(base, ("block5",))
    assert unfrozen == 3
    names = {layer.name for layer in base.layers if layer.trainable and layer.weights}
    assert names == {"block5_conv1", "block5_conv2", "block5_conv3"}
    assert len(model.trainable_weights) == frozen_trainable + 6


def test_an_architecture_without_a_base_is_refused_not_built_as_efficientnet_lite0():
    # A preset added for a new base, its branch in _pretrained_base forgotten: its weights, and the
    # layer names --unfreeze-blocks is checked against, were EfficientNet-Lite0's.
    for check in (lambda: models.check_weights("mobilenet_v2", "imagenet"),
                  lambda: models.unfreeze_problem("mobilenet_v2", ["block_16"])):
        with pytest.raises(ValueError, match="unknown transfer architecture 'mobilenet_v2'"):
            check()


def test_flip_averaging_averages_the_image_and_its_mirror():
    model = default_cnn(3)
    wrapped = models.with_test_time_augmentation(model)
    x = raw_pixels(3, 32)
    expected = (keras.ops.convert_to_numpy(model(x)) + keras.ops.convert_to_numpy(model(x[:, :, ::-1]))) / 2
    assert np.allclose(keras.ops.convert_to_numpy(wrapped(x)), expected, atol=1e-6)
    # A mirror image now gets exactly the same prediction.
    assert np.allclose(keras.ops.convert_to_numpy(wrapped(x[:, :, ::-1])), expected, atol=1e-6)
    assert wrapped.count_params() == model.count_params() + 32 * 32  # the fixed mirror matrix


def test_translate_averaging_adds_the_views_moved_one_pixel_as_in_training():
    model = models.scratch_cnn((8, 6, 3), 3, [4], 4, [120.0] * 3, [4000.0] * 3)
    wrapped = models.with_test_time_augmentation(model, translate=True)
    x = raw_pixels(2, 8)[:, :, :6]  # not square, so rows and columns cannot be mixed up

    def both_sides(views):
        return (keras.ops.convert_to_numpy(model(views)) + keras.ops.convert_to_numpy(model(views[:, :, ::-1]))) / 2

    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")  # as the training batches pad
    down_right, up_left = padded[:, :8, :6], padded[:, 2:, 2:]
    assert np.array_equal(down_right[:, 1:, 1:], x[:, :-1, :-1]) and np.array_equal(up_left[:, :-1, :-1], x[:, 1:, 1:])
    expected = both_sides(x) / 2 + (both_sides(down_right) + both_sides(up_left)) / 4
    assert np.allclose(keras.ops.convert_to_numpy(wrapped(x)), expected, atol=1e-6)


def test_efficientnet_lite0_transfer_model_scales_pixels_inside():
    model, base = models.transfer_model("efficientnet_lite0", (32, 32, 3), 3, 64, "none", dense_units=8, dropout=0.3)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 3)
    scale = model.get_layer("lite_preprocess")
    assert np.allclose(keras.ops.convert_to_numpy(scale(np.array([[[[0.0, 127.0, 255.0]]]]))), [-127 / 128, 0, 1])
    assert base.output_shape == (None, 2, 2, 1280)
    assert models.unfreeze(base, ("top_",)) == 1  # the 1x1 head conv (its BN stays frozen)


def test_a_transfer_head_without_a_hidden_layer_maps_the_features_straight_to_the_classes():
    model, base = models.transfer_model("efficientnet_lite0", (32, 32, 3), 3, 32, "none", dense_units=0, dropout=0.2)
    assert "head_dense" not in [layer.name for layer in model.layers]
    assert model.count_params() == base.count_params() + 1280 * 3 + 3


@pytest.mark.parametrize("batchnorm", [False, True])
def test_unfrozen_batch_norm_learns_the_new_images_only_when_asked(batchnorm):
    # ImageNet's weights: through a random base's frozen blocks almost nothing reaches the stem.
    model, base = models.transfer_model("efficientnet_lite0", (32, 32, 3), 3, 32, "imagenet", dense_units=8,
                                        dropout=0.3)
    assert models.unfreeze(base, ("stem_",), batchnorm) == (2 if batchnorm else 1)
    unfrozen, frozen = base.get_layer("stem_bn"), base.get_layer("block1a_project_bn")
    before = [keras.ops.convert_to_numpy(weight) for weight in unfrozen.weights + frozen.weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
    model.fit(raw_pixels(8, 32), np.eye(3)[np.arange(8) % 3], batch_size=8, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(weight) for weight in unfrozen.weights + frozen.weights]
    changed = [not np.array_equal(old, new) for old, new in zip(before, after)]
    # scale, shift, moving mean and variance of the stem's; a block left frozen keeps ImageNet's
    assert changed == [batchnorm] * 4 + [False] * 4


@pytest.mark.parametrize("build", [default_cnn, lambda: preset_cnn("scratch-medium")],
                         ids=["bias", "scaled logits"])
def test_training_fits_the_logits_behind_the_softmax_with_the_same_weights(build):
    # A loss from logits: from probabilities, JAX clips them and drops the gradient of an image
    # scored below 1e-7. The saved model is the one that ends in the softmax.
    classifier = build()
    learner = models.logits_of(classifier)
    assert classifier.layers[-1].name == "predictions" and learner.weights == classifier.weights
    pixels = raw_pixels(4, 32)
    probabilities = keras.ops.convert_to_numpy(classifier(pixels))
    logits = keras.ops.convert_to_numpy(learner(pixels))
    assert np.allclose(keras.ops.convert_to_numpy(keras.ops.softmax(logits)), probabilities, atol=1e-6)


def test_a_saved_transfer_model_called_plainly_answers_as_predict_does(tmp_path):
    # Keras's Resizing defaults to training=True and hands it on, through its call context, to
    # the layers after it: called as model(x), the saved model ran its batch norm on the batch's
    # statistics (updating the moving ones) and its dropout at random, on every backend.
    model, _ = models.transfer_model("efficientnet_lite0", (16, 16, 3), 3, 32, "none", dense_units=8, dropout=0.5)
    wrapped = models.with_test_time_augmentation(model)
    card.save_h5(wrapped, tmp_path / "model.h5")
    loaded = keras.saving.load_model(tmp_path / "model.h5")
    x = raw_pixels(4, 16)
    for each in model, wrapped, loaded:
        expected = each.predict(x, verbose=0)
        for _ in range(2):
            assert np.allclose(keras.ops.convert_to_numpy(each(x)), expected, atol=1e-5)
    # Training still reaches the layers after the resizing (fit calls the model with training=True).
    trained = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(trained, model.predict(x, verbose=0), atol=1e-3)
