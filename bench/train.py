"""Training benchmark: train a preset and print its speed and accuracy.

    python bench/train.py --preset scratch-small --data ../shared/data/cifar10-train.zip
    KERAS_BACKEND=jax python bench/train.py --preset scratch-medium --data .data/cifar10-train.zip

Prints time per epoch (the first one includes compilation), total training time, training
images per second and validation accuracy, then the device. The model goes to a temporary
folder unless --out is given. A script, not a test: figures go into BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from trainer.data import load_dataset  # noqa: E402
from trainer.presets import PRESETS  # noqa: E402
from trainer.train import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="scratch-small")
    parser.add_argument("--data", default="../shared/data/cifar10-train.zip", help="cifar10 or a folder / .zip")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs (scratch presets)")
    parser.add_argument("--out", type=Path, help="keep the model in this folder")
    args = parser.parse_args()

    hp = dict(PRESETS[args.preset], preset=args.preset)
    if args.epochs:
        hp["epochs"] = args.epochs
    data, test = load_dataset(args.data, hp["image_size"])
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        card = train(hp, data, test, out, f"bench_{args.preset}", Path(scratch) / "run")

    seconds = card["history"]["seconds"]
    train_images = len(data.labels) - card["evaluation"]["samples"]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    print(f"\npreset {args.preset}: {card['parameters']:,} parameters, {card['file_size_bytes'] / 1e6:.1f} MB")
    print(f"first epoch       {seconds[0]:8.1f} s (includes compilation)")
    print(f"epoch (median)    {steady:8.1f} s")
    print(f"total training    {card['training_seconds']:8.1f} s for {card['epochs_run']} epochs")
    print(f"throughput        {train_images / steady:8.0f} training images/s")
    views = " (with flip averaging)" if hp.get("flip_tta") else ""
    print(f"val accuracy      {card['evaluation']['accuracy']:8.2%} on {card['evaluation']['samples']} held-out images{views}")
    print(f"device            {card['device']} ({card['backend']} backend, Keras {card['keras_version']})")


if __name__ == "__main__":
    main()
