"""Bad input stops the pipeline at the first component that can tell, with a clear message."""

from __future__ import annotations

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
