"""The Evaluator's TFMA config: the hit@k gate and the refusal of non-finite scores."""

from __future__ import annotations

import json

from devise_keras.config import DeviseConfig, EvalConfig
from pipeline.eval_config import HIT_AT_K_MODULE, build_eval_config


def _metrics(config):
    (spec,) = build_eval_config(config).metrics_specs
    return {m.class_name + m.config: m for m in spec.metrics}


def test_non_finite_scores_gate_the_overall_slice_at_zero():
    metrics = _metrics(DeviseConfig())
    gate = metrics["NonFiniteScores"]
    assert gate.module == HIT_AT_K_MODULE
    (threshold,) = gate.per_slice_thresholds
    assert threshold.threshold.value_threshold.upper_bound.value == 0.0
    assert not threshold.slicing_specs[0].feature_keys  # the overall slice only


def test_hit_at_k_gates_carry_the_configured_bounds():
    config = DeviseConfig(eval=EvalConfig(min_hit_at_1=0.4, min_hit_at_5=0.8, max_regression=0.02))
    metrics = _metrics(config)
    for k, bound in ((1, 0.4), (5, 0.8)):
        (threshold,) = metrics["HitAtK" + json.dumps({"k": k})].per_slice_thresholds
        assert threshold.threshold.value_threshold.lower_bound.value == bound
        assert threshold.threshold.change_threshold.absolute.value == -0.02
    assert not metrics["HitAtK" + json.dumps({"k": 2})].per_slice_thresholds
