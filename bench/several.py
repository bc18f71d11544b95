"""The several-pictures page: how long the form's POST takes with N photo-like uploads at once,
answered by one model and shown with a thumbnail each, through Flask's test client (no server).

    python bench/several.py [--models models/] [--model NAME] [--pictures 8] [--requests 4]

Sends N copies of a 1024 x 1024 JPEG (quality 90, as static/app.js makes photos smaller before
sending several), then of a 600 x 600 PNG, each photo-like (bench/serve.py), and prints the
median time of a request after the first (which loads the model). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serve import photo  # noqa: E402  (bench/serve.py: run as a script, this folder is on the path)
from webapp import create_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="cifar10_scratch")
    parser.add_argument("--pictures", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4,
                        help="requests per format, the first not counted (it loads the model): 2 or more")
    args = parser.parse_args()
    if args.requests < 2:
        parser.error(f"--requests must be 2 or more (the first only loads the model), not {args.requests}")
    app = create_app({"MODELS_DIR": str(args.models), "DEFAULT_MODEL": args.model, "SECRET_KEY": uuid.uuid4().hex,
                      "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    for fmt, side in (("JPEG", 1024), ("PNG", 600)):
        picture = photo(fmt, side)
        times = []
        for _ in range(args.requests):
            images = [(io.BytesIO(picture), f"photo{n}.{fmt.lower()}") for n in range(args.pictures)]
            started = time.perf_counter()
            answer = client.post("/predict", data={"model": args.model, "image": images},
                                 content_type="multipart/form-data")
            times.append(time.perf_counter() - started)
            if answer.status_code != 200:
                sys.exit(f"{fmt}: the page answered {answer.status_code}")
        print(f"{args.pictures} x {fmt} {side} x {side} ({len(picture) / 1e6:.1f} MB each): "
              f"median {statistics.median(times[1:]) * 1000:.0f} ms a request, of {len(times) - 1} after the first")


if __name__ == "__main__":
    main()
