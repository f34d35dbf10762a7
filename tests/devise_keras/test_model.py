"""DeViSE / softmax model builders, the small CNN, and how they compile for each loss."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras import features
from devise_keras.config import DeviseConfig, EvalConfig, ModelConfig, TrainConfig
from devise_keras.embedding_losses import CosineEmbeddingLoss, L2EmbeddingLoss
from devise_keras.export import export_serving_model
from devise_keras.hinge_rank_loss import HingeRankLoss
from devise_keras.hit_at_k import HitAtK, hit_at_k
from devise_keras.label_softmax_loss import LabelSoftmaxLoss
from devise_keras.model import (
    build_devise_model,
    build_small_cnn,
    build_softmax_model,
    compile_devise_model,
    devise_targets,
    make_optimizer,
)

SIZE = 8
LABELS, DIM = 4, 6


@pytest.fixture
def vectors():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(LABELS, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(2)
    images = rng.random((12, SIZE, SIZE, 3), dtype=np.float32)
    return images, rng.integers(0, LABELS, size=12)


def _cnn():
    keras.utils.set_random_seed(0)
    return build_small_cnn(SIZE, filters=(4,), feature_dim=8)


def test_small_cnn_maps_images_to_features():
    cnn = build_small_cnn(SIZE, filters=(4, 8), feature_dim=6)
    assert tuple(cnn(np.zeros((3, SIZE, SIZE, 3), np.float32)).shape) == (3, 6)
    assert [layer.name for layer in cnn.layers if "conv" in layer.name] == ["conv1", "conv2"]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in cnn.layers)


def test_small_cnn_rejects_bad_sizes():
    with pytest.raises(ValueError, match="image_size"):
        build_small_cnn(0)
    with pytest.raises(ValueError, match="filters"):
        build_small_cnn(SIZE, filters=())


def test_devise_model_outputs_scores_and_embedding_by_name(vectors, data):
    images, _ = data
    model = build_devise_model(_cnn(), vectors, image_size=SIZE)
    assert model.inputs[0].name == "image"
    outputs = model.predict(images, verbose=0)
    assert set(outputs) == {"scores", "embedding"}
    assert outputs["scores"].shape == (12, LABELS) and outputs["embedding"].shape == (12, DIM)
    # scores = projected image . unit label vector (the paper's similarity).
    np.testing.assert_allclose(outputs["scores"], outputs["embedding"] @ vectors.T, atol=1e-5)


def test_normalize_projection_gives_unit_rows_and_cosine_scores(vectors, data):
    images, _ = data
    model = build_devise_model(_cnn(), vectors * 3.0, image_size=SIZE, normalize_projection=True)
    outputs = model.predict(images, verbose=0)
    # Each ROW has norm 1 (not the batch as a whole).
    np.testing.assert_allclose(np.linalg.norm(outputs["embedding"], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(outputs["scores"], outputs["embedding"] @ vectors.T, atol=1e-5)
    assert np.abs(outputs["scores"]).max() <= 1.0 + 1e-5


def test_projection_dim_must_match_the_label_vectors(vectors):
    with pytest.raises(ValueError, match="projection_dim=5 but the label vectors have 6"):
        build_devise_model(_cnn(), vectors, image_size=SIZE, projection_dim=5)
    with pytest.raises(ValueError, match="matrix"):
        build_devise_model(_cnn(), vectors[0], image_size=SIZE)


def test_backbone_must_return_feature_matrix(vectors):
    images = keras.Input((SIZE, SIZE, 3))
    conv = keras.Model(images, keras.layers.Conv2D(2, 3)(images))
    with pytest.raises(ValueError, match=r"\(batch, features\)"):
        build_devise_model(conv, vectors, image_size=SIZE)


def test_softmax_model_shares_the_backbone_and_outputs_probabilities(vectors, data):
    images, _ = data
    cnn = _cnn()
    softmax = build_softmax_model(cnn, 3, image_size=SIZE)
    devise = build_devise_model(cnn, vectors, image_size=SIZE)
    probabilities = softmax.predict(images, verbose=0)["scores"]
    assert probabilities.shape == (12, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    shared = {id(v) for v in cnn.weights}
    assert shared <= {id(v) for v in softmax.weights} and shared <= {id(v) for v in devise.weights}
    with pytest.raises(ValueError, match="num_classes"):
        build_softmax_model(cnn, 1, image_size=SIZE)


def test_devise_targets_give_ids_and_label_vectors(vectors):
    ids = np.array([2, 0])
    targets = devise_targets(ids, vectors)
    np.testing.assert_array_equal(targets["scores"], [2, 0])
    np.testing.assert_array_equal(targets["embedding"], vectors[[2, 0]])
    graph = devise_targets(tf.constant([[3]]), tf.constant(vectors))
    np.testing.assert_array_equal(graph["embedding"].numpy(), vectors[[3]])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        devise_targets(np.array([4]), vectors)


def test_rank_loss_on_scores_only_with_hit_metrics(vectors, data):
    images, ids = data
    model = build_devise_model(_cnn(), vectors, image_size=SIZE)
    model.compile(
        optimizer="adam",
        loss={"scores": HingeRankLoss()},
        metrics={"scores": [HitAtK(1), HitAtK(2)]},
    )
    scores = model.predict(images, verbose=0)["scores"]
    result = model.evaluate(images, devise_targets(ids, vectors), verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(float(HingeRankLoss()(ids, scores)), rel=1e-5)
    assert result["scores_hit_at_1"] == pytest.approx(float(np.mean(hit_at_k(ids, scores, 1))))
    assert result["scores_hit_at_2"] == pytest.approx(float(np.mean(hit_at_k(ids, scores, 2))))


def test_keras_drops_subset_metrics_when_y_misses_an_output(vectors, data):
    # Documents the Keras behaviour that makes devise_targets necessary: a y without the
    # "embedding" output silently drops the metrics (Keras 3.12) or fails (Keras 3.15).
    # If this starts failing, Keras fixed it and y = {"scores": ids} alone would do.
    images, ids = data
    model = build_devise_model(_cnn(), vectors, image_size=SIZE)
    model.compile(
        optimizer="adam", loss={"scores": HingeRankLoss()}, metrics={"scores": [HitAtK(1)]}
    )
    try:
        result = model.evaluate(images, {"scores": ids}, verbose=0, return_dict=True)
    except KeyError as error:
        assert error.args == ("embedding",)
    else:
        assert "scores_hit_at_1" not in result


@pytest.mark.parametrize(
    ("loss", "reference"), [("l2", L2EmbeddingLoss()), ("cosine", CosineEmbeddingLoss())]
)
def test_embedding_losses_train_the_embedding_output(vectors, data, loss, reference):
    images, ids = data
    config = DeviseConfig(model=ModelConfig(loss=loss), eval=EvalConfig(k_values=[1, 10]))
    model = compile_devise_model(build_devise_model(_cnn(), vectors, image_size=SIZE), config)
    embedding = model.predict(images, verbose=0)["embedding"]
    result = model.evaluate(images, devise_targets(ids, vectors), verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(float(reference(vectors[ids], embedding)), rel=1e-5)
    assert "scores_hit_at_10" not in result  # k >= 4 labels: always a hit, not compiled


def test_compile_devise_model_rank_loss_trains(vectors, data):
    images, ids = data
    model = compile_devise_model(
        build_devise_model(_cnn(), vectors, image_size=SIZE),
        DeviseConfig(model=ModelConfig(loss="rank")),
        learning_rate=0.01,
    )
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    history = model.fit(images, devise_targets(ids, vectors), epochs=5, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    # eval.k_values (1, 2, 5, 10, 20) below the 4 labels.
    assert set(history) == {"loss", "scores_hit_at_1", "scores_hit_at_2"}


def test_compile_devise_model_rejects_softmax(vectors):
    model = build_devise_model(_cnn(), vectors, image_size=SIZE)
    with pytest.raises(ValueError, match="build_softmax_model"):
        compile_devise_model(model, DeviseConfig(model=ModelConfig(loss="softmax")))


def test_devise_model_round_trips_through_keras_archive(vectors, data, tmp_path):
    images, ids = data
    model = compile_devise_model(build_devise_model(_cnn(), vectors, image_size=SIZE))
    model.fit(images, devise_targets(ids, vectors), epochs=1, verbose=0)
    path = str(tmp_path / "devise.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    expected, actual = model.predict(images, verbose=0), reloaded.predict(images, verbose=0)
    for key in ("scores", "embedding"):
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-6)
    assert json.dumps(reloaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )


def _dropout_model(vectors):
    return build_devise_model(
        _cnn(), vectors, image_size=SIZE, normalize_projection=True, feature_dropout=0.5
    )


def test_feature_dropout_sits_between_backbone_and_projection(vectors):
    model = _dropout_model(vectors)
    dropout = model.get_layer("feature_dropout")
    assert isinstance(dropout, keras.layers.Dropout) and dropout.rate == 0.5
    assert [layer.name for layer in model.layers] == [
        "image",
        "small_cnn",
        "feature_dropout",
        "projection",
        "projection_normalization",
        "label_similarity",
    ]
    assert model.get_layer("projection").input is dropout.output
    plain = build_devise_model(_cnn(), vectors, image_size=SIZE)
    assert "feature_dropout" not in {layer.name for layer in plain.layers}
    with pytest.raises(ValueError, match=r"feature_dropout must be a number in \[0, 1\)"):
        build_devise_model(_cnn(), vectors, image_size=SIZE, feature_dropout=1.0)


def test_feature_dropout_acts_in_training_only(vectors, data):
    images, _ = data
    model = _dropout_model(vectors)
    first, second = model.predict(images, verbose=0), model.predict(images, verbose=0)
    direct = model(images, training=False)
    for key in ("scores", "embedding"):
        np.testing.assert_array_equal(first[key], second[key])
        np.testing.assert_allclose(first[key], direct[key].numpy(), atol=1e-6)
    # Same weights, dropout on: the scores change (so the layer is really there).
    trained_mode = model(images, training=True)["scores"].numpy()
    assert np.abs(trained_mode - first["scores"]).max() > 1e-3


def test_cross_entropy_compiles_and_is_the_label_softmax_of_the_scores(vectors, data):
    images, ids = data
    config = DeviseConfig(model=ModelConfig(loss="cross_entropy", temperature=0.1))
    model = compile_devise_model(_dropout_model(vectors), config)
    assert isinstance(model.loss["scores"], LabelSoftmaxLoss)
    scores = model.predict(images, verbose=0)["scores"]
    result = model.evaluate(images, devise_targets(ids, vectors), verbose=0, return_dict=True)
    logits = scores / 0.1
    expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(ids)), ids])
    assert result["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert result["scores_hit_at_1"] == pytest.approx(float(np.mean(hit_at_k(ids, scores, 1))))


def test_optimizer_is_adamw_with_weight_decay_else_adam():
    assert type(make_optimizer(1e-3)) is keras.optimizers.Adam
    assert type(make_optimizer(1e-3, weight_decay=0.0)) is keras.optimizers.Adam
    adamw = make_optimizer(0.1, weight_decay=0.5)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.5
    # Decoupled decay: a zero gradient leaves Adam's step at 0, and the weight still
    # shrinks by lr * wd * w = 0.1 * 0.5 * w.
    weight = keras.Variable([1.0, -2.0])
    adamw.apply_gradients([(keras.ops.zeros((2,)), weight)])
    np.testing.assert_allclose(weight.numpy(), [0.95, -1.9], rtol=1e-6)
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        make_optimizer(1e-3, weight_decay=-1.0)


def test_compile_devise_model_uses_adamw_when_asked(vectors):
    model = compile_devise_model(
        build_devise_model(_cnn(), vectors, image_size=SIZE),
        DeviseConfig(train=TrainConfig(weight_decay=1e-3)),
    )
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(1e-3)


def test_dropout_and_normalized_model_round_trips_through_keras_archive(vectors, data, tmp_path):
    images, ids = data
    config = DeviseConfig(model=ModelConfig(loss="cross_entropy"))
    model = compile_devise_model(_dropout_model(vectors), config)
    model.fit(images, devise_targets(ids, vectors), epochs=1, verbose=0)
    path = str(tmp_path / "devise.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    expected, actual = model.predict(images, verbose=0), reloaded.predict(images, verbose=0)
    for key in ("scores", "embedding"):
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(actual["embedding"], axis=1), 1.0, atol=1e-5)
    assert reloaded.get_layer("feature_dropout").rate == 0.5
    assert isinstance(reloaded.loss["scores"], LabelSoftmaxLoss)
    assert json.dumps(reloaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )


def test_normalized_dropout_model_exports_cosine_scores(vectors, data, tmp_path):
    images, _ = data
    model = _dropout_model(vectors)
    pngs = [tf.io.encode_png(tf.cast(image * 255, tf.uint8)).numpy() for image in images[:3]]
    export_dir = export_serving_model(
        model, ["a", "b", "c", "d"], str(tmp_path / "serving"), image_size=SIZE, top_k=2
    )
    served = tf.saved_model.load(export_dir)
    outputs = served.signatures["predict"](image_bytes=tf.constant(pngs))
    decoded = features.decode_images(tf.constant(pngs), SIZE)
    expected = model.predict(decoded, verbose=0)
    np.testing.assert_allclose(outputs["scores"].numpy(), expected["scores"], atol=1e-5)
    embedding = outputs["embedding"].numpy()
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)
    # Cosines of unit vectors: the exported scores are embedding . unit label vectors.
    np.testing.assert_allclose(outputs["scores"].numpy(), embedding @ vectors.T, atol=1e-5)
