"""Regression baselines for DeViSE: pull the projected embedding onto the label vector."""

from __future__ import annotations

import keras
from keras import ops

# Keeps the per-row normalization finite for an all-zero row (its cosine is then 0).
_NORM_EPSILON = 1e-12


def _check_pair(y_true, y_pred):
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    if len(y_true.shape) != 2 or len(y_pred.shape) != 2:
        raise ValueError(
            "y_true (target label vectors) and y_pred (projections) must be (batch, dim), "
            f"got {tuple(y_true.shape)} and {tuple(y_pred.shape)}"
        )
    if None not in (y_true.shape[-1], y_pred.shape[-1]) and y_true.shape[-1] != y_pred.shape[-1]:
        raise ValueError(
            f"target vectors have dim {y_true.shape[-1]} but projections have dim "
            f"{y_pred.shape[-1]}"
        )
    return y_true, y_pred


def _unit_rows(x):
    squared = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared, _NORM_EPSILON))


def l2_embedding_loss(y_true, y_pred):
    """Per-example squared L2 distance ||y_pred - y_true||^2, shape (B,)."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return ops.sum(ops.square(y_pred - y_true), axis=-1)


def cosine_embedding_loss(y_true, y_pred):
    """Per-example 1 - cos(y_pred, y_true), each row normalized on its own, shape (B,)."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return 1.0 - ops.sum(_unit_rows(y_pred) * _unit_rows(y_true), axis=-1)


@keras.saving.register_keras_serializable(package="devise_keras")
class L2EmbeddingLoss(keras.losses.Loss):
    """Squared L2 distance between the projection and the true label's vector.

    The L2 regression baseline that DeViSE (Frome et al., NIPS 2013) compares its hinge
    rank loss against. `y_true` holds the target unit label vectors (B, D), `y_pred` the
    projected image embeddings (B, D); the batch mean (default reduction) of
    `||y_pred - y_true||^2`.

    Args:
        **kwargs: `keras.losses.Loss` arguments (`name`, `reduction`, `dtype`).

    Example:
    >>> float(L2EmbeddingLoss()([[1.0, 0.0]], [[0.0, 2.0]]))
    5.0
    """

    def __init__(self, name: str = "l2_embedding_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return l2_embedding_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="devise_keras")
class CosineEmbeddingLoss(keras.losses.Loss):
    """One minus the cosine between the projection and the true label's vector.

    A scale-free regression baseline for DeViSE (Frome et al., NIPS 2013): each row of
    `y_pred` and `y_true` (both (B, D)) is divided by its own L2 norm (an all-zero row
    gives cosine 0, not NaN), and the loss is the batch mean of `1 - cos`.

    Args:
        **kwargs: `keras.losses.Loss` arguments (`name`, `reduction`, `dtype`).

    Example:
    >>> float(CosineEmbeddingLoss()([[1.0, 0.0]], [[0.0, 2.0]]))
    1.0
    """

    def __init__(self, name: str = "cosine_embedding_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return cosine_embedding_loss(y_true, y_pred)
