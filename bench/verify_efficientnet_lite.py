"""Proves the EfficientNet-Lite conversion against the original PyTorch model.

Runs PyPI torch in a throwaway venv (never a project dependency) with the wheel's
model code (``efficientnet-lite-pytorch==0.1.0``) and the same ``.pth`` the data step
keeps, computes logits on fixed integer-generated images, and compares them with
the Keras 3 rebuild (`load_efficientnet_lite`). It also re-saves the weights with
this torch (zip format) and checks that the torch-free reader gives the identical
arrays. Writes the torch logits as the golden file the tests check
(``tests/testdata/efficientnet_<variant>_golden_logits.npz``) and a report
(``bench/results/efficientnet_<variant>_verify.md``).

Command (after ``make backbone``)::

    .venv/bin/python -m bench.verify_efficientnet_lite --variant lite0

The torch venv: ``--torch-python PATH``, or created at ``--torch-venv`` (default
/tmp/devise-torch-venv) with ``python3 -m venv`` + ``pip install torch==2.13.0``
(on these machines pip takes the CPU build from a local file; Python 3.11).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TORCH_REQUIREMENTS = ("torch==2.13.0", "numpy")
MODEL_CODE_REQUIREMENT = "efficientnet-lite-pytorch==0.1.0"
REFERENCE_SCRIPT = Path(__file__).with_name("efficientnet_lite_torch_reference.py")
NUM_GOLDEN = 3


def golden_path(variant: str) -> Path:
    return ROOT / "tests" / "testdata" / f"efficientnet_{variant}_golden_logits.npz"


def golden_pixels(size: int) -> np.ndarray:
    """Three fixed (size, size, 3) uint8 images from integer formulas (exact everywhere).

    A smooth radial/linear gradient, a coloured checkerboard with stripes, and
    LCG noise: different statistics, no file to ship, no float rounding involved.
    """
    i, j = np.mgrid[0:size, 0:size].astype(np.int64)
    gradient = np.stack(
        [
            ((i - size // 2) ** 2 + (j - size // 3) ** 2) // (size // 2) % 256,
            (i + 2 * j) % 256,
            (255 - i) % 256,
        ],
        axis=-1,
    )
    check = ((i // (size // 8) + j // (size // 8)) % 2)[..., None]
    stripes = ((j // 4) % 2)[..., None]
    pattern = 30 + check * np.array([200, 40, 120]) + stripes * np.array([0, 60, 20])
    index = np.arange(size * size * 3, dtype=np.uint64).reshape(size, size, 3)
    lcg = ((index * np.uint64(1103515245) + np.uint64(12345)) % np.uint64(2**31)) >> np.uint64(23)
    images = np.stack([gradient, pattern, lcg.astype(np.int64)], axis=0)
    return images.astype(np.uint8)


def ensure_torch_python(torch_python: str | None, venv: Path) -> str:
    if torch_python:
        return torch_python
    python = venv / "bin" / "python"
    if not python.exists():
        print(
            f"creating the throwaway torch venv {venv} (pip install {' '.join(TORCH_REQUIREMENTS)})"
        )
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *TORCH_REQUIREMENTS], check=True)
    check = subprocess.run(
        [str(python), "-c", "import efficientnet_lite_pytorch"], capture_output=True
    )
    if check.returncode != 0:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", MODEL_CODE_REQUIREMENT],
            check=True,
        )
    return str(python)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="lite0")
    parser.add_argument("--torch-python", default=None, help="a Python with torch installed")
    parser.add_argument("--torch-venv", default="/tmp/devise-torch-venv")
    parser.add_argument(
        "--cache-dir", default=None, help="backbone cache (default ~/.cache/devise-keras)"
    )
    parser.add_argument(
        "--no-golden", action="store_true", help="write the report but no golden file"
    )
    args = parser.parse_args(argv)

    from devise_keras.backbones.efficientnet_lite import get_variant
    from devise_keras.backbones.efficientnet_lite_hub import (
        load_efficientnet_lite,
        require_prepared,
    )
    from devise_keras.backbones.torch_checkpoint import read_torch_state_dict

    variant = get_variant(args.variant)
    info = require_prepared(variant.name, args.cache_dir)
    python = ensure_torch_python(args.torch_python, Path(args.torch_venv))
    pixels = golden_pixels(variant.resolution)

    with tempfile.TemporaryDirectory(prefix="devise_lite_verify_") as tmp:
        np.save(os.path.join(tmp, "pixels.npy"), pixels)
        start = time.perf_counter()
        run = subprocess.run(
            [
                python,
                str(REFERENCE_SCRIPT),
                variant.name,
                info["weights"],
                f"{tmp}/pixels.npy",
                tmp,
            ],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            print(run.stderr[-3000:], file=sys.stderr)
            return 1
        torch_info = json.loads(run.stdout.strip().splitlines()[-1])
        torch_seconds = time.perf_counter() - start
        torch_logits = np.load(os.path.join(tmp, "torch_logits.npy"))
        legacy = read_torch_state_dict(info["weights"])
        zipped = read_torch_state_dict(os.path.join(tmp, "state_dict_zip.pth"))
    zip_identical = list(legacy) == list(zipped) and all(
        np.array_equal(legacy[k], zipped[k]) and legacy[k].dtype == zipped[k].dtype for k in legacy
    )

    model = load_efficientnet_lite(variant.name, args.cache_dir)
    keras_logits = np.asarray(model(pixels.astype(np.float32) / 255.0, training=False))
    diff = np.abs(keras_logits - torch_logits)
    same_top1 = bool((keras_logits.argmax(1) == torch_logits.argmax(1)).all())
    top5 = [
        sorted(np.argsort(-a)[:5].tolist()) == sorted(np.argsort(-b)[:5].tolist())
        for a, b in zip(keras_logits, torch_logits, strict=True)
    ]
    result = {
        "variant": variant.name,
        "torch": torch_info,
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "logit_range": [float(torch_logits.min()), float(torch_logits.max())],
        "same_top1": same_top1,
        "same_top5_sets": top5,
        "zip_reader_identical": zip_identical,
        "torch_seconds": round(torch_seconds, 1),
    }
    print(json.dumps(result, indent=2))
    ok = diff.max() < 1e-3 and same_top1 and zip_identical
    if not ok:
        return 1

    golden = golden_path(variant.name)
    if args.no_golden:
        written = "No golden file written (`--no-golden`).\n"
    else:
        golden.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            golden,
            logits=torch_logits.astype(np.float32),
            pixels_sha256=np.array(hashlib.sha256(pixels.tobytes()).hexdigest()),
            torch_version=np.array(torch_info["torch"]),
        )
        written = (
            f"Golden logits (torch's) written to `{golden.relative_to(ROOT)}` "
            f"({golden.stat().st_size:,} bytes).\n"
        )
    command = f"--variant {variant.name}" + (" --no-golden" if args.no_golden else "")
    if args.cache_dir:
        from bench.portable_paths import portable_path

        command += f" --cache-dir {portable_path(args.cache_dir)}"
    report = ROOT / "bench" / "results" / f"efficientnet_{variant.name}_verify.md"
    report.write_text(
        f"## EfficientNet-{variant.name.capitalize()} conversion vs PyTorch\n\n"
        f"- command: `.venv/bin/python -m bench.verify_efficientnet_lite {command}`\n"
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared); torch "
        f"{torch_info['torch']} (throwaway venv) with `{MODEL_CODE_REQUIREMENT}`\n"
        f"- inputs: {NUM_GOLDEN} fixed integer images {variant.resolution}x{variant.resolution} "
        "(`golden_pixels`), (pixel - 127) / 128\n\n"
        "| check | result |\n|---|---|\n"
        f"| torch `load_state_dict(strict=True)` | {torch_info['load_state_dict']} |\n"
        f"| max / mean abs logit difference, Keras vs torch | {diff.max():.2e} / {diff.mean():.2e} "
        f"(logits in [{torch_logits.min():.1f}, {torch_logits.max():.1f}]) |\n"
        f"| same top-1 / same top-5 sets | {same_top1} / {all(top5)} |\n"
        f"| torch-free reader on torch's zip re-save == legacy file | {zip_identical} |\n\n"
        + written
    )
    print(f"{written.strip()} Wrote {report}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
