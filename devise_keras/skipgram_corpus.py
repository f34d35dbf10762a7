"""Skip-gram training data from text: vocabulary, subsampling, dynamic windows, pairs.

DeViSE (Frome et al., NIPS 2013) embeds labels with skip-gram vectors (Mikolov et al.,
"Distributed Representations of Words and Phrases", NIPS 2013) trained on its own
corpus. This module holds the maths of word2vec's data preparation as pure functions,
so the Beam component (`components.corpus_gen`) and the tests share one definition:

- vocabulary: words with ``count >= min_count``, ordered by count (descending) then
  word, so a word's id is its frequency rank (the order word-vector files keep);
- subsampling of frequent words, word2vec C's rule: with ``f = count / train_words``
  (``train_words`` = the summed counts of the vocabulary) and threshold ``t``, a word
  is kept with probability ``min(1, (sqrt(f / t) + 1) * t / f)`` (word2vec.c writes
  ``(sqrt(cn / (t * train_words)) + 1) * (t * train_words) / cn``); ``t <= 0`` keeps all;
- dynamic window: for each kept position word2vec draws ``b`` uniform in
  ``[0, window)`` and pairs the word with the words up to ``window - b`` positions
  away on each side, within its document (windows never cross documents);
- noise distribution for negative sampling: ``count^0.75``, normalised.

Out-of-vocabulary words are removed before subsampling and windowing, as word2vec
does. Every random draw of a document comes from a NumPy generator seeded by
``(seed, hash of the document text)`` (`document_rng`), so the pairs do not depend
on how a runner splits the corpus: identical documents get identical draws.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping

import numpy as np

VOCAB_FILE = "vocab.tsv"
UNIGRAM_TABLE_FILE = "unigram_table.npy"
STATS_FILE = "corpus_stats.json"
PAIRS_DIR = "pairs"
PAIRS_PREFIX = "pairs"
NOISE_POWER = 0.75
# Pairs per TFRecord record (a long document is split into several records).
MAX_PAIRS_PER_RECORD = 8192
CENTER_FEATURE = "center"
CONTEXT_FEATURE = "context"


class CorpusError(ValueError):
    """A corpus gives no usable skip-gram data (empty, or no word reaches min_count)."""


def build_vocabulary(counts: Mapping[str, int], min_count: int) -> list[tuple[str, int]]:
    """Words with ``count >= min_count``, most frequent first (ties by word).

    >>> build_vocabulary({"b": 2, "a": 2, "c": 5, "d": 1}, min_count=2)
    [('c', 5), ('a', 2), ('b', 2)]
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    kept = [(w, int(c)) for w, c in counts.items() if c >= min_count]
    return sorted(kept, key=lambda wc: (-wc[1], wc[0]))


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec C's subsampling keep-probability of each vocabulary word.

    ``min(1, (sqrt(f / t) + 1) * t / f)`` with ``f = count / sum(counts)``, ``t = sample``.

    >>> keep_probabilities(np.array([90, 10]), sample=0.01).round(4).tolist()
    [0.1165, 0.4162]
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    keep = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    return np.minimum(keep, 1.0)


def noise_distribution(counts: np.ndarray, power: float = NOISE_POWER) -> np.ndarray:
    """The unigram^0.75 distribution negative samples are drawn from.

    >>> noise_distribution(np.array([16, 1])).round(4).tolist()
    [0.8889, 0.1111]
    """
    weights = np.asarray(counts, dtype=np.float64) ** power
    return weights / weights.sum()


def document_rng(seed: int, text: str) -> np.random.Generator:
    """The generator of one document's draws: seeded by `seed` and the text's hash."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    high, low = np.frombuffer(digest, dtype="<u4")
    return np.random.default_rng([seed, int(high), int(low)])


def subsample_and_reach(
    ids: np.ndarray, keep: np.ndarray, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Drops frequent words and draws each kept word's window reach.

    Draw order (part of the contract the tests pin): one uniform per in-vocabulary
    word for subsampling (kept when ``u < keep[id]``), then one integer ``b`` in
    ``[0, window)`` per kept word; its reach is ``window - b``.

    Returns:
        (kept ids, reach of each) as int64 arrays.
    """
    ids = np.asarray(ids, dtype=np.int64)
    uniforms = rng.random(len(ids))
    kept = ids[uniforms < keep[ids]]
    reach = window - rng.integers(0, window, size=len(kept))
    return kept, reach.astype(np.int64)


def window_pairs(kept: np.ndarray, reach: np.ndarray, window: int) -> np.ndarray:
    """(center, context) id pairs of one document, ordered by center then context position.

    Position ``i`` pairs with every ``j != i`` with ``|i - j| <= reach[i]``.

    >>> window_pairs(np.array([7, 8, 9]), np.array([1, 2, 1]), window=2).tolist()
    [[7, 8], [8, 7], [8, 9], [9, 8]]
    """
    n = len(kept)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    positions = np.arange(n)[:, None] + offsets[None, :]  # (n, 2 * window), rows ascending
    valid = (np.abs(offsets)[None, :] <= reach[:, None]) & (positions >= 0) & (positions < n)
    centers = np.broadcast_to(kept[:, None], positions.shape)[valid]
    contexts = kept[positions[valid]]
    return np.stack([centers, contexts], axis=1).astype(np.int64, copy=False)


def document_pairs(
    text: str,
    words: list[str],
    word_ids: Mapping[str, int],
    keep: np.ndarray,
    window: int,
    seed: int,
) -> np.ndarray:
    """All (center, context) pairs of one document: vocabulary lookup, subsampling, windows."""
    ids = np.fromiter((word_ids[w] for w in words if w in word_ids), dtype=np.int64)
    if len(ids) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    kept, reach = subsample_and_reach(ids, keep, window, document_rng(seed, text))
    return window_pairs(kept, reach, window)


def pair_records(pairs: np.ndarray, max_pairs: int = MAX_PAIRS_PER_RECORD) -> Iterator[bytes]:
    """Serialized `tf.train.Example`s with int64 lists ``center`` and ``context``."""
    import tensorflow as tf

    for start in range(0, len(pairs), max_pairs):
        chunk = pairs[start : start + max_pairs]
        feature = {
            CENTER_FEATURE: tf.train.Feature(int64_list=tf.train.Int64List(value=chunk[:, 0])),
            CONTEXT_FEATURE: tf.train.Feature(int64_list=tf.train.Int64List(value=chunk[:, 1])),
        }
        yield tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_vocabulary(directory: str, vocabulary: list[tuple[str, int]]) -> None:
    """Writes ``vocab.tsv`` (word<TAB>count, id order) and the unigram^0.75 table."""
    import tensorflow as tf

    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(os.path.join(directory, VOCAB_FILE), "w") as f:
        f.write("".join(f"{w}\t{c}\n" for w, c in vocabulary))
    counts = np.array([c for _, c in vocabulary], dtype=np.int64)
    with tf.io.gfile.GFile(os.path.join(directory, UNIGRAM_TABLE_FILE), "wb") as f:
        np.save(f, noise_distribution(counts))


def read_vocabulary(directory: str) -> list[tuple[str, int]]:
    """Reads ``vocab.tsv`` written by `write_vocabulary`."""
    import tensorflow as tf

    path = os.path.join(directory, VOCAB_FILE)
    if not tf.io.gfile.exists(path):
        raise CorpusError(f"{path} does not exist: not a skip-gram corpus directory")
    vocabulary = []
    with tf.io.gfile.GFile(path, "r") as f:
        for line in f:
            word, count = line.rstrip("\n").split("\t")
            vocabulary.append((word, int(count)))
    return vocabulary


def read_noise_distribution(directory: str) -> np.ndarray:
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(directory, UNIGRAM_TABLE_FILE), "rb") as f:
        return np.load(f)


def read_stats(directory: str) -> dict:
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(directory, STATS_FILE), "r") as f:
        return json.load(f)


def write_stats(directory: str, stats: Mapping) -> None:
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(directory, STATS_FILE), "w") as f:
        f.write(json.dumps(stats, indent=2, sort_keys=True) + "\n")


def pair_files(directory: str) -> list[str]:
    import tensorflow as tf

    return sorted(tf.io.gfile.glob(os.path.join(directory, PAIRS_DIR, PAIRS_PREFIX + "-*")))
