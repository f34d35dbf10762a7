"""pipeline.results reads what the run's own model scored, never its baseline's numbers."""

from __future__ import annotations

import tensorflow as tf
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from pipeline import results


def _write_metrics(directory, slices) -> None:
    """An Evaluator output as TFMA writes it: MetricsForSlice records in `metrics-*`."""
    with tf.io.TFRecordWriter(str(directory / "metrics-00000-of-00001.tfrecord")) as writer:
        for label, values in slices:
            metrics = metrics_for_slice_pb2.MetricsForSlice()
            if label is None:
                metrics.slice_key.SetInParent()  # the overall slice
            else:
                single = metrics.slice_key.single_slice_keys.add()
                single.column, single.bytes_value = "label_text", label.encode()
            for name, model, is_diff, value in values:
                entry = metrics.metric_keys_and_values.add()
                entry.key.name, entry.key.model_name, entry.key.is_diff = name, model, is_diff
                entry.value.double_value.value = value
            writer.write(metrics.SerializeToString())


def test_a_run_with_a_baseline_reports_the_candidates_numbers(tmp_path):
    # A second run: TFMA stores the candidate's values, the baseline's, and the diff.
    _write_metrics(
        tmp_path,
        [
            (
                None,
                [
                    ("hit_at_1", "candidate", False, 0.4),
                    ("hit_at_1", "baseline", False, 0.2),
                    ("hit_at_1", "candidate", True, 0.2),
                ],
            ),
            ("cat", [("hit_at_1", "baseline", False, 0.1), ("hit_at_1", "candidate", False, 0.5)]),
        ],
    )
    overall, per_class = results.evaluator_metrics(str(tmp_path))
    assert overall == {"hit_at_1": 0.4}
    assert per_class == {"cat": {"hit_at_1": 0.5}}


def test_a_first_run_without_model_names_is_read_as_is(tmp_path):
    _write_metrics(tmp_path, [(None, [("hit_at_1", "", False, 0.75)])])
    assert results.evaluator_metrics(str(tmp_path)) == ({"hit_at_1": 0.75}, {})
