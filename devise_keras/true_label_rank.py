"""The rank of the true label among a row of scores: the one rule behind every hit@k.

The Keras `HitAtK` metric, the Evaluator's TFMA metric and the zero-shot metrics all
call `true_label_rank`, so a model's logged, gated and reported numbers agree. The rule
counts everything doubtful against the model (Frome et al., NIPS 2013, report flat
hit@k; a metric that rewards ties or NaN would reward a constant or diverged scorer):

- rank = 1 + the number of OTHER labels scoring at least as high (ties lose);
- a NaN competitor ranks above the true label;
- a non-finite true score (NaN, +inf or -inf) is a miss at every k: its rank is
  `MISS_RANK`, above any k a caller may ask for.
"""

from __future__ import annotations

import numpy as np
from keras import ops

# The rank of a non-finite true score: a miss however large k is.
MISS_RANK = int(np.iinfo(np.int32).max)


def true_label_rank(y_true, scores):
    """1-based rank of each row's true label, ties and non-finite scores against it.

    Args:
        y_true: (B,) or (B, 1) true label ids (column indices of `scores`).
        scores: (B, L) scores, higher is better; numpy arrays or backend tensors.

    Returns:
        (B,) int32 tensor of ranks in [1, L], or `MISS_RANK` for a non-finite true score.

    Example:
    >>> nan = float("nan")
    >>> scores = [[0.9, 0.5, 0.5], [0.2, 0.7, nan], [nan, 0.1, 0.3]]
    >>> np.asarray(true_label_rank([1, 1, 0], scores)).tolist() == [3, 2, MISS_RANK]
    True
    """
    scores = ops.convert_to_tensor(scores)
    if len(scores.shape) != 2:
        raise ValueError(f"scores must have shape (batch, labels), got {tuple(scores.shape)}")
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == 2 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    if len(y_true.shape) != 1:
        raise ValueError(f"y_true must be (batch,) or (batch, 1) ids, got {tuple(y_true.shape)}")
    labels = ops.cast(y_true, "int32")
    true_scores = ops.take_along_axis(scores, labels[:, None], axis=1)
    # `>=` counts the true label itself, which supplies the leading 1; NaN compares
    # False with everything, so NaN competitors are added explicitly.
    ahead = ops.logical_or(scores >= true_scores, ops.isnan(scores))
    rank = ops.sum(ops.cast(ahead, "int32"), axis=1)
    return ops.where(ops.isfinite(true_scores[:, 0]), rank, MISS_RANK)


def true_label_rank_numpy(y_true, scores) -> np.ndarray:
    """`true_label_rank` as an int64 numpy array, for the numpy callers (TFMA, zero-shot)."""
    return np.asarray(ops.convert_to_numpy(true_label_rank(y_true, scores)), dtype=np.int64)
