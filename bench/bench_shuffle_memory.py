"""Peak memory of the training input pipeline at 224 px: shuffle buffer bounded in bytes.

`devise_keras.input_pipeline.make_dataset` caps its shuffle buffer at
`shuffle_buffer_bytes` (256 MiB by default) besides the element cap (16,384). Each
variant runs in its own process over the same gzipped TFRecords of 224 px PNGs and
reads two shuffled epochs; the number is the process's peak RSS (ru_maxrss). The
baseline is the same pipeline with the byte cap lifted (the element cap only, which
is what the code did before).

Run: ``python -m bench.bench_shuffle_memory [--images 6000]`` (writes
bench/results/shuffle_memory.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "0"

RESULTS = Path(__file__).parent / "results" / "shuffle_memory.md"
SIZE = 224


def write_records(directory: Path, count: int) -> str:
    """`count` 224 px PNG records, written by the input-pipeline benchmark's writer."""
    import numpy as np
    from PIL import Image

    from bench.bench_input_pipeline import write_records as write_png_records

    rng = np.random.default_rng(0)

    def images():
        for _ in range(count):
            # Upscaled random pixels: PNG sizes like photos', neither flat nor pure noise.
            small = Image.fromarray(rng.integers(0, 255, (56, 56, 3), np.uint8))
            yield np.asarray(small.resize((SIZE, SIZE), Image.BILINEAR))

    return write_png_records(images(), np.arange(count) % 10, directory)


def measure(pattern: str, count: int, shuffle_bytes: int, cache: bool) -> dict:
    """Runs in a child process: two shuffled epochs, then the peak RSS."""
    from devise_keras import input_pipeline

    start = time.perf_counter()
    ds = input_pipeline.make_dataset(
        [pattern],
        image_size=SIZE,
        batch_size=32,
        num_labels=10,
        shuffle=True,
        cache=cache,
        shuffle_buffer_bytes=shuffle_bytes,
        num_records=count,
    )
    seen = 0
    for _ in range(2):
        for images, _ in ds:
            seen += int(images.shape[0])
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"images": seen, "seconds": elapsed, "peak_mib": peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--child", nargs=4, metavar=("PATTERN", "COUNT", "BYTES", "CACHE"))
    args = parser.parse_args()
    if args.child:
        pattern, count, shuffle_bytes, cache = args.child
        print(json.dumps(measure(pattern, int(count), int(shuffle_bytes), cache == "1")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        pattern = write_records(Path(tmp), args.images)
        size_mib = sum(p.stat().st_size for p in Path(tmp).glob("*.gz")) / 2**20
        rows = []
        variants = [
            ("encoded records, bytes cap 256 MiB (default)", 256 * 2**20, "0"),
            ("encoded records, element cap only (before)", 2**62, "0"),
            ("decoded uint8 cache, bytes cap 256 MiB (default)", 256 * 2**20, "1"),
            ("decoded uint8 cache, element cap only", 2**62, "1"),
        ]
        for name, shuffle_bytes, cache in variants:
            out = (
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.bench_shuffle_memory",
                        "--child",
                        pattern,
                        str(args.images),
                        str(shuffle_bytes),
                        cache,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            rows.append((name, json.loads(out)))
            print(name, rows[-1][1], flush=True)
    command = f"python -m bench.bench_shuffle_memory --images {args.images}"
    lines = [
        "# Input pipeline peak memory at 224 px (shuffle buffer bounded in bytes)",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores (shared)",
        f"- Data: {args.images} PNG records of 224x224 px ({size_mib:.0f} MiB gzipped); "
        "two shuffled epochs, batch 32; peak RSS of a fresh process per row.",
        "",
        "| input | peak RSS (MiB) | seconds |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {r['peak_mib']:.0f} | {r['seconds']:.1f} |" for name, r in rows]
    lines += [
        "",
        f"- encoded, bounded / element cap only: **{rows[0][1]['peak_mib'] / rows[1][1]['peak_mib']:.2f}**",
        f"- cached, bounded / element cap only: **{rows[2][1]['peak_mib'] / rows[3][1]['peak_mib']:.2f}**",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
