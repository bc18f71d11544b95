"""A Keras model trained elsewhere, as a notebook leaves it, made into one the web app serves
(`python -m trainer import`): raw RGB pixels 0-255 in, the notebook's preprocessing as its
first layers, a probability per class out, saved as `.h5` with a card beside it.

What the notebook did to the pixels is found, from the surest evidence to the least:
- for a model that did it on tensors (`preprocess_input(inputs)`, which `.h5` cannot hold),
  by which scaling gives what reaches its first layer;
- as --scaling says;
- for a model whose first layer scales pixels itself (`Rescaling`, an EfficientNet), none;
- else on labelled pictures, by which scaling gives the lowest loss (a wrong one saturates,
  or answers near chance), a guess that is said to be one.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from trainer import card as cards
from trainer.data import Dataset, digest, load_folder
from trainer.formatting import filesize, plural, reason
from trainer.metrics import format_report
from trainer.model_file import keras_refusal
from trainer.options import SCALINGS
from trainer.predict import BadOutput
from trainer.train import evaluate

CAFFE_MEANS_BGR = np.array([103.939, 116.779, 123.68])
TORCH_MEANS_RGB, TORCH_DEVIATIONS_RGB = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
GREY_WEIGHTS = np.array([[0.299], [0.587], [0.114]])  # ITU-R 601, as Pillow's convert("L")
# Answers this close are the same model's: the same arithmetic, summed in another order.
SAME_ANSWERS = {"rtol": 1e-3, "atol": 1e-5}
PROBE_PICTURES = 4
RAW_PIXEL_MEANS = 2  # a Normalization layer of means above this was adapted to pixels 0-255, not 0-1 or -1-1
# A scaling that gets more pictures right than the one of the lowest loss, by this many (or by
# this share of them), is named as another guess.
CLOSE_PICTURES, CLOSE_SHARE = 3, 0.01
# Layers that do nothing when a model answers (but RandomCrop's kind, which crops then too).
AUGMENTATION = ("RandAugment", "AugMix", "CutMix", "MixUp", "Solarization")
BY_HAND = 'Build it of Keras\'s own layers, as docs/web-app.md shows ("A model trained elsewhere"), and save it again'


class ImportRefused(Exception):
    """Why a model cannot be imported, in a sentence with a remedy."""


def import_model(source: Path, model_path: Path, data_path: Path | None, classes: list[str] | None,
                 scaling: str | None, image_size: tuple[int, int] | None) -> dict:
    """Read the notebook's model in `source`, make it one the web app serves, score it on the
    labelled pictures in `data_path` (if given), and save it with its card at `model_path`.
    Returns the card."""
    notebook = read_notebook_model(source)
    shape = input_size(notebook, image_size)
    # Found before the network is rebuilt of the notebook's layers, which calls them anew.
    own = scaling_of_arithmetic(notebook, shape) if tensor_arithmetic(notebook) else None
    network = servable_network(notebook, shape, own)
    data = load_folder(data_path, shape[:2], classes) if data_path else None
    classes = classes or data.classes
    head = probability_layers(network, len(classes), shape)  # refused now, before any scoring
    kind, found_by, scores = find_scaling(notebook, network, shape, head, own, scaling, data)
    # Real pictures where given: on random pixels, a model and a broken copy of it may both answer surely, and alike.
    pictures = data.images[:PROBE_PICTURES * 4].astype(np.float32) if data else probe_pixels((*shape[:2], 3))
    served = reloaded(served_model(network, kind, shape, head), pictures)
    evaluation = scores.get(kind) or (data and score(served, data))
    if evaluation:
        print(format_report(evaluation, f"{model_path.stem} on {data.name}"))
    card = cards.save_model_and_card(
        served, imported_card(served, source, model_path.stem, classes, kind, found_by, data, evaluation), model_path)
    inside = "taking pixels as they are" if kind == "none" else f"with the scaling {kind} as its first layer"
    print(f"\nSaved {model_path} ({filesize(card['file_size_bytes'])}, {card['parameters']:,} parameters), {inside}.")
    return card


def find_scaling(notebook: keras.Model, network: keras.Model, shape: tuple[int, int, int], head: list,
                 own: str | None, given: str | None, data: Dataset | None) -> tuple[str, str, dict[str, dict]]:
    """The scaling the notebook did, how it was found, and the scores by scaling (when found by
    scoring): the surest evidence first."""
    if own:
        if given not in (None, own):
            raise ImportRefused(f"The model's own arithmetic on tensors is the scaling {own}, not {given}: "
                                "leave --scaling out")
        print(f"Its arithmetic on tensors is the scaling {own}: {SCALINGS[own]}. A layer does it now.")
        return own, "its arithmetic on tensors", {}
    if given:
        return given, "--scaling", {}
    if scales_itself(notebook):
        print("Its first layer scales pixels itself: it takes them as they are.")
        return "none", "its first layer, which scales pixels itself", {}
    if data:
        scores = scores_by_scaling(network, shape, head, data)
        return best_scaling(scores, data), f"the lowest loss on {data.name}", scores
    raise ImportRefused("Say what the notebook did to pixels before the model with --scaling (" +
                        "; ".join(f"{each}: {what}" for each, what in SCALINGS.items()) +
                        "), or pass --data, labelled pictures, to find it by scoring")


def scores_by_scaling(network: keras.Model, shape: tuple[int, int, int], head: list,
                      data: Dataset) -> dict[str, dict]:
    """The network's scores on `data` after each scaling it may have been trained on."""
    print(f"Scoring the model on {data.name} after each scaling a notebook may have done:")
    print(f"  {'':<6} {'right':>7} {'loss':>8}")
    scores = {}
    for kind in scalings_for(shape[2]):
        scores[kind] = score(served_model(network, kind, shape, head), data)
        print(f"  {kind:<6} {scores[kind]['accuracy']:7.2%} {scores[kind]['loss']:8.4f}  {SCALINGS[kind]}",
              flush=True)
    return scores


def best_scaling(scores: dict[str, dict], data: Dataset) -> str:
    """The scaling of the lowest loss: a wrong one scales the network's inputs up or down, which
    can leave which class it picks much as it was, but not how sure it is. With a warning where
    another gets more pictures right, or none is much better than chance."""
    kind = min(scores, key=lambda each: scores[each]["loss"])
    most_right = max(scores, key=lambda each: scores[each]["accuracy"])
    images, chance = len(data.labels), 1 / len(data.classes)
    print(f"Found by scoring: {kind}, of the lowest loss. Pass --scaling if you know what the notebook did.")
    more_right = (scores[most_right]["accuracy"] - scores[kind]["accuracy"]) * images
    if more_right >= max(CLOSE_PICTURES, CLOSE_SHARE * images):
        print(f"warning: {most_right} gets more pictures right ({scores[most_right]['accuracy']:.2%}) than {kind} "
              f"({scores[kind]['accuracy']:.2%}): pass --scaling to say which the notebook did", file=sys.stderr)
    if scores[kind]["accuracy"] < chance + (1 - chance) / 10:
        print(f"warning: even {kind} scores about chance on {data.name}: are these the pictures the model learned "
              "to tell apart, and its classes in the order of its outputs?", file=sys.stderr)
    return kind


def score(model: keras.Model, data: Dataset) -> dict:
    try:
        return evaluate(model, data)
    except BadOutput as error:
        raise ImportRefused(f"The model gives {error}") from None


def imported_card(served: keras.Model, source: Path, name: str, classes: list[str], kind: str, found_by: str,
                  data: Dataset | None, evaluation: dict | None) -> dict:
    """The card of an imported model: what it is, and how it scored on the pictures given (its
    test figures, as the pictures it trained on are not known here)."""
    return {
        "format": cards.CARD_FORMAT,
        "name": name,
        "architecture": "imported",
        "classes": classes,
        "input_shape": list(served.input_shape[1:]),
        "parameters": int(served.count_params()),
        "file_size_bytes": None,  # these two filled in once the file is written
        "file_sha256": None,
        "weights": f"imported from {source.name}",
        "hyperparameters": {"imported_from": source.name, "scaling": kind, "scaling_found_by": found_by},
        "created": cards.now_iso(),  # not its training's, nor its backend: this file says nothing of them
        "test_digest": digest(data.files) if data else None,
        "test_evaluation": evaluation,
    }


def read_notebook_model(path: Path) -> keras.Model:
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # a file that is not a Keras model fails in many ways
        why = keras_refusal(error) or reason(error)
        if "No model config found" in why:  # what model.save_weights writes
            why = "it holds weights only, as save_weights writes: save the whole model in the notebook, with " \
                  "model.save(\"name.keras\")"
        elif path.suffix == ".h5" and "arithmetic done on tensors" in why:  # which .keras holds
            why += "; or if it did arithmetic on tensors, import its .keras file (model.save(\"name.keras\"))"
        raise ImportRefused(f"Cannot read {path}: {why}") from None


def input_size(model: keras.Model, image_size: tuple[int, int] | None) -> tuple[int, int, int]:
    """(height, width, channels) the model takes: its own, or `image_size` where it takes any."""
    shape = model.input_shape
    if not (isinstance(shape, tuple) and len(shape) == 4 and shape[3] in (1, 3)):
        raise ImportRefused(f"The model takes inputs of shape {shape}, not pictures (height, width, and 1 or 3 "
                            "channels)")
    height, width, channels = shape[1:]
    if image_size and (height or width) and image_size != (height, width):
        raise ImportRefused(f"The model takes pictures of {height} x {width} only, not {image_size[0]} x "
                            f"{image_size[1]}: leave --image-size out")
    if not (height and width) and not image_size:
        raise ImportRefused("The model takes pictures of any size: pass the size it was trained on as "
                            "--image-size, e.g. 224 or 224x160 (height x width)")
    return (height or image_size[0], width or image_size[1], channels)


def tensor_arithmetic(model: keras.Model) -> list[str]:
    """The kinds of arithmetic the model does on tensors outside layers (`inputs / 255`,
    preprocess_input), which Keras writes to .h5 but cannot read back."""
    return sorted({type(step).__name__ for step in getattr(model, "operations", [])  # a Sequential has none
                   if not isinstance(step, keras.layers.Layer)})


def servable_network(notebook: keras.Model, shape: tuple[int, int, int], own: str | None) -> keras.Model:
    """The notebook's network as .h5 holds it and reads it back: without the arithmetic on
    tensors that did its scaling `own` (rebuilt of its layers in a row), without its data
    augmentation (an identity in its place: it does nothing when a model answers, and some of it
    cannot be saved to .h5), and with fixed values in place of the state of adapted
    Normalization layers, which .h5 reads back only for a layer at a model's top level."""
    network = notebook if own is None else in_a_row(notebook, shape, own)
    if any(_servable_layer(layer) is not layer for layer in all_layers(network)):
        network = keras.models.clone_model(network, clone_function=_servable_layer, recursive=True)
    return network


def in_a_row(notebook: keras.Model, shape: tuple[int, int, int], own: str) -> keras.Sequential:
    """The notebook's layers in a row, without the arithmetic on tensors before them (which did
    the scaling `own`) and the augmentation among them, checked to answer as the notebook does."""
    kept = [step for step in _steps(notebook) if isinstance(step, keras.layers.Layer) and not _augmentation(step)]
    try:
        rebuilt = keras.Sequential([keras.Input(shape), *kept])
        scaled = keras.Sequential([keras.Input(shape), *_scaling_layers(own), rebuilt])
        alike = answers_alike(scaled, notebook, probe_pixels(shape))
    except Exception:  # layers that take two tensors (Add, Concatenate), or another's
        alike = False
    if not alike:
        raise ImportRefused(f"The model did arithmetic on tensors ({', '.join(tensor_arithmetic(notebook))}) and "
                            f"its layers branch, so it cannot be rebuilt without that arithmetic. {BY_HAND}")
    return rebuilt


def _steps(model: keras.Model) -> list:
    """The model's layers and its arithmetic on tensors, in the order they run."""
    return [step for step in getattr(model, "operations", model.layers)  # a Sequential has no operations
            if not isinstance(step, keras.layers.InputLayer)]


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers, and those of the models within it."""
    return [each for layer in model.layers
            for each in (layer, *(all_layers(layer) if hasattr(layer, "layers") else ()))]


def _servable_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    if _augmentation(layer):  # a Sequential, which takes the `mask` an augmentation block was called with
        return keras.Sequential([keras.layers.Identity()], name=f"{layer.name}_left_out")
    if isinstance(layer, keras.layers.Normalization) and layer.input_mean is None and layer.built:  # adapted
        mean, variance = (keras.ops.convert_to_numpy(each).reshape(-1) for each in (layer.mean, layer.variance))
        return keras.layers.Normalization(axis=layer.axis, mean=mean, variance=variance, name=layer.name)
    return layer


def _augmentation(step) -> bool:
    """A layer that does nothing when a model answers (RandomFlip, RandAugment... but RandomCrop,
    which crops then too), or a block of them."""
    inner = getattr(step, "layers", [step])
    return bool(inner) and all(
        (type(each).__name__.startswith("Random") and not isinstance(each, keras.layers.RandomCrop))
        or type(each).__name__ in AUGMENTATION for each in inner)


def scaling_of_arithmetic(notebook: keras.Model, shape: tuple[int, int, int]) -> str:
    """The scaling that its arithmetic on tensors did to raw pixels, found by what reaches its
    first layer; refused where there is arithmetic after that layer, or not a known scaling."""
    steps = _steps(notebook)
    first = next((index for index, step in enumerate(steps)
                  if isinstance(step, keras.layers.Layer) and not _augmentation(step)), 0)
    if after := sorted({type(step).__name__ for step in steps[first:] if not isinstance(step, keras.layers.Layer)}):
        raise ImportRefused(f"The model does arithmetic on tensors after its first layer ({', '.join(after)}), such "
                            "as x + shortcut or keras.ops.softmax(x), which Keras writes to .h5 but cannot read back: "
                            "do it with layers (keras.layers.Add(), keras.layers.Softmax()...) and save it again")
    refusal = ImportRefused(f"The model does arithmetic on tensors ({', '.join(tensor_arithmetic(notebook))}) "
                            f"before its first layer that is none of the scalings known here ({', '.join(SCALINGS)}). "
                            f"{BY_HAND}")
    calls = steps[first]._inbound_nodes  # in this graph: not `.input`, a nested model's own
    if len(calls) != 1 or len(calls[0].input_tensors) != 1:
        raise refusal
    fed = keras.Model(notebook.input, calls[0].input_tensors[0])  # what it takes: augmentation does nothing
    pixels = probe_pixels(shape)
    wanted = keras.ops.convert_to_numpy(fed(pixels, training=False))
    for kind in scalings_for(shape[2]):
        layer = scaling_layer(kind)
        scaled = pixels if layer is None else keras.ops.convert_to_numpy(layer(pixels))
        if np.allclose(scaled, wanted, **SAME_ANSWERS):
            return kind
    raise refusal


def answers_alike(model: keras.Model, other: keras.Model, pixels: np.ndarray) -> bool:
    # Called, not predict(): TensorFlow would trace a function for each model, and warn of it.
    answers = [keras.ops.convert_to_numpy(each(pixels, training=False)) for each in (model, other)]
    return np.allclose(*answers, **SAME_ANSWERS)


def probe_pixels(shape: tuple[int, int, int]) -> np.ndarray:
    """A few pictures of random pixels, by which two models are told to answer alike."""
    return np.random.default_rng(0).integers(0, 256, (PROBE_PICTURES, *shape)).astype(np.float32)


def scales_itself(model) -> bool:
    """Whether the model's first layer (past its augmentation and resizing, and within a nested
    model such as an EfficientNet base) rescales raw pixels itself: a Rescaling layer, or a
    Normalization layer whose means are those of pixels 0-255, not of pixels already scaled."""
    geometry = (keras.layers.InputLayer, keras.layers.Resizing, keras.layers.CenterCrop, keras.layers.RandomCrop)
    while True:
        steps = [step for step in model.layers if not isinstance(step, geometry) and not _augmentation(step)]
        if not steps or not hasattr(steps[0], "layers"):
            break
        model = steps[0]
    if steps and isinstance(steps[0], keras.layers.Normalization) and steps[0].built:
        return bool((keras.ops.convert_to_numpy(steps[0].mean) > RAW_PIXEL_MEANS).all())
    return bool(steps) and isinstance(steps[0], keras.layers.Rescaling)


def scalings_for(channels: int) -> list[str]:
    """The scalings a model of that many channels may have had: caffe and torch work on colours."""
    return list(SCALINGS) if channels == 3 else ["none", "unit", "tf"]


def served_model(network: keras.Model, kind: str, shape: tuple[int, int, int], head: list) -> keras.Model:
    """The network as the web app takes it: RGB pixels 0-255 of its size in (made grey for a
    network of one channel), scaled as `kind` says, and after it the layers `head` that make its
    outputs a probability per class."""
    height, width, channels = shape
    grey = [fixed_dense(GREY_WEIGHTS, np.zeros(1))] if channels == 1 else []  # weights of sum 1: before any scaling
    return keras.Sequential([keras.Input((height, width, 3)), *grey, *_scaling_layers(kind), network, *head])


def _scaling_layers(kind: str) -> list[keras.layers.Layer]:
    layer = scaling_layer(kind)
    return [] if layer is None else [layer]


def scaling_layer(kind: str) -> keras.layers.Layer | None:
    """The layer that scales raw pixels as `kind` says (None: none); caffe and torch, per
    channel, as a fixed Dense(3), which .h5 holds and every backend runs."""
    if kind == "unit":
        return keras.layers.Rescaling(1 / 255)
    if kind == "tf":
        return keras.layers.Rescaling(1 / 127.5, offset=-1)
    if kind == "caffe":
        return fixed_dense(np.eye(3)[::-1], -CAFFE_MEANS_BGR)
    if kind == "torch":
        return fixed_dense(np.diag(1 / (255 * TORCH_DEVIATIONS_RGB)), -TORCH_MEANS_RGB / TORCH_DEVIATIONS_RGB)
    return None


def fixed_dense(kernel: np.ndarray, bias: np.ndarray) -> keras.layers.Dense:
    """A Dense layer of the given weights, which training leaves as they are."""
    layer = keras.layers.Dense(len(bias), trainable=False)
    layer.build((None, kernel.shape[0]))
    layer.set_weights([kernel, bias])
    return layer


def probability_layers(network: keras.Model, classes: int,
                       shape: tuple[int, int, int]) -> list[keras.layers.Layer]:
    """The layers after the network that make its outputs a probability per class: a softmax
    after logits, and two outputs from a two-class network's one."""
    found = network.output_shape
    if not (isinstance(found, tuple) and len(found) == 2):  # several outputs, or a map of scores
        raise ImportRefused(f"The model gives outputs of shape {found}, not one score per class")
    outputs, activation = found[1], last_activation(network)
    if outputs not in (classes, 1) or (outputs == 1 and classes != 2):
        raise ImportRefused(f"The model gives {plural(outputs, 'output')} but there are {plural(classes, 'class')}")
    if activation is None and outputs > 1 and gives_probabilities(network, shape):  # a last layer that averages, say
        activation = "softmax"
    if outputs == 1 and activation == "sigmoid":  # p: [1 - p, p]
        return [fixed_dense(np.array([[-1.0, 1.0]]), np.array([1.0, 0.0]))]
    if outputs == 1 and activation == "linear":  # a logit z: softmax([0, z]) is [1 - sigmoid(z), sigmoid(z)]
        return [fixed_dense(np.array([[0.0, 1.0]]), np.zeros(2)), keras.layers.Softmax()]
    if outputs > 1 and activation in ("softmax", "linear"):  # probabilities, or logits
        return [] if activation == "softmax" else [keras.layers.Softmax()]
    if activation is None:
        raise ImportRefused(f"The model's last layer, {type(last_layer(network)).__name__}, does not say whether it "
                            "gives logits or probabilities, and they are not probabilities: end the model with a Dense "
                            "layer, and save it again")
    raise ImportRefused(f"The model's last layer gives {activation} outputs for {plural(classes, 'class')}, where a "
                        "softmax (or logits) answers which one a picture shows")


def last_layer(model):
    """The layer that gives the model's outputs, within nested models."""
    while hasattr(model, "layers") and model.layers:
        model = model.layers[-1]
    return model


def last_activation(model) -> str | None:
    """The name of the activation of the layer that gives the model's outputs: "softmax",
    "linear" (logits)...; None where it cannot be told."""
    layer = last_layer(model)
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    return getattr(getattr(layer, "activation", None), "__name__", None)


def gives_probabilities(network: keras.Model, shape: tuple[int, int, int]) -> bool:
    """Whether the network's outputs for random pixels are probabilities, as a softmax's are for
    any input."""
    found = keras.ops.convert_to_numpy(network(probe_pixels(shape), training=False))
    return bool((found >= 0).all() and np.allclose(found.sum(axis=1), 1, atol=1e-3))


def reloaded(served: keras.Model, pixels: np.ndarray) -> keras.Model:
    """`served` as it reads back from .h5, checked to answer as it does: what the web app loads."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "served.h5"
        try:
            cards.save_h5(served, path)
        except Exception as error:  # a layer whose settings .h5 cannot hold: RandAugment's, say
            raise ImportRefused(f"The model cannot be saved to .h5 ({reason(error)}). {BY_HAND}") from None
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:
            raise ImportRefused(f"The model does not read back from .h5: {keras_refusal(error) or reason(error)}") \
                from None
    if not answers_alike(model, served, pixels):
        raise ImportRefused("The model answers otherwise once saved to .h5 and read back (a layer that keeps "
                            "state .h5 does not hold?): build it of Keras's own layers, and save it again")
    return model
