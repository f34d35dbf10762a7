"""The DeViSE model, its softmax baseline, and the small CNN backbone.

DeViSE (Frome et al., "DeViSE: A Deep Visual-Semantic Embedding Model", NIPS 2013)
replaces the softmax layer of an image network by a linear projection into the
word-vector space and ranks labels by the dot product of the projected image with
each (unit) label vector.

    image (B, S, S, 3) in [0, 1] -> backbone [-> Dropout "feature_dropout"]
        -> Dense(D) "projection" [-> UnitNormalization "projection_normalization"]
        -> {"scores": LabelSimilarity -> (B, L), "embedding": (B, D)}

How to compile. Keras accepts a loss dict naming a subset of the outputs, but
(Keras 3.12, measured) metrics on a subset are SILENTLY DROPPED unless y holds an
entry for EVERY output: `CompileMetrics` pairs the sorted output names
("embedding", "scores") with the y entries present, so y = {"scores": ids} alone
evaluates no hit@k at all. The working pattern is to always give both targets
(`devise_targets(label_ids, label_vectors)`); the loss only reads its own key:

- Hinge rank loss (the paper's)::

      model.compile(
          optimizer=keras.optimizers.Adam(1e-3),
          loss={"scores": HingeRankLoss(margin=0.1)},
          metrics={"scores": [HitAtK(1), HitAtK(5)]},
      )
      model.fit(images, devise_targets(label_ids, label_vectors))
      # == {"scores": label_ids, "embedding": label_vectors[label_ids]}

- L2 or cosine regression onto the label vectors (the paper's weaker baseline)::

      model.compile(
          optimizer=keras.optimizers.Adam(1e-3),
          loss={"embedding": L2EmbeddingLoss()},        # or CosineEmbeddingLoss()
          metrics={"scores": [HitAtK(1), HitAtK(5)]},
      )
      model.fit(images, devise_targets(label_ids, label_vectors))

- Softmax cross-entropy over the label scores / a temperature (best with
  `normalize_projection=True`, scores are then cosines)::

      model.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss={"scores": LabelSoftmaxLoss(temperature=0.05)},
                    metrics={"scores": [HitAtK(1), HitAtK(5)]})

  `compile_devise_model` does any of these from the config's hyperparameters (and
  the optimizer: AdamW when `weight_decay` > 0). Compile again before fitting with a
  differently structured y (compiled metrics keep the structure of the first batch
  they saw).

- Softmax baseline (`build_softmax_model`, one output, so y = {"scores": ids} is
  complete)::

      model.compile(optimizer="adam",
                    loss={"scores": keras.losses.SparseCategoricalCrossentropy()},
                    metrics={"scores": [HitAtK(1), HitAtK(5)]})
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from devise_keras.config import DeviseConfig, TrainConfig
from devise_keras.embedding_losses import CosineEmbeddingLoss, L2EmbeddingLoss
from devise_keras.hinge_rank_loss import HingeRankLoss
from devise_keras.hit_at_k import HitAtK
from devise_keras.label_similarity import LabelSimilarity
from devise_keras.label_softmax_loss import LabelSoftmaxLoss

IMAGE_INPUT = "image"
SCORES = "scores"
EMBEDDING = "embedding"
DEVISE_LOSSES = ("rank", "l2", "cosine", "cross_entropy")
# Layer names after the backbone; `feature_cache.build_projection_head` finds them.
FEATURE_DROPOUT = "feature_dropout"
PROJECTION = "projection"
PROJECTION_NORMALIZATION = "projection_normalization"
LABEL_SIMILARITY = "label_similarity"


def _check_image_size(image_size) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    return image_size


def _features(backbone, image_size: int):
    if not callable(backbone):
        raise TypeError(f"backbone must be a Keras layer or model, got {type(backbone).__name__}")
    images = keras.Input(shape=(image_size, image_size, 3), name=IMAGE_INPUT, dtype="float32")
    features = backbone(images)
    if len(features.shape) != 2:
        raise ValueError(
            f"backbone must map images to (batch, features); it returns shape {features.shape}"
        )
    return images, features


def build_devise_model(
    backbone,
    label_vectors,
    *,
    image_size: int,
    projection_dim: int | None = None,
    normalize_projection: bool = False,
    projection_bias: bool = True,
    feature_dropout: float = 0.0,
    name: str = "devise",
) -> keras.Model:
    """Builds the DeViSE model: backbone -> linear projection -> label scores.

    Args:
        backbone: a `HubBackbone` or any Keras layer/model mapping float32 images
            (B, S, S, 3) in [0, 1] to features (B, F). Its `trainable` flag is kept.
        label_vectors: (L, D) label vectors (rows are unit-normalized by
            `LabelSimilarity`); swap them later with `set_label_vectors`.
        image_size: S.
        projection_dim: optional check: must equal D when given.
        normalize_projection: unit-normalize each projected row, so scores are cosines.
        projection_bias: give the projection a bias; False is the paper's purely
            linear map M (score = v^T M x).
        feature_dropout: rate in [0, 1) of a Dropout layer "feature_dropout" on the
            backbone features before the projection (active in training only); 0
            adds no layer.
        name: model name.

    Returns:
        A functional model with input "image" and outputs
        {"scores": (B, L), "embedding": (B, D)}.

    Example:
        >>> model = build_devise_model(build_small_cnn(8, filters=(4,), feature_dim=8),
        ...                            np.eye(3, 5), image_size=8)
        >>> outputs = model(np.zeros((2, 8, 8, 3)))
        >>> tuple(outputs["scores"].shape), tuple(outputs["embedding"].shape)
        ((2, 3), (2, 5))
    """
    image_size = _check_image_size(image_size)
    vectors = np.asarray(label_vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"label_vectors must be a (labels, dim) matrix, got shape {vectors.shape}")
    dim = int(vectors.shape[1])
    if projection_dim is not None and projection_dim != dim:
        raise ValueError(
            f"projection_dim={projection_dim} but the label vectors have {dim} dimensions; "
            "the projection must land in the label-vector space"
        )
    if (
        isinstance(feature_dropout, bool)
        or not isinstance(feature_dropout, int | float)
        or not 0 <= feature_dropout < 1
    ):
        raise ValueError(f"feature_dropout must be a number in [0, 1), got {feature_dropout!r}")
    images, features = _features(backbone, image_size)
    if feature_dropout > 0:
        features = keras.layers.Dropout(float(feature_dropout), name=FEATURE_DROPOUT)(features)
    projected = keras.layers.Dense(dim, use_bias=projection_bias, name=PROJECTION)(features)
    if normalize_projection:
        # Per row, not per batch (a known bug of a public DeViSE port).
        projected = keras.layers.UnitNormalization(axis=-1, name=PROJECTION_NORMALIZATION)(
            projected
        )
    scores = LabelSimilarity(vectors, name=LABEL_SIMILARITY)(projected)
    return keras.Model(images, {SCORES: scores, EMBEDDING: projected}, name=name)


def build_softmax_model(
    backbone, num_classes: int, *, image_size: int, name: str = "softmax"
) -> keras.Model:
    """Builds the softmax baseline: backbone -> Dense(num_classes, softmax).

    The paper's comparison model and the pre-training of the pipeline's own CNN
    (whose features DeViSE then projects), sharing the backbone layer.

    Args:
        backbone: Keras layer/model mapping images to features (B, F).
        num_classes: C.
        image_size: S.
        name: model name.

    Returns:
        A functional model with input "image" and outputs {"scores": (B, C)}
        (probabilities).

    Example:
        >>> model = build_softmax_model(build_small_cnn(8, filters=(4,), feature_dim=8), 3,
        ...                             image_size=8)
        >>> tuple(model(np.zeros((2, 8, 8, 3)))["scores"].shape)
        (2, 3)
    """
    image_size = _check_image_size(image_size)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    images, features = _features(backbone, image_size)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(
        features
    )
    return keras.Model(images, {SCORES: probabilities}, name=name)


def build_small_cnn(
    image_size: int,
    filters: Sequence[int] = (32, 64, 128),
    feature_dim: int = 256,
    name: str = "small_cnn",
) -> keras.Model:
    """A small CPU-friendly CNN: images (B, S, S, 3) -> features (B, feature_dim).

    Each stage is a 3x3 ReLU convolution and a 2x2 max-pool; global average pooling
    and a ReLU dense layer give the feature vector. No batch norm, so training and
    inference behave the same after `export_hub_feature_vector`.

    Args:
        image_size: S.
        filters: convolution widths, one stage each.
        feature_dim: width of the feature vector.
        name: model name.

    Example:
        >>> cnn = build_small_cnn(8, filters=(4,), feature_dim=6)
        >>> tuple(cnn(np.zeros((1, 8, 8, 3))).shape)
        (1, 6)
    """
    image_size = _check_image_size(image_size)
    filters = [int(f) for f in filters]
    if not filters or min(filters) < 1:
        raise ValueError(f"filters must be positive conv widths, got {filters!r}")
    if feature_dim < 1:
        raise ValueError(f"feature_dim must be positive, got {feature_dim!r}")
    images = keras.Input(shape=(image_size, image_size, 3), name=IMAGE_INPUT, dtype="float32")
    x = images
    for index, width in enumerate(filters):
        x = keras.layers.Conv2D(
            width, 3, padding="same", activation="relu", name=f"conv{index + 1}"
        )(x)
        if x.shape[1] >= 2 and x.shape[2] >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"pool{index + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    features = keras.layers.Dense(feature_dim, activation="relu", name="features")(x)
    return keras.Model(images, features, name=name)


def devise_targets(label_ids, label_vectors) -> dict:
    """The y dict for a DeViSE model: {"scores": ids, "embedding": label_vectors[ids]}.

    Both entries are needed whichever loss is used (see the module docstring: Keras
    drops metrics of a subset y). Works on NumPy arrays and inside `tf.data` maps.

    Args:
        label_ids: (B,) int label ids (rows of `label_vectors`).
        label_vectors: (L, D) unit label vectors, the model's label matrix.

    Example:
        >>> devise_targets(np.array([1]), np.eye(2))["embedding"].tolist()
        [[0.0, 1.0]]
    """
    if isinstance(label_ids, np.ndarray) and isinstance(label_vectors, np.ndarray):
        ids = label_ids.reshape(-1).astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(label_vectors)):
            raise ValueError(
                f"label ids must be in [0, {len(label_vectors)}), got min {ids.min()} "
                f"max {ids.max()}"
            )
        return {SCORES: ids, EMBEDDING: label_vectors[ids].astype(np.float32)}
    ids = tf.reshape(tf.cast(label_ids, tf.int64), [-1])
    return {SCORES: ids, EMBEDDING: tf.gather(tf.cast(label_vectors, tf.float32), ids)}


def make_optimizer(
    learning_rate: float, weight_decay: float = TrainConfig.weight_decay
) -> keras.optimizers.Optimizer:
    """The optimizer of every training stage: Adam, or AdamW when `weight_decay` > 0.

    AdamW decouples the decay from the gradient step (Loshchilov & Hutter, "Decoupled
    Weight Decay Regularization", ICLR 2019): each step also shrinks every trainable
    weight by `learning_rate * weight_decay * weight`.

    Example:
        >>> type(make_optimizer(1e-3, weight_decay=1e-4)).__name__
        'AdamW'
    """
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, int | float):
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if not 0 <= weight_decay < float("inf"):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if weight_decay > 0:
        return keras.optimizers.AdamW(learning_rate, weight_decay=float(weight_decay))
    return keras.optimizers.Adam(learning_rate)


def hit_at_k_metrics(k_values: Sequence[int], num_labels: int) -> list[HitAtK]:
    """One `HitAtK` per k below the label count (a k >= it is 1.0 for every model).

    Example:
        >>> [m.name for m in hit_at_k_metrics([1, 2, 5, 10], 4)]
        ['hit_at_1', 'hit_at_2']
    """
    return [HitAtK(int(k)) for k in k_values if k < num_labels]


def compile_devise_model(
    model: keras.Model,
    config: DeviseConfig | None = None,
    *,
    learning_rate: float | None = None,
) -> keras.Model:
    """Compiles a `build_devise_model` model (or its feature head) for a DeViSE loss.

    The one compile path of DeViSE models (the trainer's stages, the benchmarks and
    the tests). Everything comes from the config, whose dataclasses hold the defaults:
    `model.loss` ("rank": `HingeRankLoss` on "scores", the paper's, with
    `model.margin`, `negatives`, `num_negatives`; "l2" / "cosine": regression of
    "embedding" onto the label vector; "cross_entropy": `LabelSoftmaxLoss` on "scores"
    with `model.temperature`), the optimizer (`make_optimizer` with
    `train.weight_decay`), one `HitAtK` on "scores" per `eval.k_values` entry below the
    label count, and `train.seed` for the rank loss's random negatives.

    Args:
        model: outputs "scores" and "embedding" (its "label_similarity" layer gives the
            label count).
        config: a `DeviseConfig` (default: `DeviseConfig()`).
        learning_rate: overrides `train.learning_rate` (e.g. the fine-tuning stage's
            `train.finetune_learning_rate`).

    Returns:
        The model, compiled. Fit it with y = `devise_targets(ids, vectors)`.

    Example:
        >>> from devise_keras.config import ModelConfig
        >>> model = build_devise_model(build_small_cnn(8, filters=(4,), feature_dim=8),
        ...                            np.eye(3, 5), image_size=8)
        >>> config = DeviseConfig(model=ModelConfig(loss="cross_entropy"))
        >>> compile_devise_model(model, config).loss["scores"].name
        'label_softmax_loss'
    """
    config = DeviseConfig() if config is None else config
    m, t = config.model, config.train
    loss = m.loss
    if loss not in DEVISE_LOSSES:
        raise ValueError(
            f"loss must be one of {DEVISE_LOSSES} for a DeViSE model, got {loss!r} "
            "(the softmax baseline is build_softmax_model)"
        )
    if loss == "rank":
        losses = {
            SCORES: HingeRankLoss(
                margin=m.margin, negatives=m.negatives, num_negatives=m.num_negatives, seed=t.seed
            )
        }
    elif loss == "cross_entropy":
        losses = {SCORES: LabelSoftmaxLoss(temperature=m.temperature)}
    elif loss == "l2":
        losses = {EMBEDDING: L2EmbeddingLoss()}
    else:
        losses = {EMBEDDING: CosineEmbeddingLoss()}
    num_labels = model.get_layer(LABEL_SIMILARITY).num_labels
    metrics = {SCORES: hit_at_k_metrics(config.eval.k_values, num_labels)}
    model.compile(
        optimizer=make_optimizer(
            t.learning_rate if learning_rate is None else learning_rate, t.weight_decay
        ),
        loss=losses,
        metrics=metrics,
    )
    return model
