"""The DeViSE hinge rank loss over label scores, as a pure function and a Keras loss."""

from __future__ import annotations

import keras
from keras import ops

NEGATIVE_MODES = ("all", "sampled", "truncated")


def _check_options(margin, negatives, num_negatives) -> None:
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    if negatives not in NEGATIVE_MODES:
        raise ValueError(f"negatives must be one of {NEGATIVE_MODES}, got {negatives!r}")
    if negatives == "sampled" and (
        isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 1
    ):
        raise ValueError(f"num_negatives must be a positive int, got {num_negatives!r}")


def _label_ids(y_true):
    """(B,) int32 label ids from (B,) or (B, 1) ints or floats."""
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == 2 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    if len(y_true.shape) != 1:
        raise ValueError(
            f"y_true must be label ids of shape (batch,) or (batch, 1), got {tuple(y_true.shape)}"
        )
    return ops.cast(y_true, "int32")


def label_ids_and_scores(y_true, y_pred, what: str):
    """(B,) int32 label ids and (B, L) float32 scores, checked for a loss over labels.

    `what` names the loss in the errors ("a rank loss needs at least 2 labels").
    """
    labels = _label_ids(y_true)
    scores = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    if len(scores.shape) != 2:
        raise ValueError(f"y_pred must be scores of shape (batch, labels), got {scores.shape}")
    num_labels = scores.shape[-1]
    if num_labels is not None and num_labels < 2:
        raise ValueError(f"{what} needs at least 2 labels, got {num_labels}")
    if labels.shape[0] is not None and scores.shape[0] is not None:
        if labels.shape[0] != scores.shape[0]:
            raise ValueError(
                f"y_true has {labels.shape[0]} labels but y_pred has {scores.shape[0]} rows"
            )
    return labels, scores


def hinge_rank_loss(
    y_true,
    y_pred,
    margin: float = 0.1,
    negatives: str = "all",
    num_negatives: int = 5,
    seed=None,
):
    """Per-example DeViSE hinge rank loss: sum over j != y of max(0, margin - s[y] + s[j]).

    Args:
        y_true: true label ids, shape (B,) or (B, 1), int or float.
        y_pred: scores, shape (B, L), e.g. the output of `LabelSimilarity`.
        margin: the hinge margin (> 0); the paper uses 0.1.
        negatives: which j != y contribute:
            - "all": every other label (vectorized; the default).
            - "sampled": `num_negatives` labels drawn uniformly without replacement from
              the labels != y, per example; the loss is the plain SUM of their terms
              (not rescaled by (L-1)/num_negatives), so with `num_negatives = L - 1` it
              equals "all".
            - "truncated": the paper's shortcut: visit the j != y in a random order and
              stop at the first one that violates the margin; the loss is that single
              term (0 when no label violates).
        num_negatives: negatives per example for "sampled"; must be < L.
        seed: int, None or a `keras.random.SeedGenerator` for "sampled"/"truncated".
            Inside a traced function pass a SeedGenerator (as `HingeRankLoss` does): a
            fixed int seed would draw the same negatives at every step.

    Returns:
        (B,) float32 losses.
    """
    _check_options(margin, negatives, num_negatives)
    labels, scores = label_ids_and_scores(y_true, y_pred, "a rank loss")
    num_labels = scores.shape[-1]
    if negatives == "sampled" and num_labels is not None and num_negatives >= num_labels:
        raise ValueError(
            f"num_negatives ({num_negatives}) must be < the number of labels ({num_labels})"
        )

    true_scores = ops.take_along_axis(scores, labels[:, None], axis=1)
    is_true = ops.cast(ops.one_hot(labels, ops.shape(scores)[1]), "bool")
    terms = ops.relu(margin - true_scores + scores)
    terms = ops.where(is_true, ops.zeros_like(terms), terms)

    if negatives == "all":
        return ops.sum(terms, axis=1)

    # Random keys pick a uniformly random order of the labels per example; the true label
    # gets the worst key so it is never picked (sampled) and comes last (truncated).
    keys = keras.random.uniform(ops.shape(scores), seed=seed)
    if negatives == "sampled":
        keys = ops.where(is_true, -ops.ones_like(keys), keys)
        _, picked = ops.top_k(keys, k=num_negatives)
        return ops.sum(ops.take_along_axis(terms, picked, axis=1), axis=1)

    keys = ops.where(is_true, 2.0 * ops.ones_like(keys), keys)
    order = ops.argsort(keys, axis=1)
    ordered_terms = ops.take_along_axis(terms, order, axis=1)
    # argmax returns the first maximum: the first violator. With no violator every term is
    # 0 and position 0 holds a 0, which is the right loss.
    first = ops.argmax(ops.cast(ordered_terms > 0, "int32"), axis=1)
    first = ops.cast(first, "int32")
    return ops.squeeze(ops.take_along_axis(ordered_terms, first[:, None], axis=1), axis=1)


@keras.saving.register_keras_serializable(package="devise_keras")
class HingeRankLoss(keras.losses.Loss):
    """The hinge rank loss of DeViSE (Frome et al., NIPS 2013), a thin wrapper.

    For an example with true label `y` and scores `s` (one per label, e.g. from
    `LabelSimilarity`), the loss is `sum_{j != y} max(0, margin - s[y] + s[j])`;
    see `hinge_rank_loss` for the "sampled" and the paper's "truncated" variants.
    Reduced with `sum_over_batch_size` by default, i.e. the batch mean.

    Args:
        margin: hinge margin, > 0 (paper: 0.1).
        negatives: "all" (default), "sampled" or "truncated".
        num_negatives: negatives per example when `negatives="sampled"`.
        seed: int or None; seeds the loss's own `keras.random.SeedGenerator`, so the random
            negatives differ from step to step but are reproducible.
        **kwargs: `keras.losses.Loss` arguments (`name`, `reduction`, `dtype`).

    Example:
    >>> loss = HingeRankLoss(margin=0.1)
    >>> round(float(loss([0], [[0.5, 0.45, 0.2]])), 4)
    0.05
    """

    def __init__(
        self,
        margin: float = 0.1,
        negatives: str = "all",
        num_negatives: int = 5,
        seed: int | None = None,
        name: str = "hinge_rank_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        _check_options(margin, negatives, num_negatives)
        self.margin = float(margin)
        self.negatives = negatives
        self.num_negatives = int(num_negatives)
        self.seed = seed
        self.seed_generator = (
            keras.random.SeedGenerator(seed) if negatives in ("sampled", "truncated") else None
        )

    def call(self, y_true, y_pred):
        return hinge_rank_loss(
            y_true,
            y_pred,
            margin=self.margin,
            negatives=self.negatives,
            num_negatives=self.num_negatives,
            seed=self.seed_generator,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "margin": self.margin,
                "negatives": self.negatives,
                "num_negatives": self.num_negatives,
                "seed": self.seed,
            }
        )
        return config
