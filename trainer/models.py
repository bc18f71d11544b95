"""Model builders. Every model takes raw RGB pixels (0-255) and holds its own preprocessing,
built from Keras' built-in layers only, so a saved .h5 loads anywhere with plain
`keras.saving.load_model` and no import of this project."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from trainer import efficientnet_lite
from trainer.formatting import reason

# VGG16's ImageNet weights expect BGR pixels minus these per-channel means ("caffe" mode).
VGG16_BGR_MEAN = (103.939, 116.779, 123.68)


def scratch_cnn(input_shape, num_classes, widths, stem_width, pixel_mean, pixel_variance, residual=False,
                whitening=None, dtype=None, activation="relu", batchnorm_scale=True, identity_init=False,
                logit_scale=1.0, activation_after_sum=False, batchnorm_epsilon=1e-3, stem_float32=False) -> keras.Model:
    """A VGG-style net in the manner of airbench: a stem conv, then blocks of
    conv -> max-pool -> BN -> activation -> conv -> BN -> activation, then global max pooling.

    `residual` adds a third conv to every block, with a skip connection around the last two
    (airbench96's deeper blocks); with `activation_after_sum`, the activation follows the sum
    rather than the last conv, as in airbench96 and ResNets. `whitening`, a kernel from
    `patch_whitening_kernel`, makes the stem a frozen conv with that kernel instead of a
    learned 3x3 conv of `stem_width`.
    `dtype` is a Keras dtype policy for the hidden layers, such as "mixed_bfloat16" for
    training on a GPU; the output layer always computes in float32.

    airbench's other details, each optional: `activation` ("relu" or "gelu"), batch norm
    without a learned scale (`batchnorm_scale=False`), convs that start as the identity on
    their first input channels (`identity_init`), and logits multiplied by `logit_scale`.
    Two of its precision details: batch norm's `batchnorm_epsilon` (Keras' 1e-3 shrinks the
    smallest variances of a trained net by 5-8%), and `stem_float32`, which keeps the input
    normalisation and the stem in float32 under a mixed policy (bfloat16 rounds the whitened
    stem's strongest channels by some 12-15%).
    """
    def conv_bn_act(x, width, name, pool=False, activate=True):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv", dtype=dtype)(x)
        if pool:  # pooling before BN halves the work of the normalisation
            x = layers.MaxPooling2D(name=f"{name}_pool", dtype=dtype)(x)
        return bn_act(x, name, activate)

    def bn_act(x, name, activate=True, dtype=dtype):
        # Keras' default momentum (0.99) follows the weights of a short, fast run too slowly.
        x = layers.BatchNormalization(momentum=0.9, epsilon=batchnorm_epsilon, scale=batchnorm_scale,
                                      name=f"{name}_bn", dtype=dtype)(x)
        return act(x, name) if activate else x

    def act(x, name):
        return layers.Activation(activation, name=f"{name}_{activation}", dtype=dtype)(x)

    stem_dtype = "float32" if stem_float32 else dtype
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Normalization(mean=pixel_mean, variance=pixel_variance, name="normalize", dtype=stem_dtype)(inputs)
    if whitening is None:
        x = conv_bn_act(x, stem_width, "stem")
    else:
        x = bn_act(_frozen_conv(x, whitening, "stem_whiten", stem_dtype), "stem", dtype=stem_dtype)
    for index, width in enumerate(widths, start=1):
        x = conv_bn_act(x, width, f"block{index}a", pool=True)
        y = conv_bn_act(x, width, f"block{index}b")
        if residual:
            y = conv_bn_act(y, width, f"block{index}c", activate=not activation_after_sum)
            y = layers.Add(name=f"block{index}_residual", dtype=dtype)([x, y])
            if activation_after_sum:
                y = act(y, f"block{index}_residual")
        x = y
    x = layers.GlobalMaxPooling2D(name="pool", dtype=dtype)(x)
    # airbench's logits are small (1/9) at first and learn slowly, steadying a fast run; its
    # output layer has no bias either, so a scale other than 1 also drops the bias.
    x = layers.Dense(num_classes, use_bias=logit_scale == 1.0, name="logits", dtype="float32")(x)
    if logit_scale != 1.0:
        x = layers.Rescaling(logit_scale, name="logit_scale", dtype="float32")(x)
    outputs = layers.Softmax(name="predictions", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="scratch_cnn")
    if identity_init:
        for layer in model.layers:
            if layer.name.endswith("_conv"):
                _identity_init(layer)
    return model


WHITENING_PATCHES = 5_000_000  # pin down the whitening's 12x12 covariance, in half a GB


def preset_cnn(hp: dict, images: np.ndarray, num_classes: int, dtype: str = "float32") -> keras.Model:
    """The scratch net that a preset's settings `hp` describe, its input normalisation (and
    whitened stem, if asked for) computed from the training images."""
    mean, variance = images.reshape(-1, 3).mean(axis=0), images.reshape(-1, 3).var(axis=0)
    whitening = None
    if hp["whiten_stem"]:
        # Every k-th image: folder data comes sorted by class, the first thousands all one class.
        count, height, width = images.shape[:3]
        sample = images[::max(1, count * height * width // WHITENING_PATCHES)]
        whitening = patch_whitening_kernel((sample - mean) / np.sqrt(variance))
    return scratch_cnn(
        images.shape[1:], num_classes, hp["widths"], hp["stem_width"], mean, variance, residual=hp["residual"],
        whitening=whitening, dtype=dtype, activation=hp["activation"], batchnorm_scale=hp["batchnorm_scale"],
        identity_init=hp["identity_init"], logit_scale=hp["logit_scale"], activation_after_sum=hp["activation_after_sum"],
        batchnorm_epsilon=hp["batchnorm_epsilon"], stem_float32=hp["stem_float32"],
    )


def _identity_init(conv: layers.Conv2D) -> None:
    """Make the conv's first filters pass their input channel through unchanged (airbench's
    dirac init: a deep net starts close to a shallow one and trains faster early on)."""
    kernel = keras.ops.convert_to_numpy(conv.kernel).copy()
    height, width, channels_in, channels_out = kernel.shape
    count = min(channels_in, channels_out)
    kernel[:, :, :, :count] = 0.0
    kernel[height // 2, width // 2, np.arange(count), np.arange(count)] = 1.0
    conv.kernel.assign(kernel)


def _frozen_conv(x, kernel, name, dtype):
    conv = layers.Conv2D(kernel.shape[-1], kernel.shape[:2], use_bias=False, trainable=False, name=name, dtype=dtype)
    x = conv(x)
    conv.set_weights([kernel])
    return x


def patch_whitening_kernel(images: np.ndarray, size: int = 2, eps: float = 5e-4) -> np.ndarray:
    """airbench's first layer: a conv kernel that whitens `size` x `size` pixel patches.

    Its filters are the eigenvectors of the patches' covariance, each divided by the square
    root of its eigenvalue, so the outputs are decorrelated with unit variance; each filter
    comes with its negation, so a ReLU after it loses nothing. Fixed rather than learned, it
    gives the net from the first step the input statistics a learned stem takes epochs to find.
    `images` are normalised pixels, (count, height, width, channels); `eps` keeps the
    near-zero eigenvalues of flat patches from blowing up their filters.
    """
    channels = images.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))
    # (count, rows, cols, channels, size, size) -> one row per patch, in Keras' kernel order.
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, size * size * channels).astype(np.float64, copy=False)
    eigenvalues, eigenvectors = np.linalg.eigh(patches.T @ patches / len(patches))
    filters = (eigenvectors / np.sqrt(eigenvalues + eps)).reshape(size, size, channels, -1)
    return np.concatenate([filters, -filters], axis=-1).astype(np.float32)


def as_float32(model: keras.Model) -> keras.Model:
    """A float32 copy of a mixed-precision model: the saved file then computes the same way,
    and at full speed, on any device (bfloat16 is slow on most CPUs)."""

    def float32_layer(layer):
        return layer.__class__.from_config(layer.get_config() | {"dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=float32_layer)
    copy.set_weights(model.get_weights())
    return copy


def transfer_model(arch, input_shape, num_classes, upscale_size, weights, dense_units, dropout):
    """A pretrained backbone with a new head. Returns (model, base) so training can freeze
    and unfreeze the base. Inputs are resized inside the model to the backbone's `upscale_size`."""
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    if tuple(input_shape[:2]) != (upscale_size, upscale_size):
        # training=False: Keras's Resizing defaults to training=True and hands that on to the
        # layers after it, so a saved model called as model(x) ran its batch norm and dropout as
        # in training; fit's training=True still reaches them past it.
        x = layers.Resizing(upscale_size, upscale_size, name="upscale")(x, training=False)
    if arch == "vgg16":
        x = _vgg16_preprocess()(x)
    elif arch == "efficientnet_lite0":
        x = layers.Rescaling(
            efficientnet_lite.PREPROCESS_SCALE, efficientnet_lite.PREPROCESS_OFFSET, name="lite_preprocess"
        )(x)
    else:
        raise ValueError(f"unknown transfer architecture {arch!r}")
    base = _pretrained_base(arch, upscale_size, weights)
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dense_units:  # 0: the features straight to the classes, as EfficientNet's own head
        x = layers.Dense(dense_units, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="predictions")(x)
    return keras.Model(inputs, outputs, name=arch), base


def logits_of(classifier: keras.Model) -> keras.Model:
    """The classifier up to its last layer, the softmax, sharing its weights: what training fits,
    with the loss computed from logits. From probabilities, JAX's cross-entropy clips them at
    1e-7 and gives an image scored below that no gradient at all (TensorFlow's finds the logits
    behind a softmax itself); the saved model still ends with the softmax."""
    return keras.Model(classifier.input, classifier.get_layer("predictions").input, name=f"{classifier.name}_logits")


class WeightsError(Exception):
    """Weights that cannot be had: a backbone's pretrained ones, or a teacher model's; the
    message tells the user what to do."""


def check_weights(arch: str, weights: str) -> None:
    """Raise WeightsError now if `arch`'s `weights` cannot be had (a failed download, a damaged
    file), not once the data has loaded. A base of the smallest size the nets take is enough:
    their weights fit any size."""
    if weights != "none":
        _pretrained_base(arch, 32, weights)


def _pretrained_base(arch, size, weights):
    """The backbone of transfer architecture `arch` (a new one needs its branch here, its
    preprocessing in `transfer_model`, and a preset: docs/training.md, "Adding a base network")."""
    try:
        if arch == "vgg16":
            # Keras reads "imagenet" (a download) or a path to a weights file itself.
            source = None if weights == "none" else weights
            return keras.applications.VGG16(include_top=False, weights=source, input_shape=(size, size, 3))
        if arch == "efficientnet_lite0":
            return efficientnet_lite.build_base(size, weights)
    except Exception as error:  # a failed download, a missing package, a damaged file
        raise WeightsError(
            f"Cannot load the {arch} weights {weights!r} ({reason(error)}); "
            "pass --weights PATH with a local weights file, or --weights none."
        ) from None
    # No falling through to the last branch: another base's weights and layer names would pass for this one's.
    raise ValueError(f"unknown transfer architecture {arch!r}")


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


def unfreeze_problem(arch: str, prefixes: list[str]) -> str | None:
    """Why `unfreeze` would not do what `prefixes` ask of the pretrained base (None: it would):
    a misspelt prefix unfreezes nothing, and phase 2 would train the head alone."""
    base = _pretrained_base(arch, 32, "none")  # the names, read off a small untrained copy
    names = [layer.name for layer in base.layers if layer.weights and not isinstance(layer, layers.BatchNormalization)]
    idle = [prefix for prefix in prefixes if not any(name.startswith(prefix) for name in names)]
    if not idle:
        return None
    return (f"--unfreeze-blocks: no layer of the {arch} base that can be unfrozen has a name starting with "
            f"{', '.join(idle)} (their names run from {names[0]} to {names[-1]})")


def unfreeze(base: keras.Model, prefixes: tuple[str, ...], batchnorm: bool = False) -> int:
    """Make the base's layers whose names start with one of `prefixes` trainable. Their batch
    norm stays frozen (Keras' advice for fine-tuning: its ImageNet statistics kept, in inference
    mode) unless `batchnorm`: then it normalises by each batch and learns its statistics, scale
    and shift for the new images. Returns how many layers with weights were unfrozen."""
    base.trainable = True
    count = 0
    for layer in base.layers:
        is_batchnorm = isinstance(layer, layers.BatchNormalization)
        layer.trainable = layer.name.startswith(prefixes) and (batchnorm or not is_batchnorm)
        count += layer.trainable and bool(layer.weights)
    return count


def with_test_time_augmentation(classifier: keras.Model, translate: bool = False) -> keras.Model:
    """Wrap a classifier so it averages its predictions on the image and its mirror image and,
    with `translate`, on both moved one pixel down-right and up-left (airbench's multi-crop
    evaluation: the four moved views weigh half in all). Test-time augmentation inside the
    saved model, so served accuracy is measured accuracy; it costs one pass per view."""
    height, width, channels = classifier.input_shape[1:]
    inputs = keras.Input((height, width, channels), name="pixels")
    mirrored = _mirror(height, width, channels)
    outputs = layers.Average(name="flip_average")([classifier(inputs), classifier(mirrored(inputs))])
    if translate:
        moved = [_move_one_pixel(inputs, height, width, step) for step in ("down_right", "up_left")]
        moved_average = layers.Average(name="moved_average")(
            [classifier(view) for x in moved for view in (x, mirrored(x))])
        outputs = layers.Average(name="views_average")([outputs, moved_average])
    return keras.Model(inputs, outputs, name=f"{classifier.name}_tta")


def _mirror(height, width, channels):
    """Left-right mirroring from built-in layers: move the width axis last and multiply by a
    reversal matrix. Returns a function of a tensor; its layers are shared between calls."""
    width_last, width_back = layers.Permute((1, 3, 2), name="width_last"), layers.Permute((1, 3, 2), name="width_back")
    reverse = layers.Dense(width, use_bias=False, trainable=False, name="mirror")
    reverse.build((None, height, channels, width))
    reverse.set_weights([np.eye(width, dtype=np.float32)[::-1]])
    return lambda x: width_back(reverse(width_last(x)))


def _move_one_pixel(x, height, width, step):
    """The image moved one pixel along both axes, the freed edge filled by reflection (as
    the training shifts pad), from crops and concatenations: a built-in-layers-only roll."""
    for axis, size in ((1, height), (2, width)):
        # Down-right: the reflected second row/column, then all but the last one; up-left the reverse.
        spans = [(1, 2), (0, size - 1)] if step == "down_right" else [(1, size), (size - 2, size - 1)]
        x = layers.Concatenate(axis=axis, name=f"{step}_{axis}")([_crop(x, axis, size, *span) for span in spans])
    return x


def _crop(x, axis: int, size: int, start: int, stop: int):
    """Indices start..stop-1 of `x` along `axis` (1: rows, 2: columns) of `size`."""
    cut = (start, size - stop)
    return layers.Cropping2D((cut, (0, 0)) if axis == 1 else ((0, 0), cut))(x)
