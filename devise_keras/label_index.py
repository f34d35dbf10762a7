"""Exact top-k nearest labels by cosine over any label set, in bounded memory."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

# Rows whose norm is this close to 1 are taken as already unit (no copy is made).
_UNIT_TOLERANCE = 1e-5


def _finite_nonzero_rows(matrix: np.ndarray, what: str) -> np.ndarray:
    """The row norms of a finite 2-D float32 matrix; raises naming bad rows."""
    # einsum makes no (rows, dim) temporary, which would double the peak memory of a big
    # vocabulary. A NaN/inf anywhere in a row makes its sum of squares non-finite.
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    suspect = np.flatnonzero(~np.isfinite(norms))
    if suspect.size:
        bad = suspect[~np.isfinite(matrix[suspect]).all(axis=1)]
        if bad.size:
            raise ValueError(f"{what} has non-finite values in row(s) {bad[:10].tolist()}")
        # Finite rows whose squares overflow float32.
        norms[suspect] = np.linalg.norm(matrix[suspect].astype(np.float64), axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(f"{what} has all-zero row(s) {zero[:10].tolist()}: no cosine defined")
    return norms


def _top_k_rows(scores: np.ndarray, indices: np.ndarray, k: int):
    """Per row, the k best (score, index) pairs: higher score first, lower index on ties."""
    order = np.lexsort((indices, -scores), axis=-1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)


class LabelIndex:
    """Exact top-k labels by cosine similarity, scoring label rows in blocks.

    DeViSE (Frome et al., NIPS 2013) predicts by ranking labels by the similarity of the
    projected image embedding to each label vector, over any label set - the training
    labels, unseen labels for zero-shot, or a whole word-vector vocabulary. This index
    does that ranking exactly (a matrix product, no approximation) while holding at most
    `block_size x min(Q, query_block_size)` scores at a time, so a 400k-word vocabulary
    does not need a (queries x vocabulary) matrix.

    Ties are deterministic: equal scores are ordered by label position (lower first),
    whatever the block size.

    Args:
        labels: label strings, one per row of `vectors`.
        vectors: (num_labels, dim) label vectors; rows are scaled to unit norm once
            (float32; the input is used without a copy when it already is float32 and
            unit-norm).
        block_size: label rows scored per block.
        query_block_size: query rows scored per block, which bounds memory when a very
            large number of queries comes in at once.

    Example:
    >>> index = LabelIndex(["cat", "dog", "car"], [[1, 0], [0.8, 0.6], [0, 1]])
    >>> labels, scores = index.search([[2.0, 0.0]], k=2)
    >>> labels.tolist(), [round(float(s), 4) for s in scores[0]]
    ([['cat', 'dog']], [1.0, 0.8])
    """

    def __init__(
        self,
        labels: Sequence[str],
        vectors,
        block_size: int = 8192,
        query_block_size: int = 1024,
    ):
        for name, value in (("block_size", block_size), ("query_block_size", query_block_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        given = vectors
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a 2-D (num_labels, dim) matrix, got {vectors.shape}")
        if vectors.shape[0] == 0:
            raise ValueError("the label set is empty: no vectors")
        if vectors.shape[1] == 0:
            raise ValueError("vectors have dim 0")
        labels = np.asarray([str(label) for label in labels])
        if labels.shape[0] != vectors.shape[0]:
            raise ValueError(f"{labels.shape[0]} labels but {vectors.shape[0]} vector rows")
        norms = _finite_nonzero_rows(vectors, "label vectors")
        if np.abs(norms - 1.0).max() > _UNIT_TOLERANCE:
            if isinstance(given, np.ndarray) and np.shares_memory(vectors, given):
                vectors = vectors / norms[:, None]
            else:  # already a private copy: normalize in place, no second copy
                vectors /= norms[:, None]
        self._labels = labels
        self._vectors = np.ascontiguousarray(vectors)
        self.block_size = block_size
        self.query_block_size = query_block_size

    @classmethod
    def from_label_embeddings(cls, embeddings, **kwargs) -> LabelIndex:
        """An index over a `devise_keras.label_embeddings.LabelEmbeddings`; kwargs as __init__."""
        return cls(embeddings.labels, embeddings.vectors, **kwargs)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def __len__(self) -> int:
        return int(self._vectors.shape[0])

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels per query row by cosine.

        Args:
            queries: (Q, dim) query vectors (any non-zero norm).
            k: labels per query, 1 <= k <= len(self).

        Returns:
            labels (Q, k) str array and scores (Q, k) float32, best first.
        """
        positions, scores = self.search_positions(queries, k)
        return self._labels[positions], scores

    def search_positions(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`search`, giving the rows of the top-k labels instead of their strings.

        For label sets whose ids are not strings (e.g. WordNet synset offsets next to
        dataset labels): ``ids[positions]`` maps them back.

        Returns:
            positions (Q, k) int64 rows of `vectors` and scores (Q, k) float32, best first.

        Example:
        >>> index = LabelIndex(["cat", "dog", "car"], [[1, 0], [0.8, 0.6], [0, 1]])
        >>> index.search_positions([[0.0, 1.0]], k=2)[0].tolist()
        [[2, 1]]
        """
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        if k > len(self):
            raise ValueError(f"k={k} is larger than the number of labels ({len(self)})")
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2:
            raise ValueError(
                f"queries must be a 2-D (num_queries, dim) matrix, got {queries.shape}"
            )
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have dim {queries.shape[1]}, the label vectors {self.dim}")
        norms = _finite_nonzero_rows(queries, "queries")
        queries = queries / norms[:, None]

        top_scores = np.empty((queries.shape[0], k), dtype=np.float32)
        top_indices = np.empty((queries.shape[0], k), dtype=np.int64)
        for start in range(0, queries.shape[0], self.query_block_size):
            stop = start + self.query_block_size
            top_scores[start:stop], top_indices[start:stop] = self._search_block(
                queries[start:stop], k
            )
        return top_indices, top_scores

    def search_vector(self, vector, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels for one (dim,) vector: labels (k,) and scores (k,) float32."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.ndim != 1:
            raise ValueError(f"vector must be 1-D (dim,), got shape {vector.shape}")
        labels, scores = self.search(vector[None, :], k)
        return labels[0], scores[0]

    def _search_block(self, queries: np.ndarray, k: int):
        best_scores = np.full((queries.shape[0], 0), -np.inf, dtype=np.float32)
        best_indices = np.zeros((queries.shape[0], 0), dtype=np.int64)
        for start in range(0, len(self), self.block_size):
            block = self._vectors[start : start + self.block_size]
            scores = queries @ block.T
            if scores.shape[1] > k:
                picked = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
                picked_scores = np.take_along_axis(scores, picked, axis=1)
                # argpartition picks arbitrarily among scores equal to the k-th best; rows
                # where such a tie crosses the cut are redone stably so lower indices win.
                kth = picked_scores.min(axis=1)
                tied = np.flatnonzero(np.count_nonzero(scores >= kth[:, None], axis=1) > k)
                for row in tied:
                    picked[row] = np.argsort(-scores[row], kind="stable")[:k]
                    picked_scores[row] = scores[row, picked[row]]
            else:
                picked = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
                picked_scores = scores
            best_scores, best_indices = _top_k_rows(
                np.concatenate([best_scores, picked_scores], axis=1),
                np.concatenate([best_indices, picked + start], axis=1),
                k,
            )
        return best_scores, best_indices
