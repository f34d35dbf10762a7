"""Tests for LabelIndex: exact top-k against brute force, ties, blocking, errors."""

import numpy as np
import pytest

from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.label_index import LabelIndex


def _brute_force(vectors, queries, k):
    """Top-k by cosine from one full matmul; ties broken by lower index."""
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.fixture(scope="module")
def random_data():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(250, 12)).astype(np.float32) * 3.0
    queries = rng.normal(size=(23, 12)).astype(np.float32)
    labels = [f"label{i}" for i in range(250)]
    return labels, vectors, queries


@pytest.mark.parametrize("block_size", [1, 7, 64, 250, 1000])
@pytest.mark.parametrize("k", [1, 5, 250])
def test_search_matches_brute_force(random_data, block_size, k):
    labels, vectors, queries = random_data
    index = LabelIndex(labels, vectors, block_size=block_size)
    found_labels, found_scores = index.search(queries, k)
    order, scores = _brute_force(vectors, queries, k)
    np.testing.assert_array_equal(found_labels, np.asarray(labels)[order])
    np.testing.assert_allclose(found_scores, scores, atol=1e-6)
    assert found_scores.dtype == np.float32 and found_labels.shape == (23, k)
    assert np.all(np.diff(found_scores, axis=1) <= 0)


def test_query_blocking_gives_the_same_result(random_data):
    labels, vectors, queries = random_data
    whole = LabelIndex(labels, vectors, block_size=64).search(queries, 4)
    chunked = LabelIndex(labels, vectors, block_size=64, query_block_size=5).search(queries, 4)
    # The labels must be exact; the scores come from differently blocked BLAS calls,
    # which may round differently in the last bit on another CPU (seen on AMD EPYC).
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_allclose(whole[1], chunked[1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("block_size", [1, 2, 3, 4, 6])
def test_ties_are_broken_by_label_position_for_any_block_size(block_size):
    # Integer vectors give exact float scores, so the ties are real.
    labels = ["a", "b", "c", "d", "e", "f"]
    vectors = [[0, 1], [1, 0], [0, 2], [1, 0], [0, 1], [1, 0]]
    index = LabelIndex(labels, vectors, block_size=block_size)
    found, scores = index.search([[1.0, 0.0], [0.0, 3.0], [1.0, 1.0]], k=2)
    assert found.tolist() == [["b", "d"], ["a", "c"], ["a", "b"]]
    np.testing.assert_allclose(scores, [[1, 1], [1, 1], [np.sqrt(0.5)] * 2], rtol=1e-6)


def test_vectors_are_unit_rows_and_unit_float32_input_is_not_copied():
    index = LabelIndex(["x", "y"], [[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(index.vectors, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    unit = np.array([[0.6, 0.8], [0.0, 1.0]], np.float32)
    assert np.shares_memory(LabelIndex(["x", "y"], unit).vectors, unit)
    raw = np.array([[3.0, 4.0]], np.float32)
    LabelIndex(["x"], raw)
    np.testing.assert_array_equal(raw, [[3.0, 4.0]])


def test_search_vector_len_labels_and_from_label_embeddings():
    embeddings = LabelEmbeddings(["cat", "dog", "car"], [[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    index = LabelIndex.from_label_embeddings(embeddings, block_size=2)
    assert len(index) == 3 and index.labels.tolist() == ["cat", "dog", "car"]
    labels, scores = index.search_vector([0.0, 5.0], k=2)
    # [0, 1] . [0, 1] = 1 (car), . [0.8, 0.6] = 0.6 (dog)
    assert labels.tolist() == ["car", "dog"]
    np.testing.assert_allclose(scores, [1.0, 0.6], rtol=1e-6)


@pytest.mark.parametrize(
    "labels, vectors, message",
    [
        ([], np.zeros((0, 3)), "label set is empty"),
        (["a"], [[1.0, np.inf]], "non-finite values in row"),
        (["a", "b"], [[1.0, 0.0], [0.0, 0.0]], "all-zero row"),
        (["a", "b"], [[1.0, 0.0]], "2 labels but 1 vector rows"),
        (["a"], [1.0, 0.0], "2-D"),
    ],
)
def test_bad_label_sets_raise(labels, vectors, message):
    with pytest.raises(ValueError, match=message):
        LabelIndex(labels, vectors)


@pytest.mark.parametrize(
    "queries, k, message",
    [
        ([[1.0, 0.0]], 3, "k=3 is larger than the number of labels \\(2\\)"),
        ([[1.0, 0.0]], 0, "k must be an int >= 1"),
        ([[1.0, 0.0, 0.0]], 1, "queries have dim 3, the label vectors 2"),
        ([[np.nan, 0.0]], 1, "queries has non-finite values in row"),
        ([[0.0, 0.0]], 1, "queries has all-zero row"),
        ([1.0, 0.0], 1, "2-D"),
    ],
)
def test_bad_searches_raise(queries, k, message):
    index = LabelIndex(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=message):
        index.search(queries, k)


def test_bad_block_size_raises():
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        LabelIndex(["a"], [[1.0]], block_size=0)


def test_huge_but_finite_vectors_are_normalized_not_rejected():
    # 1e30 squared overflows float32; the row is still a valid direction.
    index = LabelIndex(["big", "small"], np.array([[1e30, 0.0], [0.0, 1.0]], np.float32))
    np.testing.assert_allclose(index.vectors, [[1.0, 0.0], [0.0, 1.0]])
