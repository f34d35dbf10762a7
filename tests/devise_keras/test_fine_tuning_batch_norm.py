"""Fine-tuning leaves the batch-norm statistics of a pre-trained backbone alone.

Frome et al. fine-tune the top of a pre-trained network; its batch-norm moving averages
are part of what was pre-trained. These tests take one fine-tuning step and compare.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from devise_keras.hub_backbone import HubBackbone
from devise_keras.hub_export import export_hub_feature_vector

SIZE = 8


def _bn_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    images = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, name="conv1")(images)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(4, 3, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Dense(5, name="top")(x))


def _classifier(backbone):
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(backbone(inputs)))
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    # Far from the initial moving mean 0 / variance 1, so a training-mode step moves them.
    return rng.random((8, SIZE, SIZE, 3), dtype=np.float32) * 5 + 3, np.arange(8) % 3


def _moving(variables):
    return {v.path: np.array(v) for v in variables if "moving" in v.path}


def test_hub_backbone_fine_tuning_keeps_moving_statistics(tmp_path, batch):
    hub_dir = export_hub_feature_vector(_bn_cnn(), str(tmp_path / "hub"), SIZE)
    backbone = HubBackbone(hub_dir)
    model = _classifier(backbone)
    backbone.set_trainable_tail(2)  # the top Dense kernel and bias
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=model.loss)
    statistics = {v.name: np.array(v) for v in backbone.non_trainable_weights}
    top = [np.array(v) for v in backbone.trainable_weights]
    assert len(top) == 2 and statistics
    model.fit(*batch, epochs=1, batch_size=8, verbose=0)
    for variable in backbone.non_trainable_weights:
        np.testing.assert_array_equal(np.array(variable), statistics[variable.name])
    assert all(
        not np.allclose(b, np.array(v))
        for b, v in zip(top, backbone.trainable_weights, strict=True)
    )


def test_hub_backbone_can_leave_batch_norm_to_train_when_asked(tmp_path, batch):
    # The control: with freeze_batch_norm=False the same step does move the statistics,
    # so the test above would catch a backbone that runs in training mode.
    hub_dir = export_hub_feature_vector(_bn_cnn(), str(tmp_path / "hub"), SIZE)
    backbone = HubBackbone(hub_dir, freeze_batch_norm=False)
    model = _classifier(backbone)
    backbone.set_trainable_tail(-1)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=model.loss)
    moving = [v for v in backbone.weights if "moving" in v.name]
    before = [np.array(v) for v in moving]
    assert moving, [v.name for v in backbone.weights]
    model.fit(*batch, epochs=1, batch_size=8, verbose=0)
    assert any(not np.allclose(b, np.array(v)) for b, v in zip(before, moving, strict=True))


def test_native_keras_backbone_frozen_layers_keep_moving_statistics(batch):
    backbone = _bn_cnn()
    # Fine-tune the top block only: Keras 3 runs a BatchNormalization layer whose
    # `trainable` is False in inference mode, so bn1 keeps its statistics.
    for layer in backbone.layers:
        layer.trainable = layer.name in ("conv2", "bn2", "top")
    model = _classifier(backbone)
    frozen = _moving(backbone.get_layer("bn1").weights)
    tuned = _moving(backbone.get_layer("bn2").weights)
    model.fit(*batch, epochs=1, batch_size=8, verbose=0)
    for path, value in _moving(backbone.get_layer("bn1").weights).items():
        np.testing.assert_array_equal(value, frozen[path])
    # The unfrozen bn2 does update: the step really ran in training mode.
    after = _moving(backbone.get_layer("bn2").weights)
    assert any(not np.allclose(after[p], tuned[p]) for p in tuned)
