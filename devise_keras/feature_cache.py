"""Backbone features computed once, and the projection head that trains on them.

The paper's second step (Frome et al., 2013, section 3) trains only the linear
projection while the visual model is frozen. A frozen backbone gives the same features
for an image in every epoch, so running it per step repeats the most expensive part of
training (EfficientNet-Lite0 at 224 px: ~0.15 s per image on 2 CPU cores, against
microseconds for the 1280 x 50 projection). `compute_features` runs the backbone once
over a finite dataset (batched, with a progress bar), `build_projection_head` builds a
model features -> projection -> scores from the SAME layers as the full DeViSE model,
so training the head trains the full model. `augment_images` gives the cheap image
copies (mirror, centre crop) whose features can be cached alongside the originals.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from devise_keras.config import FEATURE_AUGMENTATIONS
from devise_keras.model import (
    EMBEDDING,
    FEATURE_DROPOUT,
    LABEL_SIMILARITY,
    PROJECTION,
    PROJECTION_NORMALIZATION,
    SCORES,
)

FEATURES_INPUT = "features"
# The layers of `build_devise_model` after the backbone, in order; the dropout only
# when `feature_dropout` > 0, the normalization only when the projection is normalized.
HEAD_LAYERS = (FEATURE_DROPOUT, PROJECTION, PROJECTION_NORMALIZATION, LABEL_SIMILARITY)
# The side of the "crop" augmentation's centre square, as a fraction of the image side.
CROP_FRACTION = 0.85
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
        model: a `build_devise_model` model; its `HEAD_LAYERS` (feature dropout and
            normalization when present, projection, label similarity) are shared, not
            copied, so fitting the head changes the full model's outputs too.
        name: model name.

    Example:
        >>> from devise_keras.model import build_devise_model, build_small_cnn
        >>> full = build_devise_model(build_small_cnn(8, filters=(4,), feature_dim=6),
        ...                           np.eye(3, 5), image_size=8, feature_dropout=0.5)
        >>> head = build_projection_head(full)
        >>> head.get_layer("projection") is full.get_layer("projection")
        True
        >>> head.get_layer("feature_dropout") is full.get_layer("feature_dropout")
        True
    """
    names = {layer.name for layer in model.layers}
    projection = model.get_layer(PROJECTION)
    features = keras.Input(shape=(int(projection.kernel.shape[0]),), name=FEATURES_INPUT)
    x = model.get_layer(FEATURE_DROPOUT)(features) if FEATURE_DROPOUT in names else features
    projected = projection(x)
    if PROJECTION_NORMALIZATION in names:
        projected = model.get_layer(PROJECTION_NORMALIZATION)(projected)
    scores = model.get_layer(LABEL_SIMILARITY)(projected)
    return keras.Model(features, {SCORES: scores, EMBEDDING: projected}, name=name)


def augment_images(images, kind: str) -> tf.Tensor:
    """A deterministic copy of each image for `train.feature_augmentation`.

    Args:
        images: (B, H, W, C) float images in [0, 1] (NumPy or tensor).
        kind: "flip" mirrors each image left-right (the columns reversed); "crop"
            takes the centre square of side `round(CROP_FRACTION * side)` and resizes
            it back to (H, W) bilinearly, so values stay in [0, 1].

    Returns:
        (B, H, W, C) float32, the same shape as `images`.

    Example:
        >>> image = np.arange(4, dtype="float32").reshape(1, 1, 4, 1) / 4
        >>> augment_images(image, "flip").numpy().ravel().tolist()
        [0.75, 0.5, 0.25, 0.0]
    """
    if kind not in FEATURE_AUGMENTATIONS:
        raise ValueError(f"kind must be one of {FEATURE_AUGMENTATIONS}, got {kind!r}")
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4:
        raise ValueError(
            f"images must be a (batch, height, width, channels) batch, got {images.shape}"
        )
    if kind == "flip":
        return tf.reverse(images, axis=[2])
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        raise ValueError(f"crop needs a static image size, got {images.shape}")
    crop_h = max(1, round(CROP_FRACTION * height))
    crop_w = max(1, round(CROP_FRACTION * width))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    cropped = images[:, top : top + crop_h, left : left + crop_w, :]
    return tf.image.resize(cropped, (height, width), method="bilinear")


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
