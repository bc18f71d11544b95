"""Occlusion benchmark: what "show what the answer rests on" costs, and whether its map means
anything, on a served model and the held-out images of its own training run.

    python bench/explain.py --data cifar10-train.zip [--model models/cifar10_scratch.h5]
                            [--images 300] [--patch-share 0.25 0.375]

Splits the data as the model's training run did (its card's validation fraction and seed;
the card's held_out_digest confirms it), then, per patch share, for each held-out image:
the time for one answer and for one explained answer; whether the map is telling (its
largest drop at least MIN_DROP); and, as a check that the map ranks pixels by what they
matter, the drop from covering the quarter of the pixels it ranks highest, against the
quarter it ranks lowest (with the image's mean colour, as the squares are covered).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from trainer.keras_import import import_keras  # noqa: E402

keras = import_keras()
from trainer.card import load_card  # noqa: E402
from trainer.data import DataError, digest, load_dataset, stratified_split  # noqa: E402
from webapp import occlusion  # noqa: E402
from webapp.registry import Classifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the model's training data: a folder or .zip of class subfolders")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "cifar10_scratch.h5")
    parser.add_argument("--images", type=int, default=300, help="held-out images to explain (default 300)")
    parser.add_argument("--patch-share", type=float, nargs="+", default=[occlusion.PATCH_SHARE],
                        help="covered square's side as a share of the image's (default the app's)")
    parser.add_argument("--steps", type=int, nargs="+", default=[occlusion.STEPS],
                        help="squares per row and column (default the app's)")
    args = parser.parse_args()

    if args.images < 1:
        parser.error(f"--images must be 1 or more, not {args.images}")
    try:
        card = load_card(args.model.with_suffix(".json"))
        data, _ = load_dataset(args.data, card["input_shape"][0])
    except (ValueError, DataError) as error:  # no card beside the model, no such data: one line
        raise SystemExit(f"error: {error}") from None
    classifier = Classifier(args.model.stem, card, keras.saving.load_model(args.model))
    settings = card["hyperparameters"]
    _, held_out = stratified_split(data.labels, settings["validation_fraction"], settings["seed"], data.classes)
    same = digest(data.files[held_out]) == card.get("held_out_digest")
    count = min(args.images, len(held_out))  # a small data set holds out fewer than the default 300
    print(f"{args.model.name} on {data.name}: {len(held_out)} held-out images "
          f"({'the card' if same else 'NOT the card'}'s held-out digest); explaining {count}")
    images = data.images[np.random.default_rng(0).choice(held_out, count, replace=False)]

    # Trace the batch shape timed below (the app's workers do it at start), so that the first
    # image's time is not a compilation's: CHUNK images a pass, whatever the setting.
    occlusion.warm_up(classifier.predict, images.shape[1:3])
    for share in args.patch_share:
        for steps in args.steps:
            occlusion.PATCH_SHARE, occlusion.STEPS = share, steps
            measure(classifier, images, f"patch share {share:g}, {steps}x{steps} squares")


def measure(classifier: Classifier, images: np.ndarray, setting: str) -> None:
    plain, explained, largest, highest, lowest = [], [], [], [], []
    for pixels in images:
        started = time.perf_counter()
        probabilities = classifier.predict(pixels[np.newaxis].astype(np.float32))[0]
        plain.append(time.perf_counter() - started)
        best = int(np.argmax(probabilities))
        started = time.perf_counter()
        found = occlusion.occlude(classifier.predict, pixels, best, classifier.classes[best])
        explained.append(time.perf_counter() - started + plain[-1])
        largest.append(found.largest_drop)
        ranks = occlusion.heat(found, *pixels.shape[:2])
        # Exactly a quarter each: thresholds at quantiles take in every tied pixel, and a map
        # clipped at 0 ties many (its "lowest quarter" covered up to 65% of a 32 px image). Ties
        # in a seeded random order: in reading order, the lowest quarter was the top rows.
        shuffled = np.random.default_rng(0).permutation(ranks.size)
        order = shuffled[np.argsort(ranks.ravel()[shuffled], kind="stable")]
        quarter = order.size // 4
        covered = [occlusion.covering(pixels, np.unravel_index(order[-quarter:], ranks.shape)),
                   occlusion.covering(pixels, np.unravel_index(order[:quarter], ranks.shape))]
        top, bottom = classifier.predict(np.stack(covered))[:, best]
        highest.append(probabilities[best] - top)
        lowest.append(probabilities[best] - bottom)
    telling = np.mean(np.array(largest) >= occlusion.MIN_DROP)
    print(f"{setting}: one answer {1000 * statistics.median(plain):.1f} ms, explained "
          f"{1000 * statistics.median(explained):.1f} ms (medians); telling maps {telling:.1%}, largest drop "
          f"{np.median(largest):.3f} (median); covering the highest-ranked quarter lowers the answer by "
          f"{np.mean(highest):.3f} on average, the lowest-ranked quarter by {np.mean(lowest):.3f}")


if __name__ == "__main__":
    main()
