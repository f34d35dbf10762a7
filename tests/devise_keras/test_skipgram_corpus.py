"""Skip-gram data preparation: tokenization, vocabulary, subsampling and window goldens,
and the vectorized pair generation against a pure Python reference."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest

from devise_keras import skipgram_corpus as sg
from devise_keras.label_matching import normalize_text, plan_lookups, text_words

CORPUS = [
    "The cat sat on the mat.",
    "The dog sat on the log; the cat saw the dog.",
    "Ankle_boot, T-shirt/top and the boots!",
    "a cat and a dog and a cat and a dog",
]


def reference_pairs(texts, min_count, sample, window, seed):
    """word2vec's data preparation in plain loops, sharing only the seeding contract."""
    words = text_words(texts)
    counts = collections.Counter(w for doc in words for w in doc)
    vocab = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    ids = {w: i for i, w in enumerate(vocab)}
    total = sum(counts[w] for w in vocab)
    pairs = []
    for text, doc in zip(texts, words, strict=True):
        rng = sg.document_rng(seed, text)
        in_vocab = [ids[w] for w in doc if w in ids]
        if len(in_vocab) < 2:
            continue
        kept = []
        for word_id in in_vocab:
            u = rng.random()
            if sample > 0:
                cn = counts[vocab[word_id]]
                keep = (math.sqrt(cn / (sample * total)) + 1) * (sample * total) / cn
            else:
                keep = 1.0
            if u < keep:
                kept.append(word_id)
        reach = [window - int(rng.integers(0, window)) for _ in kept]
        for i, center in enumerate(kept):
            for j in range(i - reach[i], i + reach[i] + 1):
                if j != i and 0 <= j < len(kept):
                    pairs.append((center, kept[j]))
    return vocab, pairs


def test_text_words_keep_the_label_matching_tokens():
    assert text_words(CORPUS[2:3]) == [
        ["ankle", "boot", "t", "shirt", "top", "and", "the", "boots"]
    ]
    # Every token label matching looks up for these labels is a corpus word form.
    plan = plan_lookups(["Ankle_boot"])
    tokens = [t for t, _ in plan.candidates[0]["chains"][0]["tokens"]]
    assert tokens == text_words(["Ankle_boot"])[0] == ["ankle", "boot"]
    assert normalize_text("T-shirt/top") == "t-shirt top"


def test_vocabulary_counts_and_order():
    counts = collections.Counter(w for doc in text_words(CORPUS) for w in doc)
    vocab = sg.build_vocabulary(counts, min_count=3)
    # the: 2 + 4 + 1 = 7; a: 4; cat: 1 + 1 + 2 = 4; dog: 2 + 2 = 4; and: 1 + 3 = 4
    assert vocab == [("the", 7), ("a", 4), ("and", 4), ("cat", 4), ("dog", 4)]
    with pytest.raises(ValueError, match="min_count must be >= 1"):
        sg.build_vocabulary(counts, 0)


def test_keep_probabilities_match_word2vec_formula():
    # counts 7 and 1, total 8, t = 0.05: threshold t * total = 0.4
    keep = sg.keep_probabilities(np.array([7, 1]), sample=0.05)
    # (sqrt(17.5) + 1) * 0.4 / 7 = 5.183300 * 0.057143
    assert keep[0] == pytest.approx(0.296189, abs=1e-6)
    assert keep[1] == 1.0  # (sqrt(2.5) + 1) * 0.4 = 1.032 -> capped
    assert sg.keep_probabilities(np.array([7, 1]), sample=0).tolist() == [1.0, 1.0]


def test_noise_distribution_is_unigram_to_the_three_quarters():
    probs = sg.noise_distribution(np.array([81, 16, 1]))
    assert probs.tolist() == pytest.approx([27 / 36, 8 / 36, 1 / 36])


def test_subsampling_draws_follow_the_documented_order():
    rng = np.random.default_rng(5)
    u = rng.random(4)
    b = rng.integers(0, 3, size=int((u < np.array([0.5, 1.0, 0.5, 1.0])).sum()))
    kept, reach = sg.subsample_and_reach(
        np.array([0, 1, 0, 1]), np.array([0.5, 1.0]), 3, np.random.default_rng(5)
    )
    assert kept.tolist() == [w for w, x in zip([0, 1, 0, 1], u, strict=True) if x < [0.5, 1.0][w]]
    assert reach.tolist() == (3 - b).tolist()


def test_window_pairs_hand_example():
    kept = np.array([10, 11, 12, 13])
    reach = np.array([2, 1, 1, 3])
    pairs = sg.window_pairs(kept, reach, window=3).tolist()
    assert pairs == [
        [10, 11], [10, 12],
        [11, 10], [11, 12],
        [12, 11], [12, 13],
        [13, 10], [13, 11], [13, 12],
    ]  # fmt: skip


@pytest.mark.parametrize("sample, window, seed", [(0.0, 2, 0), (0.05, 3, 1), (0.01, 5, 7)])
def test_document_pairs_match_the_reference(sample, window, seed):
    vocab, expected = reference_pairs(CORPUS, min_count=2, sample=sample, window=window, seed=seed)
    counts = collections.Counter(w for doc in text_words(CORPUS) for w in doc)
    vocabulary = sg.build_vocabulary(counts, 2)
    assert [w for w, _ in vocabulary] == vocab
    ids = {w: i for i, w in enumerate(vocab)}
    keep = sg.keep_probabilities(np.array([c for _, c in vocabulary]), sample)
    got = []
    for text, words in zip(CORPUS, text_words(CORPUS), strict=True):
        got += [tuple(p) for p in sg.document_pairs(text, words, ids, keep, window, seed).tolist()]
    assert got == expected
    assert len(got) > 10


def test_pairs_do_not_depend_on_document_order():
    words = text_words(CORPUS)
    ids = {w: i for i, w in enumerate(sorted({w for doc in words for w in doc}))}
    keep = np.full(len(ids), 0.7)
    first = sg.document_pairs(CORPUS[1], words[1], ids, keep, 3, seed=4)
    for text, doc in zip(CORPUS, words, strict=True):
        sg.document_pairs(text, doc, ids, keep, 3, seed=4)
    again = sg.document_pairs(CORPUS[1], words[1], ids, keep, 3, seed=4)
    assert first.tolist() == again.tolist()
    assert first.tolist() != sg.document_pairs(CORPUS[1], words[1], ids, keep, 3, 5).tolist()


def test_pair_records_split_long_documents():
    import tensorflow as tf

    pairs = np.arange(10).reshape(5, 2)
    records = list(sg.pair_records(pairs, max_pairs=2))
    assert len(records) == 3
    parsed = [tf.train.Example.FromString(r).features.feature for r in records]
    centers = [v for f in parsed for v in f[sg.CENTER_FEATURE].int64_list.value]
    contexts = [v for f in parsed for v in f[sg.CONTEXT_FEATURE].int64_list.value]
    assert centers == [0, 2, 4, 6, 8] and contexts == [1, 3, 5, 7, 9]
