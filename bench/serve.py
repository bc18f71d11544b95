"""Serving benchmark: the real gunicorn config on a free localhost port, real uploads.

    python bench/serve.py [--models models/] [--model NAME] [--requests 1000]
                          [--concurrency 1 4 16] [--workers N] [--threads N]
                          [--side 128] [--formats JPEG PNG] [--compare] [--pictures N]

Sends JPEG and PNG uploads to POST /api/predict at each concurrency (keep-alive
connections, one per client thread), then prints latency percentiles, throughput,
errors and the workers' memory at start and end; with --compare, the same again with
compare=1 (every model in the folder answers each upload, and each worker loads them all);
with --pictures N, the same again with N images in each request (one model answers them in
batches of up to 13), with images/s; last, the model alone in batches (images/s), the ceiling for the
server. Only localhost traffic. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.config import DEFAULTS  # noqa: E402
from webapp.registry import Registry  # noqa: E402  (reads cards only: no TensorFlow here)
from webapp.worker import THREADS  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=str(ROOT / "models"), help="models folder (default models/)")
    parser.add_argument("--model", help="model name (default: the app's default model)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", help="IMAGEAPP_WORKERS for gunicorn (default: its config)")
    parser.add_argument("--threads", help="IMAGEAPP_THREADS for gunicorn (default: its config)")
    parser.add_argument("--side", type=int, default=128,
                        help="side of the square uploads in pixels (default 128; 3464 is a 12-megapixel photo)")
    parser.add_argument("--formats", nargs="+", choices=["JPEG", "PNG"], default=["JPEG", "PNG"],
                        help="upload formats, sent in turn (default both; a 12-megapixel PNG is over 10 MB)")
    parser.add_argument("--compare", action="store_true",
                        help="then the same requests with compare=1: every model in the folder answers each")
    parser.add_argument("--pictures", type=int, metavar="N",
                        help="then the same requests with N copies of the image each, answered in batches")
    return parser.parse_args()


def photo(fmt: str, size: int = 128, seed: int = 0) -> bytes:
    """A photo-like picture: smooth gradients plus noise, so JPEG and PNG sizes are realistic."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)
    pixels = np.stack([np.outer(ramp, 1 - ramp), np.outer(1 - ramp, ramp), np.outer(ramp, ramp)], axis=-1) * 200
    pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def multipart(files: list[tuple[str, bytes]], fields: dict[str, str]) -> tuple[bytes, str]:
    """A form's body with these fields and an "image" part for each (file name, bytes), and its
    Content-Type."""
    boundary = uuid.uuid4().hex
    head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                   for name, value in fields.items())
    parts = b"".join((f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n").encode() + image + b"\r\n"
                     for filename, image in files)
    body = head.encode() + parts + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args, port: int) -> subprocess.Popen:
    env = {**os.environ, "IMAGEAPP_BIND": f"127.0.0.1:{port}", "IMAGEAPP_MODELS_DIR": args.models,
           "IMAGEAPP_SECRET_KEY": secrets.token_hex(16)}
    if args.model:
        env["IMAGEAPP_DEFAULT_MODEL"] = args.model
    for name in ("workers", "threads"):
        if getattr(args, name):
            env[f"IMAGEAPP_{name.upper()}"] = getattr(args, name)
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited; run it by hand to see why")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            if response.status == 200:
                return process
            process.kill()  # 503: no usable model among the files, which waiting will not change
            raise SystemExit(f"gunicorn answered /healthz with {response.status}: {response.read().decode()}")
        except OSError:
            time.sleep(0.3)  # not listening yet
    process.kill()
    raise SystemExit("gunicorn did not answer within 120 s")


def workers_rss_mb(process: subprocess.Popen) -> list[float]:
    return [round(child.memory_info().rss / 2**20, 1) for child in psutil.Process(process.pid).children()]


def run_level(port: int, bodies: list[tuple[bytes, str]], concurrency: int, total: int, pictures: int = 1):
    local = threading.local()
    latencies, errors = [], []

    def one(index: int) -> None:
        body, content_type = bodies[index % len(bodies)]
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.perf_counter()
        try:
            local.connection.request("POST", "/api/predict", body, {"Content-Type": content_type})
            response = local.connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(response.status)
        except (OSError, http.client.HTTPException) as error:
            errors.append(type(error).__name__)
            local.connection.close()
            del local.connection
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(total)))
    elapsed = time.perf_counter() - started
    p50, p95, p99 = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    images = f"  {total * pictures / elapsed:6.1f} images/s" if pictures > 1 else ""
    print(f"  concurrency {concurrency:>3}: {total} requests in {elapsed:5.1f} s  "
          f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms  "
          f"{total / elapsed:6.1f} req/s{images}  errors {len(errors)}"
          f"{' ' + str(sorted(set(map(str, errors)))) if errors else ''}")


def model_ceiling(folder: Path, name: str) -> None:
    model = Registry(folder).load(name)
    height, width = model.input_size
    print(f"Model alone ({name}, {height}x{width}, this process, TensorFlow's default threads):")
    for batch in (1, 32, 256):
        images = np.random.default_rng(0).uniform(0, 255, (batch, height, width, 3)).astype(np.float32)
        model.predict(images)
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < 2.0:
            model.predict(images)
            runs += 1
        elapsed = time.perf_counter() - started
        print(f"  batch {batch:>3}: {runs * batch / elapsed:8.1f} images/s  ({elapsed / runs * 1000:.2f} ms per batch)")


def measure(process: subprocess.Popen, port: int, bodies: list[tuple[bytes, str]], args, pictures: int = 1) -> None:
    print("  a warm-up, so that every worker and thread has served (and loaded the models asked for):")
    # Twice as many clients as the workers have threads.
    threads = len(psutil.Process(process.pid).children()) * int(args.threads or os.environ.get("IMAGEAPP_THREADS")
                                                                or THREADS)
    warm = max(2 * threads, *args.concurrency)
    run_level(port, bodies, warm, 3 * warm, pictures)
    print(f"  workers' RSS after the warm-up (MB): {workers_rss_mb(process)}")
    for concurrency in args.concurrency:
        run_level(port, bodies, concurrency, args.requests, pictures)
    print(f"  workers' RSS at end (MB): {workers_rss_mb(process)}")


def main() -> None:
    args = parse_args()
    args.models = str(Path(args.models).resolve())
    name = args.model or Registry(args.models).default_name(os.environ.get("IMAGEAPP_DEFAULT_MODEL",
                                                                           DEFAULTS["DEFAULT_MODEL"]))
    if name is None:
        raise SystemExit(f"no usable model in {args.models}")
    images = {f"photo.{fmt.lower()}": photo(fmt, args.side) for fmt in args.formats}
    bodies = [multipart([(filename, data)], {"model": name}) for filename, data in images.items()]
    print(f"Model {name}; uploads: " + ", ".join(f"{f} {len(d) / 1000:.1f} kB" for f, d in images.items()))

    port = free_port()
    process = start_server(args, port)
    try:
        print(f"gunicorn on 127.0.0.1:{port}")
        measure(process, port, bodies, args)
        if args.compare:
            print("compare=1, every model in the folder answering each upload:")
            measure(process, port, [multipart([(filename, data)], {"compare": "1"}) for filename, data in images.items()],
                    args)
        if args.pictures:
            print(f"{args.pictures} images in each request, answered by {name} in batches:")
            measure(process, port, [multipart([(filename, data)] * args.pictures, {"model": name})
                                    for filename, data in images.items()], args, args.pictures)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    model_ceiling(Path(args.models), name)


if __name__ == "__main__":
    main()
