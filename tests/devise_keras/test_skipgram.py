"""Skip-gram model and loss: hand-computed values, serialization, and a tiny run that learns."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from devise_keras import skipgram_corpus as sg
from devise_keras.skipgram import (
    NegativeSamplingLoss,
    SkipGram,
    negative_sampling_loss,
    pair_dataset,
    train_skipgram,
    write_word2vec_text,
)
from devise_keras.word_vectors import read_vectors_for


def softplus(x):
    return math.log1p(math.exp(x))


def test_loss_matches_hand_values():
    signs = np.array([[1.0, -1.0, -1.0], [1.0, 0.0, -1.0]])
    logits = np.array([[2.0, 1.0, -1.0], [-0.5, 9.0, 0.0]])
    expected = [
        softplus(-2.0) + softplus(1.0) + softplus(-1.0),  # -log s(2) - log s(-1) - log s(1)
        softplus(0.5) + softplus(0.0),  # the masked negative (sign 0) adds nothing
    ]
    got = keras.ops.convert_to_numpy(negative_sampling_loss(signs, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    total = float(NegativeSamplingLoss()(signs, logits))
    assert total == pytest.approx(sum(expected), rel=1e-6)  # summed over the batch


def test_loss_config_round_trip():
    loss = NegativeSamplingLoss()
    restored = NegativeSamplingLoss.from_config(loss.get_config())
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(
        loss.get_config(), sort_keys=True
    )


def test_model_scores_are_dot_products_and_round_trip(tmp_path):
    model = SkipGram(vocabulary_size=6, dim=3, seed=1)
    inputs = {"center": np.array([1, 4]), "contexts": np.array([[2, 3], [5, 0]])}
    model(inputs)
    model.output_vectors.embeddings.assign(np.arange(18, dtype="float32").reshape(6, 3) / 10)
    w_in = model.word_vectors
    w_out = keras.ops.convert_to_numpy(model.output_vectors.embeddings)
    expected = np.array(
        [[w_in[1] @ w_out[2], w_in[1] @ w_out[3]], [w_in[4] @ w_out[5], w_in[4] @ w_out[0]]]
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(inputs)), expected, rtol=1e-5)
    # word2vec's initialisation: input vectors in +-0.5/dim, output vectors zero
    fresh = SkipGram(6, 3, seed=1)
    fresh(inputs)
    assert np.abs(fresh.word_vectors).max() <= 0.5 / 3
    assert not keras.ops.convert_to_numpy(fresh.output_vectors.embeddings).any()

    path = str(tmp_path / "skipgram.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(inputs)), keras.ops.convert_to_numpy(model(inputs))
    )
    assert loaded.get_config()["vocabulary_size"] == 6


def test_word2vec_text_is_read_back(tmp_path):
    path = str(tmp_path / "v.txt")
    write_word2vec_text(path, ["cat", "dog"], np.array([[0.5, -1.0], [2.0, 0.25]]))
    vectors, dim, info = read_vectors_for(path, {"cat", "dog"})
    assert dim == 2 and info["format"] == "word2vec_text"
    np.testing.assert_allclose(vectors["dog"], [2.0, 0.25])


def _toy_corpus(directory, seed=0):
    """Two topics: words 0-3 co-occur, words 4-7 co-occur, never across topics."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(400):
        topic = rng.integers(0, 2) * 4
        words = topic + rng.integers(0, 4, size=8)
        kept, reach = words, np.full(8, 2)
        pairs.append(sg.window_pairs(kept, reach, 2))
    pairs = np.concatenate(pairs)
    vocabulary = [(f"w{i}", 100) for i in range(8)]
    sg.write_vocabulary(str(directory), vocabulary)
    import tensorflow as tf

    tf.io.gfile.makedirs(str(directory / sg.PAIRS_DIR))
    with tf.io.TFRecordWriter(str(directory / sg.PAIRS_DIR / "pairs-00000-of-00001")) as w:
        for record in sg.pair_records(pairs, max_pairs=64):
            w.write(record)
    sg.write_stats(str(directory), {"pairs": len(pairs), "tokens": 3200})
    return len(pairs)


def test_pair_dataset_batches_and_negatives(tmp_path):
    _toy_corpus(tmp_path)
    noise = sg.read_noise_distribution(str(tmp_path))
    inputs, signs = next(
        iter(pair_dataset(str(tmp_path), noise, batch_size=32, negatives=4, shuffle_buffer=500))
    )
    assert inputs["center"].shape == (32,) and inputs["contexts"].shape == (32, 5)
    contexts = inputs["contexts"].numpy()
    assert (signs.numpy()[:, 0] == 1).all()
    # a negative equal to the true context is masked (sign 0), every other one is -1
    masked = contexts[:, 1:] == contexts[:, :1]
    np.testing.assert_array_equal(signs.numpy()[:, 1:], np.where(masked, 0.0, -1.0))
    assert contexts.min() >= 0 and contexts.max() < 8


def test_words_that_co_occur_end_nearer_than_words_that_never_do(tmp_path):
    _toy_corpus(tmp_path / "corpus")
    log = train_skipgram(
        str(tmp_path / "corpus"), str(tmp_path / "out"), dim=8, epochs=4, batch_size=64,
        learning_rate=0.05, backup_dir=str(tmp_path / "backup"), verbose=0,
    )  # fmt: skip
    vectors, _, _ = read_vectors_for(str(tmp_path / "out" / "vectors.txt"), {"w0", "w1", "w5"})

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    same, across = cos(vectors["w0"], vectors["w1"]), cos(vectors["w0"], vectors["w5"])
    assert same > across + 0.3, (same, across)
    assert log["loss_per_pair"][-1] < log["loss_per_pair"][0]
    assert log["epochs_run"] == 4
