"""Exports a Keras 3 image model as a TF-Hub "image feature vector" SavedModel.

The pipeline pre-trains its own small CNN with softmax when no TF-Hub handle is
given; exporting that CNN in the TF-Hub reusable-SavedModel convention lets the
DeViSE trainer load it through the same `HubBackbone` path as any published
TF-Hub handle (Frome et al., 2013, start DeViSE from a pre-trained visual model).

The convention (https://www.tensorflow.org/hub/reusable_saved_models):
`obj(images, training=False)` maps float32 images (batch, size, size, 3) in [0, 1]
to features (batch, F), traced for `training` True and False, and `obj.variables`,
`obj.trainable_variables`, `obj.regularization_losses` list its state.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from devise_keras import storage

FEATURES_KEY = "features"
# Height and width of the zero batch that checks a size-agnostic model (image_size=None).
_PROBE_SIZE = 32


def export_hub_feature_vector(model, export_dir: str, image_size: int | None) -> str:
    """Writes `model` (images -> features) as a TF-Hub reusable SavedModel.

    Args:
        model: a built Keras 3 layer or model mapping float32 images
            (batch, image_size, image_size, 3) in [0, 1] to features (batch, F).
        export_dir: directory to write (created; must not hold a SavedModel yet).
        image_size: square image size the model expects, or None for a fully
            convolutional model that takes any (height, width), as many TF-Hub
            feature vectors do (traced with unknown height and width).

    Returns:
        `export_dir`, loadable with `tf.saved_model.load`, `tensorflow_hub.load`
        and `devise_keras.hub_backbone.HubBackbone`.

    Example:
        >>> cnn = build_small_cnn(32)                              # doctest: +SKIP
        >>> export_hub_feature_vector(cnn, "/tmp/cnn_hub", 32)     # doctest: +SKIP
        >>> tensorflow_hub.load("/tmp/cnn_hub")(images).shape      # doctest: +SKIP
        TensorShape([2, 256])
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model must be a Keras 3 layer or model, got {type(model).__name__}")
    if image_size is not None and (not isinstance(image_size, int) or image_size <= 0):
        raise ValueError(f"image_size must be a positive int or None, got {image_size!r}")
    if tf.saved_model.contains_saved_model(export_dir):
        raise FileExistsError(f"{export_dir} already holds a SavedModel; choose a new directory")
    spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="images")
    probe = image_size or _PROBE_SIZE
    if not model.built:
        model(tf.zeros([1, probe, probe, 3]))
    features = model(tf.zeros([1, probe, probe, 3]), training=False)
    if len(features.shape) != 2:
        raise ValueError(
            f"model must map images to a (batch, features) matrix, got output shape "
            f"{tuple(features.shape)}"
        )

    module = tf.__internal__.tracking.AutoTrackable()
    # Keras 3 variables are trackable; listing them here is what the TF-Hub
    # convention asks for and also what makes tf.saved_model.save keep them.
    module.variables = list(model.variables)
    module.trainable_variables = list(model.trainable_variables)
    module.regularization_losses = []

    @tf.function
    def call(images, training=False):
        return model(images, training=training)

    # Both traces are needed: TF-Hub consumers pass training as a Python bool.
    call.get_concrete_function(spec, training=True)
    call.get_concrete_function(spec, training=False)
    module.__call__ = call

    @tf.function(input_signature=[spec])
    def serving_default(images):
        return {FEATURES_KEY: model(images, training=False)}

    storage.makedirs(export_dir)
    tf.saved_model.save(module, export_dir, signatures={"serving_default": serving_default})
    return export_dir
