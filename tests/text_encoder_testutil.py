"""A tiny TF-Hub-format text encoder built in tests: words -> known vectors.

`write_bag_of_words_encoder(path, {"red": [1, 0, 0], ...})` saves a SavedModel whose root
object maps a tf.string (B,) tensor to float32 (B, D): the mean of the vectors of the
lower-cased, whitespace-separated words it knows (an all-unknown text gets `unknown`),
the contract of TF-Hub text embeddings (`hub.load(handle)(["text"])`). Expected vectors
are then computable by hand.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class _BagOfWords(tf.Module):
    def __init__(self, words: list[str], vectors: np.ndarray, unknown: np.ndarray):
        super().__init__()
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(words), tf.range(len(words), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self._vectors = tf.Variable(vectors, trainable=False, name="word_vectors")
        self._unknown = tf.Variable(unknown, trainable=False, name="unknown")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        tokens = tf.strings.split(tf.strings.lower(texts))
        ids = tf.ragged.map_flat_values(self._table.lookup, tokens)
        known = tf.ragged.boolean_mask(ids, ids >= 0)
        rows = tf.gather(self._vectors, known)
        counts = tf.cast(known.row_lengths(), tf.float32)[:, None]
        summed = tf.reduce_sum(rows, axis=1)
        mean = summed / tf.maximum(counts, 1.0)
        return tf.where(counts > 0, mean, self._unknown[None, :])


def write_bag_of_words_encoder(
    path: str, word_vectors: dict[str, list[float]], unknown: list[float] | None = None
) -> str:
    """Saves the encoder to `path` and returns it (a local TF-Hub handle)."""
    words = list(word_vectors)
    vectors = np.array([word_vectors[w] for w in words], np.float32)
    unknown_vector = np.ones(vectors.shape[1], np.float32) if unknown is None else unknown
    module = _BagOfWords(words, vectors, np.asarray(unknown_vector, np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def serve(inputs):
        return {"outputs": module(inputs)}

    tf.saved_model.save(module, path, signatures={"serving_default": serve})
    return path
