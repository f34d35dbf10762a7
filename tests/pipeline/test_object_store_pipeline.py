"""The whole pipeline with its artifacts and pushed models on `gs://` (emulated on loopback).

TensorFlow, TFX and Beam reach the emulated bucket through their production GCS layers
(`tests.pipeline.gcs_emulator`); MLMD stays in a local sqlite file. The pushed model is
then loaded from the bucket with `devise_keras.load` and TF's SavedModel loader.
"""

from __future__ import annotations

import dataclasses

import pytest
import tensorflow as tf

import devise_keras
from pipeline import local_runner, results
from tests.pipeline.gcs_emulator import gcs_emulator
from tests.pipeline.test_local_pipeline_e2e import (
    COMPONENTS,
    Execution,
    executions_by_node,
    png_bytes,
    tiny_config,
)

pytestmark = pytest.mark.slow

BUCKET = "devise-test"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("gcs")
    with gcs_emulator(workdir, buckets=(BUCKET,)):
        yield workdir


def _config(root):
    config = tiny_config(root)
    train = dataclasses.replace(
        config.train, backbone_epochs=1, projection_epochs=2, finetune_epochs=0
    )
    return config.replace(pipeline_name="devise-gs", train=train)


def test_the_pipeline_runs_on_gs_and_its_pushed_model_loads_from_there(store):
    root = f"gs://{BUCKET}/devise"
    paths = local_runner.run(
        _config(store),
        store / "out",
        pipeline_root=f"{root}/pipeline",
        serving_dir=f"{root}/serving",
    )
    by_node = executions_by_node(paths["metadata_path"])
    assert {n: [e.last_known_state for e in by_node[n]] for n in COMPONENTS} == {
        n: [Execution.COMPLETE] for n in COMPONENTS
    }
    facts = results.collect(paths)
    assert facts["blessed"] is True and facts["pushed"] is True
    assert facts["pushed_destination"].startswith(f"{root}/serving/")
    versions = tf.io.gfile.listdir(f"{root}/serving")
    assert len(versions) == 1 and versions[0].strip("/").isdigit()
    version_dir = f"{root}/serving/{versions[0].strip('/')}"

    loaded = tf.saved_model.load(version_dir)
    out = loaded.signatures["predict"](
        image_bytes=tf.constant([png_bytes((220, 40, 40)), png_bytes((40, 40, 220))])
    )
    assert set(out["top_k_labels"].numpy().astype(str).reshape(-1)) <= {
        "cat",
        "dog",
        "car",
        "tree",
    }
    app = devise_keras.load(f"{root}/serving")
    ranked = app.predict_labels([png_bytes((220, 40, 40))], k=2, over="labels")
    assert len(ranked[0]) == 2
    assert {label for label, _ in ranked[0]} <= {"cat", "dog", "car", "tree", "boat"}


def test_a_missing_bucket_stops_the_run_naming_the_uri(store):
    with pytest.raises(OSError, match="gs://no-such-bucket-42/devise"):
        local_runner.run(
            _config(store),
            store / "missing",
            pipeline_root="gs://no-such-bucket-42/devise",
            serving_dir="gs://no-such-bucket-42/serving",
        )
