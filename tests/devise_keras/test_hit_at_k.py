"""Tests for hit@k with pessimistic ties, and the HitAtK metric."""

import json

import keras
import numpy as np
import pytest

from devise_keras.hinge_rank_loss import HingeRankLoss
from devise_keras.hit_at_k import HitAtK, hit_at_k

SCORES = np.array(
    [
        [0.9, 0.5, 0.5, 0.1],  # y=1: 0.9 and the tied 0.5 are >= 0.5 -> rank 3
        [0.2, 0.7, 0.1, 0.3],  # y=1: best -> rank 1
        [0.4, 0.4, 0.4, 0.4],  # y=3: all tied -> rank 4
        [0.1, 0.2, 0.3, 0.0],  # y=0: 0.2 and 0.3 are higher -> rank 3
    ],
    np.float32,
)
Y = np.array([1, 1, 3, 0])


@pytest.mark.parametrize(
    "k, expected",
    [
        (1, [0, 1, 0, 0]),
        (2, [0, 1, 0, 0]),
        (3, [1, 1, 0, 1]),
        (4, [1, 1, 1, 1]),
        (10, [1, 1, 1, 1]),  # k >= number of labels: always a hit
    ],
)
def test_hit_at_k_matches_hand_ranks_with_pessimistic_ties(k, expected):
    np.testing.assert_array_equal(hit_at_k(Y, SCORES, k), np.array(expected, np.float32))


def test_label_ids_as_float_column_give_the_same_hits():
    np.testing.assert_array_equal(
        hit_at_k(Y.astype(np.float32)[:, None], SCORES, 3), hit_at_k(Y, SCORES, 3)
    )


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_k_below_one_or_not_int_raises(k):
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        hit_at_k(Y, SCORES, k)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        HitAtK(k)


def test_metric_averages_hits_and_is_named_after_k():
    metric = HitAtK(k=3)
    assert metric.name == "hit_at_3"
    metric.update_state(Y, SCORES)
    # hits [1, 1, 0, 1] -> 0.75
    assert float(metric.result()) == 0.75


def test_metric_config_round_trips_and_deserialized_metric_gives_same_result():
    metric = HitAtK(k=2, name="top2")
    config = metric.get_config()
    restored = HitAtK.from_config(config)
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    again = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(again, HitAtK) and again.k == 2 and again.name == "top2"
    again.update_state(Y, SCORES)
    assert float(again.result()) == 0.25


def test_metric_works_on_the_scores_output_of_a_dict_model():
    inputs = keras.Input((4,), name="image")
    scores = keras.layers.Identity(name="scores_layer")(inputs)
    embedding = keras.layers.Dense(2, name="projection")(inputs)
    model = keras.Model(inputs, {"scores": scores, "embedding": embedding})
    model.compile(
        loss={"scores": HingeRankLoss()},
        metrics={"scores": [HitAtK(1), HitAtK(3)]},
    )
    # Keras 3.12 pairs metrics with outputs by position among the targets given, so a
    # target for every output is needed (the embedding target has no loss and is unused).
    targets = {"scores": Y, "embedding": np.zeros((4, 2), np.float32)}
    result = model.evaluate(SCORES, targets, batch_size=2, verbose=0, return_dict=True)
    # hit@1 hits [0, 1, 0, 0] -> 0.25; hit@3 hits [1, 1, 0, 1] -> 0.75
    assert result["scores_hit_at_1"] == pytest.approx(0.25)
    assert result["scores_hit_at_3"] == pytest.approx(0.75)
