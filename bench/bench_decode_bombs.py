"""Decompression bombs against the pushed model: refused from the header, bounded memory.

A 20000 x 20000 1-bit PNG is a 48 KB file that decodes to 1.2 GB of RGB pixels (and
4.8 GB more as floats in the resize). Before `serving.max_image_pixels`, 6 of them in
one `predict` request took 12.7 GiB. Each path a user or TF Serving takes is measured
in a FRESH process, so peak RSS (VmHWM) includes loading the model:

- the SavedModel's `predict` and `zero_shot` signatures (`tf.saved_model.load`, as TF
  Serving runs them): one request of 6 bombs;
- `devise_keras.load(...).predict_labels` on the 6 bombs;
- `devise-keras predict` on one bomb (exit code and message).

Goal: refused in under 2 s, peak RSS under 1.5 GiB, model load included.

Run: `python -m bench.bench_decode_bombs [--model runs/demo/serving]`; writes
bench/results/decode_bombs.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

RESULT = Path(__file__).resolve().parent / "results" / "decode_bombs.md"

_PROBE = textwrap.dedent(
    """
    import json, sys, time
    started = time.time()
    path, bomb, mode = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3]
    import tensorflow as tf
    try:
        import tensorflow_text  # the bundled USE encoder's SentencePiece ops
    except ImportError:
        pass
    out = {}
    if mode == "app":
        import devise_keras
        from devise_keras.apps import ImageDecodeError
        app = devise_keras.load(path)
        loaded = time.time()
        try:
            app.predict_labels([bomb] * 6, k=5)
            out["result"] = "answered"
        except ImageDecodeError as error:
            out["result"] = "refused: " + str(error)[:200]
    else:
        served = tf.saved_model.load(path)
        loaded = time.time()
        try:
            served.signatures[mode](image_bytes=tf.constant([bomb] * 6))
            out["result"] = "answered"
        except tf.errors.InvalidArgumentError as error:
            text = error.message.split("assertion failed: ")[-1]
            out["result"] = "refused: " + " ".join(text.split())[:160]
    done = time.time()
    status = open("/proc/self/status").read()
    hwm = int(status.split("VmHWM:")[1].split()[0]) * 1024
    out.update(load_s=loaded - started, request_s=done - loaded, peak_rss=hwm)
    print(json.dumps(out))
    """
)


def newest_version(serving_dir: Path) -> Path:
    versions = sorted(
        (int(p.name), p)
        for p in serving_dir.iterdir()
        if p.name.isdigit() and (p / "saved_model.pb").is_file()
    )
    if not versions:
        raise SystemExit(f"no pushed model in {serving_dir}: run `make demo` first")
    return versions[-1][1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="runs/demo/serving", help="the Pusher's folder")
    parser.add_argument("--output", default=str(RESULT))
    args = parser.parse_args(argv)
    from PIL import Image

    from bench.portable_paths import portable_args

    version = newest_version(Path(args.model))
    workdir = Path(tempfile.mkdtemp(prefix="devise-bombs-"))
    bomb = workdir / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    rows = []
    for mode, target in (("predict", version), ("zero_shot", version), ("app", version)):
        result = subprocess.run(
            [sys.executable, "-c", _PROBE, str(target), str(bomb), mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        if result.returncode != 0:
            raise SystemExit(f"{mode} probe failed:\n{result.stderr[-3000:]}")
        rows.append((mode, json.loads(result.stdout.strip().splitlines()[-1])))
        print(mode, rows[-1][1], flush=True)
    cli = subprocess.run(
        [sys.executable, "-m", "devise_keras.cli", "predict", str(bomb), "--model", str(version)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    import tensorflow as tf

    lines = [
        "# Decompression bombs against the pushed demo model",
        "",
        f"- command: `python -m bench.bench_decode_bombs {' '.join(portable_args(argv or sys.argv[1:]))}`".rstrip(),
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), no GPU; "
        f"Python {platform.python_version()}, TF {tf.__version__}",
        f"- model: the newest pushed version of `{args.model}` (`serving.max_image_pixels` of "
        "its config); input: 6 copies of a 20000 x 20000 1-bit PNG of "
        f"{bomb.stat().st_size:,} bytes (400 MP each), one request; each path in a fresh "
        "process, peak RSS = VmHWM, model load included",
        "",
        "| path | result | model load s | request s | peak RSS (GiB) | goal met (< 2 s, < 1.5 GiB) |",
        "|---|---|---:|---:|---:|---|",
    ]
    names = {
        "predict": "SavedModel `predict` (as TF Serving)",
        "zero_shot": "SavedModel `zero_shot`",
        "app": "`devise_keras.load().predict_labels`",
    }
    for mode, r in rows:
        gib = r["peak_rss"] / 2**30
        ok = r["result"].startswith("refused") and r["request_s"] < 2 and gib < 1.5
        lines.append(
            f"| {names[mode]} | {r['result'].replace('|', '/')} | {r['load_s']:.1f} | "
            f"{r['request_s']:.2f} | {gib:.2f} | {'yes' if ok else 'no'} |"
        )
    message = (cli.stderr.strip().splitlines() or [""])[-1].replace(str(bomb), "bomb.png")
    lines += ["", f"`devise-keras predict bomb.png`: exit {cli.returncode}, `{message}`", ""]
    Path(args.output).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
