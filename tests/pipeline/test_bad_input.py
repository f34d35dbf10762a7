"""Bad input stops the pipeline at the first component that can tell, with a clear message."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devise_keras.config import DeviseConfig
from pipeline import local_runner
from tests.pipeline import tiny_data
from tests.pipeline.test_local_pipeline_e2e import executions_by_node

pytestmark = pytest.mark.slow

COMPLETE, FAILED = 3, 4  # metadata_store_pb2.Execution.State


def _config(tmp_path, **sections) -> DeviseConfig:
    images = tiny_data.write_images(tmp_path / "images", per_class=4)
    vectors = tiny_data.write_glove(tmp_path / "vectors.txt")
    base = {
        "pipeline_name": "devise-bad-input",
        "data": {"image_dir": str(images), "unseen_classes": ["boat"]},
        "embeddings": {"vectors_path": str(vectors)},
        "model": {"image_size": 16, "cnn_filters": [4], "feature_dim": 8},
        "train": {"backbone_epochs": 1, "projection_epochs": 1, "finetune_epochs": 0},
    }
    for name, values in sections.items():
        base[name] = {**base[name], **values}
    return DeviseConfig.from_dict(base)


def _states(paths) -> dict[str, list[int]]:
    return {
        node: [e.last_known_state for e in execs]
        for node, execs in executions_by_node(paths["metadata_path"]).items()
    }


def test_missing_image_dir_stops_at_image_example_gen(tmp_path):
    config = _config(tmp_path, data={"image_dir": str(tmp_path / "no_such_dir")})
    with pytest.raises(Exception, match="no_such_dir"):
        local_runner.run(config, tmp_path / "out")
    states = _states(local_runner.local_paths(tmp_path / "out"))
    assert states["ImageExampleGen"] == [FAILED]
    assert "DeviseTrainer" not in states


def test_missing_vectors_file_stops_at_label_embedding_gen(tmp_path):
    config = _config(tmp_path, embeddings={"vectors_path": str(tmp_path / "glove.missing.txt")})
    with pytest.raises(Exception, match="glove.missing.txt"):
        local_runner.run(config, tmp_path / "out")
    states = _states(local_runner.local_paths(tmp_path / "out"))
    assert states["ImageExampleGen"] == [COMPLETE]
    assert states["LabelEmbeddingGen"] == [FAILED]
    assert "DeviseTrainer" not in states


def test_all_labels_out_of_vocabulary_names_them(tmp_path):
    vectors = tmp_path / "other_words.txt"
    vectors.write_text("the 0.1 0.2\nof 0.3 0.1\n")
    config = _config(tmp_path, embeddings={"vectors_path": str(vectors)})
    with pytest.raises(Exception, match="cat") as err:
        local_runner.run(config, tmp_path / "out")
    assert "tree" in str(err.value)
    states = _states(local_runner.local_paths(tmp_path / "out"))
    assert states["LabelEmbeddingGen"] == [FAILED]


def test_unreadable_backbone_stops_at_the_devise_trainer(tmp_path):
    config = _config(tmp_path, model={"backbone": str(tmp_path / "no_hub_model")})
    with pytest.raises(Exception, match="no_hub_model"):
        local_runner.run(config, tmp_path / "out")
    states = _states(local_runner.local_paths(tmp_path / "out"))
    assert "BackboneTrainer" not in states  # a hub backbone replaces the softmax CNN
    assert states["DeviseTrainer"] == [FAILED]
    assert "Pusher" not in states


# Runs the local pipeline in a fresh process: TensorFlow reads the GCS settings once, when
# its GCS filesystem first starts, so this test's store must be set before that.
_RUN_ON_UNREACHABLE_STORE = """
import pathlib, sys
from pipeline import local_runner
from tests.pipeline.test_bad_input import _config
tmp, where = pathlib.Path(sys.argv[1]), sys.argv[2]
uri = "gs://devise-unreachable/" + where
if where == "images":
    local_runner.run(_config(tmp, data={"image_dir": uri}), tmp / "out")
else:
    local_runner.run(_config(tmp), tmp / "out", pipeline_root=uri, serving_dir=uri + "-serving")
"""


def _run_against_an_unreachable_store(tmp_path, where: str) -> subprocess.CompletedProcess:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    env = {
        **os.environ,
        "HTTPS_PROXY": closed,  # TensorFlow's GCS requests go nowhere
        "https_proxy": closed,
        "STORAGE_EMULATOR_HOST": closed,  # and so do Beam's
        "GOOGLE_AUTH_TOKEN_FOR_TESTING": "unused",
        "NO_GCE_CHECK": "true",
        # TensorFlow's default is 10 retries, ~196 s per call; 2 quick retries keep this short.
        "GCS_RETRY_CONFIG_MAX_RETRIES": "2",
        "GCS_RETRY_CONFIG_INIT_DELAY_TIME_US": "100000",
    }
    return subprocess.run(
        [sys.executable, "-c", _RUN_ON_UNREACHABLE_STORE, str(tmp_path), where],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=540,
    )


def test_unreachable_object_store_stops_the_run_before_any_component(tmp_path):
    done = _run_against_an_unreachable_store(tmp_path, "root")
    assert done.returncode != 0
    assert "cannot reach the pipeline root gs://devise-unreachable/root" in done.stderr
    assert "Couldn't connect to server" in done.stderr
    assert not (tmp_path / "out" / "metadata.sqlite").exists()  # nothing ran


def test_unreachable_image_dir_stops_at_image_example_gen_naming_it(tmp_path):
    done = _run_against_an_unreachable_store(tmp_path, "images")
    assert done.returncode != 0
    assert "gs://devise-unreachable/images" in done.stderr.splitlines()[-1]
    states = _states(local_runner.local_paths(tmp_path / "out"))
    assert "LabelEmbeddingGen" not in states and "StatisticsGen" not in states
