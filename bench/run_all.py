"""Runs every ratio benchmark, then rebuilds bench/RESULTS.md from bench/results/*.md.

Run: ``python -m bench.run_all`` (``--index-only`` just rebuilds RESULTS.md). Each
benchmark measures its baseline in the same run and records the command that made it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from devise_keras.quiet import quiet_tensorflow

HERE = Path(__file__).parent
BENCHMARKS = [
    "bench.bench_train_step",
    "bench.bench_label_index",
    "bench.bench_word_vectors",
    "bench.bench_image_example_gen",
    "bench.bench_input_pipeline",
    "bench.bench_shuffle_memory",
    "bench.bench_serving",
    "bench.bench_lite_features",  # needs `make backbone` first
    "bench.bench_object_store",
]
# The order of sections in RESULTS.md; files not listed follow alphabetically.
ORDER = [
    "train_step.md",
    "label_index.md",
    "word_vectors.md",
    "image_example_gen.md",
    "input_pipeline.md",
    "shuffle_memory.md",
    "demo.md",
    "serving.md",
    "lite_features.md",
    "efficientnet_lite0_verify.md",
    "efficientnet_lite1_verify.md",
    "efficientnet_lite2_verify.md",
    "use_multilingual_verify.md",
    "object_store.md",
]


def write_index() -> Path:
    files = sorted((HERE / "results").glob("*.md"))
    rank = {name: i for i, name in enumerate(ORDER)}
    files.sort(key=lambda p: (rank.get(p.name, len(ORDER)), p.name))
    parts = [
        "# Benchmark results",
        "",
        "Every section is copied from `bench/results/<name>.md`, written by the command it",
        "names (all with `.venv/bin/python -m ...` from the repository root). Rebuild this",
        "file with `python -m bench.run_all --index-only`; rerun everything with `make bench`.",
        "The zero-shot report is in `bench/results/zero_shot/report.md`.",
        "",
    ]
    for path in files:
        text = path.read_text().strip()
        parts += [text.replace("\n# ", "\n## ").replace("# ", "## ", 1), ""]
    out = HERE / "RESULTS.md"
    out.write_text("\n".join(parts))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-only", action="store_true")
    args = parser.parse_args(argv)
    quiet_tensorflow()  # the benchmarks run as child processes and inherit it
    failed = []
    if not args.index_only:
        for module in BENCHMARKS:
            print(f"== {module}", flush=True)
            if subprocess.call([sys.executable, "-m", module]) != 0:
                failed.append(module)
    print(f"wrote {write_index()}")
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
