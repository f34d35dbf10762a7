"""Runs the devise-keras pipeline with LocalDagRunner (MLMD in sqlite): the default."""

from __future__ import annotations

import os
from pathlib import Path

from devise_keras import storage
from devise_keras.config import DeviseConfig

PIPELINE_ROOT_DIRNAME = "pipeline_root"
METADATA_FILENAME = "metadata.sqlite"
SERVING_DIRNAME = "serving"


def local_paths(output_dir: str | os.PathLike) -> dict[str, str]:
    """Where a local run keeps its artifacts, its MLMD database and its pushed models."""
    root = Path(output_dir).resolve()
    return {
        "pipeline_root": str(root / PIPELINE_ROOT_DIRNAME),
        "metadata_path": str(root / METADATA_FILENAME),
        "serving_dir": str(root / SERVING_DIRNAME),
    }


def run(
    config: DeviseConfig,
    output_dir: str | os.PathLike,
    *,
    enable_cache: bool = True,
    pipeline_root: str | None = None,
    serving_dir: str | None = None,
) -> dict:
    """Runs the whole pipeline locally; returns the paths it used.

    MLMD stays in `output_dir`; `pipeline_root` and `serving_dir` (default: inside
    `output_dir`) may be on any filesystem TensorFlow knows, e.g. `gs://bucket/devise`.
    """
    # Imported here: `local_paths` serves the CLI's quick checks without TFX's ~20 s import.
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    paths = local_paths(output_dir)
    paths["pipeline_root"] = pipeline_root or paths["pipeline_root"]
    paths["serving_dir"] = serving_dir or paths["serving_dir"]
    Path(paths["metadata_path"]).parent.mkdir(parents=True, exist_ok=True)
    storage.make_root(paths["pipeline_root"])
    storage.check_uri(paths["serving_dir"])
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(
            config,
            pipeline_root=paths["pipeline_root"],
            serving_dir=paths["serving_dir"],
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                paths["metadata_path"]
            ),
            enable_cache=enable_cache,
        )
    )
    return paths
