"""Flat hit@k as a TFMA metric, with the same rank rule as `devise_keras.HitAtK`.

TFMA's own metric classes are tf-keras classes and treat ties optimistically
(`tf.math.in_top_k`); this Beam combiner ranks each example's true label among its
scores with `devise_keras.true_label_rank` (ties and non-finite scores count against
the model), exactly as the Keras metric does, so the Evaluator's gate and the
trainer's logs report the same number. `NonFiniteScores` lets the gate refuse a model
whose scores are NaN or infinite at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

from devise_keras.true_label_rank import true_label_rank_numpy

HIT_AT_K_NAME = "hit_at_{k}"
NON_FINITE_SCORES_NAME = "non_finite_scores"


def rank_of_true_label(label: int, scores: np.ndarray) -> int:
    """`devise_keras.true_label_rank` for one example: ties and non-finite scores lose."""
    scores = np.asarray(scores).reshape(1, -1)
    if not 0 <= label < scores.shape[1]:
        raise ValueError(f"label id {label} is outside the {scores.shape[1]} scored labels")
    return int(true_label_rank_numpy([label], scores)[0])


class _HitsAtK:
    """Per example: does the true label rank within the top k?"""

    def __init__(self, k: int):
        self.k = k

    def __call__(self, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
        outside = labels[(labels < 0) | (labels >= scores.shape[1])]
        if outside.size:
            raise ValueError(
                f"label id {int(outside[0])} is outside the {scores.shape[1]} scored labels"
            )
        return true_label_rank_numpy(labels, scores) <= self.k


def _has_non_finite_score(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return ~np.isfinite(scores).all(axis=1)


class HitAtK(metric_types.Metric):
    """TFMA metric: fraction of examples whose true label ranks within the top k.

    Args:
        k: the cut-off.
        name: metric name (default `hit_at_<k>`).
    """

    def __init__(self, k: int = 1, name: str | None = None):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        super().__init__(
            metric_util.merge_per_key_computations(_hit_at_k_computations),
            k=k,
            name=name or HIT_AT_K_NAME.format(k=k),
        )


class NonFiniteScores(metric_types.Metric):
    """TFMA metric: fraction of examples with a NaN or infinite score for any label.

    The Evaluator gates on it (upper bound 0), so a diverged model is never blessed
    even where its hit@k would pass.

    Args:
        name: metric name (default `non_finite_scores`).
    """

    def __init__(self, name: str = NON_FINITE_SCORES_NAME):
        super().__init__(
            metric_util.merge_per_key_computations(_non_finite_scores_computations),
            name=name,
        )


metric_types.register_metric(HitAtK)
metric_types.register_metric(NonFiniteScores)


def _hit_at_k_computations(
    name: str,
    k: int,
    eval_config=None,
    model_name: str = "",
    output_name: str = "",
    sub_key=None,
    aggregation_type=None,
    class_weights=None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    return _fraction_computations(
        name, _HitsAtK(k), eval_config, model_name, output_name, sub_key, example_weighted
    )


def _non_finite_scores_computations(
    name: str,
    eval_config=None,
    model_name: str = "",
    output_name: str = "",
    sub_key=None,
    aggregation_type=None,
    class_weights=None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    return _fraction_computations(
        name,
        _has_non_finite_score,
        eval_config,
        model_name,
        output_name,
        sub_key,
        example_weighted,
    )


def _fraction_computations(
    name: str,
    example_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    eval_config,
    model_name: str,
    output_name: str,
    sub_key,
    example_weighted: bool,
) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(
        name=name,
        model_name=model_name,
        output_name=output_name,
        sub_key=sub_key,
        example_weighted=example_weighted,
    )
    return [
        metric_types.MetricComputation(
            keys=[key],
            preprocessors=None,
            combiner=_ExampleFractionCombiner(key, example_fn, eval_config, example_weighted),
        )
    ]


class _ExampleFractionCombiner(beam.CombineFn):
    """Weighted fraction of examples for which `example_fn(labels, scores)` is True."""

    def __init__(self, key, example_fn, eval_config, example_weighted):
        self._key = key
        self._example_fn = example_fn
        self._eval_config = eval_config
        self._example_weighted = example_weighted

    def create_accumulator(self) -> list[float]:
        return [0.0, 0.0]  # weighted positives, weighted examples

    def add_input(self, accumulator, element):
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._key.model_name,
            output_name=self._key.output_name,
            example_weighted=self._example_weighted,
            flatten=False,
            squeeze=False,
        ):
            labels = np.asarray(label).reshape(-1).astype(np.int64)
            scores = np.asarray(prediction, dtype=np.float64).reshape(len(labels), -1)
            weight = float(metric_util.safe_to_scalar(weight))
            accumulator[0] += weight * float(np.sum(self._example_fn(labels, scores)))
            accumulator[1] += weight * len(labels)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list[float]]) -> list[float]:
        total = [0.0, 0.0]
        for acc in accumulators:
            total[0] += acc[0]
            total[1] += acc[1]
        return total

    def extract_output(self, accumulator):
        positives, count = accumulator
        return {self._key: positives / count if count else float("nan")}
