"""Backbone features computed once, and the projection head that trains on them.

The paper's second step (Frome et al., 2013, section 3) trains only the linear
projection while the visual model is frozen. A frozen backbone gives the same features
for an image in every epoch, so running it per step repeats the most expensive part of
training (EfficientNet-Lite0 at 224 px: ~0.15 s per image on 2 CPU cores, against
microseconds for the 1280 x 50 projection). `compute_features` runs the backbone once
over a finite dataset (batched, with a progress bar), `build_projection_head` builds a
model features -> projection -> scores from the SAME layers as the full DeViSE model,
so training the head trains the full model.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from devise_keras.model import EMBEDDING, SCORES

FEATURES_INPUT = "features"
# The layers of `build_devise_model` after the backbone, in order (the middle one only
# when the projection is unit-normalized).
HEAD_LAYERS = ("projection", "projection_normalization", "label_similarity")
# The softmax baseline's layer after the backbone (`build_softmax_model`).
CLASSIFIER_LAYER = "classifier"


def feature_extractor(model: keras.Model, backbone: keras.layers.Layer) -> keras.Model:
    """The sub-model image -> backbone features of a `build_devise_model` model."""
    return keras.Model(model.inputs, backbone.output, name=f"{model.name}_features")


def compute_features(
    extractor: keras.Model,
    dataset: tf.data.Dataset,
    *,
    total: int | None = None,
    description: str = "features",
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Runs `extractor` once over a finite dataset of `(images, targets)` batches.

    Args:
        extractor: images -> (B, F) features, called in inference mode.
        dataset: finite (not repeated) batches, e.g. `input_pipeline.make_dataset`.
        total: number of batches, for the progress bar.
        description: progress-bar label.

    Returns:
        `(features (N, F) float32, targets)` with each target key concatenated in the
        dataset's order.

    Example:
        >>> images = keras.Input((2,))
        >>> extractor = keras.Model(images, keras.layers.Dense(3)(images))
        >>> data = tf.data.Dataset.from_tensor_slices(
        ...     (np.ones((5, 2), "float32"), {"scores": np.arange(5)})).batch(2)
        >>> feats, targets = compute_features(extractor, data)
        >>> feats.shape, targets["scores"].tolist()
        ((5, 3), [0, 1, 2, 3, 4])
    """
    chunks, target_chunks = [], {}
    with tqdm(total=total, desc=description, unit="batch", leave=False) as progress:
        for images, targets in dataset:
            chunks.append(np.asarray(extractor(images, training=False), dtype=np.float32))
            for key, value in targets.items():
                target_chunks.setdefault(key, []).append(np.asarray(value))
            progress.update(1)
    if not chunks:
        raise ValueError(f"no examples to compute {description} for: the dataset is empty")
    return np.concatenate(chunks), {k: np.concatenate(v) for k, v in target_chunks.items()}


def build_projection_head(model: keras.Model, name: str = "devise_head") -> keras.Model:
    """features (B, F) -> {"scores", "embedding"} through the layers of `model`.

    Args:
        model: a `build_devise_model` model; its projection, optional normalization and
            label-similarity layers are shared, not copied, so fitting the head changes
            the full model's outputs too.
        name: model name.

    Example:
        >>> from devise_keras.model import build_devise_model, build_small_cnn
        >>> full = build_devise_model(build_small_cnn(8, filters=(4,), feature_dim=6),
        ...                           np.eye(3, 5), image_size=8)
        >>> head = build_projection_head(full)
        >>> head.get_layer("projection") is full.get_layer("projection")
        True
    """
    names = {layer.name for layer in model.layers}
    projection = model.get_layer(HEAD_LAYERS[0])
    features = keras.Input(shape=(int(projection.kernel.shape[0]),), name=FEATURES_INPUT)
    projected = projection(features)
    if HEAD_LAYERS[1] in names:
        projected = model.get_layer(HEAD_LAYERS[1])(projected)
    scores = model.get_layer(HEAD_LAYERS[2])(projected)
    return keras.Model(features, {SCORES: scores, EMBEDDING: projected}, name=name)


def build_classifier_head(model: keras.Model, name: str = "softmax_head") -> keras.Model:
    """features (B, F) -> {"scores"} through the classifier of a `build_softmax_model`.

    The softmax baseline's counterpart of `build_projection_head`: its "classifier"
    layer is shared, so fitting the head on cached features trains `model` too.

    Example:
        >>> from devise_keras.model import build_small_cnn, build_softmax_model
        >>> full = build_softmax_model(build_small_cnn(8, filters=(4,), feature_dim=6), 3,
        ...                            image_size=8)
        >>> head = build_classifier_head(full)
        >>> tuple(head(np.zeros((2, 6)))["scores"].shape)
        (2, 3)
    """
    classifier = model.get_layer(CLASSIFIER_LAYER)
    features = keras.Input(shape=(int(classifier.kernel.shape[0]),), name=FEATURES_INPUT)
    return keras.Model(features, {SCORES: classifier(features)}, name=name)


def feature_dataset(
    features: np.ndarray,
    targets: dict[str, np.ndarray],
    *,
    batch_size: int,
    shuffle: bool = False,
    repeat: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of cached `(features, targets)`, reshuffled every epoch when `shuffle`."""
    ds = tf.data.Dataset.from_tensor_slices((features, targets))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
