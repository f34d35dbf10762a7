"""Scores of projected image embeddings against a fixed matrix of unit label vectors."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from devise_keras.label_embeddings import unit_normalize

# Guards the per-row input normalization against all-zero rows (they score 0 everywhere).
_NORM_EPSILON = 1e-12


def _check_label_vectors(label_vectors) -> np.ndarray:
    """Returns the label matrix as float32 unit rows; raises a ValueError naming the problem."""
    if isinstance(label_vectors, keras.Variable):
        label_vectors = ops.convert_to_numpy(label_vectors)
    try:
        vectors = np.array(label_vectors, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"label_vectors must be a numeric (num_labels, dim) matrix: {error}"
        ) from error
    if vectors.ndim == 2 and 0 in vectors.shape:
        raise ValueError(f"label_vectors is empty: shape {vectors.shape}")
    return unit_normalize(vectors, "label_vectors")


@keras.saving.register_keras_serializable(package="devise_keras")
class LabelSimilarity(keras.layers.Layer):
    """Dot-product scores of embeddings against fixed unit-norm label vectors.

    The last layer of DeViSE (Frome et al., "DeViSE: A Deep Visual-Semantic Embedding
    Model", NIPS 2013): the similarity of the projected image embedding `x` with every
    label vector `v_j` is `x . v_j`, and labels are ranked by it. The label matrix is a
    non-trainable weight whose rows are scaled to unit L2 norm when set, so swapping it
    (`set_label_vectors`) points a trained model at other labels - unseen classes or a
    whole vocabulary - without retraining.

    Input `(batch, dim)`, output `(batch, num_labels)`. With `normalize_inputs=True` each
    input ROW is divided by its own L2 norm first, so the scores are cosines.

    The label vectors are a (non-trainable) weight; `get_config()` holds only their
    shape, so a `.keras` archive of a 400,000-word label set is a weights file plus a
    small config. A layer made from a config alone (`from_config`, `clone_model`) has
    zero placeholder vectors until weights are loaded or `set_label_vectors` is called.

    Swapping to a label set of a different size replaces the weight. A `tf.function`
    traced before the swap (e.g. a model's cached `predict_function`) still holds the
    old weight; rather than silently scoring the old labels it fails with an
    `InvalidArgumentError` saying so. Rebuild such functions after a swap, e.g.
    `model.make_predict_function(force=True)` (or `model.compile(...)` again before
    `fit`/`evaluate`). Swapping to a set of the same size assigns in place, and traced
    functions see the new vectors.

    Args:
        label_vectors: `(num_labels, dim)` matrix of label vectors (any norm but zero).
            None (from a config) needs `num_labels` and `dim`.
        normalize_inputs: divide each input row by its L2 norm before scoring.
        num_labels, dim: the label matrix's shape when `label_vectors` is None.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> layer = LabelSimilarity([[3.0, 4.0], [0.0, 2.0]])
    >>> [round(float(s), 4) for s in layer(np.array([[1.0, 1.0]]))[0]]
    [1.4, 1.0]
    >>> layer.set_label_vectors([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> tuple(layer(np.array([[1.0, 1.0]])).shape)
    (1, 3)
    """

    def __init__(
        self,
        label_vectors=None,
        normalize_inputs: bool = False,
        num_labels: int | None = None,
        dim: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if label_vectors is not None:
            self._initial_vectors = _check_label_vectors(label_vectors)
            if (num_labels, dim) != (None, None) and (num_labels, dim) != (
                self._initial_vectors.shape
            ):
                raise ValueError(
                    f"num_labels={num_labels}, dim={dim} disagree with label vectors of shape "
                    f"{self._initial_vectors.shape}"
                )
        elif num_labels is None or dim is None or int(num_labels) < 1 or int(dim) < 1:
            raise ValueError(
                "LabelSimilarity needs label_vectors, or num_labels >= 1 and dim >= 1 for "
                f"placeholders that saved weights fill in; got num_labels={num_labels!r}, "
                f"dim={dim!r}"
            )
        else:
            self._initial_vectors = np.zeros((int(num_labels), int(dim)), np.float32)
        self.normalize_inputs = bool(normalize_inputs)
        self.label_vectors = None
        # Counts label-matrix replacements; each traced call checks that the count is the
        # one it was traced with (see the class docstring). A plain tf.Variable so it is
        # not one of the layer's Keras weights.
        self._generation = None
        self._generation_count = 0

    @property
    def num_labels(self) -> int:
        return int(self._current_vectors().shape[0])

    @property
    def dim(self) -> int:
        return int(self._current_vectors().shape[1])

    def _current_vectors(self):
        if self.label_vectors is None:
            return self._initial_vectors
        return self.label_vectors

    def build(self, input_shape):
        self._check_input_dim(input_shape)
        self._add_label_weight(self._initial_vectors)
        # init_scope: build may run inside a traced function, where a variable would
        # otherwise be created per trace.
        with tf.init_scope():
            self._generation = tf.Variable(
                self._generation_count, dtype=tf.int64, trainable=False, name="label_set_generation"
            )

    def _add_label_weight(self, vectors: np.ndarray):
        self.label_vectors = self.add_weight(
            name="label_vectors",
            shape=vectors.shape,
            initializer=keras.initializers.Constant(vectors),
            trainable=False,
        )

    def _check_input_dim(self, input_shape):
        input_dim = input_shape[-1] if len(input_shape) else None
        if len(input_shape) != 2:
            raise ValueError(
                f"LabelSimilarity expects (batch, dim) inputs, got shape {tuple(input_shape)}"
            )
        if input_dim is not None and input_dim != self.dim:
            raise ValueError(
                f"input dim {input_dim} does not match the label vectors' dim {self.dim}"
            )

    def set_label_vectors(self, vectors) -> None:
        """Replaces the label matrix with `vectors` (any number of rows, same dim)."""
        vectors = _check_label_vectors(vectors)
        if vectors.shape[1] != self.dim:
            raise ValueError(
                f"new label vectors have dim {vectors.shape[1]}, the layer has dim {self.dim}"
            )
        if not self.built:
            self._initial_vectors = vectors
            return
        if tuple(vectors.shape) == tuple(self.label_vectors.shape):
            self.label_vectors.assign(vectors)
            return
        # A new shape needs a new variable; Keras locks a built layer's state, so unlock
        # around the swap the way Keras' own Dense.enable_lora does.
        self._untrack_variable(self.label_vectors)
        self._tracker.unlock()
        try:
            self._add_label_weight(vectors)
        finally:
            self._tracker.lock()
        self._generation_count += 1
        self._generation.assign(self._generation_count)

    def call(self, inputs):
        inputs = ops.convert_to_tensor(inputs)
        if inputs.shape[-1] is not None and inputs.shape[-1] != self.dim:
            raise ValueError(
                f"input dim {inputs.shape[-1]} does not match the label vectors' dim {self.dim}"
            )
        if self.normalize_inputs:
            # Per-row norm: dividing by the norm of the whole batch would make scores depend
            # on the other images in the batch.
            squared = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
            inputs = inputs * ops.rsqrt(ops.maximum(squared, _NORM_EPSILON))
        vectors = ops.cast(self.label_vectors, inputs.dtype)
        scores = ops.matmul(inputs, ops.transpose(vectors))
        if tf.executing_eagerly() or self._generation is None:
            return scores
        check = tf.debugging.assert_equal(
            self._generation,
            tf.constant(self._generation_count, tf.int64),
            message=(
                "LabelSimilarity's label set was replaced after this function was traced; "
                "rebuild it, e.g. model.make_predict_function(force=True) or compile again"
            ),
        )
        with tf.control_dependencies([check]):
            return tf.identity(scores)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_labels)

    def get_config(self):
        config = super().get_config()
        # The vectors themselves are a weight: the config stays small for any label set.
        config.update(
            {
                "num_labels": self.num_labels,
                "dim": self.dim,
                "normalize_inputs": self.normalize_inputs,
            }
        )
        return config
