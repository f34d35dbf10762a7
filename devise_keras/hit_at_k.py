"""Flat hit@k: is the true label among the k best-scored labels, ties counted against it."""

from __future__ import annotations

import numbers

import keras
from keras import ops

# The module, not the function: `import devise_keras.true_label_rank` first imports
# Keras, whose import registers this module while true_label_rank is half-initialised.
from devise_keras import true_label_rank as _rank


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    return int(k)


def hit_at_k(y_true, y_pred, k: int):
    """1.0 where the true label ranks in the top k of its row of scores, else 0.0.

    The rank is `devise_keras.true_label_rank.true_label_rank`: ties count against
    the true label (rank = 1 + count(j != y with s[j] >= s[y])), a NaN competitor ranks
    above it and a non-finite true score is a miss. A hit is rank <= k, so a label set
    with at most k labels is always a hit when the scores are finite.

    Args:
        y_true: true label ids, (B,) or (B, 1), int or float.
        y_pred: scores, (B, L).
        k: how many top labels count, >= 1.

    Returns:
        (B,) float32 of 0.0 / 1.0.

    Example:
    >>> scores = [[0.9, 0.5, 0.5], [0.2, 0.7, 0.1]]
    >>> hit_at_k([1, 1], scores, k=2).numpy().tolist()  # row 0: tie 0.5 = 0.5, rank 3
    [0.0, 1.0]
    """
    k = _check_k(k)
    return ops.cast(_rank.true_label_rank(y_true, y_pred) <= k, "float32")


@keras.saving.register_keras_serializable(package="devise_keras")
class HitAtK(keras.metrics.MeanMetricWrapper):
    """Mean flat hit@k, the headline metric of DeViSE (Frome et al., NIPS 2013).

    A thin wrapper over `hit_at_k`: ties count against the true label (rank =
    1 + number of other labels scoring at least as high), and k >= the number of
    labels gives 1.0 rather than an error, since a label set can be small.

    Args:
        k: how many top labels count, >= 1.
        name: metric name, `f"hit_at_{k}"` by default.
        **kwargs: `keras.metrics.Metric` arguments (`dtype`).

    Example:
    >>> metric = HitAtK(k=1)
    >>> metric.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    >>> float(metric.result())
    0.5
    """

    def __init__(self, k: int = 5, name: str | None = None, **kwargs):
        k = _check_k(k)
        super().__init__(fn=hit_at_k, name=name or f"hit_at_{k}", k=k, **kwargs)
        self.k = k

    def get_config(self):
        # Skip MeanMetricWrapper.get_config: `fn` is fixed by the class, only k varies.
        config = super(keras.metrics.MeanMetricWrapper, self).get_config()
        config["k"] = self.k
        return config
