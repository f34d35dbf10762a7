"""Flat hit@k as a TFMA metric, with the same pessimistic ties as `devise_keras.HitAtK`.

TFMA's own metric classes are tf-keras classes and treat ties optimistically
(`tf.math.in_top_k`); this Beam combiner ranks each example's true label among its
scores exactly as the Keras metric does, so the Evaluator's gate and the trainer's
logs report the same number.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

HIT_AT_K_NAME = "hit_at_{k}"


def rank_of_true_label(label: int, scores: np.ndarray) -> int:
    """1 + the number of other labels scoring at least as high (ties count against)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not 0 <= label < scores.shape[0]:
        raise ValueError(f"label id {label} is outside the {scores.shape[0]} scored labels")
    # The true label itself is counted by `>=`, which supplies the leading 1.
    return int(np.sum(scores >= scores[label]))


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


metric_types.register_metric(HitAtK)


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
            combiner=_HitAtKCombiner(key, k, eval_config, example_weighted),
        )
    ]


class _HitAtKCombiner(beam.CombineFn):
    def __init__(self, key, k, eval_config, example_weighted):
        self._key = key
        self._k = k
        self._eval_config = eval_config
        self._example_weighted = example_weighted

    def create_accumulator(self) -> list[float]:
        return [0.0, 0.0]  # weighted hits, weighted examples

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
            labels = np.asarray(label).reshape(-1)
            scores = np.asarray(prediction).reshape(len(labels), -1)
            weight = float(metric_util.safe_to_scalar(weight))
            for y, row in zip(labels, scores, strict=True):
                hit = rank_of_true_label(int(y), row) <= self._k
                accumulator[0] += weight * hit
                accumulator[1] += weight
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list[float]]) -> list[float]:
        total = [0.0, 0.0]
        for acc in accumulators:
            total[0] += acc[0]
            total[1] += acc[1]
        return total

    def extract_output(self, accumulator):
        hits, count = accumulator
        return {self._key: hits / count if count else float("nan")}
