"""Trainer-module pieces that the pipeline e2e test does not pin down."""

from __future__ import annotations

import io
import json
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras import feature_cache, trainer_module
from devise_keras.config import DeviseConfig, EvalConfig, ModelConfig, TrainConfig
from devise_keras.embedding_losses import CosineEmbeddingLoss, L2EmbeddingLoss
from devise_keras.hinge_rank_loss import HingeRankLoss
from devise_keras.label_softmax_loss import LabelSoftmaxLoss
from devise_keras.model import build_small_cnn, compile_devise_model, hit_at_k_metrics


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
    logs = tmp_path / "model_run" / "logs" / "projection"
    assert logs.is_dir() == trainer_module.tensorboard_installed()  # TensorBoard's, if any


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
    names = [m.name for m in hit_at_k_metrics([1, 2, 5, 10, 20], 8)]
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


LABEL_VECTORS = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0.6, 0.8, 0]], np.float32)


def _projection_config(**model_options) -> DeviseConfig:
    return DeviseConfig(
        model=ModelConfig(image_size=8, **model_options),
        train=TrainConfig(batch_size=8, learning_rate=0.05, projection_epochs=40),
        eval=EvalConfig(k_values=[1, 2]),
    )


def _separable_features():
    """3 classes as tight 2-D clusters around the corners of a triangle."""
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], np.float32)
    labels = np.repeat(np.arange(3), 8)
    feats = centres[labels] + rng.normal(scale=0.1, size=(24, 2)).astype(np.float32)
    return feats, {"scores": labels, "embedding": LABEL_VECTORS[labels]}


def test_build_devise_from_config_passes_every_model_option():
    config = _projection_config(
        projection_normalize=True, projection_bias=False, feature_dropout=0.25
    )
    model = trainer_module.build_devise_from_config(
        build_small_cnn(8, filters=(2,), feature_dim=2), LABEL_VECTORS, config
    )
    assert model.inputs[0].shape == (None, 8, 8, 3)
    assert model.get_layer("feature_dropout").rate == 0.25
    assert model.get_layer("projection").bias is None
    assert "projection_normalization" in {layer.name for layer in model.layers}
    plain = trainer_module.build_devise_from_config(
        build_small_cnn(8, filters=(2,), feature_dim=2), LABEL_VECTORS, _projection_config()
    )
    names = {layer.name for layer in plain.layers}
    assert "feature_dropout" not in names and "projection_normalization" not in names
    assert plain.get_layer("projection").bias is not None


@pytest.mark.parametrize(
    "loss, output, loss_class",
    [
        ("rank", "scores", HingeRankLoss),
        ("cross_entropy", "scores", LabelSoftmaxLoss),
        ("l2", "embedding", L2EmbeddingLoss),
        ("cosine", "embedding", CosineEmbeddingLoss),
    ],
)
def test_compile_devise_handles_every_loss_and_the_optimizer(loss, output, loss_class):
    config = _projection_config(loss=loss, temperature=0.2, margin=0.3)
    config = config.replace(train=TrainConfig(weight_decay=1e-3))
    model = trainer_module.build_devise_from_config(
        build_small_cnn(8, filters=(2,), feature_dim=2), LABEL_VECTORS, config
    )
    compile_devise_model(model, config, learning_rate=0.01)
    assert list(model.loss) == [output] and isinstance(model.loss[output], loss_class)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(1e-3)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    if loss == "cross_entropy":
        assert model.loss[output].temperature == 0.2
    if loss == "rank":
        assert model.loss[output].margin == 0.3
    adam = _projection_config()
    compile_devise_model(model, adam)
    assert type(model.optimizer) is keras.optimizers.Adam
    assert float(model.optimizer.learning_rate) == pytest.approx(adam.train.learning_rate)


def test_compile_devise_rejects_the_softmax_baseline():
    config = _projection_config(loss="softmax")
    model = trainer_module.build_devise_from_config(
        build_small_cnn(8, filters=(2,), feature_dim=2), LABEL_VECTORS, config
    )
    with pytest.raises(ValueError, match="got 'softmax' .the softmax baseline is build_softmax"):
        compile_devise_model(model, config, learning_rate=0.01)


@pytest.mark.parametrize(
    "model_options",
    [
        {"loss": "cross_entropy", "projection_normalize": True, "temperature": 0.1},
        {"loss": "cross_entropy", "projection_normalize": True, "feature_dropout": 0.2},
        {"loss": "rank", "projection_normalize": True, "margin": 0.2},
    ],
)
def test_projection_head_learns_separable_features(model_options, tmp_path):
    keras.utils.set_random_seed(0)
    config = _projection_config(**model_options)
    model = trainer_module.build_devise_from_config(
        build_small_cnn(8, filters=(2,), feature_dim=2), LABEL_VECTORS, config
    )
    head = feature_cache.build_projection_head(model)
    compile_devise_model(head, config)
    feats, targets = _separable_features()
    data = trainer_module.feature_fit_data(feats, targets, feats, targets, config)
    history = trainer_module.fit_stage(
        head, data, config.train.projection_epochs, str(tmp_path), "p"
    ).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    result = head.evaluate(feats, targets, verbose=0, return_dict=True)
    assert result["scores_hit_at_1"] == 1.0
    scores = head.predict(feats, verbose=0)["scores"]
    assert scores.argmax(axis=1).tolist() == targets["scores"].tolist()
    assert np.abs(scores).max() <= 1.0 + 1e-5  # cosines


def _write_colour_split(folder, labels):
    """Solid-colour 4x4 PNG records, one per label ("red" or "green")."""
    from PIL import Image

    from devise_keras import features

    folder.mkdir(parents=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(str(folder / "data.gz"), options) as writer:
        for label in labels:
            buffer = io.BytesIO()
            colour = (255, 0, 0) if label == "red" else (0, 255, 0)
            Image.fromarray(np.full((4, 4, 3), colour, np.uint8)).save(buffer, format="PNG")
            feature = {
                features.IMAGE_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[buffer.getvalue()])
                ),
                features.LABEL_TEXT_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[label.encode()])
                ),
                features.LABEL_ID_KEY: tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[["red", "green"].index(label)])
                ),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def test_run_fn_bundles_the_open_vocabulary_it_is_given(tmp_path):
    from devise_keras import apps, features
    from devise_keras.hub_export import export_hub_feature_vector
    from devise_keras.label_embeddings import LabelEmbeddings

    examples = tmp_path / "examples"
    _write_colour_split(examples / "Split-train", ["red", "green"] * 2)
    _write_colour_split(examples / "Split-eval", ["red", "green"])
    split = {"classes": ["red", "green"], "seen": ["red", "green"], "unseen": []}
    (examples / features.CLASS_SPLIT_FILE).write_text(json.dumps(split))
    LabelEmbeddings(["red", "green"], np.eye(2, 3)).save(tmp_path / "labels")
    words = ["apple", "grass", "sky"]
    LabelEmbeddings(words, np.eye(3)).save(tmp_path / "words")
    hub = export_hub_feature_vector(
        build_small_cnn(4, filters=(2,), feature_dim=3), str(tmp_path / "hub"), 4
    )
    config = DeviseConfig.from_dict(
        {
            "model": {"backbone": hub, "image_size": 4},
            "train": {"batch_size": 2, "projection_epochs": 1, "finetune_epochs": 0},
            "eval": {"k_values": [1]},
        }
    )
    serving = tmp_path / "model" / "Format-Serving"
    fn_args = types.SimpleNamespace(
        custom_config={
            "config": config.to_dict(),
            trainer_module.LABEL_EMBEDDINGS_URI_KEY: str(tmp_path / "labels"),
            trainer_module.OPEN_VOCABULARY_URI_KEY: str(tmp_path / "words"),
        },
        train_files=[str(examples / "Split-train" / "*")],
        eval_files=[str(examples / "Split-eval" / "*")],
        base_model=None,
        serving_model_dir=str(serving),
        model_run_dir=str(tmp_path / "run"),
    )
    trainer_module.run_fn(fn_args)
    bundled = LabelEmbeddings.load(serving / "assets.extra" / "open_vocabulary")
    metadata = json.loads((serving / "assets.extra/open_vocabulary/metadata.json").read_text())
    assert metadata["num_labels"] == 3
    assert bundled.labels == words
    np.testing.assert_array_equal(bundled.vectors, np.eye(3))
    assert apps.load(serving).vocabulary.labels.tolist() == words
    # The trainer's config.json names no path of this machine outside "provenance".
    written = json.loads((serving / "assets.extra" / "config.json").read_text())
    provenance = written.pop("provenance")
    assert str(tmp_path) not in json.dumps(written) and written["model"]["backbone"] == ""
    assert provenance["config"] == {"model.backbone": hub}
