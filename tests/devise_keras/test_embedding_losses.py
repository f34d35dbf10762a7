"""Tests for the L2 and cosine regression baselines on hand-computed vectors."""

import json

import keras
import numpy as np
import pytest

from devise_keras.embedding_losses import (
    CosineEmbeddingLoss,
    L2EmbeddingLoss,
    cosine_embedding_loss,
    l2_embedding_loss,
)

TARGETS = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8], [0.0, 1.0]], np.float32)
PROJECTIONS = np.array([[0.0, 2.0], [0.6, 0.8], [3.0, 4.0], [0.0, 0.0]], np.float32)


def test_l2_matches_hand_computed_squared_distances():
    # row 0: (0-1)^2 + (2-0)^2 = 5; row 1: 0; row 2: 2.4^2 + 3.2^2 = 5.76 + 10.24 = 16;
    # row 3: 0^2 + 1^2 = 1
    np.testing.assert_allclose(l2_embedding_loss(TARGETS, PROJECTIONS), [5, 0, 16, 1], atol=1e-5)
    # batch mean: 22 / 4 = 5.5
    np.testing.assert_allclose(float(L2EmbeddingLoss()(TARGETS, PROJECTIONS)), 5.5, atol=1e-5)


def test_cosine_matches_hand_computed_angles():
    # row 0: orthogonal -> 1 - 0 = 1; row 1: same -> 0; row 2: [3, 4] is 5 * [0.6, 0.8] -> 0;
    # row 3: an all-zero projection has cosine 0 (not NaN) -> 1
    np.testing.assert_allclose(cosine_embedding_loss(TARGETS, PROJECTIONS), [1, 0, 0, 1], atol=1e-6)
    # batch mean: 2 / 4 = 0.5
    np.testing.assert_allclose(float(CosineEmbeddingLoss()(TARGETS, PROJECTIONS)), 0.5, atol=1e-6)


def test_cosine_normalizes_each_row_on_its_own():
    scaled = PROJECTIONS.copy()
    scaled[0] *= 1000.0
    np.testing.assert_allclose(
        cosine_embedding_loss(TARGETS, scaled), cosine_embedding_loss(TARGETS, PROJECTIONS)
    )
    # 45 degrees: 1 - cos(pi/4)
    np.testing.assert_allclose(
        cosine_embedding_loss([[1.0, 0.0]], [[7.0, 7.0]]), [1 - np.sqrt(0.5)], atol=1e-6
    )


@pytest.mark.parametrize("loss_fn", [l2_embedding_loss, cosine_embedding_loss])
def test_shape_mismatches_raise(loss_fn):
    with pytest.raises(ValueError, match="target vectors have dim 2 but projections have dim 3"):
        loss_fn(TARGETS, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="must be \\(batch, dim\\)"):
        loss_fn(TARGETS[0], PROJECTIONS[0])


@pytest.mark.parametrize("cls", [L2EmbeddingLoss, CosineEmbeddingLoss])
def test_config_round_trips_and_deserialized_loss_gives_same_value(cls):
    loss = cls(name="custom")
    config = loss.get_config()
    restored = cls.from_config(config)
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, cls)
    assert float(again(TARGETS, PROJECTIONS)) == float(loss(TARGETS, PROJECTIONS))


@pytest.mark.parametrize("cls", [L2EmbeddingLoss, CosineEmbeddingLoss])
def test_trains_a_projection_in_graph_mode(cls):
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=cls())
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = TARGETS[rng.integers(0, 4, size=16)]
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
