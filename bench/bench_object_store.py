"""Wall time of the whole pipeline with its artifacts on an object store vs on local disk.

Run: ``python -m bench.bench_object_store``. Both runs build the tiny test fixture
(tests/pipeline/tiny_data.py) and run `pipeline.local_runner.run` from an empty MLMD
store in this process, first with the pipeline root and serving folder on local disk,
then on `gs://` emulated on loopback (`tests.pipeline.gcs_emulator`: TensorFlow through
a TLS proxy, Beam through google-cloud-storage, both to gcp-storage-emulator).
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import tempfile
import time
from pathlib import Path

from pipeline import local_runner
from tests.pipeline.gcs_emulator import gcs_emulator
from tests.pipeline.test_local_pipeline_e2e import tiny_config

HERE = Path(__file__).parent
BUCKET = "devise-bench"


def _config(root: Path):
    config = tiny_config(root)
    train = dataclasses.replace(config.train, projection_epochs=2, finetune_epochs=0)
    return config.replace(pipeline_name="devise-bench-store", train=train)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_object_store_"))
    config = _config(root)
    start = time.monotonic()
    local_runner.run(config, root / "local")
    local = time.monotonic() - start
    with gcs_emulator(root / "gcs", buckets=(BUCKET,)):
        start = time.monotonic()
        local_runner.run(
            config,
            root / "gcs_out",
            pipeline_root=f"gs://{BUCKET}/pipeline",
            serving_dir=f"gs://{BUCKET}/serving",
        )
        remote = time.monotonic() - start
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Object store vs local disk: one pipeline run",
        "",
        "- command: `python -m bench.bench_object_store`",
        f"- date: {now}",
        f"- machine: {platform.machine()}, 2 CPU cores (shared with other jobs), no GPU",
        "- pipeline: the tiny test fixture (5 classes x 12 16x16 PNGs, 8-d vectors), all 10 "
        "components, empty MLMD store each time, same process, local run first",
        "- object store: `gs://` on gcp-storage-emulator over loopback (TensorFlow via a TLS "
        "proxy, Beam via google-cloud-storage); no network latency, so this measures the "
        "filesystem layers' overhead, not a real bucket",
        "",
        "| pipeline root and serving folder | wall time (s) | ratio to local |",
        "|---|---:|---:|",
        f"| local disk | {local:.1f} | 1.00 |",
        f"| `gs://` (emulated) | {remote:.1f} | {remote / local:.2f} |",
        "",
    ]
    out = HERE / "results" / "object_store.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
