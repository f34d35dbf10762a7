"""Softmax cross-entropy over label scores / T, on hand-computed values."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras.label_softmax_loss import LabelSoftmaxLoss, label_softmax_loss

SCORES = np.array([[0.5, 0.4, 0.1], [0.2, 0.9, 0.0]], np.float32)
Y = np.array([0, 2])


def test_loss_is_the_hand_computed_negative_log_softmax():
    # Row 0, T = 0.1: logits 5, 4, 1 -> -5 + log(e^5 + e^4 + e^1) = log(1 + e^-1 + e^-4).
    # Row 1, label 2, T = 0.1: logits 2, 9, 0 -> -0 + log(e^2 + e^9 + 1).
    expected = [
        math.log(1 + math.exp(-1) + math.exp(-4)),
        math.log(math.exp(2) + math.exp(9) + 1),
    ]
    np.testing.assert_allclose(label_softmax_loss(Y, SCORES, temperature=0.1), expected, rtol=1e-6)
    assert expected[0] == pytest.approx(0.3265626, abs=1e-7)


def test_keras_loss_is_the_batch_mean_and_temperature_rescales():
    loss = LabelSoftmaxLoss(temperature=0.5)
    # T = 0.5: row 0 logits 1, 0.8, 0.2; row 1 logits 0.4, 1.8, 0 (label 2).
    row0 = -1 + math.log(math.exp(1) + math.exp(0.8) + math.exp(0.2))
    row1 = math.log(math.exp(0.4) + math.exp(1.8) + 1)
    assert float(loss(Y, SCORES)) == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_label_ids_as_column_of_floats_equal_int_vector():
    np.testing.assert_allclose(
        label_softmax_loss(Y.reshape(-1, 1).astype(np.float32), SCORES),
        label_softmax_loss(Y, SCORES),
    )


def test_large_logits_stay_finite():
    # Cosines of 1 and -1 at T = 1e-3 are logits of +-1000: a naive exp overflows.
    losses = label_softmax_loss([0, 1], [[1.0, -1.0], [1.0, -1.0]], temperature=1e-3)
    np.testing.assert_allclose(losses, [0.0, 2000.0], rtol=1e-6)


def test_gradient_is_softmax_minus_onehot_over_temperature():
    scores = tf.constant(SCORES)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        loss = tf.reduce_sum(label_softmax_loss(Y, scores, temperature=0.1))
    grad = tape.gradient(loss, scores).numpy()
    logits = SCORES / 0.1
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = (softmax - np.eye(3)[Y]) / 0.1
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)
    # Row 0 by hand: p = (e^5, e^4, e^1) / (e^5 + e^4 + e^1); the true label is pulled up.
    z = math.exp(5) + math.exp(4) + math.exp(1)
    assert grad[0, 0] == pytest.approx((math.exp(5) / z - 1) / 0.1, rel=1e-5)


@pytest.mark.parametrize("temperature", [0.0, -0.1, math.inf, math.nan, True, "0.1"])
def test_bad_temperature_raises_in_function_and_class(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        label_softmax_loss(Y, SCORES, temperature=temperature)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        LabelSoftmaxLoss(temperature=temperature)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="y_pred must be scores of shape"):
        label_softmax_loss([0], [0.1, 0.2])
    with pytest.raises(ValueError, match="y_true must be label ids"):
        label_softmax_loss(np.zeros((2, 3)), SCORES)
    with pytest.raises(ValueError, match="at least 2 labels"):
        label_softmax_loss([0], [[0.3]])
    with pytest.raises(ValueError, match="y_true has 3 labels but y_pred has 2 rows"):
        label_softmax_loss([0, 1, 2], SCORES)


def test_config_round_trips():
    loss = LabelSoftmaxLoss(temperature=0.07)
    config = loss.get_config()
    restored = LabelSoftmaxLoss.from_config(config)
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, LabelSoftmaxLoss) and again.temperature == 0.07


def test_trains_a_dict_output_model_and_reloads(tmp_path):
    rng = np.random.default_rng(0)
    inputs = keras.Input((5,), name="image")
    embedding = keras.layers.Dense(4, name="projection")(inputs)
    scores = keras.layers.Dense(3, use_bias=False, name="labels")(embedding)
    model = keras.Model(inputs, {"scores": scores, "embedding": embedding})
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss={"scores": LabelSoftmaxLoss(temperature=0.5)},
    )
    x = rng.normal(size=(16, 5)).astype(np.float32)
    y = {"scores": rng.integers(0, 3, size=(16,))}
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.loss["scores"], LabelSoftmaxLoss)
    assert loaded.loss["scores"].temperature == 0.5
    np.testing.assert_allclose(
        loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6
    )
