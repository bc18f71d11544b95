"""A Keras model trained elsewhere, as a notebook leaves it, made into one the web app serves
(`python -m trainer import`): raw RGB pixels 0-255 in, the notebook's preprocessing as its
first layers, a probability per class out, saved as `.h5` with a card beside it.

What the notebook did to the pixels (its scaling) is found from the surest evidence to the least:
- for a model that did it on tensors (`preprocess_input(inputs)`, which `.h5` cannot hold),
  by which scaling gives what reaches its first layer;
- as --scaling says;
- for a model whose first layer scales raw pixels itself (`Rescaling`, an EfficientNet), none;
- else on labelled pictures, by which scaling gives the lowest loss (a wrong one saturates,
  or answers near chance), a guess that is said to be one.
Given labelled pictures, every scaling is scored, and a choice that another beats is warned of.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from trainer import card as cards
from trainer import model_file
from trainer.data import Dataset, digest, load_folder
from trainer.formatting import filesize, os_reason, percentage, plural, reason
from trainer.metrics import format_report
from trainer.options import SCALINGS
from trainer.predict import BadOutput
from trainer.train import evaluate

CAFFE_MEANS_BGR = np.array([103.939, 116.779, 123.68])
TORCH_MEANS_RGB, TORCH_DEVIATIONS_RGB = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
GREY_WEIGHTS = np.array([[0.299], [0.587], [0.114]])  # ITU-R 601, as Pillow's convert("L")
COLOUR_SCALINGS = ("caffe", "torch")  # per colour channel: not for a model of grey pictures
# Answers this close are the same model's: the same arithmetic, summed in another order.
SAME_ANSWERS = {"rtol": 1e-3, "atol": 1e-5}
PROBE_PICTURES = 16
KERAS_WORDS = 200  # characters of Keras's reason quoted in a refusal
RAW_PIXEL_MEANS = 2  # a Normalization layer of means above this was adapted to pixels 0-255, not 0-1 or -1-1
# A scaling that gets more pictures right than the one chosen, by this many (or by this share of
# them), is named as what the notebook may have done instead.
CLOSE_PICTURES, CLOSE_SHARE = 3, 0.01
# Layers that do nothing when a model answers (as do Random* layers, but RandomCrop is kept: _augmentation).
AUGMENTATION = ("RandAugment", "AugMix", "CutMix", "MixUp", "Solarization")
BY_HAND = 'build it of Keras\'s own layers, as docs/web-app.md shows ("A model trained elsewhere"), and save it again'


class ImportRefused(Exception):
    """Why a model cannot be imported, in a sentence with a remedy."""


def import_model(source: Path, model_path: Path, data_path: Path | None, classes: list[str] | None,
                 scaling: str | None, image_size: tuple[int, int] | None,
                 standardized: tuple[list[float], list[float]] | None = None) -> dict:
    """Read the notebook's model in `source`, make it one the web app serves, score it on the
    labelled pictures in `data_path` (if given), and save it with its card at `model_path`.
    `standardized`: the means and deviations the notebook took from pixels after its scaling.
    Returns the card."""
    notebook = read_notebook_model(source)
    shape = input_size(notebook, image_size)
    # Found before in_a_row calls the notebook's layers anew: each call adds a node to the layer
    # that its first node, read here, would no longer be told from.
    from_arithmetic = scaling_of_arithmetic(notebook, shape) if arithmetic(_steps(notebook)) else None
    if standardized and from_arithmetic:
        raise ImportRefused("The model scales pixels itself by its arithmetic on tensors: leave --mean and --std out")
    standardization = standardization_layers(standardized, shape[2])
    network = servable_network(notebook, shape, from_arithmetic)
    data = load_folder(data_path, shape[:2], classes, folder_order=True) if data_path else None
    classes = classes or data.classes
    head = probability_layers(network, len(classes), shape)  # refused now, before any scoring
    scores = scores_by_scaling(network, shape, head, data) if data and not (from_arithmetic or standardized) else {}
    kind, found_by = find_scaling(notebook, shape, from_arithmetic, scaling or ("none" if standardized else None),
                                  scores, data)
    # Real pictures where given: on random pixels, a model and a broken copy of it may both answer surely, and alike.
    pictures = data.images[:PROBE_PICTURES].astype(np.float32) if data else probe_pixels((*shape[:2], 3))
    preprocessing = [*scaling_layers(kind), *standardization]
    served = served_model(network, preprocessing, shape, head)
    check_against_notebook(served, notebook, [] if from_arithmetic else preprocessing, shape, head, pictures)
    served = reloaded(served, pictures)
    evaluation = None
    if data:
        evaluation = scores.get(kind) or score(served, data)
        warn_of_doubts(scores | {kind: evaluation}, kind, data)
        print(format_report(evaluation, f"{model_path.stem} on {data.name}"))
    try:
        card = cards.save_model_and_card(served, imported_card(served, source, model_path.stem, classes, kind, found_by,
                                                               standardized, data, evaluation), model_path)
    except OSError as error:  # a full disk, a folder made read-only meanwhile: the old pair, if any, is kept
        raise ImportRefused(f"Cannot save {model_path} ({os_reason(error)})") from None
    if standardized:
        inside = f"with the scaling {kind}, then its means and deviations, as its first layers"
    else:
        inside = "taking pixels as they are" if kind == "none" else f"with the scaling {kind} as its first layer"
    print(f"\nSaved {model_path} ({filesize(card['file_size_bytes'])}, {card['parameters']:,} parameters), {inside}.")
    return card


# --- What the notebook did to the pixels ------------------------------------------------------

def find_scaling(notebook: keras.Model, shape: tuple[int, int, int], from_arithmetic: str | None, given: str | None,
                 scores: dict[str, dict], data: Dataset | None) -> tuple[str, str]:
    """The scaling the notebook did, and how it was found: the surest evidence first."""
    if from_arithmetic:
        if given not in (None, from_arithmetic):
            raise ImportRefused(f"The model's own arithmetic on tensors is the scaling {from_arithmetic}, not {given}: "
                                "leave --scaling out")
        print(f"Its arithmetic on tensors is the scaling {from_arithmetic}: {SCALINGS[from_arithmetic]}. "
              "A layer does it now.")
        return from_arithmetic, "its arithmetic on tensors"
    if given:
        if given not in scalings_for(shape[2]):
            raise ImportRefused(f"The scaling {given} works on colour pictures, and the model takes grey ones: pass "
                                f"--scaling {', '.join(scalings_for(shape[2]))}, or leave it out")
        return given, "--scaling"
    if scales_itself(notebook):
        if better := far_better(scores, "none", data):  # a notebook that scaled pixels before such a layer too
            print(f"Its first layer scales pixels itself, but {better} scores far better on {data.name}: taking "
                  f"{better}. Pass --scaling if you know what the notebook did.")
            return better, f"the lowest loss on {data.name}, over its first layer"
        print("Its first layer scales pixels itself: it takes them as they are.")
        return "none", "its first layer, which scales pixels itself"
    if scores:
        kind = lowest_loss(scores)
        print(f"Found by scoring: {kind}, of the lowest loss. Pass --scaling if you know what the notebook did.")
        return kind, f"the lowest loss on {data.name}"
    raise ImportRefused("Say what the notebook did to pixels before the model with --scaling (" +
                        "; ".join(f"{each}: {what}" for each, what in SCALINGS.items()) +
                        "), or pass --data, labelled pictures, to find it by scoring")


def scores_by_scaling(network: keras.Model, shape: tuple[int, int, int], head: list,
                      data: Dataset) -> dict[str, dict]:
    """The network's scores on `data` after each scaling it may have been trained on. The
    lowest loss tells them apart best: a wrong scaling makes what the network sees larger or
    smaller, which can leave which class it picks much as it was, but not how sure it is."""
    print(f"Scoring the model on {data.name} after each scaling a notebook may have done:")
    print(f"  {'':<6} {'right':>7} {'loss':>8}")
    scores = {}
    for kind in scalings_for(shape[2]):
        scores[kind] = score(served_model(network, scaling_layers(kind), shape, head), data)
        print(f"  {kind:<6} {percentage(scores[kind]['accuracy'], 2):>7} {scores[kind]['loss']:8.4f}  {SCALINGS[kind]}",
              flush=True)
    return scores


def lowest_loss(scores: dict[str, dict]) -> str:
    return min(scores, key=lambda each: scores[each]["loss"])


def far_better(scores: dict[str, dict], kind: str, data: Dataset) -> str | None:
    """The scaling of the lowest loss, where it also gets more pictures right than `kind` (by
    CLOSE_PICTURES or CLOSE_SHARE) and scores better than about chance; None otherwise."""
    if not scores:
        return None
    best = lowest_loss(scores)
    return best if more_right(scores, best, kind, data) and not about_chance(scores[best], data) else None


def more_right(scores: dict[str, dict], other: str, kind: str, data: Dataset) -> bool:
    """Whether `other` gets more pictures right than `kind`, by CLOSE_PICTURES or CLOSE_SHARE of them."""
    images = len(data.labels)
    return (scores[other]["accuracy"] - scores[kind]["accuracy"]) * images >= max(CLOSE_PICTURES, CLOSE_SHARE * images)


def about_chance(figures: dict, data: Dataset) -> bool:
    chance = 1 / len(data.classes)
    return figures["accuracy"] < chance + (1 - chance) / 10


def warn_of_doubts(scores: dict[str, dict], kind: str, data: Dataset) -> None:
    """Warn where another scaling scores far better than the one taken, or gets more pictures
    right at a higher loss (as for a notebook that did none of them), or where the one taken
    scores about chance."""
    figures, most_right = scores[kind], max(scores, key=lambda each: scores[each]["accuracy"])
    right = {each: percentage(scores[each]["accuracy"], 2) for each in scores}
    if better := far_better(scores, kind, data):
        print(f"warning: {better} scores far better than {kind} on {data.name} ({right[better]} right "
              f"at a loss of {scores[better]['loss']:.4f}, against {right[kind]} at "
              f"{figures['loss']:.4f}): pass --scaling {better} if that is what the notebook did", file=sys.stderr)
    elif more_right(scores, most_right, kind, data):
        print(f"warning: {most_right} gets more pictures right ({right[most_right]}) than {kind} "
              f"({right[kind]}), but at a higher loss; if the notebook standardized pixels by their own "
              "means and deviations, it did none of the five: pass those as --mean and --std", file=sys.stderr)
    if about_chance(figures, data):
        print(f"warning: {kind} scores about chance on {data.name}: are these the pictures the model learned to tell "
              "apart, and its classes in the order of its outputs?", file=sys.stderr)


def score(model: keras.Model, data: Dataset) -> dict:
    try:
        return evaluate(model, data)
    except BadOutput as error:
        raise ImportRefused(f"The model gives {error}") from None


def scaling_of_arithmetic(notebook: keras.Model, shape: tuple[int, int, int]) -> str:
    """The scaling that its arithmetic on tensors did to raw pixels, found by what reaches its
    first layer; refused where there is arithmetic after that layer, or not a known scaling."""
    steps = _steps(notebook)
    first = _first_layer(steps)
    if after := arithmetic(steps[first:]):
        raise ImportRefused(f"The model does arithmetic on tensors after its first layer ({', '.join(after)}), such "
                            "as x + shortcut or keras.ops.softmax(x), which Keras writes to .h5 but cannot read back: "
                            "do it with layers (keras.layers.Add(), keras.layers.Softmax()...) and save it again")
    refusal = ImportRefused(f"The model does arithmetic on tensors ({', '.join(arithmetic(steps))}) before its first "
                            f"layer that is none of the scalings known here ({', '.join(SCALINGS)}): {BY_HAND}")
    calls = steps[first]._inbound_nodes  # those in this graph: a nested model's `.input` is its own
    if len(calls) != 1 or len(calls[0].input_tensors) != 1:
        raise refusal
    fed = keras.Model(notebook.input, calls[0].input_tensors[0])  # what it takes: augmentation does nothing
    pixels = probe_pixels(shape)
    wanted = keras.ops.convert_to_numpy(fed(pixels, training=False))
    for kind in scalings_for(shape[2]):
        scaled = pixels
        for layer in scaling_layers(kind):
            scaled = keras.ops.convert_to_numpy(layer(scaled))
        if np.allclose(scaled, wanted, **SAME_ANSWERS):
            return kind
    raise refusal


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
    """The scalings a model of that many channels may have had."""
    return [kind for kind in SCALINGS if channels == 3 or kind not in COLOUR_SCALINGS]


def scaling_layers(kind: str) -> list[keras.layers.Layer]:
    """The layers that scale raw pixels as `kind` says (none for none); caffe and torch, per
    channel, as a fixed Dense(3), which .h5 holds and every backend runs."""
    if kind == "unit":
        return [keras.layers.Rescaling(1 / 255)]
    if kind == "tf":
        return [keras.layers.Rescaling(1 / 127.5, offset=-1)]
    if kind == "caffe":
        return [fixed_dense(np.eye(3)[::-1], -CAFFE_MEANS_BGR)]
    if kind == "torch":
        return [fixed_dense(np.diag(1 / (255 * TORCH_DEVIATIONS_RGB)), -TORCH_MEANS_RGB / TORCH_DEVIATIONS_RGB)]
    return []


def standardization_layers(standardized: tuple[list[float], list[float]] | None, channels: int) -> list:
    """(pixels - means) / deviations, as --mean and --std give them (one value, or one a channel)."""
    if standardized is None:
        return []
    mean, std = standardized
    if {len(mean), len(std)} - {1, channels}:
        raise ImportRefused(f"--mean and --std take one value, or one for each of the model's {channels} channels")
    return [keras.layers.Normalization(mean=np.broadcast_to(mean, channels), variance=np.broadcast_to(np.square(std),
                                                                                                   channels))]


def fixed_dense(kernel: np.ndarray, bias: np.ndarray) -> keras.layers.Dense:
    """A Dense layer of the given weights, which training leaves as they are."""
    layer = keras.layers.Dense(len(bias), trainable=False)
    layer.build((None, kernel.shape[0]))
    layer.set_weights([kernel, bias])
    return layer


# --- The notebook's network, as .h5 holds it -----------------------------------------------------

def read_notebook_model(path: Path) -> keras.Model:
    # An .h5 is read through in a child process first, as the web app does: some damaged files
    # crash HDF5 itself. That also tells weights alone (save_weights) from a whole model.
    if path.suffix.lower() != ".keras" and (problem := model_file.problem(path, {})):
        raise ImportRefused(problem)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # a file that is not a Keras model fails in many ways
        why = model_file.keras_refusal(error) or keras_words(error)
        if why.startswith("File not found"):  # Keras's words for a .keras file that is no zip
            why = "it is not a model file Keras can read: save the model in the notebook with " \
                  "model.save(\"name.keras\")"
        elif path.suffix != ".keras" and "arithmetic done on tensors" in why:  # which .keras holds
            why += "; or if it did arithmetic on tensors, import its .keras file (model.save(\"name.keras\"))"
        raise ImportRefused(f"Cannot read {path}: {why}") from None
    # Keras's own MobileNetV3, say: Keras writes its arithmetic to .h5 but cannot read it back.
    if inner := [layer.name for layer in all_layers(model) if hasattr(layer, "operations")
                 and arithmetic(_steps(layer))]:
        raise ImportRefused(f"The model {', '.join(inner)} inside it does arithmetic on tensors (as Keras's own "
                            "MobileNetV3 does), which Keras writes to .h5 but cannot read back, and the app serves "
                            f".h5 files: {BY_HAND}")
    return model


def input_size(model: keras.Model, image_size: tuple[int, int] | None) -> tuple[int, int, int]:
    """(height, width, channels) the model takes: its own, or `image_size` where it takes any."""
    shape = model.input_shape
    if not (isinstance(shape, tuple) and len(shape) == 4 and shape[3] in (1, 3)):
        raise ImportRefused(f"The model takes inputs of shape {shape}, not pictures (height, width, and 1 or 3 "
                            "channels): import a model of pictures")
    fixed, channels = shape[1:3], shape[3]
    if image_size is None:
        if None in fixed:
            raise ImportRefused("The model takes pictures of any size: pass the size it was trained on as "
                                "--image-size, e.g. 224 or 224x160 (height x width)")
        return (*fixed, channels)
    if any(side not in (None, given) for side, given in zip(fixed, image_size)):
        said = " x ".join("any" if side is None else str(side) for side in fixed)
        raise ImportRefused(f"The model takes pictures of {said}, not {image_size[0]} x {image_size[1]}: pass that "
                            "size as --image-size, or leave it out")
    return (*image_size, channels)


def servable_network(notebook: keras.Model, shape: tuple[int, int, int], from_arithmetic: str | None) -> keras.Model:
    """The notebook's network as .h5 holds it and reads it back: without the arithmetic on
    tensors that did its scaling (rebuilt of its layers in a row), without its data augmentation
    (an identity in its place: it does nothing when a model answers, and some of it cannot be
    saved to .h5), and with fixed values in place of the state of adapted Normalization layers,
    which .h5 reads back only for a layer at a model's top level."""
    network = notebook if from_arithmetic is None else in_a_row(notebook, shape, from_arithmetic)
    if any(_servable_layer(layer) is not layer for layer in all_layers(network)):
        network = keras.models.clone_model(network, clone_function=_servable_layer, recursive=True)
    return network


def in_a_row(notebook: keras.Model, shape: tuple[int, int, int], from_arithmetic: str) -> keras.Sequential:
    """The notebook's layers in a row, without the arithmetic on tensors before them (which did
    the scaling `from_arithmetic`) and the augmentation among them, checked to answer as the
    notebook does."""
    kept = [step for step in _steps(notebook) if isinstance(step, keras.layers.Layer) and not _augmentation(step)]
    try:
        rebuilt = keras.Sequential([keras.Input(shape), *kept])
        scaled = keras.Sequential([keras.Input(shape), *scaling_layers(from_arithmetic), rebuilt])
        alike = answers_alike(scaled, notebook, probe_pixels(shape))
    except Exception:  # layers that take two tensors (Add, Concatenate), or another's
        alike = False
    if not alike:
        raise ImportRefused(f"The model did arithmetic on tensors ({', '.join(arithmetic(_steps(notebook)))}) and its "
                            f"layers do not follow one another, so it cannot be rebuilt without that arithmetic: "
                            f"{BY_HAND}")
    return rebuilt


def _steps(model: keras.Model) -> list:
    """The model's layers and its arithmetic on tensors, in the order they run."""
    return [step for step in getattr(model, "operations", model.layers)  # a Sequential has no operations
            if not isinstance(step, keras.layers.InputLayer)]


def arithmetic(steps: list) -> list[str]:
    """The kinds of arithmetic on tensors outside layers among `steps` (`inputs / 255`,
    preprocess_input), which Keras writes to .h5 but cannot read back."""
    return sorted({type(step).__name__ for step in steps if not isinstance(step, keras.layers.Layer)})


def _first_layer(steps: list) -> int:
    """Where the first layer that does something when the model answers is among `steps`."""
    return next((index for index, step in enumerate(steps)
                 if isinstance(step, keras.layers.Layer) and not _augmentation(step)), 0)


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers, and those of the models within it."""
    return [each for layer in model.layers
            for each in (layer, *(all_layers(layer) if hasattr(layer, "layers") else ()))]


def _servable_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    if _augmentation(layer):  # Identity alone would refuse the `mask` that a block of them was called with
        return keras.Sequential([keras.layers.Identity()], name=f"{layer.name}_left_out")
    if isinstance(layer, keras.layers.Normalization) and layer.input_mean is None and layer.built:  # adapted
        # Its settings kept (axis, invert...), its state as values given: those .h5 keeps in the model's settings.
        mean, variance = (np.squeeze(keras.ops.convert_to_numpy(each)) for each in (layer.mean, layer.variance))
        return keras.layers.Normalization.from_config(layer.get_config() | {"mean": mean, "variance": variance})
    return layer


def _augmentation(step) -> bool:
    """A layer that does nothing when a model answers (RandomFlip, RandAugment...), or a block of
    them; not RandomCrop, kept as geometry, so that the model answers as the notebook's does
    whatever Keras makes of it then (3.15 passes pictures through it uncropped)."""
    inner = getattr(step, "layers", [step])
    return bool(inner) and all(
        (type(each).__name__.startswith("Random") and not isinstance(each, keras.layers.RandomCrop))
        or type(each).__name__ in AUGMENTATION for each in inner)


# --- The model served ------------------------------------------------------------------------

def served_model(network: keras.Model, scaling: list, shape: tuple[int, int, int], head: list) -> keras.Model:
    """The network as the web app takes it: RGB pixels 0-255 of its size in (made grey for a
    network of one channel), then the layers `scaling` that do the notebook's preprocessing, and
    after the network the layers `head` that make its outputs a probability per class."""
    # The network called with training=False, which holds only where its caller gives none (fit's
    # training=True still reaches it): a Resizing, CenterCrop or RandomCrop in it defaults to
    # training=True and hands that on to the layers after it, so the model called as model(x)
    # ran its batch norm on the batch (updating its moving statistics) and its dropout.
    inputs = keras.Input((*shape[:2], 3))
    x = inputs
    for layer in [*grey_layers(shape[2]), *scaling]:
        x = layer(x)
    x = network(x, training=False)
    for layer in head:
        x = layer(x)
    return keras.Model(inputs, x)


def grey_layers(channels: int) -> list[keras.layers.Layer]:
    """What makes RGB pictures grey for a network of one channel; its weights add up to 1, so
    that it goes before any scaling."""
    return [fixed_dense(GREY_WEIGHTS, np.zeros(1))] if channels == 1 else []


def probability_layers(network: keras.Model, classes: int,
                       shape: tuple[int, int, int]) -> list[keras.layers.Layer]:
    """The layers after the network that make its outputs a probability per class: a softmax
    after logits, and two outputs from a two-class network's one."""
    answers = network(probe_pixels(shape), training=False)
    if isinstance(answers, (dict, list, tuple)) or len(answers.shape) != 2:  # several outputs, or a map of scores
        raise ImportRefused(f"The model gives outputs of shape {network.output_shape}, not one score per class: "
                            "import a classifier of one output")
    answers = keras.ops.convert_to_numpy(answers)
    outputs, activation = answers.shape[1], last_activation(network)
    if outputs not in (classes, 1) or (outputs == 1 and classes != 2):
        raise ImportRefused(f"The model gives {plural(outputs, 'output')} but there are {plural(classes, 'class')}: "
                            "check --classes, or the class folders of --data")
    # A last layer that does not say, such as one that averages: probabilities for any input, as a softmax's are.
    if activation is None and outputs > 1 and (answers >= 0).all() and np.allclose(answers.sum(axis=1), 1, atol=1e-3):
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
                        "softmax (or logits) answers which one a picture shows: import a model trained for one class "
                        "a picture")


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


def check_against_notebook(served: keras.Model, notebook: keras.Model, scaling: list, shape: tuple[int, int, int],
                           head: list, pictures: np.ndarray) -> None:
    """That the model served answers as the notebook's, given the same preprocessing and outputs
    made probabilities in the same way: nothing was lost in taking it apart."""
    if not answers_alike(served, served_model(notebook, scaling, shape, head), pictures):
        raise ImportRefused("The model answers otherwise without its augmentation and arithmetic on tensors: "
                            f"{BY_HAND}")


def reloaded(served: keras.Model, pictures: np.ndarray) -> keras.Model:
    """`served` as it reads back from .h5, checked to answer as it does: what the web app loads."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "served.h5"
        try:
            cards.save_h5(served, path)
        except OSError as error:  # the disk's fault, not the model's
            raise ImportRefused(f"Cannot write the model in the temporary folder {Path(folder).parent} to read it "
                                f"back ({os_reason(error)}): make room there, or set TMPDIR to another folder") from None
        except Exception as error:  # a layer whose settings .h5 cannot hold
            raise ImportRefused(f"The model cannot be saved to .h5 ({keras_words(error)}): {BY_HAND}") from None
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:
            why = model_file.keras_refusal(error) or keras_words(error)
            raise ImportRefused(f"The model does not read back from .h5 ({why}): {BY_HAND}") from None
    if not answers_alike(model, served, pictures):
        raise ImportRefused(f"The model answers otherwise once read back from .h5, as a layer of it keeps state .h5 "
                            f"does not: {BY_HAND}")
    return model


def keras_words(error: Exception) -> str:
    """Keras's own reason, cut short: some quote a layer's whole settings, thousands of numbers."""
    words = reason(error)
    return words if len(words) <= KERAS_WORDS else words[:KERAS_WORDS].rstrip() + "..."


def answers_alike(model: keras.Model, other: keras.Model, pixels: np.ndarray) -> bool:
    # Called, not predict(): TensorFlow would trace a function for each model, and warn of it.
    answers = [keras.ops.convert_to_numpy(each(pixels, training=False)) for each in (model, other)]
    return np.allclose(*answers, **SAME_ANSWERS)


def probe_pixels(shape: tuple[int, int, int]) -> np.ndarray:
    """A few pictures of random pixels, by which two models are told to answer alike."""
    return np.random.default_rng(0).integers(0, 256, (PROBE_PICTURES, *shape)).astype(np.float32)


def imported_card(served: keras.Model, source: Path, name: str, classes: list[str], kind: str, found_by: str,
                  standardized: tuple[list[float], list[float]] | None, data: Dataset | None,
                  evaluation: dict | None) -> dict:
    """The card of an imported model: what it is, and how it scored on the pictures given (its
    test figures, as the pictures it trained on are not known here)."""
    card = {
        "format": cards.CARD_FORMAT,
        "name": name,
        "architecture": "imported",
        "classes": classes,
        "input_shape": list(served.input_shape[1:]),
        "parameters": int(served.count_params()),
        "file_size_bytes": None,  # these two filled in once the file is written
        "file_sha256": None,
        "weights": f"imported from {source.name}",  # as the model's page shows it
        "hyperparameters": {"imported_from": source.name, "scaling": kind, "scaling_found_by": found_by,
                            **({"mean": standardized[0], "std": standardized[1]} if standardized else {})},
        "created": cards.now_iso(),  # not its training's, nor its backend: this file says nothing of them
        "test_digest": digest(data.files) if data else None,
        "test_evaluation": evaluation,
    }
    return {"summary": cards.in_words(card)} | card
