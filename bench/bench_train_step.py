"""Train-step cost of DeViSE against the softmax baseline on the same backbone.

DeViSE swaps the softmax layer for a projection, a fixed label-similarity matmul
and the hinge rank loss; on the same trainable backbone its step should cost about
as much as softmax (goal: ratio <= 1.10). A third row runs the DeViSE model over
the same CNN exported to a TF-Hub SavedModel and loaded with `HubBackbone`, to
show what the hub path costs.

Run: `python -m bench.bench_train_step [--steps 60] [--warmup 5]`; writes
bench/results/train_step.md and prints the same numbers.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from devise_keras.hinge_rank_loss import HingeRankLoss
from devise_keras.hub_backbone import HubBackbone
from devise_keras.hub_export import export_hub_feature_vector
from devise_keras.model import (
    build_devise_model,
    build_small_cnn,
    build_softmax_model,
    devise_targets,
)

BATCH, SIZE, LABELS, DIM = 64, 32, 10, 50
RESULTS = os.path.join(os.path.dirname(__file__), "results", "train_step.md")


def _backbone():
    keras.utils.set_random_seed(0)
    return build_small_cnn(SIZE)  # filters (32, 64, 128), 256 features, trainable


def _models(hub_dir):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(LABELS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    softmax = build_softmax_model(_backbone(), LABELS, image_size=SIZE)
    softmax.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={"scores": keras.losses.SparseCategoricalCrossentropy()},
    )
    devise = build_devise_model(_backbone(), vectors, image_size=SIZE)
    devise.compile(optimizer=keras.optimizers.Adam(1e-3), loss={"scores": HingeRankLoss()})
    hub = build_devise_model(HubBackbone(hub_dir, trainable=True), vectors, image_size=SIZE)
    hub.compile(optimizer=keras.optimizers.Adam(1e-3), loss={"scores": HingeRankLoss()})
    return vectors, {"softmax": softmax, "devise": devise, "devise_hub": hub}


def run(steps: int, warmup: int) -> dict:
    rng = np.random.default_rng(1)
    images = rng.random((BATCH, SIZE, SIZE, 3), dtype=np.float32)
    ids = rng.integers(0, LABELS, size=BATCH)
    with tempfile.TemporaryDirectory() as tmp:
        hub_dir = export_hub_feature_vector(_backbone(), os.path.join(tmp, "cnn"), SIZE)
        vectors, models = _models(hub_dir)
        targets = {
            "softmax": {"scores": ids},
            "devise": devise_targets(ids, vectors),
            "devise_hub": devise_targets(ids, vectors),
        }
        for name, model in models.items():
            for _ in range(warmup):
                model.train_on_batch(images, targets[name])
        times = {name: [] for name in models}
        # Interleaved so that load from other processes hits every model alike.
        for _ in range(steps):
            for name, model in models.items():
                start = time.perf_counter()
                model.train_on_batch(images, targets[name])
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    return {
        "medians_ms": medians,
        "ratio": medians["devise"] / medians["softmax"],
        "ratio_hub": medians["devise_hub"] / medians["softmax"],
    }


def _report(result: dict, steps: int, warmup: int, command: str) -> str:
    m = result["medians_ms"]
    verdict = "meets" if result["ratio"] <= 1.10 else "misses"
    return "\n".join(
        [
            "# Train step: DeViSE vs softmax",
            "",
            f"- command: `{command}`",
            f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), no GPU; "
            f"Python {platform.python_version()}, TF {tf.__version__}, Keras {keras.__version__}",
            f"- setup: small CNN (filters 32/64/128, 256 features, trainable), batch {BATCH} x "
            f"{SIZE}x{SIZE}x3, Adam; DeViSE: {LABELS} labels x {DIM}-d, hinge rank loss "
            f"(all negatives); softmax: {LABELS} classes, sparse categorical crossentropy; "
            f"`train_on_batch`, median of {steps} interleaved steps after {warmup} warm-up steps",
            "",
            "| model | median step (ms) | ratio to softmax |",
            "|---|---:|---:|",
            f"| softmax | {m['softmax']:.2f} | 1.00 |",
            f"| DeViSE (same CNN) | {m['devise']:.2f} | {result['ratio']:.3f} |",
            f"| DeViSE (CNN via HubBackbone) | {m['devise_hub']:.2f} | {result['ratio_hub']:.3f} |",
            "",
            f"DeViSE/softmax = {result['ratio']:.3f}: {verdict} the goal (<= 1.10).",
            "",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.steps, args.warmup)
    from bench.portable_paths import portable_args

    command = "python -m bench.bench_train_step " + " ".join(
        portable_args(sys.argv[1:] if argv is None else argv)
    )
    report = _report(result, args.steps, args.warmup, command.strip())
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
