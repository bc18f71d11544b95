"""A Keras model trained elsewhere, as a notebook leaves it, made into one the web app serves
(`python -m trainer import`): raw RGB pixels 0-255 in, the notebook's preprocessing as its
first layers, a probability per class out, saved as `.h5` with a card beside it.

What the notebook did to the pixels is named by --scaling, or found:
- for a model that did it on tensors (`preprocess_input(inputs)`, which `.h5` cannot hold),
  by which scaling, as a layer in its place, gives the model's own answers;
- else on labelled pictures, by which scores best (a wrong one scores far lower, often near chance);
- else, for a model whose first layer scales pixels itself (`Rescaling`, an EfficientNet), none.
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
# Scalings that score this close to the best (in pictures, or as a share of them) are said to.
CLOSE_PICTURES, CLOSE_SHARE = 3, 0.01
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
    network = without_augmentation(notebook, shape)
    if network is not notebook:
        check_rebuilt(notebook, network, own or "none", shape)
    data = load_folder(data_path, shape[:2], classes) if data_path else None
    classes = classes or data.classes
    scores = {}
    if own:
        if scaling not in (None, own):
            raise ImportRefused(f"The model's own arithmetic on tensors is the scaling {own}, not {scaling}: "
                                "leave --scaling out")
        kind = own
        print(f"Its arithmetic on tensors is the scaling {kind}: {SCALINGS[kind]}. A layer does it now.")
    elif scaling:
        kind = scaling
    elif data:
        scores = scores_by_scaling(network, shape, data)
        kind = best_scaling(scores, data)
    elif scales_itself(network):
        kind = "none"
        print("Its first layer scales pixels itself: it takes them as they are.")
    else:
        raise ImportRefused("Say what the notebook did to pixels before the model with --scaling (" +
                            "; ".join(f"{each}: {what}" for each, what in SCALINGS.items()) +
                            "), or pass --data, labelled pictures, to find it by scoring")
    served = reloaded(served_model(network, kind, shape, len(classes)), probe_pixels((*shape[:2], 3)))
    evaluation = scores.get(kind) or (data and score(served, data))
    if evaluation:
        print(format_report(evaluation, f"{model_path.stem} on {data.name}"))
    card = cards.save_model_and_card(served, imported_card(served, source, model_path.stem, classes, kind, data,
                                                           evaluation), model_path)
    inside = "taking pixels as they are" if kind == "none" else f"with the scaling {kind} as its first layer"
    print(f"\nSaved {model_path} ({filesize(card['file_size_bytes'])}, {card['parameters']:,} parameters), {inside}.")
    return card


def scores_by_scaling(network: keras.Model, shape: tuple[int, int, int], data: Dataset) -> dict[str, dict]:
    """The network's scores on `data` after each scaling it may have been trained on."""
    print(f"Scoring the model on {data.name} after each scaling a notebook may have done:")
    scores = {}
    for kind in scalings_for(shape[2]):
        scores[kind] = score(served_model(network, kind, shape, len(data.classes)), data)
        print(f"  {kind:<6} {scores[kind]['accuracy']:7.2%}  {SCALINGS[kind]}", flush=True)
    return scores


def best_scaling(scores: dict[str, dict], data: Dataset) -> str:
    """The scaling that scored best (the first of a tie: none before the others), with a warning
    where others came within a few pictures of it."""
    kind = max(scores, key=lambda each: scores[each]["accuracy"])
    images = len(data.labels)
    margin = max(CLOSE_PICTURES, CLOSE_SHARE * images)
    close = [each for each in scores
             if each != kind and (scores[kind]["accuracy"] - scores[each]["accuracy"]) * images < margin]
    if close:
        named = ", ".join(close[:-1]) + " and " + close[-1] if len(close) > 1 else close[0]
        print(f"warning: {named} scored within {plural(round(margin), 'picture')} of {kind} on {data.name}: too few "
              "pictures to tell them apart? Pass --scaling to say what the notebook did", file=sys.stderr)
    return kind


def score(model: keras.Model, data: Dataset) -> dict:
    try:
        return evaluate(model, data)
    except BadOutput as error:
        raise ImportRefused(f"The model gives {error}") from None


def imported_card(served: keras.Model, source: Path, name: str, classes: list[str], kind: str,
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
        "hyperparameters": {"imported_from": source.name, "scaling": kind},
        "created": cards.now_iso(),  # not its training's, nor its backend: this file says nothing of them
        "test_digest": digest(data.files) if data else None,
        "test_evaluation": evaluation,
    }


def read_notebook_model(path: Path) -> keras.Model:
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # a file that is not a Keras model fails in many ways
        why = keras_refusal(error) or reason(error)
        if path.suffix == ".h5" and "arithmetic done on tensors" in why:  # which .keras holds
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


def without_augmentation(model: keras.Model, shape: tuple[int, int, int]) -> keras.Model:
    """The model's layers in a row, without its data augmentation and arithmetic on tensors
    (which do nothing when it answers, or cannot go into .h5); the model itself when it holds
    neither."""
    steps = [step for step in getattr(model, "operations", model.layers)  # a Sequential has no operations
             if not isinstance(step, keras.layers.InputLayer)]
    kept = [step for step in steps if isinstance(step, keras.layers.Layer) and not _augmentation(step)]
    if len(kept) == len(steps):
        return model
    left_out = ", ".join(sorted({type(step).__name__ for step in steps if step not in kept}))
    try:
        rebuilt = keras.Sequential([keras.Input(shape), *kept])
    except Exception as error:  # branches: the layers do not follow one another
        raise ImportRefused(f"The model cannot be rebuilt without {left_out} ({reason(error)}): its layers do not "
                            f"follow one another, as a Sequential's do. {BY_HAND}") from None
    return rebuilt


def _augmentation(step) -> bool:
    """A Random* layer but RandomCrop (which crops when answering too), or a block of them."""
    inner = getattr(step, "layers", [step])
    return bool(inner) and all(type(each).__name__.startswith("Random")
                               and not isinstance(each, keras.layers.RandomCrop) for each in inner)


def scaling_of_arithmetic(notebook: keras.Model, shape: tuple[int, int, int]) -> str:
    """The scaling that its arithmetic on tensors did to raw pixels, found by what reaches its
    first layer; refused where that arithmetic is not all before its first layer."""
    steps = [step for step in notebook.operations if not isinstance(step, keras.layers.InputLayer)]
    layers = [index for index, step in enumerate(steps)
              if isinstance(step, keras.layers.Layer) and not _augmentation(step)]
    refusal = ImportRefused(f"The model does arithmetic on tensors ({', '.join(tensor_arithmetic(notebook))}) that "
                            f"is none of the scalings known here ({', '.join(SCALINGS)}), or not before its first "
                            f"layer. {BY_HAND}")
    if not layers or any(not isinstance(step, keras.layers.Layer) for step in steps[layers[0]:]):
        raise refusal
    calls = steps[layers[0]]._inbound_nodes  # in this graph: not `.input`, a nested model's own
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


def check_rebuilt(notebook: keras.Model, rebuilt: keras.Model, kind: str, shape: tuple[int, int, int]) -> None:
    """That the notebook's layers in a row, after the scaling its arithmetic did, answer as it does."""
    scaled = keras.Sequential([keras.Input(shape), *_scaling_layers(kind), rebuilt])
    if not answers_alike(scaled, notebook, probe_pixels(shape)):
        raise ImportRefused(f"The model answers otherwise rebuilt of its layers in a row, without its augmentation: "
                            f"its layers do not follow one another, as a Sequential's do. {BY_HAND}")


def answers_alike(model: keras.Model, other: keras.Model, pixels: np.ndarray) -> bool:
    # Called, not predict(): TensorFlow would trace a function for each model, and warn of it.
    answers = [keras.ops.convert_to_numpy(each(pixels, training=False)) for each in (model, other)]
    return np.allclose(*answers, **SAME_ANSWERS)


def probe_pixels(shape: tuple[int, int, int]) -> np.ndarray:
    """A few pictures of random pixels, by which two models are told to answer alike."""
    return np.random.default_rng(0).integers(0, 256, (PROBE_PICTURES, *shape)).astype(np.float32)


def scales_itself(model) -> bool:
    """Whether the model's first layer (within a nested model, such as an EfficientNet base)
    rescales pixels itself."""
    while True:
        steps = [step for step in model.layers if not isinstance(step, keras.layers.InputLayer)
                 and not _augmentation(step)]
        if not steps or not hasattr(steps[0], "layers"):
            return bool(steps) and isinstance(steps[0], (keras.layers.Rescaling, keras.layers.Normalization))
        model = steps[0]


def scalings_for(channels: int) -> list[str]:
    """The scalings a model of that many channels may have had: caffe and torch work on colours."""
    return list(SCALINGS) if channels == 3 else ["none", "unit", "tf"]


def served_model(network: keras.Model, kind: str, shape: tuple[int, int, int], classes: int) -> keras.Model:
    """The network as the web app takes it: RGB pixels 0-255 of its size in (made grey for a
    network of one channel), scaled as `kind` says, and a probability per class out."""
    height, width, channels = shape
    grey = [fixed_dense(GREY_WEIGHTS, np.zeros(1))] if channels == 1 else []  # weights of sum 1: before any scaling
    return keras.Sequential([keras.Input((height, width, 3)), *grey, *_scaling_layers(kind), network,
                             *_probabilities(network, classes)])


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


def _probabilities(network: keras.Model, classes: int) -> list[keras.layers.Layer]:
    """The layers after the network that make its outputs a probability per class: a softmax
    after logits, and two outputs from a two-class network's one."""
    shape = network.output_shape
    if not (isinstance(shape, tuple) and len(shape) == 2):  # several outputs, or a map of scores
        raise ImportRefused(f"The model gives outputs of shape {shape}, not one score per class")
    outputs, activation = shape[1], last_activation(network)
    if outputs == 1 and classes == 2:
        if activation == "sigmoid":  # p: [1 - p, p]
            return [fixed_dense(np.array([[-1.0, 1.0]]), np.array([1.0, 0.0]))]
        if activation == "linear":  # a logit z: softmax([0, z]) is [1 - sigmoid(z), sigmoid(z)]
            return [fixed_dense(np.array([[0.0, 1.0]]), np.zeros(2)), keras.layers.Softmax()]
    elif outputs == classes:
        if activation == "softmax":
            return []
        if activation == "linear":  # logits
            return [keras.layers.Softmax()]
    else:
        raise ImportRefused(f"The model gives {plural(outputs, 'output')} but there are {plural(classes, 'class')}")
    raise ImportRefused(f"The model's last layer gives {activation or 'something other than'} outputs for "
                        f"{plural(classes, 'class')}, where a softmax (or logits) answers which one a picture shows")


def last_activation(model) -> str | None:
    """The name of the activation of the layer that gives the model's outputs: "softmax",
    "linear" (logits)...; None where it cannot be told."""
    while hasattr(model, "layers") and model.layers:
        model = model.layers[-1]
    if isinstance(model, keras.layers.Softmax):
        return "softmax"
    activation = getattr(model, "activation", None)
    return getattr(activation, "__name__", None)


def reloaded(served: keras.Model, pixels: np.ndarray) -> keras.Model:
    """`served` as it reads back from .h5, checked to answer as it does: what the web app loads."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "served.h5"
        cards.save_h5(served, path)
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:
            raise ImportRefused(f"The model does not read back from .h5: {keras_refusal(error) or reason(error)}") \
                from None
    if not answers_alike(model, served, pixels):
        raise ImportRefused("The model answers otherwise once saved to .h5 and read back (a layer that keeps "
                            "state .h5 does not hold?): build it of Keras's own layers, and save it again")
    return model
