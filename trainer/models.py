"""Model builders. Every model takes raw RGB pixels (0-255) and holds its own preprocessing,
built from Keras' built-in layers only, so a saved .h5 loads anywhere with plain
`keras.saving.load_model` and no import of this project."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

# VGG16's ImageNet weights expect BGR pixels minus these per-channel means ("caffe" mode).
VGG16_BGR_MEAN = (103.939, 116.779, 123.68)


def scratch_cnn(input_shape, num_classes, widths, stem_width, pixel_mean, pixel_variance,
                residual=False, dtype=None) -> keras.Model:
    """A VGG-style net in the manner of airbench: a stem conv, then blocks of
    conv -> max-pool -> BN -> ReLU -> conv -> BN -> ReLU, then global max pooling.

    `residual` adds a third conv to every block, with a skip connection around the last two
    (airbench96's deeper blocks). `dtype` is a Keras dtype policy for the hidden layers, such
    as "mixed_bfloat16" for training on a GPU; the output layer always computes in float32.
    """
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Normalization(mean=pixel_mean, variance=pixel_variance, name="normalize", dtype=dtype)(inputs)
    x = _conv_bn_relu(x, stem_width, "stem", dtype)
    for index, width in enumerate(widths, start=1):
        x = _conv_bn_relu(x, width, f"block{index}a", dtype, pool=True)
        y = _conv_bn_relu(x, width, f"block{index}b", dtype)
        if residual:
            y = _conv_bn_relu(y, width, f"block{index}c", dtype)
            y = layers.Add(name=f"block{index}_residual", dtype=dtype)([x, y])
        x = y
    x = layers.GlobalMaxPooling2D(name="pool", dtype=dtype)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="scratch_cnn")


def _conv_bn_relu(x, width, name, dtype, pool=False):
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv", dtype=dtype)(x)
    if pool:  # pooling before BN halves the work of the normalisation
        x = layers.MaxPooling2D(name=f"{name}_pool", dtype=dtype)(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn", dtype=dtype)(x)
    return layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)


def as_float32(model: keras.Model) -> keras.Model:
    """A float32 copy of a mixed-precision model: the saved file then computes the same way,
    and at full speed, on any device (bfloat16 is slow on most CPUs)."""

    def float32_layer(layer):
        return layer.__class__.from_config(layer.get_config() | {"dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=float32_layer)
    copy.set_weights(model.get_weights())
    return copy


def transfer_model(arch, input_shape, num_classes, image_size, weights, dense_units, dropout):
    """A pretrained backbone with a new head. Returns (model, base) so training can freeze
    and unfreeze the base. Inputs are upscaled inside the model to `image_size`."""
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    if tuple(input_shape[:2]) != (image_size, image_size):
        x = layers.Resizing(image_size, image_size, name="upscale")(x)
    if arch == "vgg16":
        x = _vgg16_preprocess()(x)
    elif arch == "efficientnet_lite0":
        from trainer import efficientnet_lite

        x = layers.Rescaling(
            efficientnet_lite.PREPROCESS_SCALE, efficientnet_lite.PREPROCESS_OFFSET, name="lite_preprocess"
        )(x)
    else:
        raise ValueError(f"unknown transfer architecture {arch!r}")
    base = _pretrained_base(arch, image_size, weights)
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(dense_units, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=arch), base


class WeightsError(Exception):
    """Pretrained weights that cannot be had; the message tells the user what to do."""


def _pretrained_base(arch, image_size, weights):
    try:
        if arch == "vgg16":
            # Keras reads "imagenet" (a download) or a path to a weights file itself.
            source = None if weights == "none" else weights
            return keras.applications.VGG16(include_top=False, weights=source, input_shape=(image_size, image_size, 3))
        from trainer import efficientnet_lite

        return efficientnet_lite.build_base(image_size, weights)
    except Exception as error:  # a failed download, a missing package, a damaged file
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise WeightsError(
            f"Cannot load the {arch} weights {weights!r} ({reason}); "
            "pass --weights PATH with a local weights file, or --weights none."
        ) from None


def _vgg16_preprocess() -> layers.Layer:
    """RGB -> BGR and mean subtraction as a frozen 1x1 convolution: a built-in layer, so the
    .h5 stays portable, where a Lambda would not load without this project's code."""
    swap = np.zeros((1, 1, 3, 3), dtype=np.float32)
    for rgb, bgr in ((0, 2), (1, 1), (2, 0)):
        swap[0, 0, rgb, bgr] = 1.0
    conv = layers.Conv2D(3, 1, trainable=False, name="vgg16_preprocess")
    conv.build((None, None, None, 3))
    conv.set_weights([swap, -np.asarray(VGG16_BGR_MEAN, dtype=np.float32)])
    return conv


def unfreeze_top(base: keras.Model, prefixes: tuple[str, ...]) -> int:
    """Make the base's layers whose names start with one of `prefixes` trainable, keeping
    batch-norm statistics frozen (standard for fine-tuning). Returns how many layers with
    weights were unfrozen."""
    base.trainable = True
    count = 0
    for layer in base.layers:
        layer.trainable = layer.name.startswith(prefixes) and not isinstance(layer, layers.BatchNormalization)
        count += layer.trainable and bool(layer.weights)
    return count


def with_flip_averaging(classifier: keras.Model) -> keras.Model:
    """Wrap a classifier so it averages its predictions on the image and its mirror image:
    test-time augmentation inside the saved model, so served accuracy is measured accuracy."""
    height, width, channels = classifier.input_shape[1:]
    inputs = keras.Input((height, width, channels), name="pixels")
    # Mirror with built-in layers: move the width axis last and multiply by a reversal matrix.
    mirror = layers.Dense(width, use_bias=False, trainable=False, name="mirror")
    mirror.build((None, height, channels, width))
    mirror.set_weights([np.eye(width, dtype=np.float32)[::-1]])
    flipped = layers.Permute((1, 3, 2), name="width_last")(inputs)
    flipped = layers.Permute((1, 3, 2), name="width_back")(mirror(flipped))
    outputs = layers.Average(name="flip_average")([classifier(inputs), classifier(flipped)])
    return keras.Model(inputs, outputs, name=f"{classifier.name}_flip_tta")
