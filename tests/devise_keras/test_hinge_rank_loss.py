"""Tests for the DeViSE hinge rank loss on a hand-computed 3-label x 4-dim toy."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras.hinge_rank_loss import HingeRankLoss, hinge_rank_loss

# Three unit label vectors in 4-D and four hand-written image projections.
LABELS = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0]], np.float32)
PROJECTIONS = np.array(
    [[0.5, 0.45, 0.0, 0.3], [0.2, 0.9, 0.1, 0.0], [0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]],
    np.float32,
)
Y = np.array([0, 1, 2, 0])
# scores = PROJECTIONS @ LABELS.T:
#   row 0: [0.5, 0.45, 0.6*0.5 + 0.8*0.45 = 0.66]
#   row 1: [0.2, 0.9, 0.6*0.2 + 0.8*0.9 = 0.84]
#   row 2: [0, 0, 0]
#   row 3: [1.0, 0.0, 0.6]
SCORES = PROJECTIONS @ LABELS.T
# margin 0.1, terms max(0, 0.1 - s[y] + s[j]) for j != y:
#   row 0 (y=0): j=1: 0.1 - 0.5 + 0.45 = 0.05; j=2: 0.1 - 0.5 + 0.66 = 0.26 -> 0.31
#   row 1 (y=1): j=0: 0.1 - 0.9 + 0.2 < 0 -> 0; j=2: 0.1 - 0.9 + 0.84 = 0.04 -> 0.04
#   row 2 (y=2): j=0: 0.1; j=1: 0.1 -> 0.2
#   row 3 (y=0): j=1: 0.1 - 1 + 0 < 0; j=2: 0.1 - 1 + 0.6 < 0 -> 0
EXPECTED_ALL = [0.31, 0.04, 0.2, 0.0]


def test_scores_of_the_toy_are_the_hand_computed_ones():
    np.testing.assert_allclose(SCORES[:2], [[0.5, 0.45, 0.66], [0.2, 0.9, 0.84]], rtol=1e-6)


def test_all_negatives_match_hand_computed_losses():
    np.testing.assert_allclose(hinge_rank_loss(Y, SCORES), EXPECTED_ALL, atol=1e-6)


def test_keras_loss_is_the_batch_mean():
    # (0.31 + 0.04 + 0.2 + 0) / 4 = 0.1375
    np.testing.assert_allclose(float(HingeRankLoss()(Y, SCORES)), 0.1375, atol=1e-6)


def test_margin_changes_the_terms():
    # margin 0.5: row 3 (y=0): j=1: 0.5 - 1 + 0 < 0; j=2: 0.5 - 1 + 0.6 = 0.1 -> 0.1
    np.testing.assert_allclose(hinge_rank_loss(Y[3:], SCORES[3:], margin=0.5), [0.1], atol=1e-6)


def test_label_ids_as_column_of_floats_equal_int_vector():
    column = Y.astype(np.float32)[:, None]
    np.testing.assert_allclose(hinge_rank_loss(column, SCORES), EXPECTED_ALL, atol=1e-6)


def test_sampled_with_all_other_labels_equals_all():
    losses = hinge_rank_loss(Y, SCORES, negatives="sampled", num_negatives=2, seed=7)
    np.testing.assert_allclose(losses, EXPECTED_ALL, atol=1e-6)


def test_sampled_never_draws_the_true_label():
    # Row 2 has both negative terms 0.1; drawing y itself would add a 0 instead.
    scores = np.repeat(SCORES[2:3], 200, axis=0)
    losses = hinge_rank_loss(np.full(200, 2), scores, negatives="sampled", num_negatives=1, seed=3)
    np.testing.assert_allclose(losses, np.full(200, 0.1), atol=1e-6)


def test_sampled_single_negative_is_one_of_the_terms_uniformly():
    scores = np.repeat(SCORES[:1], 400, axis=0)
    losses = np.asarray(
        hinge_rank_loss(np.zeros(400), scores, negatives="sampled", num_negatives=1, seed=1)
    )
    is_first = np.isclose(losses, 0.05, atol=1e-6)
    assert np.all(is_first | np.isclose(losses, 0.26, atol=1e-6))
    assert 0.4 < is_first.mean() < 0.6


def test_truncated_with_order_independent_rows_matches_hand_values():
    # Row 1: one violator (0.04); row 2: both terms equal (0.1); row 3: no violator (0).
    losses = hinge_rank_loss(Y[1:], SCORES[1:], negatives="truncated", seed=5)
    np.testing.assert_allclose(losses, [0.04, 0.1, 0.0], atol=1e-6)


def test_truncated_returns_the_first_violator_in_a_random_order():
    # Row 0 has two violators (0.05 and 0.26): each comes first in half the orders.
    scores = np.repeat(SCORES[:1], 400, axis=0)
    losses = np.asarray(hinge_rank_loss(np.zeros(400), scores, negatives="truncated", seed=2))
    is_first = np.isclose(losses, 0.05, atol=1e-6)
    assert np.all(is_first | np.isclose(losses, 0.26, atol=1e-6))
    assert 0.4 < is_first.mean() < 0.6


def test_truncated_skips_non_violators_before_the_first_violator():
    # 4 labels, y=0, s = [1, 0.95, 0, 0]: only j=1 violates (0.1 - 1 + 0.95 = 0.05); a
    # non-violator visited first must not stop the search.
    scores = np.repeat([[1.0, 0.95, 0.0, 0.0]], 100, axis=0).astype(np.float32)
    losses = hinge_rank_loss(np.zeros(100), scores, negatives="truncated", seed=4)
    np.testing.assert_allclose(losses, np.full(100, 0.05), atol=1e-6)


def test_gradient_wrt_true_score_is_minus_the_number_of_violators():
    scores = tf.constant(SCORES)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        loss = tf.reduce_sum(hinge_rank_loss(Y, scores))
    grad = tape.gradient(loss, scores).numpy()
    # Violators per row: 2, 1, 2, 0; each violating j gets +1.
    np.testing.assert_allclose(grad[np.arange(4), Y], [-2.0, -1.0, -2.0, 0.0])
    np.testing.assert_allclose(grad[0], [-2.0, 1.0, 1.0])
    np.testing.assert_allclose(grad[1], [0.0, -1.0, 1.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"margin": 0.0}, "margin must be > 0"),
        ({"margin": -0.1}, "margin must be > 0"),
        ({"negatives": "hard"}, "negatives must be one of"),
        ({"negatives": "sampled", "num_negatives": 0}, "num_negatives must be a positive int"),
    ],
)
def test_bad_options_raise_in_function_and_class(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hinge_rank_loss(Y, SCORES, **kwargs)
    with pytest.raises(ValueError, match=message):
        HingeRankLoss(**kwargs)


def test_num_negatives_not_below_label_count_raises():
    with pytest.raises(ValueError, match=r"num_negatives \(3\) must be < the number of labels"):
        hinge_rank_loss(Y, SCORES, negatives="sampled", num_negatives=3)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="y_pred must be scores of shape"):
        hinge_rank_loss([0], [0.1, 0.2])
    with pytest.raises(ValueError, match="y_true must be label ids"):
        hinge_rank_loss(np.zeros((4, 3)), SCORES)


def test_config_round_trips():
    loss = HingeRankLoss(margin=0.2, negatives="sampled", num_negatives=2, seed=9)
    config = loss.get_config()
    restored = HingeRankLoss.from_config(config)
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, HingeRankLoss) and again.num_negatives == 2


@pytest.mark.parametrize("negatives", ["all", "sampled", "truncated"])
def test_trains_a_dict_output_model_in_graph_mode(negatives, tmp_path):
    rng = np.random.default_rng(0)
    inputs = keras.Input((5,), name="image")
    embedding = keras.layers.Dense(4, name="projection")(inputs)
    scores = keras.layers.Dense(3, use_bias=False, name="labels")(embedding)
    model = keras.Model(inputs, {"scores": scores, "embedding": embedding})
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss={"scores": HingeRankLoss(negatives=negatives, num_negatives=2, seed=1)},
    )
    x = rng.normal(size=(16, 5)).astype(np.float32)
    y = {"scores": rng.integers(0, 3, size=(16, 1))}
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    if negatives == "all":
        assert history.history["loss"][-1] < history.history["loss"][0]
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert isinstance(loaded.loss["scores"], HingeRankLoss)
        np.testing.assert_allclose(
            loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6
        )
