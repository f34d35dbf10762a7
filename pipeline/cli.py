"""`devise-keras`, the console script: the library's commands plus the TFX pipeline's.

The library's commands (`data`, `predict`, `neighbors`, `search-images`, `analogy`)
come from `devise_keras.cli`; this module adds `run` (the pipeline on this machine),
`report`, `compile-kubeflow` and `run-kubeflow-spec`. It imports without the pipeline
extra: TFX, Beam, TFMA and ML Metadata are imported inside the pipeline commands, and
without them a pipeline command says so in one line and exits 2:

    devise-keras run needs the pipeline extra: pip install 'devise-keras[pipeline]'

Run it as `devise-keras ...` or `python -m pipeline.cli ...`.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devise_keras import cli, demo, storage
from devise_keras.config import DeviseConfig, check_inputs

DESCRIPTION = (
    "DeViSE visual-semantic embeddings: data, TFX pipeline, Kubeflow compile, and apps on "
    "a trained model (labels, open vocabulary, image search, analogies)."
)
# Top-level modules of the `pipeline` extra (a missing one means the extra is not installed).
PIPELINE_EXTRA_MODULES = (
    "tfx",
    "tfx_bsl",
    "apache_beam",
    "tensorflow_model_analysis",
    "tensorflow_data_validation",
    "tensorflow_transform",
    "ml_metadata",
    "kfp",
    "kfp_pipeline_spec",
)
EXTRA_HINT = "pip install 'devise-keras[pipeline]'"


class MissingPipelineExtraError(Exception):
    """A pipeline command ran without the `pipeline` extra installed."""

    def __init__(self, command: str):
        super().__init__(f"devise-keras {command} needs the pipeline extra: {EXTRA_HINT}")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or None entry in sys.modules
        return False


def needs(*modules: str) -> Callable:
    """Marks a command handler as a pipeline command needing `modules` of the extra.

    Before the handler runs, the modules are looked up (without importing them); a
    `ModuleNotFoundError` of any extra module while it runs means the same thing. Both
    raise `MissingPipelineExtraError`, which `main` prints as one line, exit 2.

    Example:
        >>> @needs("tfx")
        ... def cmd_hello(args):
        ...     return 0
    """

    def decorate(handler: Callable[[argparse.Namespace], int]):
        @functools.wraps(handler)
        def run(args: argparse.Namespace) -> int:
            if not all(_installed(m) for m in modules):
                raise MissingPipelineExtraError(args.command)
            try:
                return handler(args)
            except ModuleNotFoundError as err:
                if (err.name or "").split(".")[0] in PIPELINE_EXTRA_MODULES:
                    raise MissingPipelineExtraError(args.command) from None
                raise

        return run

    return decorate


def _load_config(args: argparse.Namespace) -> DeviseConfig:
    if args.config:
        if not storage.isfile(args.config):
            raise cli.UsageError(f"config file not found: {args.config}")
        return DeviseConfig.load(args.config)
    return demo.prepared_demo_config(args.data_dir, args.dataset, quick=args.quick)


@needs("tfx")
def cmd_run(args: argparse.Namespace) -> int:
    config = _load_config(args)  # a bad --config fails before TFX is imported (~20 s)
    check_inputs(config)  # so does a missing or empty image folder / manifest
    from pipeline import progress

    progress.quiet_known_noise()  # before TFX's imports, which warn
    from pipeline import local_runner, results

    if args.beam_workers > 1:
        config.beam_pipeline_args = [
            f"--direct_num_workers={args.beam_workers}",
            "--direct_running_mode=multi_processing",
        ]
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "config.json")
    progress.attach(local_runner.local_paths(out)["metadata_path"])
    start = time.monotonic()
    paths = local_runner.run(config, out)
    print(results.summary(paths, elapsed_seconds=time.monotonic() - start))
    return cli.EXIT_OK


@needs("tfx")
def cmd_compile_kubeflow(args: argparse.Namespace) -> int:
    if not args.config:
        raise cli.UsageError(
            "compile-kubeflow needs --config (a DeviseConfig JSON with cluster paths)"
        )
    if not storage.isfile(args.config):
        raise cli.UsageError(f"config file not found: {args.config}")
    config = DeviseConfig.load(args.config)
    from pipeline import kubeflow_runner

    path = kubeflow_runner.compile_pipeline(
        config,
        args.output,
        pipeline_root=args.pipeline_root,
        serving_dir=args.serving_dir,
        image=args.image,
    )
    print(f"wrote {path}")
    return cli.EXIT_OK


@needs("tfx")
def cmd_run_kubeflow_spec(args: argparse.Namespace) -> int:
    from pipeline import kubeflow_local_launcher

    return kubeflow_local_launcher.run_from_args(args)


@needs("tensorflow_model_analysis", "ml_metadata")
def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.local_runner import METADATA_FILENAME, local_paths

    out = Path(args.output_dir).resolve()
    paths = local_paths(out)
    if not Path(paths["metadata_path"]).is_file():
        raise cli.UsageError(
            f"no local run in {out} (no {METADATA_FILENAME}): run "
            f"`devise-keras run --output-dir {args.output_dir}` first"
        )
    from pipeline import results

    facts = results.collect(paths)
    report = facts["zero_shot_report"]
    sections = ["# devise-keras run report", "", f"run: {out}", results.summary(paths)]
    sections += [
        "",
        storage.read_text(report)
        if report and storage.isfile(report)
        else "No zero-shot report in this run (no ZeroShotReport artifact with report.md).",
    ]
    text = "\n".join(sections).rstrip() + "\n"
    if args.write:
        Path(args.write).write_text(text)
        print(f"wrote {args.write}", file=sys.stderr)
    print(text, end="")
    return cli.EXIT_OK


def add_pipeline_commands(add: cli.AddCommand) -> None:
    """Adds `run`, `compile-kubeflow`, `run-kubeflow-spec` and `report`."""
    p = add("run", "run the TFX pipeline locally (LocalDagRunner)")
    p.add_argument("--config", help="DeviseConfig JSON (default: the demo of --dataset)")
    p.add_argument("--data-dir", default=cli.DEFAULT_DATA_DIR, help="demo data directory")
    p.add_argument(
        "--dataset",
        choices=demo.DATASETS,
        default=demo.DEFAULT_DATASET,
        help="demo data set: emoji + EfficientNet-Lite0 (default) or fashion-mnist",
    )
    p.add_argument("--output-dir", default=cli.DEFAULT_OUTPUT_DIR, help="artifacts, MLMD, pushes")
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer epochs, no fine-tuning (fashion-mnist: 300 images per class)",
    )
    p.add_argument("--beam-workers", type=int, default=1, help="local Beam worker processes")
    p.set_defaults(func=cmd_run)

    p = add("compile-kubeflow", "compile a Kubeflow Pipelines V2 JSON")
    p.add_argument("--config", required=True, help="DeviseConfig JSON")
    p.add_argument("--output", default="devise_pipeline.json", help="JSON file to write")
    p.add_argument("--pipeline-root", required=True, help="artifact root, e.g. gs://bucket/root")
    p.add_argument("--serving-dir", required=True, help="Pusher base directory")
    p.add_argument("--image", default="devise-keras:latest", help="container image (BUILD.md)")
    p.set_defaults(func=cmd_compile_kubeflow)

    p = add(
        "run-kubeflow-spec",
        "run a compiled Kubeflow V2 spec on this machine, task by task (a smoke test before upload)",
    )
    # Its arguments have one home, the launcher, which imports no TFX.
    from pipeline import kubeflow_local_launcher

    kubeflow_local_launcher.add_arguments(p)
    p.set_defaults(func=cmd_run_kubeflow_spec)

    p = add("report", "print the hit@k and zero-shot report of the newest local run")
    p.add_argument(
        "--output-dir", default=cli.DEFAULT_OUTPUT_DIR, help="the run's output directory"
    )
    p.add_argument("--write", metavar="FILE", help="also write the report (Markdown) to FILE")
    p.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    """The full `devise-keras` parser: the library's commands and the pipeline's."""
    parser, add = cli.new_parser(DESCRIPTION)
    cli.add_data_command(add)
    add_pipeline_commands(add)
    cli.add_app_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `devise-keras` console script; returns the exit code (see `devise_keras.cli`)."""
    cli.prepare_environment()
    args = build_parser().parse_args(argv)
    try:
        return cli.run_command(args)
    except MissingPipelineExtraError as err:
        print(err, file=sys.stderr)
        return cli.EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
