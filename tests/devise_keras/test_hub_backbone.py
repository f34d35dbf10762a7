"""HubBackbone and export_hub_feature_vector on a tiny feature-vector SavedModel built here."""

import gc
import json
import os
import shutil
import urllib.error

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras import hub_backbone
from devise_keras.hub_backbone import HubBackbone, HubLoadError
from devise_keras.hub_export import export_hub_feature_vector

SIZE = 8
FEATURES = 5


def _tiny_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    images = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(images)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Dense(FEATURES, name="dense")(x))


@pytest.fixture(scope="module")
def cnn():
    return _tiny_cnn()


@pytest.fixture(scope="module")
def hub_dir(cnn, tmp_path_factory):
    return export_hub_feature_vector(cnn, str(tmp_path_factory.mktemp("hub") / "cnn"), SIZE)


@pytest.fixture
def images():
    return np.random.default_rng(0).random((6, SIZE, SIZE, 3), dtype=np.float32)


def _classifier(backbone):
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    outputs = keras.layers.Dense(3, name="head")(backbone(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _values(variables):
    return [np.array(v) for v in variables]


def test_hub_export_loads_with_tensorflow_hub_and_matches_keras(cnn, hub_dir, images):
    hub = pytest.importorskip("tensorflow_hub")  # not a dependency of the library
    assert hub.resolve(hub_dir) == hub_dir
    module = hub.load(hub_dir)
    np.testing.assert_allclose(module(images), cnn(images), atol=1e-6)
    np.testing.assert_allclose(module(images, training=True), cnn(images), atol=1e-6)
    assert len(module.variables) == 4  # conv kernel/bias, dense kernel/bias
    assert len(module.trainable_variables) == 4
    assert list(module.regularization_losses) == []
    reloaded = tf.saved_model.load(hub_dir)
    assert reloaded.signatures["serving_default"](images=tf.constant(images))["features"].shape == (
        6,
        FEATURES,
    )


def test_hub_export_refuses_an_existing_saved_model_and_non_matrix_outputs(cnn, hub_dir, tmp_path):
    with pytest.raises(FileExistsError, match="already holds a SavedModel"):
        export_hub_feature_vector(cnn, hub_dir, SIZE)
    images = keras.Input((SIZE, SIZE, 3))
    conv = keras.Model(images, keras.layers.Conv2D(2, 3)(images))
    with pytest.raises(ValueError, match=r"\(batch, features\)"):
        export_hub_feature_vector(conv, str(tmp_path / "conv"), SIZE)


def test_backbone_matches_the_saved_model_and_infers_output_dim(cnn, hub_dir, images):
    backbone = HubBackbone(hub_dir)
    assert backbone.output_dim == FEATURES
    np.testing.assert_allclose(backbone(images), cnn(images), atol=1e-6)
    assert backbone.compute_output_shape((None, SIZE, SIZE, 3)) == (None, FEATURES)
    # Adam builds TF name scopes from variable names: no '/' or ':'.
    assert all("/" not in v.name and ":" not in v.name for v in backbone.weights)


def test_images_of_another_size_than_the_saved_model_raise(hub_dir):
    backbone = HubBackbone(hub_dir)
    with pytest.raises(ValueError, match="takes 8x8 images, got 16x16"):
        backbone(keras.Input((16, 16, 3)))


def test_output_dim_that_disagrees_with_the_saved_model_raises(hub_dir):
    with pytest.raises(HubLoadError, match="returns 5 features but output_dim is 7"):
        HubBackbone(hub_dir, output_dim=7)


def test_missing_local_path_raises_naming_the_handle(tmp_path):
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(HubLoadError, match="no_such_model.*neither an existing local directory"):
        HubBackbone(missing)


def test_directory_without_saved_model_raises(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(HubLoadError, match="not a SavedModel directory"):
        HubBackbone(str(tmp_path))


def test_unresolvable_hub_handle_names_it_and_suggests_a_local_path(monkeypatch):
    # No network in tests: simulate what tensorflow_hub raises without one.
    hub = pytest.importorskip("tensorflow_hub")

    def offline(handle):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(hub, "resolve", offline)
    handle = "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"
    with pytest.raises(HubLoadError) as error:
        HubBackbone(handle)
    message = str(error.value)
    assert handle in message
    assert "local SavedModel directory" in message and "TFHUB_CACHE_DIR" in message


def test_trainable_backbone_changes_every_variable_with_adam(hub_dir, images):
    backbone = HubBackbone(hub_dir, trainable=True)
    model = _classifier(backbone)
    before = _values(backbone.weights)
    model.fit(images, np.array([0, 1, 2, 0, 1, 2]), epochs=2, verbose=0)
    assert all(
        not np.allclose(b, v) for b, v in zip(before, _values(backbone.weights), strict=True)
    )
    # The restored graph reads the trained variables, not the SavedModel's originals.
    head = model.get_layer("head")
    expected = backbone(images) @ np.array(head.kernel) + np.array(head.bias)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-5)


def test_frozen_backbone_keeps_its_weights(hub_dir, images):
    backbone = HubBackbone(hub_dir)  # trainable=False by default
    model = _classifier(backbone)
    before = _values(backbone.weights)
    head_before = np.array(model.get_layer("head").kernel)
    model.fit(images, np.array([0, 1, 2, 0, 1, 2]), epochs=2, verbose=0)
    assert backbone.trainable_weights == []
    for b, v in zip(before, _values(backbone.weights), strict=True):
        np.testing.assert_array_equal(b, v)
    assert not np.allclose(head_before, model.get_layer("head").kernel)


def test_set_trainable_tail_trains_only_the_last_variables(hub_dir, images):
    backbone = HubBackbone(hub_dir)
    backbone.set_trainable_tail(2)
    assert [v.trainable for v in backbone.weights] == [False, False, True, True]
    assert [v.name for v in backbone.trainable_weights] == ["dense_kernel", "dense_bias"]
    model = _classifier(backbone)
    before = _values(backbone.weights)
    model.fit(images, np.array([0, 1, 2, 0, 1, 2]), epochs=2, verbose=0)
    changed = [
        not np.allclose(b, v) for b, v in zip(before, _values(backbone.weights), strict=True)
    ]
    assert changed == [False, False, True, True]
    backbone.set_trainable_tail(-1)
    assert len(backbone.trainable_weights) == 4
    backbone.set_trainable_tail(0)
    assert backbone.trainable_weights == [] and not backbone.trainable


def test_set_trainable_tail_rejects_counts_out_of_range(hub_dir):
    backbone = HubBackbone(hub_dir)
    with pytest.raises(ValueError, match="only 4 trainable variables"):
        backbone.set_trainable_tail(5)
    with pytest.raises(ValueError, match="-1 \\(all\\)"):
        backbone.set_trainable_tail(-2)


def test_get_config_round_trips_and_rebuilds_from_the_handle(hub_dir, images):
    backbone = HubBackbone(hub_dir, trainable=True, name="hub")
    config = backbone.get_config()
    assert config["handle"] == hub_dir and config["output_dim"] == FEATURES
    clone = HubBackbone.from_config(config)
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    np.testing.assert_allclose(clone(images), backbone(images), atol=1e-6)


def test_keras_archive_reloads_after_the_backbone_dir_is_deleted(cnn, tmp_path, images):
    source = export_hub_feature_vector(cnn, str(tmp_path / "hub"), SIZE)
    backbone = HubBackbone(source)
    backbone.set_trainable_tail(2)
    model = _classifier(backbone)
    labels = np.array([0, 1, 2, 0, 1, 2])
    model.fit(images, labels, epochs=1, verbose=0)
    expected = model.predict(images, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    shutil.rmtree(source)

    # Our own registered class: no safe_mode=False needed (unlike TFSMLayer).
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), expected, atol=1e-6)
    reloaded_backbone = reloaded.layers[1]
    assert [v.trainable for v in reloaded_backbone.weights] == [False, False, True, True]
    assert not reloaded_backbone._saved_model_dir.startswith(str(tmp_path))

    # The compiled optimizer was rebuilt over the restored variables: training goes on.
    before = _values(reloaded_backbone.weights)
    reloaded.fit(images, labels, epochs=1, verbose=0)
    after = _values(reloaded_backbone.weights)
    assert [not np.allclose(b, a) for b, a in zip(before, after, strict=True)] == [
        False,
        False,
        True,
        True,
    ]

    # The private copy of the SavedModel lets the reloaded model be saved again.
    again = str(tmp_path / "again.keras")
    reloaded.save(again)
    twice = keras.models.load_model(again)
    np.testing.assert_allclose(
        twice.predict(images, verbose=0), reloaded.predict(images, verbose=0), atol=1e-6
    )


def test_resolve_handle_rejects_empty_handles():
    with pytest.raises(HubLoadError, match="non-empty string"):
        hub_backbone.resolve_handle("")


def test_private_copy_is_removed_with_the_layer(cnn, tmp_path, images):
    source = export_hub_feature_vector(cnn, str(tmp_path / "hub"), SIZE)
    model = _classifier(HubBackbone(source))
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    private = reloaded.layers[1]._private_dir
    assert os.path.isdir(private)
    del reloaded
    gc.collect()
    assert not os.path.exists(private)


def test_hub_export_without_image_size_takes_any_height_and_width(tmp_path):
    # image_size=None: a fully convolutional model (e.g. EfficientNet-Lite) keeps
    # unknown height and width, as many TF-Hub feature vectors do.
    keras.utils.set_random_seed(1)
    images = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(images)
    fcn = keras.Model(images, keras.layers.GlobalAveragePooling2D()(x))
    backbone = HubBackbone(export_hub_feature_vector(fcn, str(tmp_path / "fcn"), None))
    assert backbone.output_dim == 4
    for height, width in ((8, 8), (13, 21)):
        batch = np.random.default_rng(height).random((2, height, width, 3), dtype=np.float32)
        np.testing.assert_allclose(backbone(batch), fcn(batch), rtol=1e-5, atol=1e-6)
    assert backbone.compute_output_shape((None, 13, 21, 3)) == (None, 4)
    with pytest.raises(ValueError, match="positive int or None"):
        export_hub_feature_vector(fcn, str(tmp_path / "bad"), 0)
