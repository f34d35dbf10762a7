"""Runs the devise-keras pipeline with LocalDagRunner (MLMD in sqlite): the default."""

from __future__ import annotations

import os
from pathlib import Path

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


def run(config: DeviseConfig, output_dir: str | os.PathLike, *, enable_cache: bool = True) -> dict:
    """Runs the whole pipeline locally; returns the paths it used."""
    # Imported here: `local_paths` serves the CLI's quick checks without TFX's ~20 s import.
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    paths = local_paths(output_dir)
    Path(paths["pipeline_root"]).mkdir(parents=True, exist_ok=True)
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
