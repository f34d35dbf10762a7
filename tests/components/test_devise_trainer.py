"""DeviseTrainer: the optional `open_vocabulary` channel and the URIs its executor passes on."""

from __future__ import annotations

import json

from tfx import types
from tfx.types import artifact_utils, standard_artifacts

from components.artifacts import LabelEmbeddings
from components.devise_trainer import executor
from components.devise_trainer.component import DeviseTrainer
from devise_keras.trainer_module import LABEL_EMBEDDINGS_URI_KEY, OPEN_VOCABULARY_URI_KEY


def _channels():
    return {
        "examples": types.Channel(type=standard_artifacts.Examples),
        "label_embeddings": types.Channel(type=LabelEmbeddings),
    }


def test_the_open_vocabulary_channel_is_optional_and_typed():
    vocabulary = types.Channel(type=LabelEmbeddings)
    wired = DeviseTrainer(**_channels(), open_vocabulary=vocabulary)
    assert wired.inputs["open_vocabulary"] is vocabulary
    assert wired.spec.INPUTS["open_vocabulary"].optional
    assert wired.spec.INPUTS["open_vocabulary"].type.TYPE_NAME == "devise.LabelEmbeddings"
    assert sorted(DeviseTrainer(**_channels()).inputs) == ["examples", "label_embeddings"]


def _artifact(cls, uri):
    artifact = cls()
    artifact.uri = str(uri)
    return artifact


def _fn_args(tmp_path, with_vocabulary: bool):
    examples = _artifact(standard_artifacts.Examples, tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    inputs = {
        "examples": [examples],
        "label_embeddings": [_artifact(LabelEmbeddings, tmp_path / "labels")],
    }
    if with_vocabulary:
        inputs["open_vocabulary"] = [_artifact(LabelEmbeddings, tmp_path / "words")]
    outputs = {
        "model": [_artifact(standard_artifacts.Model, tmp_path / "model")],
        "model_run": [_artifact(standard_artifacts.ModelRun, tmp_path / "run")],
    }
    properties = {
        "train_args": "{}",
        "eval_args": "{}",
        "custom_config": json.dumps({"config": {"pipeline_name": "p"}}),
    }
    return executor.Executor()._GetFnArgs(inputs, outputs, properties)


def test_the_executor_passes_each_wired_uri_to_run_fn(tmp_path):
    custom = _fn_args(tmp_path, with_vocabulary=True).custom_config
    assert custom == {
        "config": {"pipeline_name": "p"},
        LABEL_EMBEDDINGS_URI_KEY: str(tmp_path / "labels"),
        OPEN_VOCABULARY_URI_KEY: str(tmp_path / "words"),
    }
    assert OPEN_VOCABULARY_URI_KEY not in _fn_args(tmp_path, with_vocabulary=False).custom_config
