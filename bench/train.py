"""Training benchmark: train presets and print their speed and accuracy.

    python bench/train.py scratch-small --data cifar10-train.zip
    KERAS_BACKEND=jax python bench/train.py scratch-small scratch-large:epochs=30:cutout=8 --data DATA

Each run is a preset, optionally with overrides (`PRESET:KEY=VALUE:...`): the command
line's options in its words (epochs=30, unfreeze_blocks=block5,block6), checked as it checks
them, and any other key of the preset in JSON (widths=[96,256,288], flip_tta=false). The data is loaded once for all runs. For each run it prints time per epoch (the
first one includes compilation), total training time, training images per second and
validation accuracy, then a Markdown table of all runs. Models go to a temporary folder
unless --out is given. A script, not a test: figures go into BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from trainer.keras_import import BackendError, import_keras  # noqa: E402

try:
    import_keras()  # before the modules below import it, so that TensorFlow's start-up lines are dropped
except BackendError as error:  # JAX not installed here, say: one line, as the trainer says it
    sys.exit(f"error: {error}")
from trainer.options import OVERRIDES, UsageError, did_you_mean, recipe  # noqa: E402
from trainer.data import DataError, load_dataset, natural_size  # noqa: E402
from trainer.models import WeightsError  # noqa: E402
from trainer.presets import PRESETS  # noqa: E402
from trainer.train import TrainingError, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", default=["scratch-small"], metavar="PRESET[:KEY=VALUE:...]",
                        help=f"runs to make, one after another (presets: {', '.join(PRESETS)})")
    parser.add_argument("--data", required=True, help="cifar10, or a folder / .zip of class subfolders")
    parser.add_argument("--out", type=Path, help="keep the models in this folder")
    args = parser.parse_args()

    runs = [parse_run(spec) for spec in args.runs]
    rows = []
    try:
        for row in train_all(runs, args.data, args.out):
            rows.append(row)
    except (DataError, WeightsError, TrainingError) as error:  # said as the command line says them
        raise SystemExit(f"error: {error}") from None
    except KeyboardInterrupt:  # a run's checkpoints are in a temporary folder: nothing to resume
        print_table(rows)
        raise SystemExit(f"\nInterrupted after {len(rows)} of {len(runs)} runs; a benchmark run does not "
                         "resume (its checkpoints were in a temporary folder): run it again.") from None
    print_table(rows)
    if args.out is None:
        print("\n(The models were saved in a temporary folder, now deleted: --out DIR keeps them.)")


def print_table(rows: list[str]) -> None:
    if not rows:
        return
    print("\n| run | parameters | first epoch | epoch | total | images/s | val accuracy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(row)


def train_all(runs: list[tuple[str, dict]], data_spec: str, out_dir: Path | None) -> Iterator[str]:
    """Train each run in turn, the data loaded once per image size; yields each one's table row
    as it ends."""
    datasets = {}
    with tempfile.TemporaryDirectory() as scratch:
        out = out_dir or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        for index, (spec, hp) in enumerate(runs, start=1):
            if hp["image_size"] is None:  # as the command line does it
                hp["image_size"] = natural_size(data_spec, hp["upscale_size"])
            size = hp["image_size"]
            if size not in datasets:
                datasets[size] = load_dataset(data_spec, size)
            data, test = datasets[size]
            print(f"\n=== run {index}/{len(runs)}: {spec}", flush=True)
            card = train(hp, data, test, out, f"bench{index}_{hp['preset']}", Path(scratch) / f"run{index}")
            yield report(spec, hp, card)


def parse_run(spec: str) -> tuple[str, dict]:
    """A run spec's hyperparameters. Those the command line takes are read and checked as it
    does (a wrong value fails here, not after a GPU has started); the others are read as JSON
    and must have the preset's type."""
    preset, *overrides = spec.split(":")
    if preset not in PRESETS:
        raise SystemExit(f"error: unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    options = argparse.Namespace(preset=preset, arch=None, **dict.fromkeys(OVERRIDES))
    others = {}
    for item in overrides:
        key, _, text = item.partition("=")
        if key in OVERRIDES:
            setattr(options, key, read_option(key, text))
        elif key in PRESETS[preset]:
            others[key] = read_json(key, text, PRESETS[preset][key])
        else:
            raise SystemExit(f"error: {preset} has no hyperparameter {key!r}"
                             + did_you_mean(key, [*OVERRIDES, *PRESETS[preset]]))
    try:
        hp = recipe(options)
    except UsageError as error:
        raise SystemExit(f"error: {error}") from None
    return spec, hp | others


def read_option(key: str, text: str):
    reader = OVERRIDES[key][0]
    if text.startswith("["):  # a list in JSON, as other keys take one; the command line writes a,b
        try:
            text = ",".join(map(str, json.loads(text)))
        except (json.JSONDecodeError, TypeError):
            pass  # refused by the reader below
    if isinstance(reader, tuple):  # the choices
        if text not in reader:
            raise SystemExit(f"error: {key} must be {' or '.join(reader)}, not {text!r}")
        return text
    try:
        return reader(text)
    except argparse.ArgumentTypeError as error:
        raise SystemExit(f"error: {key} {error}") from None


KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a word", list: "a JSON list"}


def read_json(key: str, text: str, preset_value):
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text  # a plain word, such as gelu
    kind = type(preset_value)
    if kind is float and type(value) is int:
        value = float(value)
    if type(value) is not kind:
        hint = " (in a shell, single-quote the run spec)" if kind is list else ""
        raise SystemExit(f"error: {key} takes {KINDS[kind]}, such as {json.dumps(preset_value)}, "
                         f"not {text!r}{hint}")
    return value


def report(spec: str, hp: dict, card: dict) -> str:
    """Print one run's figures; return them as a Markdown table row. An epoch's seconds include
    its validation pass; a transfer run's median mixes its frozen and unfrozen epochs."""
    seconds = card["history"]["seconds"]
    train_images = card["training_images"]
    # One epoch has no epoch without compilation: its median and throughput would be the
    # compiling epoch's, off by a factor of ten or more, so none is given.
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else None
    accuracy = card["evaluation"]["accuracy"]
    views = ""
    if hp.get("flip_tta"):
        views = " (flip and translate averaging)" if hp.get("translate_tta") else " (flip averaging)"
    print(f"\n{spec}: {card['parameters']:,} parameters, {card['file_size_bytes'] / 1e6:.1f} MB, "
          f"{card['training_precision']} training")
    print(f"first epoch       {seconds[0]:8.1f} s (includes compilation)")
    if steady is None:
        print("epoch (median)         n/a (one epoch only: run two or more for the speed without compilation)")
    else:
        print(f"epoch (median)    {steady:8.1f} s (epochs after the first)")
    print(f"total training    {card['training_seconds']:8.1f} s for {card['epochs_run']} epochs")
    if steady is not None:
        print(f"throughput        {train_images / steady:8.0f} training images/s (validation included in the time)")
    print(f"val accuracy      {accuracy:8.2%} on {card['evaluation']['samples']} held-out images{views}")
    print(f"device            {card['device']} ({card['backend']} backend, Keras {card['keras_version']})",
          flush=True)
    epoch, speed = ("n/a", "n/a") if steady is None else (f"{steady:.2f} s", f"{train_images / steady:,.0f}")
    return (f"| `{spec}` | {card['parameters']:,} | {seconds[0]:.1f} s | {epoch} | "
            f"{card['training_seconds']:.1f} s | {speed} | {accuracy:.2%} |")


if __name__ == "__main__":
    main()
