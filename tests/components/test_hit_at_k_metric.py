"""The TFMA hit@k metric ranks like the Keras HitAtK: ties count against the label."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow_model_analysis.metrics import metric_types

from components.evaluator.hit_at_k_metric import HitAtK, NonFiniteScores, rank_of_true_label

# Four examples over four labels (rows: scores; true labels below).
SCORES = np.array(
    [
        [0.9, 0.1, 0.3, 0.2],  # y=0 is the top score: rank 1
        [0.5, 0.5, 0.1, 0.0],  # y=1 ties with label 0: pessimistic rank 2
        [0.1, 0.2, 0.3, 0.4],  # y=0 is the lowest: rank 4
        [0.3, 0.8, 0.3, 0.3],  # y=2 ties with labels 0 and 3, below 1: rank 4
    ]
)
LABELS = [0, 1, 0, 2]


def test_rank_of_true_label_counts_ties_against_it():
    assert [rank_of_true_label(y, s) for y, s in zip(LABELS, SCORES, strict=True)] == [1, 2, 4, 4]


def test_rank_rejects_label_outside_scores():
    with pytest.raises(ValueError, match="label id 4 is outside the 4 scored labels"):
        rank_of_true_label(4, SCORES[0])


def _combine(k: int) -> float:
    (computation,) = HitAtK(k).computations()
    combiner = computation.combiner
    accumulators = []
    for y, scores in zip(LABELS, SCORES, strict=True):
        acc = combiner.create_accumulator()
        element = metric_types.StandardMetricInputs(
            labels=np.array([y]), predictions=scores, example_weights=np.array([1.0])
        )
        accumulators.append(combiner.add_input(acc, element))
    merged = combiner.merge_accumulators(accumulators)
    (value,) = combiner.extract_output(merged).values()
    return value


@pytest.mark.parametrize("k, expected", [(1, 1 / 4), (2, 2 / 4), (3, 2 / 4), (4, 4 / 4)])
def test_combiner_matches_hand_count(k, expected):
    assert _combine(k) == pytest.approx(expected)


def test_metric_name_and_bad_k():
    assert HitAtK(5).name == "hit_at_5"
    with pytest.raises(ValueError, match="k must be >= 1"):
        HitAtK(0)


def _combine_metric(metric, labels, scores) -> float:
    (computation,) = metric.computations()
    combiner = computation.combiner
    acc = combiner.create_accumulator()
    for y, row in zip(labels, scores, strict=True):
        element = metric_types.StandardMetricInputs(
            labels=np.array([y]), predictions=np.asarray(row), example_weights=np.array([1.0])
        )
        acc = combiner.add_input(acc, element)
    (value,) = combiner.extract_output(combiner.merge_accumulators([acc])).values()
    return value


def test_a_nan_true_score_is_a_miss_and_a_nan_competitor_ranks_above():
    nan = np.nan
    scores = [[nan, 0.1, 0.2], [0.5, nan, 0.1], [0.5, 0.4, 0.1]]
    # rows: y=0 NaN -> miss; y=0 with a NaN competitor -> rank 2; y=0 best -> rank 1
    assert _combine_metric(HitAtK(1), [0, 0, 0], scores) == pytest.approx(1 / 3)
    assert _combine_metric(HitAtK(2), [0, 0, 0], scores) == pytest.approx(2 / 3)
    assert _combine_metric(HitAtK(50), [0, 0, 0], scores) == pytest.approx(2 / 3)


def test_non_finite_scores_counts_examples_with_any_nan_or_inf():
    scores = [[np.nan, 0.1], [0.5, np.inf], [0.5, 0.4], [0.1, 0.2]]
    assert NonFiniteScores().name == "non_finite_scores"
    assert _combine_metric(NonFiniteScores(), [0, 0, 1, 1], scores) == pytest.approx(0.5)
