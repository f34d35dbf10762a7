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
    return tf.data.Dataset.from_generator(batches, output_signature=spec), None, 4, None


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_an_interrupted_stage_resumes_at_the_last_finished_epoch(tmp_path):
    run_dir = str(tmp_path / "model_run")
    with pytest.raises(Exception, match="simulated crash"):
        # Dies in epoch 3 (after 2 x 4 batches): epochs 1 and 2 are backed up.
        trainer_module.fit_stage(_model(), _data(9), 4, run_dir, "projection")
    history = trainer_module.fit_stage(_model(), _data(None), 4, run_dir, "projection")
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


def test_a_nan_loss_stops_the_stage_with_an_error_naming_it(tmp_path):
    def batches():
        for value in (1.0, 1.0, np.nan, 1.0):  # the third batch poisons the weights
            yield np.full((2, 3), value, np.float32), np.zeros((2, 1), np.float32)

    spec = (tf.TensorSpec((2, 3), tf.float32), tf.TensorSpec((2, 1), tf.float32))
    data = (tf.data.Dataset.from_generator(batches, output_signature=spec), None, 4, None)
    model = _model()
    with pytest.raises(
        trainer_module.NonFiniteLossError,
        match="training stage 'finetune' diverged: the loss became nan at epoch 1, batch 3",
    ):
        trainer_module.fit_stage(model, data, 1, str(tmp_path / "run"), "finetune")


def test_no_hit_at_k_metric_for_k_at_or_above_the_label_count():
    names = [m.name for m in trainer_module.hit_at_k_metrics([1, 2, 5, 10, 20], 8)]
    assert names == ["hit_at_1", "hit_at_2", "hit_at_5"]


def test_split_size_reads_the_example_gen_report_else_counts(tmp_path):
    root = tmp_path / "examples"
    (root / "Split-train").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(root / "Split-train" / "data.gz"), "GZIP") as writer:
        for _ in range(3):
            writer.write(b"record")
    pattern = [str(root / "Split-train" / "*")]
    assert trainer_module.split_size(pattern, "train") == 3  # no report: counted
    (root / "report.json").write_text('{"splits": {"train": 7, "eval": 2}}')
    assert trainer_module.split_size(pattern, "train") == 7  # the report wins, no read


def test_an_empty_eval_split_is_a_clear_error(tmp_path):
    root = tmp_path / "examples"
    for split in ("train", "eval"):
        (root / f"Split-{split}").mkdir(parents=True)
    (root / "report.json").write_text('{"splits": {"train": 5, "eval": 0, "unseen": 3}}')
    args = types.SimpleNamespace(
        train_files=[str(root / "Split-train" / "*")], eval_files=[str(root / "Split-eval" / "*")]
    )
    with pytest.raises(ValueError, match="the eval split has no records: raise data.eval_fraction"):
        trainer_module._datasets(args, DeviseConfig(), num_labels=3)
