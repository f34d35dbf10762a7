"""Stage 2 on cached features: the backbone runs once per image, the full model learns."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras import feature_cache, trainer_module
from devise_keras.config import DeviseConfig, TrainConfig
from devise_keras.model import build_devise_model, build_small_cnn, compile_devise_model

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
    compile_devise_model(head, config, learning_rate=0.05)
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


def test_the_head_shares_the_feature_dropout_and_infers_without_it():
    keras.utils.set_random_seed(0)
    model = build_devise_model(
        build_small_cnn(SIZE, filters=(4,), feature_dim=6),
        LABEL_VECTORS,
        image_size=SIZE,
        normalize_projection=True,
        feature_dropout=0.5,
    )
    head = feature_cache.build_projection_head(model)
    assert [layer.name for layer in head.layers] == ["features", *feature_cache.HEAD_LAYERS]
    assert head.get_layer("feature_dropout") is model.get_layer("feature_dropout")
    feats = np.random.default_rng(0).uniform(size=(5, 6)).astype(np.float32)
    first, second = head.predict(feats, verbose=0), head.predict(feats, verbose=0)
    np.testing.assert_array_equal(first["scores"], second["scores"])
    # Inference skips the dropout: the head equals projection -> normalize -> scores.
    projected = feats @ model.get_layer("projection").kernel.numpy()
    projected += model.get_layer("projection").bias.numpy()
    projected /= np.linalg.norm(projected, axis=1, keepdims=True)
    np.testing.assert_allclose(first["embedding"], projected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first["scores"], projected @ LABEL_VECTORS.T, atol=1e-5)
    training = head(feats, training=True)["scores"].numpy()
    assert np.abs(training - first["scores"]).max() > 1e-3


def test_flip_reverses_the_columns_exactly():
    image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(1, 2, 3, 3) / 18
    flipped = feature_cache.augment_images(image, "flip").numpy()
    assert flipped.shape == image.shape
    np.testing.assert_array_equal(flipped[0, :, 0], image[0, :, 2])
    np.testing.assert_array_equal(flipped[0, :, 1], image[0, :, 1])
    np.testing.assert_array_equal(flipped[0, :, 2], image[0, :, 0])
    np.testing.assert_array_equal(feature_cache.augment_images(flipped, "flip"), image)


def test_crop_keeps_the_shape_and_drops_the_border():
    # 20 px: the centre crop is round(0.85 * 20) = 17 px from row/column 1, so a
    # border of ones at rows/columns 0, 18 and 19 is cut away and only zeros remain.
    image = np.zeros((2, 20, 20, 3), np.float32)
    image[:, [0, 18, 19], :, :] = 1.0
    image[:, :, [0, 18, 19], :] = 1.0
    cropped = feature_cache.augment_images(image, "crop").numpy()
    assert cropped.shape == image.shape and cropped.dtype == np.float32
    np.testing.assert_array_equal(cropped, 0.0)
    # A smooth image stays in [0, 1] and is stretched from the centre.
    ramp = np.tile(np.linspace(0, 1, 20, dtype=np.float32)[None, :, None], (20, 1, 3))[None]
    stretched = feature_cache.augment_images(ramp, "crop").numpy()
    assert 0.0 <= stretched.min() and stretched.max() <= 1.0
    assert stretched[0, 0, 0, 0] > ramp[0, 0, 0, 0] and stretched[0, 0, -1, 0] < 1.0
    np.testing.assert_array_equal(feature_cache.augment_images(ramp, "crop"), stretched)
    with pytest.raises(ValueError, match="kind must be one of"):
        feature_cache.augment_images(image, "rotate")


def test_augmented_train_features_join_with_their_targets_eval_stays_plain():
    model, backbone = _model()
    backbone.trainable = False
    config = DeviseConfig(train=TrainConfig(batch_size=4, feature_augmentation=["flip", "crop"]))
    train_images, eval_images = _images(10, seed=1), _images(6, seed=2)
    calls_before = int(backbone.images_seen.numpy())
    data = trainer_module.cached_feature_data(model, backbone, train_images, eval_images, config)
    # Each train image three times (original, flip, crop), each eval image once.
    assert int(backbone.images_seen.numpy()) - calls_before == 36
    assert data[2:] == (8, 2)  # ceil(30 / 4) train steps, ceil(6 / 4) eval steps

    images = np.concatenate([x for x, _ in train_images])
    labels = np.concatenate([y["scores"] for _, y in train_images])
    expected = {
        kind: backbone.cnn(images if kind == "none" else feature_cache.augment_images(images, kind))
        for kind in ("none", "flip", "crop")
    }
    one_epoch = list(data[0].unbatch().take(30).as_numpy_iterator())
    seen = []
    for feats, targets in one_epoch:
        matches = [
            (kind, row)
            for kind, rows in expected.items()
            for row in range(10)
            if np.allclose(rows[row], feats, atol=1e-5)
        ]
        assert len(matches) == 1
        kind, row = matches[0]
        assert targets["scores"] == labels[row]
        np.testing.assert_array_equal(targets["embedding"], LABEL_VECTORS[labels[row]])
        seen.append(matches[0])
    assert len(set(seen)) == 30  # every original and every copy once per epoch
    eval_feats = np.stack([x for x, _ in data[1].unbatch().take(6).as_numpy_iterator()])
    eval_plain = backbone.cnn(np.concatenate([x for x, _ in eval_images])).numpy()
    np.testing.assert_allclose(eval_feats, eval_plain, atol=1e-5)
