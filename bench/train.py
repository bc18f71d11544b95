"""Training benchmark: train presets and print their speed and accuracy.

    python bench/train.py scratch-small --data cifar10-train.zip
    KERAS_BACKEND=jax python bench/train.py scratch-small scratch-large:epochs=30:cutout=8 --data DATA

Each run is a preset, optionally with overrides (`PRESET:KEY=VALUE:...`, values read as
JSON). The data is loaded once for all runs. For each run it prints time per epoch (the
first one includes compilation), total training time, training images per second and
validation accuracy, then a Markdown table of all runs. Models go to a temporary folder
unless --out is given. A script, not a test: figures go into BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from trainer.data import load_dataset, natural_size  # noqa: E402
from trainer.models import unfreeze_problem  # noqa: E402
from trainer.presets import PRESETS  # noqa: E402
from trainer.train import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", default=["scratch-small"], metavar="PRESET[:KEY=VALUE:...]",
                        help=f"runs to make, one after another (presets: {', '.join(PRESETS)})")
    parser.add_argument("--data", required=True, help="cifar10, or a folder / .zip of class subfolders")
    parser.add_argument("--out", type=Path, help="keep the models in this folder")
    args = parser.parse_args()

    runs = [parse_run(spec) for spec in args.runs]
    datasets = {}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        for index, (spec, hp) in enumerate(runs, start=1):
            if hp["image_size"] is None:  # as the command line does it
                hp["image_size"] = natural_size(args.data, hp["upscale_size"])
            size = hp["image_size"]
            if size not in datasets:
                datasets[size] = load_dataset(args.data, size)
            data, test = datasets[size]
            print(f"\n=== run {index}/{len(runs)}: {spec}", flush=True)
            card = train(hp, data, test, out, f"bench{index}_{hp['preset']}", Path(scratch) / f"run{index}")
            rows.append(report(spec, hp, card))
    print("\n| run | parameters | first epoch | epoch | total | images/s | val accuracy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(row)


def parse_run(spec: str) -> tuple[str, dict]:
    preset, *overrides = spec.split(":")
    if preset not in PRESETS:
        raise SystemExit(f"error: unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    hp = dict(PRESETS[preset], preset=preset)
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in hp:
            raise SystemExit(f"error: {preset} has no hyperparameter {key!r}")
        try:
            hp[key] = json.loads(value)
        except json.JSONDecodeError:
            hp[key] = value  # a plain string, such as a weights path
        if isinstance(PRESETS[preset].get(key), list) and not isinstance(hp[key], list):
            raise SystemExit(f'error: {key} takes a JSON list, such as ["a","b"] or [1,2] (in a shell, '
                             "single-quote the run spec)")
    problem = hp["arch"] != "scratch" and unfreeze_problem(hp["arch"], hp["unfreeze_blocks"])
    if problem:  # found now, not after a GPU has trained the head
        raise SystemExit(f"error: {problem}")
    return spec, hp


def report(spec: str, hp: dict, card: dict) -> str:
    """Print one run's figures; return them as a Markdown table row. An epoch's seconds include
    its validation pass; a transfer run's median mixes its frozen and unfrozen epochs."""
    seconds = card["history"]["seconds"]
    train_images = card["training_images"]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    accuracy = card["evaluation"]["accuracy"]
    views = ""
    if hp.get("flip_tta"):
        views = " (flip and translate averaging)" if hp.get("translate_tta") else " (flip averaging)"
    print(f"\n{spec}: {card['parameters']:,} parameters, {card['file_size_bytes'] / 1e6:.1f} MB, "
          f"{card['training_precision']} training")
    print(f"first epoch       {seconds[0]:8.1f} s (includes compilation)")
    print(f"epoch (median)    {steady:8.1f} s")
    print(f"total training    {card['training_seconds']:8.1f} s for {card['epochs_run']} epochs")
    print(f"throughput        {train_images / steady:8.0f} training images/s (validation included in the time)")
    print(f"val accuracy      {accuracy:8.2%} on {card['evaluation']['samples']} held-out images{views}")
    print(f"device            {card['device']} ({card['backend']} backend, Keras {card['keras_version']})",
          flush=True)
    return (f"| `{spec}` | {card['parameters']:,} | {seconds[0]:.1f} s | {steady:.2f} s | "
            f"{card['training_seconds']:.1f} s | {train_images / steady:,.0f} | {accuracy:.2%} |")


if __name__ == "__main__":
    main()
