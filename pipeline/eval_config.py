"""The Evaluator's TFMA config: flat hit@k over the seen labels, overall and per class."""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from devise_keras import features
from devise_keras.config import DeviseConfig

HIT_AT_K_MODULE = "components.evaluator.hit_at_k_metric"


def _gate(lower_bound: float, max_regression: float) -> tfma.MetricThreshold:
    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound}),
        # "No worse than the last blessed model": applies once a baseline exists.
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_regression},
        ),
    )


def build_eval_config(config: DeviseConfig) -> tfma.EvalConfig:
    """TFMA config: flat hit@k over the seen labels, overall and per class, gated."""
    overall = tfma.SlicingSpec()
    bounds = {1: config.eval.min_hit_at_1, 5: config.eval.min_hit_at_5}
    metrics = [
        tfma.MetricConfig(class_name="ExampleCount"),
        # A model with any NaN/inf score is never blessed, whatever its hit@k.
        tfma.MetricConfig(
            class_name="NonFiniteScores",
            module=HIT_AT_K_MODULE,
            per_slice_thresholds=[
                tfma.PerSliceMetricThreshold(
                    slicing_specs=[overall],
                    threshold=tfma.MetricThreshold(
                        value_threshold=tfma.GenericValueThreshold(upper_bound={"value": 0.0})
                    ),
                )
            ],
        ),
    ]
    for k in config.eval.k_values:
        metric = tfma.MetricConfig(
            class_name="HitAtK", module=HIT_AT_K_MODULE, config=json.dumps({"k": k})
        )
        if k in bounds:
            # A plain threshold would apply to every per-class slice too: gate overall.
            metric.per_slice_thresholds.append(
                tfma.PerSliceMetricThreshold(
                    slicing_specs=[overall],
                    threshold=_gate(bounds[k], config.eval.max_regression),
                )
            )
        metrics.append(metric)
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                label_key=features.LABEL_ID_KEY,
                prediction_key="scores",
            )
        ],
        slicing_specs=[overall, tfma.SlicingSpec(feature_keys=[features.LABEL_TEXT_KEY])],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )
