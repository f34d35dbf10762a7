"""The TFMA hit@k metric ranks like the Keras HitAtK: ties count against the label."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow_model_analysis.metrics import metric_types

from components.evaluator.hit_at_k_metric import HitAtK, rank_of_true_label

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
