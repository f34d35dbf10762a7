"""Stage 2 on cached features: the backbone runs once per image, the full model learns."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras import feature_cache, trainer_module
from devise_keras.config import DeviseConfig, TrainConfig
from devise_keras.model import build_devise_model, build_small_cnn

SIZE = 8
LABEL_VECTORS = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], np.float32)


class CountingBackbone(keras.layers.Layer):
    """A real backbone that counts the images it has been called on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.cnn = build_small_cnn(SIZE, filters=(4,), feature_dim=6)
        self.images_seen = self.add_weight(
            shape=(), initializer="zeros", dtype="int64", trainable=False, name="images_seen"
        )

    def call(self, images):
        self.images_seen.assign_add(keras.ops.cast(keras.ops.shape(images)[0], "int64"))
        return self.cnn(images)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 6)


def _images(count: int, seed: int) -> tf.data.Dataset:
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(count, SIZE, SIZE, 3)).astype(np.float32)
    labels = np.arange(count) % len(LABEL_VECTORS)
    targets = {"scores": labels, "embedding": LABEL_VECTORS[labels]}
    return tf.data.Dataset.from_tensor_slices((images, targets)).batch(4)


def _model(projection_bias: bool = True):
    keras.utils.set_random_seed(0)
    backbone = CountingBackbone()
    model = build_devise_model(
        backbone, LABEL_VECTORS, image_size=SIZE, projection_bias=projection_bias
    )
    return model, backbone


def test_stage_two_runs_the_backbone_once_per_image_and_trains_the_full_model(tmp_path):
    model, backbone = _model()
    backbone.trainable = False
    config = DeviseConfig(train=TrainConfig(batch_size=4, projection_epochs=3))
    train_images, eval_images = _images(10, seed=1), _images(6, seed=2)
    calls_before = int(backbone.images_seen.numpy())  # building the model traces only

    data = trainer_module.cached_feature_data(model, backbone, train_images, eval_images, config)
    assert int(backbone.images_seen.numpy()) - calls_before == 16  # 10 train + 6 eval
    assert data[2] == 3  # ceil(10 / 4) steps per epoch
    head = feature_cache.build_projection_head(model)
    kernel_before = model.get_layer("projection").kernel.numpy().copy()
    trainer_module.compile_devise(head, config, 0.05)
    trainer_module.fit_stage(head, data, 3, str(tmp_path), "projection")
    # Three epochs over the cached features did not call the backbone again.
    assert int(backbone.images_seen.numpy()) - calls_before == 16
    # The full model's projection is the head's: training the head trained it.
    assert not np.allclose(model.get_layer("projection").kernel.numpy(), kernel_before)

    images = np.concatenate([x for x, _ in eval_images])
    full = model.predict(images, verbose=0)
    feats = feature_cache.feature_extractor(model, backbone).predict(images, verbose=0)
    from_head = head.predict(feats, verbose=0)
    np.testing.assert_allclose(full["scores"], from_head["scores"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(full["embedding"], from_head["embedding"], rtol=1e-5, atol=1e-5)


def test_cached_features_keep_the_dataset_order_and_targets():
    model, backbone = _model()
    data = _images(6, seed=3)
    features, targets = feature_cache.compute_features(
        feature_cache.feature_extractor(model, backbone), data
    )
    images = np.concatenate([x for x, _ in data])
    np.testing.assert_allclose(features, backbone.cnn(images).numpy(), rtol=1e-5, atol=1e-6)
    assert targets["scores"].tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_array_equal(targets["embedding"], LABEL_VECTORS[[0, 1, 2, 0, 1, 2]])


def test_projection_without_bias_is_the_papers_linear_map():
    model, _ = _model(projection_bias=False)
    projection = model.get_layer("projection")
    assert projection.bias is None
    head = feature_cache.build_projection_head(model)
    feats = np.array([[1, 0, 2, 0, 0, -1]], np.float32)
    # score_j = v_j^T M x with unit v_j (rows of the identity here): (x M)_j.
    expected = feats @ projection.kernel.numpy()
    np.testing.assert_allclose(head(feats)["scores"].numpy(), expected[:, :3], rtol=1e-5)
    np.testing.assert_allclose(head(np.zeros((1, 6), np.float32))["scores"].numpy(), 0.0)


def test_the_head_follows_a_unit_normalized_projection():
    keras.utils.set_random_seed(0)
    model = build_devise_model(
        build_small_cnn(SIZE, filters=(4,), feature_dim=6),
        LABEL_VECTORS,
        image_size=SIZE,
        normalize_projection=True,
    )
    head = feature_cache.build_projection_head(model)
    embedding = head(np.ones((2, 6), np.float32))["embedding"].numpy()
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-5)


def test_an_empty_split_is_named():
    model, backbone = _model()
    empty = _images(3, seed=0).take(0)
    with pytest.raises(ValueError, match="no examples to compute eval features"):
        feature_cache.compute_features(
            feature_cache.feature_extractor(model, backbone), empty, description="eval features"
        )


def test_softmax_classifier_head_shares_the_classifier_and_trains_it(tmp_path):
    """The softmax baseline on cached features: the trainer's compile + fit_stage."""
    from devise_keras.model import build_softmax_model

    keras.utils.set_random_seed(0)
    backbone = build_small_cnn(SIZE, filters=(4,), feature_dim=6)
    model = build_softmax_model(backbone, 3, image_size=SIZE)
    head = feature_cache.build_classifier_head(model)
    assert head.get_layer("classifier") is model.get_layer("classifier")
    feats = np.eye(6, dtype=np.float32)[[0, 1, 2, 0, 1, 2, 0, 1]]
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    config = DeviseConfig(train=TrainConfig(batch_size=4, learning_rate=0.1))
    data = trainer_module.feature_fit_data(
        feats, {"scores": labels}, feats[:3], {"scores": labels[:3]}, config
    )
    assert data[2:] == (2, 1)  # ceil(8 / 4) train steps, ceil(3 / 4) eval steps
    trainer_module.compile_softmax(head, config, 3)
    history = trainer_module.fit_stage(head, data, 30, str(tmp_path), "softmax")
    # Separable one-hot features: the classifier learns them.
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    probabilities = head.predict(feats[:3], verbose=0)["scores"]
    assert probabilities.argmax(axis=1).tolist() == [0, 1, 2]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # The full model uses the same trained classifier.
    images = np.zeros((1, SIZE, SIZE, 3), np.float32)
    full = model.predict(images, verbose=0)["scores"]
    expected = head.predict(backbone.predict(images, verbose=0), verbose=0)["scores"]
    np.testing.assert_allclose(full, expected, rtol=1e-5, atol=1e-6)
