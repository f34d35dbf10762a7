"""Softmax cross-entropy over the label scores with a temperature, as a pure function
and a Keras loss: an alternative to the DeViSE hinge rank loss."""

from __future__ import annotations

import math

import keras
from keras import ops

# A module, not a name: importing hinge_rank_loss first imports Keras, whose import hook
# registers this module while hinge_rank_loss is still half-initialised.
from devise_keras import hinge_rank_loss


def _check_temperature(temperature) -> None:
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 < temperature < math.inf
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def label_softmax_loss(y_true, y_pred, temperature: float = 0.05):
    """Per-example cross-entropy of softmax(s / T) against the true label y: -log p[y].

    `-log p[y] = -s[y] / T + log sum_j exp(s[j] / T)`, computed with a stable
    log-sum-exp. Its gradient with respect to the scores is `(softmax(s / T) - onehot(y))
    / T`: every label pushes, weighted by how close it scores, where the hinge rank loss
    only counts the labels within its margin.

    Args:
        y_true: true label ids, shape (B,) or (B, 1), int or float.
        y_pred: scores, shape (B, L), e.g. the cosines of `LabelSimilarity` after a
            unit-normalized projection.
        temperature: T > 0. Cosines lie in [-1, 1], so a small T (0.05) lets the
            softmax become confident; with unnormalized scores T rescales them.

    Returns:
        (B,) float32 losses.
    """
    _check_temperature(temperature)
    labels, scores = hinge_rank_loss.label_ids_and_scores(y_true, y_pred, "a softmax over labels")
    logits = scores / temperature
    true_logits = ops.squeeze(ops.take_along_axis(logits, labels[:, None], axis=1), axis=1)
    return ops.logsumexp(logits, axis=1) - true_logits


@keras.saving.register_keras_serializable(package="devise_keras")
class LabelSoftmaxLoss(keras.losses.Loss):
    """Softmax cross-entropy over the label-vector scores divided by a temperature.

    For an example with true label `y` and scores `s` (one per label vector, from
    `LabelSimilarity`), the loss is `-log softmax(s / T)[y]`; see `label_softmax_loss`.
    This is the normalized-softmax form of later visual-semantic embedding work: the
    class weights are fixed unit label vectors and the logits are cosines over a
    temperature (Zhai & Wu, "Classification is a Strong Baseline for Deep Metric
    Learning", BMVC 2019, T = 0.05; CLIP, Radford et al., ICML 2021, with a learned T).
    With the label vectors as fixed weights the model still ranks any label set by
    similarity, as DeViSE (Frome et al., NIPS 2013) does with its hinge rank loss.
    Reduced with `sum_over_batch_size` by default, i.e. the batch mean.

    Args:
        temperature: T > 0, finite (default 0.05, for cosine scores).
        **kwargs: `keras.losses.Loss` arguments (`name`, `reduction`, `dtype`).

    Example:
    >>> loss = LabelSoftmaxLoss(temperature=0.1)
    >>> round(float(loss([0], [[0.5, 0.4, 0.1]])), 4)  # log(1 + e^-1 + e^-4)
    0.3266
    """

    def __init__(self, temperature: float = 0.05, name: str = "label_softmax_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        _check_temperature(temperature)
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        return label_softmax_loss(y_true, y_pred, temperature=self.temperature)

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config
