"""Compiles the devise-keras pipeline to a Kubeflow Pipelines V2 JSON (no cluster needed).

The components run in the container image that BUILD.md builds (the public TFX 1.16
image with this package installed), so run functions are dotted paths into the
installed package and nothing is uploaded at compile time.
"""

from __future__ import annotations

import os

# Imported from its module: tfx.v1.orchestration.experimental hides the runner when
# the optional kfp package is absent, although compiling needs only kfp-pipeline-spec.
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from devise_keras import storage
from devise_keras.config import DeviseConfig
from pipeline.pipeline import create_pipeline

DEFAULT_IMAGE = "devise-keras:latest"


def compile_pipeline(
    config: DeviseConfig,
    output_file: str | os.PathLike,
    *,
    pipeline_root: str,
    serving_dir: str,
    image: str = DEFAULT_IMAGE,
) -> str:
    """Writes the Kubeflow V2 pipeline spec JSON to `output_file`; returns its path.

    Args:
        config: the run configuration; `beam_pipeline_args` may switch the Beam
            components to Dataflow (`--runner=DataflowRunner --project=... --region=...
            --temp_location=gs://...`).
        output_file: the JSON file to write.
        pipeline_root: artifact root the cluster can reach (e.g. `gs://bucket/devise`).
        serving_dir: Pusher's base directory on the cluster's storage.
        image: the container image with devise-keras installed.
    """
    output_file = os.fspath(output_file)
    for uri in (pipeline_root, serving_dir):
        storage.check_uri(uri)  # a typo such as gs:/bucket fails here, not on the cluster
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_file)),
        output_filename=os.path.basename(output_file),
    )
    runner.run(
        create_pipeline(config, pipeline_root=pipeline_root, serving_dir=serving_dir),
        write_out=True,
    )
    return output_file
