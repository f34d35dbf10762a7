"""End to end: the local pipeline on a tiny dataset, run twice, then gated shut.

Asserts MLMD execution states (every component ran once, then every one was a cache
hit), the blessing, the pushed TF Serving version folder, and that the pushed
SavedModel answers raw image bytes with label strings.
"""

from __future__ import annotations

import collections
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2
from PIL import Image

from devise_keras.config import DeviseConfig
from pipeline import local_runner, results
from tests.pipeline import tiny_data

pytestmark = pytest.mark.slow

COMPONENTS = [
    "ImageExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "ExampleValidator",
    "LabelEmbeddingGen",
    "BackboneTrainer",
    "DeviseTrainer",
    "ZeroShotEvaluator",
    "Evaluator",
    "Pusher",
]
Execution = metadata_store_pb2.Execution


def tiny_config(root: Path, **eval_overrides) -> DeviseConfig:
    images = tiny_data.write_images(root / "images")
    vectors = tiny_data.write_glove(root / "vectors.txt")
    return DeviseConfig.from_dict(
        {
            "pipeline_name": "devise-e2e",
            "data": {"image_dir": str(images), "unseen_classes": ["boat"], "eval_fraction": 0.25},
            "embeddings": {"vectors_path": str(vectors)},
            "model": {"image_size": 16, "cnn_filters": [4, 8], "feature_dim": 16},
            "train": {
                "batch_size": 8,
                "backbone_epochs": 2,
                "projection_epochs": 2,
                "finetune_epochs": 1,
                "steps_per_epoch": 5,
            },
            "eval": {"k_values": [1, 2, 5], **eval_overrides},
        }
    )


def executions_by_node(metadata_path: str) -> dict[str, list]:
    store = results.open_store(metadata_path)
    by_node = collections.defaultdict(list)
    for context in store.get_contexts_by_type("node"):
        node = context.name.split(".")[-1]
        by_node[node] = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    return by_node


def png_bytes(colour) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), colour, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    config = tiny_config(root)
    paths = local_runner.run(config, root / "out")
    return config, root, paths


def test_first_run_executes_every_component_once(first_run):
    _, _, paths = first_run
    by_node = executions_by_node(paths["metadata_path"])
    for node in COMPONENTS:
        states = [e.last_known_state for e in by_node[node]]
        assert states == [Execution.COMPLETE], f"{node}: {states}"


def test_first_run_blesses_and_pushes_a_servable_model(first_run):
    _, _, paths = first_run
    facts = results.collect(paths)
    assert facts["blessed"] is True
    assert facts["pushed"] is True
    versions = os.listdir(paths["serving_dir"])
    assert len(versions) == 1 and versions[0].isdigit()
    version_dir = Path(paths["serving_dir"]) / versions[0]
    assert (version_dir / "saved_model.pb").is_file()
    assert facts["pushed_destination"].rstrip("/") == str(version_dir)

    loaded = tf.saved_model.load(str(version_dir))
    predict = loaded.signatures["predict"]
    out = predict(image_bytes=tf.constant([png_bytes((220, 40, 40)), png_bytes((40, 40, 220))]))
    labels = out["top_k_labels"].numpy().astype(str)
    assert labels.shape[0] == 2
    assert set(labels.reshape(-1)) <= {"cat", "dog", "car", "tree"}  # seen labels only
    # hit@k of the trained model is in the Evaluator's output, overall and per class.
    assert 0.0 <= facts["devise"]["hit_at_1"] <= 1.0
    assert facts["devise"]["hit_at_5"] == pytest.approx(1.0)  # 4 seen labels
    assert set(facts["per_class"]) == {"cat", "dog", "car", "tree"}


def test_first_run_writes_the_zero_shot_report(first_run):
    _, _, paths = first_run
    report = results.latest_artifact(
        results.open_store(paths["metadata_path"]), "devise.ZeroShotReport"
    )
    assert report is not None
    payload = json.loads((Path(report.uri) / "report.json").read_text())
    assert payload["labels"] == {"seen": ["car", "cat", "dog", "tree"], "unseen": ["boat"]}
    assert set(payload["models"]) == {"devise", "softmax", "conse", "chance"}
    devise = payload["models"]["devise"]
    assert set(devise["zero_shot_hit_at_k"]) == {"-0", "+seen"}
    assert devise["zero_shot_hit_at_k"]["-0"] == {"1": 1.0}  # one unseen label
    assert set(devise["gzsl"]) == {"u", "s", "H"}
    assert (Path(report.uri) / "report.md").read_text().startswith("# Zero-shot report")


def test_second_run_hits_the_cache_up_to_the_evaluator(first_run):
    config, root, paths = first_run
    local_runner.run(config, root / "out")
    by_node = executions_by_node(paths["metadata_path"])
    for node in COMPONENTS[:-2]:
        states = [e.last_known_state for e in by_node[node]]
        assert states == [Execution.COMPLETE, Execution.CACHED], f"{node}: {states}"
    # The Evaluator's inputs changed: the first run's blessed model is now the baseline
    # ("no worse than the last blessed model"), so it evaluates again, and a model no
    # worse than itself is blessed again.
    for node in COMPONENTS[-2:]:
        states = [e.last_known_state for e in by_node[node]]
        assert states == [Execution.COMPLETE, Execution.COMPLETE], f"{node}: {states}"
    assert results.collect(paths)["blessed"] is True


def test_impossible_threshold_blocks_the_push(first_run):
    _, root, paths = first_run
    config = tiny_config(root / "gate")
    # A bound no model can meet (the config refuses it: thresholds live in [0, 1]), set
    # past validation, so the gate itself is what blocks the push.
    config.eval.min_hit_at_1 = 1.01
    gate_paths = local_runner.run(config, root / "gate_out")
    facts = results.collect(gate_paths)
    assert facts["blessed"] is False
    assert facts["pushed"] is False
    assert not os.path.exists(gate_paths["serving_dir"]) or not os.listdir(
        gate_paths["serving_dir"]
    )
