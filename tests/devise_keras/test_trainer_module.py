"""Trainer-module pieces that the pipeline e2e test does not pin down."""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras import trainer_module
from devise_keras.config import DeviseConfig, ModelConfig


def _data(fail_after_batches: int | None):
    """4 batches an epoch; the first pass may die after `fail_after_batches` batches."""
    seen = {"batches": 0}

    def batches():
        while True:
            seen["batches"] += 1
            if fail_after_batches is not None and seen["batches"] > fail_after_batches:
                raise RuntimeError("simulated crash")
            yield np.ones((2, 3), np.float32), np.zeros((2, 1), np.float32)

    spec = (tf.TensorSpec((2, 3), tf.float32), tf.TensorSpec((2, 1), tf.float32))
    return tf.data.Dataset.from_generator(batches, output_signature=spec), None, 4


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_an_interrupted_stage_resumes_at_the_last_finished_epoch(tmp_path):
    run_dir = str(tmp_path / "model_run")
    with pytest.raises(Exception, match="simulated crash"):
        # Dies in epoch 3 (after 2 x 4 batches): epochs 1 and 2 are backed up.
        trainer_module._fit_stage(_model(), _data(9), 4, run_dir, "projection")
    history = trainer_module._fit_stage(_model(), _data(None), 4, run_dir, "projection")
    assert history.epoch == [2, 3]  # 0-based: only epochs 3 and 4 ran again
    assert (tmp_path / "model_run" / "logs" / "projection").is_dir()  # TensorBoard


def test_config_comes_from_custom_config():
    cfg = DeviseConfig(model=ModelConfig(margin=0.3))
    args = types.SimpleNamespace(custom_config={"config": cfg.to_dict()})
    assert trainer_module.config_from_fn_args(args) == cfg
    with pytest.raises(ValueError, match="custom_config has no 'config' entry"):
        trainer_module.config_from_fn_args(types.SimpleNamespace(custom_config=None))


def test_examples_root_from_a_split_pattern():
    assert trainer_module.examples_root("/p/ImageExampleGen/examples/7/Split-train/*") == (
        "/p/ImageExampleGen/examples/7"
    )


def test_backbone_is_the_configured_handle_else_the_base_model():
    hub = DeviseConfig(model=ModelConfig(backbone="https://tfhub.example/model/1"))
    assert trainer_module.resolve_backbone_handle(hub, "/base") == "https://tfhub.example/model/1"
    assert trainer_module.resolve_backbone_handle(DeviseConfig(), "/base") == "/base"
    with pytest.raises(ValueError, match="no backbone"):
        trainer_module.resolve_backbone_handle(DeviseConfig(), None)
