"""LabelIndex.search top-10 vs a bare numpy full-matmul baseline, speed and peak memory.

Run from the repository root:

    .venv/bin/python -m bench.bench_label_index

Timing: both methods run in this process, interleaved (A, B, A, B, A, B) so that load from
other processes hits both alike; the best of 3 wall-clock times is kept. Memory: each method
runs once more in its own fresh subprocess, which reports (a) the tracemalloc peak of the
search call alone (numpy reports its buffers to tracemalloc, so this is the extra memory the
search itself allocates, excluding the label matrix) and (b) the peak resident set size of
the whole subprocess, VmHWM from /proc/self/status (the label matrix, the interpreter and
numpy included). ru_maxrss is not used: Linux carries it over from the parent across
fork + exec, so a child of a big parent reports the parent's size. Writes
bench/results/label_index.md and prints the same table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from devise_keras.label_index import LabelIndex

NUM_LABELS = 400_000
DIM = 300
NUM_QUERIES = 1_000
K = 10
REPEATS = 3
RESULTS = Path(__file__).resolve().parent / "results" / "label_index.md"
COMMAND = ".venv/bin/python -m bench.bench_label_index"


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((NUM_LABELS, DIM), dtype=np.float32)
    # In chunks, so the norm temporaries do not dominate the process's peak memory.
    for start in range(0, NUM_LABELS, 10_000):
        chunk = vectors[start : start + 10_000]
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
    queries = rng.standard_normal((NUM_QUERIES, DIM), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    labels = np.asarray([f"w{i}" for i in range(NUM_LABELS)])
    return labels, vectors, queries


def numpy_baseline(labels, vectors, queries, k):
    """One full (Q, L) matmul, argpartition, then sort of the top k."""
    scores = queries @ vectors.T
    picked = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    picked_scores = np.take_along_axis(scores, picked, axis=1)
    order = np.argsort(-picked_scores, axis=1)
    picked = np.take_along_axis(picked, order, axis=1)
    return labels[picked], np.take_along_axis(picked_scores, order, axis=1)


def _run(method: str, index: LabelIndex, labels, vectors, queries):
    if method == "label_index":
        return index.search(queries, K)
    return numpy_baseline(labels, vectors, queries, K)


def _proc_status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def worker(method: str) -> None:
    """Measures one method's memory in a fresh process; prints JSON."""
    labels, vectors, queries = make_data()
    index = LabelIndex(labels, vectors)
    rss_before = _proc_status_bytes("VmRSS")
    tracemalloc.start()
    _run(method, index, labels, vectors, queries)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "tracemalloc_peak": peak,
                "rss_before": rss_before,
                "maxrss": _proc_status_bytes("VmHWM"),
            }
        )
    )


def _memory(method: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_label_index", "--worker", method],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    # Memory first, while this process is still small.
    memory = {method: _memory(method) for method in ("label_index", "numpy")}
    labels, vectors, queries = make_data()
    index = LabelIndex(labels, vectors)
    times = {"label_index": [], "numpy": []}
    results = {}
    for _ in range(REPEATS):
        for method in times:
            start = time.perf_counter()
            results[method] = _run(method, index, labels, vectors, queries)
            times[method].append(time.perf_counter() - start)
    same = np.array_equal(results["label_index"][0], results["numpy"][0])

    best = {method: min(values) for method, values in times.items()}
    ratio = best["numpy"] / best["label_index"]
    mib = 1024 * 1024
    rows = [
        "| method | best of 3 (s) | all runs (s) | search peak, tracemalloc (MiB) "
        "| process RSS before search (MiB) | process peak RSS, VmHWM (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for method, title in (("label_index", "LabelIndex.search"), ("numpy", "numpy baseline")):
        runs = ", ".join(f"{t:.2f}" for t in times[method])
        rows.append(
            f"| {title} | {best[method]:.2f} | {runs} "
            f"| {memory[method]['tracemalloc_peak'] / mib:.0f} "
            f"| {memory[method]['rss_before'] / mib:.0f} "
            f"| {memory[method]['maxrss'] / mib:.0f} |"
        )
    text = "\n".join(
        [
            "# LabelIndex benchmark",
            "",
            f"- Command: `{COMMAND}`",
            f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"- Data: {NUM_LABELS:,} x {DIM} random unit float32 label vectors, "
            f"{NUM_QUERIES:,} queries, top-{K}; LabelIndex block_size={index_block_size()}",
            f"- Machine: {platform.machine()}, Python {platform.python_version()}, "
            f"numpy {np.__version__}, shared 2-core CPU (other jobs may have been running)",
            "- Timing: both methods in one process, interleaved, best of 3 wall-clock runs.",
            "- Memory: each method once in its own fresh subprocess; tracemalloc peak = memory "
            "the search call allocated (numpy buffers included); RSS = whole process, "
            "including the 458 MiB label matrix and the interpreter; peak RSS is VmHWM "
            "(ru_maxrss would report the parent's size, Linux keeps it across fork + exec).",
            f"- Same top-{K} labels from both: {same}",
            "",
            *rows,
            "",
            f"**Speed ratio (numpy time / LabelIndex time): {ratio:.2f}** "
            f"(goal >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'})",
            "",
        ]
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


def index_block_size() -> int:
    import inspect

    return inspect.signature(LabelIndex).parameters["block_size"].default


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["label_index", "numpy"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
    else:
        main()
