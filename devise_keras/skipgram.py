"""Skip-gram with negative sampling in Keras 3 (Mikolov et al., NIPS 2013).

DeViSE (Frome et al., NIPS 2013) embeds labels with skip-gram vectors trained on its own
corpus. `SkipGram` holds word2vec's two tables (input vectors, the ones exported, and
output vectors), `NegativeSamplingLoss` is word2vec's objective, and `train_skipgram`
trains them on the pairs CorpusGen wrote (`devise_keras.skipgram_corpus`) and writes
word2vec text vectors that `devise_keras.word_vectors` and LabelEmbeddingGen read.

Training follows word2vec C where a batched trainer can: input vectors start uniform in
``±0.5/dim`` and output vectors at zero; negatives come from the unigram^0.75
distribution (sampled for the whole batch at once by inverse-CDF search; a negative
equal to the pair's context is masked, as word2vec skips it); plain SGD on the loss
summed over the batch (so each pair moves the vectors as one word2vec update would)
with the learning rate decaying linearly from `learning_rate` to `min_learning_rate`.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from devise_keras import skipgram_corpus as sg
from devise_keras.config import CorpusTrainingConfig

VECTORS_FILE = "vectors.txt"
TRAINING_LOG_FILE = "training_log.json"


def negative_sampling_loss(signs, logits):
    """word2vec's negative-sampling loss per pair.

    ``signs`` is +1 for the true context (column 0), -1 for a negative and 0 for a
    masked one; the loss is ``sum_j |s_j| * softplus(-s_j * logit_j)``, i.e.
    ``-log sigmoid(pos) - sum_k log sigmoid(-neg_k)``.

    >>> import numpy as np
    >>> float(negative_sampling_loss(np.array([[1.0, -1.0, 0.0]]),
    ...                              np.array([[0.0, 0.0, 5.0]]))[0])  # 2 log 2
    1.3862943649291992
    """
    signs = keras.ops.convert_to_tensor(signs, "float32")
    logits = keras.ops.convert_to_tensor(logits, "float32")
    return keras.ops.sum(keras.ops.abs(signs) * keras.ops.softplus(-signs * logits), axis=-1)


@keras.saving.register_keras_serializable(package="devise_keras")
class NegativeSamplingLoss(keras.losses.Loss):
    """word2vec's negative-sampling loss (Mikolov et al., NIPS 2013), summed over the batch.

    ``y_true`` holds the signs (+1 context, -1 negative, 0 masked), ``y_pred`` the
    logits of `SkipGram`. The default ``"sum"`` reduction makes a batch step the sum of
    per-pair word2vec updates, so word2vec's learning rates apply unchanged.

    Example:
    >>> loss = NegativeSamplingLoss()
    >>> round(float(loss([[1.0, -1.0]], [[0.0, 0.0]])), 4)
    1.3863
    """

    def __init__(self, reduction="sum", name="negative_sampling_loss", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return negative_sampling_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="devise_keras")
class SkipGram(keras.Model):
    """Skip-gram's two embedding tables; scores a center word against context words.

    Inputs: ``{"center": (B,), "contexts": (B, C)}`` int ids (column 0 the true
    context, the rest negatives). Output: (B, C) dot products of the center's input
    vector with the contexts' output vectors. `word_vectors` are the input vectors.

    Args:
        vocabulary_size: number of words.
        dim: vector width.
        seed: initialisation seed.

    Example:
    >>> model = SkipGram(vocabulary_size=10, dim=4)
    >>> tuple(model({"center": np.array([1, 2]), "contexts": np.array([[3, 4], [5, 6]])}).shape)
    (2, 2)
    """

    def __init__(self, vocabulary_size: int, dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.dim = dim
        self.seed = seed
        half_width = 0.5 / dim
        self.input_vectors = keras.layers.Embedding(
            vocabulary_size,
            dim,
            embeddings_initializer=keras.initializers.RandomUniform(
                -half_width, half_width, seed=seed
            ),
            name="input_vectors",
        )
        self.output_vectors = keras.layers.Embedding(
            vocabulary_size, dim, embeddings_initializer="zeros", name="output_vectors"
        )

    def call(self, inputs):
        center = self.input_vectors(inputs["center"])  # (B, D)
        contexts = self.output_vectors(inputs["contexts"])  # (B, C, D)
        return keras.ops.einsum("bd,bcd->bc", center, contexts)

    @property
    def word_vectors(self) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.input_vectors.embeddings)

    def get_config(self):
        config = super().get_config()
        config.update(vocabulary_size=self.vocabulary_size, dim=self.dim, seed=self.seed)
        return config


def pair_dataset(
    corpus_dir: str,
    noise: np.ndarray,
    *,
    batch_size: int,
    negatives: int,
    seed: int = 0,
    shuffle_buffer: int = 1_000_000,
    pairs_hint: int | None = None,
) -> tf.data.Dataset:
    """Endless batches ``({"center", "contexts"}, signs)`` from CorpusGen's pair TFRecords.

    Records are read from all shards in parallel, split into pairs, shuffled, batched;
    each batch gets ``negatives`` noise words per pair by inverse-CDF search over the
    unigram^0.75 distribution `noise` (stateless draws keyed by seed and batch number).
    The shuffle buffer holds at most `shuffle_buffer` pairs (and at most `pairs_hint`,
    the pairs of one epoch, so a small corpus does not fill it with repeats).
    """
    pairs_hint = shuffle_buffer if pairs_hint is None else pairs_hint
    files = sg.pair_files(corpus_dir)
    if not files:
        raise sg.CorpusError(f"no pair files under {os.path.join(corpus_dir, sg.PAIRS_DIR)}")
    cdf = tf.constant(np.cumsum(noise / noise.sum()), tf.float64)
    last = len(noise) - 1
    features = {
        sg.CENTER_FEATURE: tf.io.RaggedFeature(tf.int64),
        sg.CONTEXT_FEATURE: tf.io.RaggedFeature(tf.int64),
    }

    def split_pairs(records):
        parsed = tf.io.parse_example(records, features)
        return parsed[sg.CENTER_FEATURE].flat_values, parsed[sg.CONTEXT_FEATURE].flat_values

    def add_negatives(step, pair):
        center, context = pair
        size = tf.shape(center)[0]
        u = tf.random.stateless_uniform(
            (size, negatives), seed=tf.stack([tf.cast(seed, tf.int64), step]), dtype=tf.float64
        )
        flat = tf.searchsorted(cdf, tf.reshape(u, [-1]), side="right", out_type=tf.int64)
        noise_ids = tf.reshape(tf.minimum(flat, last), (size, negatives))
        contexts = tf.concat([context[:, None], noise_ids], axis=1)
        signs = tf.concat(
            [
                tf.ones((size, 1), tf.float32),
                -tf.cast(tf.not_equal(noise_ids, context[:, None]), tf.float32),
            ],
            axis=1,
        )
        return {"center": center, "contexts": contexts}, signs

    files_ds = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
    ds = (
        files_ds.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), 8),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .repeat()
        .batch(64)
        .map(split_pairs, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .shuffle(max(1, min(shuffle_buffer, pairs_hint)), seed=seed)
        .batch(batch_size, drop_remainder=True)
        .enumerate()
        .map(add_negatives, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return ds


def write_word2vec_text(path: str, words: list[str], vectors: np.ndarray) -> None:
    """Writes ``"N D"`` then ``word v1 ... vD`` per line (word2vec text format)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n")
        chunk = 10_000
        for start in range(0, len(words), chunk):
            rows = vectors[start : start + chunk]
            lines = [
                word + " " + " ".join(f"{x:.6g}" for x in row)
                for word, row in zip(words[start : start + chunk], rows, strict=True)
            ]
            f.write("\n".join(lines) + "\n")


def train_skipgram(
    corpus_dir: str,
    output_dir: str,
    *,
    dim: int = CorpusTrainingConfig.dim,
    negatives: int = CorpusTrainingConfig.negatives,
    epochs: int = CorpusTrainingConfig.epochs,
    batch_size: int = CorpusTrainingConfig.batch_size,
    learning_rate: float = CorpusTrainingConfig.learning_rate,
    min_learning_rate: float = CorpusTrainingConfig.min_learning_rate,
    seed: int = CorpusTrainingConfig.seed,
    backup_dir: str | None = None,
    verbose: int | str = "auto",
) -> dict[str, Any]:
    """Trains skip-gram vectors on a CorpusGen output; writes ``vectors.txt`` to `output_dir`.

    An epoch is one pass over the pairs (``ceil(pairs / batch_size)`` steps). With
    `backup_dir`, `keras.callbacks.BackupAndRestore` resumes an interrupted run at its
    last finished epoch (the learning-rate schedule follows the restored step count).

    Returns:
        the training log (also written as ``training_log.json``): loss per epoch, pairs,
        steps, seconds and pairs per second.

    Example::

        log = train_skipgram("runs/corpus", "runs/vectors", dim=100, epochs=3)
        embed_labels(["ankle boot"], "runs/vectors/vectors.txt")
    """
    vocabulary = sg.read_vocabulary(corpus_dir)
    stats = sg.read_stats(corpus_dir)
    noise = sg.read_noise_distribution(corpus_dir)
    pairs = int(stats["pairs"])
    steps = max(1, math.ceil(pairs / batch_size))
    keras.utils.set_random_seed(seed)
    model = SkipGram(len(vocabulary), dim, seed=seed)
    # Built before fit: BackupAndRestore restores weights into a built model.
    model({"center": np.zeros((1,), np.int64), "contexts": np.zeros((1, 1), np.int64)})
    schedule = keras.optimizers.schedules.PolynomialDecay(
        learning_rate, decay_steps=steps * epochs, end_learning_rate=min_learning_rate, power=1.0
    )
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss=NegativeSamplingLoss())
    dataset = pair_dataset(
        corpus_dir, noise, batch_size=batch_size, negatives=negatives, seed=seed, pairs_hint=pairs
    )
    callbacks = []
    if backup_dir:
        callbacks.append(keras.callbacks.BackupAndRestore(backup_dir))
    start = time.perf_counter()
    history = model.fit(
        dataset, epochs=epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=verbose
    )
    seconds = time.perf_counter() - start
    tf.io.gfile.makedirs(output_dir)
    words = [w for w, _ in vocabulary]
    write_word2vec_text(os.path.join(output_dir, VECTORS_FILE), words, model.word_vectors)
    epochs_run = len(history.history.get("loss", []))
    log = {
        "vocabulary_size": len(vocabulary),
        "dim": dim,
        "negatives": negatives,
        "epochs": epochs,
        "epochs_run": epochs_run,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "min_learning_rate": min_learning_rate,
        "seed": seed,
        "pairs_per_epoch": pairs,
        "steps_per_epoch": steps,
        # Per pair: the summed batch loss divided by the batch size.
        "loss_per_pair": [float(x) / batch_size for x in history.history.get("loss", [])],
        "seconds": seconds,
        "pairs_per_second": steps * batch_size * epochs_run / seconds if seconds else 0.0,
        "corpus_tokens": stats.get("tokens"),
    }
    with tf.io.gfile.GFile(os.path.join(output_dir, TRAINING_LOG_FILE), "w") as f:
        f.write(json.dumps(log, indent=2, sort_keys=True) + "\n")
    return log
