"""Zero-shot metrics for DeViSE: flat hit@k in the "-0" and "+seen" protocols, GZSL, ConSE.

Pure NumPy, so the TFX component, the benchmark driver and the tests share one
definition of every number:

- `true_label_ranks`: 1 + the number of OTHER labels scoring at least as high as the
  true one, NaN competitors above it, a non-finite true score a miss: the one rule of
  `devise_keras.true_label_rank`, which `HitAtK` and the TFMA metric call too.
- `hit_at_k`: flat hit@k (Frome et al., NIPS 2013, Table 2).
- `zero_shot_hit_at_k`: unseen images ranked among the unseen labels only (the
  paper's "-0" protocol, Table 3 "2-hop"/"3-hop" "-0" rows) or among seen + unseen
  labels ("+seen"/"+1K" rows).
- `per_class_accuracy` and `generalized_zero_shot`: top-1 accuracy averaged per class
  on seen (s) and unseen (u) images, both ranked over ALL labels, and their harmonic
  mean H (Xian et al., "Zero-Shot Learning - The Good, the Bad and the Ugly", 2017).
- `calibrated_stacking`, `calibrated_generalized_zero_shot` and `choose_calibration`:
  GZSL after subtracting a constant gamma from the seen labels' scores, and gamma
  chosen for the best H on a validation split (Chao et al., "An Empirical Study and
  Analysis of Generalized Zero-Shot Learning for Object Recognition in the Wild",
  ECCV 2016).
- `conse_embedding` / `conse_scores`: ConSE (Norouzi et al., "Zero-Shot Learning by
  Convex Combination of Semantic Embeddings", ICLR 2014): the image embedding is the
  probability-weighted mean of the word vectors of its top-T seen labels.
- `hierarchical_precision_at_k`: the paper's hierarchical precision@k (Table 1/3),
  given label-to-label hop distances (e.g. `devise_keras.wordnet.WordNet`).
- `zero_shot_hit_at_k_by_hops`: "-0" hit@k among the unseen labels within 2 / 3 hops
  of the nearest seen label (the paper's 2-hop / 3-hop tasks, Table 3).
- `open_set_hit_at_k`: hit@k of images ranked among every WordNet noun synset, a
  prediction counted when it is the true synset or within h hops of it (the paper's
  ImageNet-21K "+WordNet" protocol, section 4.3).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from devise_keras.true_label_rank import true_label_rank_numpy

DEFAULT_K_VALUES = (1, 2, 5, 10, 20)
PROTOCOLS = ("-0", "+seen")


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    return int(k)


def _scores_and_labels(scores, y_true) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a (num_images, num_labels) matrix, got {scores.shape}")
    if scores.shape[1] == 0:
        raise ValueError("scores have no label columns")
    y_true = np.asarray(y_true).reshape(-1)
    if y_true.shape[0] != scores.shape[0]:
        raise ValueError(f"{y_true.shape[0]} labels for {scores.shape[0]} rows of scores")
    if y_true.size and not np.issubdtype(y_true.dtype, np.integer):
        if not np.all(np.equal(np.mod(y_true, 1), 0)):
            raise ValueError("y_true must hold integer label ids")
    y_true = y_true.astype(np.int64)
    if y_true.size and (y_true.min() < 0 or y_true.max() >= scores.shape[1]):
        raise ValueError(
            f"label ids must be in [0, {scores.shape[1]}), got min {y_true.min()} "
            f"max {y_true.max()}"
        )
    return scores, y_true


def capped_k_values(k_values: Sequence[int], num_labels: int) -> list[int]:
    """The k values capped by the label count: sorted unique min(k, num_labels).

    A k above the label count would repeat hit@num_labels (1.0 for every model), so
    it is reported once, as k = num_labels.

    Example:
    >>> capped_k_values([1, 2, 5, 10, 20], 8)
    [1, 2, 5, 8]
    """
    if isinstance(num_labels, bool) or not isinstance(num_labels, numbers.Integral):
        raise ValueError(f"num_labels must be an int, got {num_labels!r}")
    if num_labels < 1:
        raise ValueError(f"num_labels must be >= 1, got {num_labels}")
    return sorted({min(_check_k(k), int(num_labels)) for k in k_values})


def true_label_ranks(scores, y_true) -> np.ndarray:
    """Rank of each row's true label: 1 + count of other labels scoring >= it.

    The rule is `devise_keras.true_label_rank.true_label_rank` (a NaN competitor ranks
    above the true label; a non-finite true score gets rank `MISS_RANK`, a miss at every k).

    Args:
        scores: (N, L) scores, higher is better.
        y_true: (N,) label ids, column indices of `scores`.

    Returns:
        (N,) int64 ranks in [1, L], or `MISS_RANK` for a non-finite true score.

    Example:
    >>> true_label_ranks([[0.9, 0.5, 0.5], [0.2, 0.7, 0.1]], [1, 1]).tolist()
    [3, 1]
    """
    scores, y_true = _scores_and_labels(scores, y_true)
    if len(y_true) == 0:
        return np.zeros(0, np.int64)
    return true_label_rank_numpy(y_true, scores)


def hit_at_k(scores, y_true, k_values: Sequence[int] = DEFAULT_K_VALUES) -> dict[int, float]:
    """Mean flat hit@k for each k <= the number of labels (see `capped_k_values`).

    Example:
    >>> hit_at_k([[0.9, 0.5, 0.5], [0.2, 0.7, 0.1]], [1, 1], k_values=[1, 2, 5])
    {1: 0.5, 2: 0.5, 3: 1.0}
    """
    ranks = true_label_ranks(scores, y_true)
    num_labels = np.asarray(scores).shape[1]
    ks = capped_k_values(k_values, num_labels)
    if len(ranks) == 0:
        raise ValueError("no images to evaluate")
    return {k: float(np.mean(ranks <= k)) for k in ks}


def _label_columns(label_ids, num_labels: int, what: str) -> np.ndarray:
    ids = np.asarray(label_ids, dtype=np.int64).reshape(-1)
    if ids.size == 0:
        raise ValueError(f"{what} is empty")
    if len(set(ids.tolist())) != ids.size:
        raise ValueError(f"{what} has repeated label ids: {ids.tolist()}")
    if ids.min() < 0 or ids.max() >= num_labels:
        raise ValueError(f"{what} must be label ids in [0, {num_labels}), got {ids.tolist()}")
    return ids


def zero_shot_hit_at_k(
    scores,
    y_true,
    unseen_ids: Sequence[int],
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    protocol: str = "-0",
) -> dict[int, float]:
    """Flat hit@k of unseen-class images in the paper's "-0" or "+seen" protocol.

    Args:
        scores: (N, L) scores of the images over ALL labels (seen and unseen).
        y_true: (N,) true label ids in that label space; each must be in `unseen_ids`.
        unseen_ids: label ids (columns) of the unseen classes.
        k_values: cut-offs; those above the candidate-label count are capped.
        protocol: "-0" ranks among the unseen labels only; "+seen" among all labels,
            so a model that prefers its training labels is punished (Frome et al.,
            Table 3, "+1K" rows).

    Example:
    >>> scores = [[0.9, 0.1, 0.5, 0.2], [0.8, 0.7, 0.2, 0.3]]  # labels 0, 1 seen
    >>> zero_shot_hit_at_k(scores, [2, 3], [2, 3], [1, 2], "-0")
    {1: 1.0, 2: 1.0}
    >>> zero_shot_hit_at_k(scores, [2, 3], [2, 3], [1, 2], "+seen")
    {1: 0.0, 2: 0.5}
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    scores, y_true = _scores_and_labels(scores, y_true)
    unseen = _label_columns(unseen_ids, scores.shape[1], "unseen_ids")
    outside = sorted(set(y_true.tolist()) - set(unseen.tolist()))
    if outside:
        raise ValueError(f"images with seen label ids {outside} in a zero-shot evaluation")
    if protocol == "+seen":
        return hit_at_k(scores, y_true, k_values)
    position = {label: i for i, label in enumerate(unseen.tolist())}
    return hit_at_k(scores[:, unseen], [position[y] for y in y_true.tolist()], k_values)


def per_class_accuracy(scores, y_true, classes: Sequence[int] | None = None) -> float:
    """Top-1 accuracy averaged over classes (each class weighs the same).

    Top-1 uses the pessimistic ranks of `true_label_ranks` (a tie is a miss).

    Args:
        scores: (N, L) scores.
        y_true: (N,) true label ids.
        classes: the classes to average over (default: those present in y_true).
            A listed class without images raises, since its accuracy is undefined.

    Example:
    >>> # class 0: 2 of 2 right; class 1: 0 of 1 -> (1.0 + 0.0) / 2
    >>> per_class_accuracy([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]], [0, 0, 1])
    0.5
    """
    ranks = true_label_ranks(scores, y_true)
    return _per_class_mean(ranks == 1, y_true, classes)


def _per_class_mean(correct: np.ndarray, y_true, classes: Sequence[int] | None = None) -> float:
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    if classes is None:
        classes = np.unique(y_true)
    classes = [int(c) for c in classes]
    if not classes:
        raise ValueError("no classes to average over")
    accuracies = []
    for c in classes:
        mask = y_true == c
        if not mask.any():
            raise ValueError(f"class {c} has no images: its accuracy is undefined")
        accuracies.append(float(np.mean(correct[mask])))
    return float(np.mean(accuracies))


def harmonic_mean(u: float, s: float) -> float:
    """H = 2us / (u + s), 0 when both are 0 (Xian et al., 2017)."""
    return 0.0 if u + s == 0 else 2.0 * u * s / (u + s)


def generalized_zero_shot(
    seen_scores,
    seen_y,
    unseen_scores,
    unseen_y,
) -> dict[str, float]:
    """GZSL: per-class top-1 accuracy over ALL labels on seen (s) and unseen (u) images.

    Args:
        seen_scores, seen_y: held-out images of the seen classes, scored over all labels.
        unseen_scores, unseen_y: images of the unseen classes, scored over all labels.

    Returns:
        {"u": ..., "s": ..., "H": harmonic mean}.

    Example:
    >>> g = generalized_zero_shot([[0.9, 0.1, 0.0]], [0], [[0.6, 0.1, 0.3]], [2])
    >>> g["s"], g["u"], g["H"]
    (1.0, 0.0, 0.0)
    """
    s = per_class_accuracy(seen_scores, seen_y)
    u = per_class_accuracy(unseen_scores, unseen_y)
    return {"u": u, "s": s, "H": harmonic_mean(u, s)}


def _check_num_seen(num_seen, num_labels: int) -> int:
    if isinstance(num_seen, bool) or not isinstance(num_seen, numbers.Integral):
        raise ValueError(f"num_seen must be an int, got {num_seen!r}")
    if not 0 < num_seen < num_labels:
        raise ValueError(
            f"num_seen must be in [1, {num_labels - 1}] for {num_labels} labels (seen "
            f"columns first, then at least one unseen), got {num_seen}"
        )
    return int(num_seen)


def _check_gamma(gamma) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not np.isfinite(gamma):
        raise ValueError(f"the calibration gamma must be a finite number, got {gamma!r}")
    return float(gamma)


def calibrated_stacking(scores, num_seen: int, gamma: float) -> np.ndarray:
    """Scores with `gamma` subtracted from the seen labels' columns (the first `num_seen`).

    Calibrated stacking (Chao et al., ECCV 2016, eq. 2): a model trained on the seen
    labels scores them too high for unseen images; predicting argmax_y s(x, y) - gamma
    * [y seen] trades seen accuracy for unseen accuracy. gamma = 0 is the raw model, a
    large gamma predicts only unseen labels, a negative gamma favours the seen ones.

    Args:
        scores: (N, L) scores over seen + unseen labels, seen columns first.
        num_seen: how many leading columns are seen labels (1 <= num_seen < L).
        gamma: the finite constant to subtract.

    Returns:
        A float64 copy of `scores` with the seen columns lowered by gamma.

    Example:
    >>> calibrated_stacking([[0.9, 0.5, 0.7]], num_seen=2, gamma=0.3).round(4).tolist()
    [[0.6, 0.2, 0.7]]
    """
    scores = np.array(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a (num_images, num_labels) matrix, got {scores.shape}")
    num_seen = _check_num_seen(num_seen, scores.shape[1])
    scores[:, :num_seen] -= _check_gamma(gamma)
    return scores


def _top1_competitors(scores, y_true, num_seen: int, seen_images: bool):
    """Per row (true score, best other seen score, best other unseen score), (N, 3).

    Top-1 correctness after calibration depends only on these three numbers:
    subtracting gamma is monotonic in floating point too (max(x - g) == max(x) - g), and
    a NaN competitor stays NaN. So every gamma is scored on an (N, 3) matrix by the one
    rank rule of `true_label_ranks`, not on a fresh (N, L) copy.
    """
    what = "seen" if seen_images else "unseen"
    scores, y_true = _scores_and_labels(scores, y_true)
    num_seen = _check_num_seen(num_seen, scores.shape[1])
    if len(y_true) == 0:
        raise ValueError(f"no {what} images")
    wrong = y_true >= num_seen if seen_images else y_true < num_seen
    if wrong.any():
        raise ValueError(
            f"{what} images must have {what} label ids ({'<' if seen_images else '>='} "
            f"num_seen={num_seen}), got {sorted(set(y_true[wrong].tolist()))}"
        )
    rows = np.arange(len(y_true))
    true = scores[rows, y_true]
    others = scores.copy()
    others[rows, y_true] = -np.inf
    # np.max keeps NaN, so a NaN competitor still ranks above the true label.
    best_seen = others[:, :num_seen].max(axis=1)
    best_unseen = others[:, num_seen:].max(axis=1)
    return np.stack([true, best_seen, best_unseen], axis=1), y_true


def _calibrated_accuracy(reduced, y_true, seen_images: bool, gamma: float) -> float:
    # Columns (true, best other seen, best other unseen): the seen ones are lowered.
    seen_columns = [0, 1] if seen_images else [1]
    calibrated = reduced.copy()
    calibrated[:, seen_columns] -= gamma
    ranks = true_label_rank_numpy(np.zeros(len(calibrated), np.int64), calibrated)
    return _per_class_mean(ranks == 1, y_true)


def calibrated_generalized_zero_shot(
    seen_scores,
    seen_y,
    unseen_scores,
    unseen_y,
    num_seen: int,
    gamma: float,
) -> dict[str, float]:
    """`generalized_zero_shot` after `calibrated_stacking` with `gamma`: u, s and H.

    The same numbers as ``generalized_zero_shot(calibrated_stacking(seen_scores, ...),
    seen_y, calibrated_stacking(unseen_scores, ...), unseen_y)``, computed without a
    calibrated copy of the score matrices.

    Args:
        seen_scores, seen_y: images of seen classes, (N, L) scores over all labels (seen
            columns first) and label ids < num_seen.
        unseen_scores, unseen_y: images of unseen classes, label ids >= num_seen.
        num_seen: the first `num_seen` columns are the seen labels.
        gamma: subtracted from the seen labels' scores (0: the raw model).

    Returns:
        {"u": ..., "s": ..., "H": ...}.

    Example:
    >>> seen, unseen = [[0.9, 0.1, 0.7]], [[0.8, 0.1, 0.6]]  # label 2 is unseen
    >>> calibrated_generalized_zero_shot(seen, [0], unseen, [2], 2, 0.0)
    {'u': 0.0, 's': 1.0, 'H': 0.0}
    >>> calibrated_generalized_zero_shot(seen, [0], unseen, [2], 2, 0.25)
    {'u': 1.0, 's': 0.0, 'H': 0.0}
    """
    gamma = _check_gamma(gamma)
    seen_reduced, seen_y = _top1_competitors(seen_scores, seen_y, num_seen, True)
    unseen_reduced, unseen_y = _top1_competitors(unseen_scores, unseen_y, num_seen, False)
    _check_same_label_count(seen_scores, unseen_scores)
    s = _calibrated_accuracy(seen_reduced, seen_y, True, gamma)
    u = _calibrated_accuracy(unseen_reduced, unseen_y, False, gamma)
    return {"u": u, "s": s, "H": harmonic_mean(u, s)}


def _check_same_label_count(seen_scores, unseen_scores) -> None:
    seen_labels, unseen_labels = np.shape(seen_scores)[1], np.shape(unseen_scores)[1]
    if seen_labels != unseen_labels:
        raise ValueError(
            f"seen images are scored over {seen_labels} labels, unseen images over "
            f"{unseen_labels}: both must be scored over the same seen + unseen labels"
        )


DEFAULT_CALIBRATION_GRID_SIZE = 101


def calibration_grid(
    seen_scores,
    unseen_scores,
    num_seen: int,
    max_points: int = DEFAULT_CALIBRATION_GRID_SIZE,
) -> np.ndarray:
    """Candidate gammas for `choose_calibration`, from the rows' top-score gaps.

    An image's top-1 label switches from seen to unseen exactly when gamma crosses its
    gap ``max(seen scores) - max(unseen scores)``, so u, s and H are constant between
    consecutive gaps. The grid is one gamma below the smallest gap, the midpoint of
    each pair of consecutive gaps, one above the largest (half the gap spread away, or
    0.5 when all gaps are equal), and 0 (the raw model) - the exact optimum over all
    gammas. With more than `max_points` distinct gaps, `max_points` quantiles of all
    the rows' gaps stand in for them. Rows with a non-finite gap are left out.

    Args:
        seen_scores, unseen_scores: (N, L) validation scores, seen columns first.
        num_seen: the first `num_seen` columns are the seen labels.
        max_points: cap on the number of gaps the grid is built from (>= 2).

    Returns:
        Sorted unique float64 gammas.

    Example:
    >>> calibration_grid([[0.9, 0.1, 0.7]], [[0.8, 0.1, 0.2], [0.3, 0.1, 0.6]], 2).round(4)
    array([-0.75, -0.05,  0.  ,  0.4 ,  1.05])
    """
    if isinstance(max_points, bool) or not isinstance(max_points, numbers.Integral):
        raise ValueError(f"max_points must be an int >= 2, got {max_points!r}")
    if max_points < 2:
        raise ValueError(f"max_points must be an int >= 2, got {max_points!r}")
    _check_same_label_count(seen_scores, unseen_scores)
    gaps = []
    for scores in (seen_scores, unseen_scores):
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2:
            raise ValueError(
                f"scores must be a (num_images, num_labels) matrix, got {scores.shape}"
            )
        n = _check_num_seen(num_seen, scores.shape[1])
        if len(scores):
            gaps.append(scores[:, :n].max(axis=1) - scores[:, n:].max(axis=1))
    all_gaps = np.concatenate(gaps) if gaps else np.zeros(0)
    all_gaps = all_gaps[np.isfinite(all_gaps)]
    gaps = np.unique(all_gaps)
    if gaps.size == 0:
        return np.zeros(1)
    if gaps.size > max_points:
        # Quantiles over the rows, so the grid is densest where most images switch.
        gaps = np.unique(np.quantile(all_gaps, np.linspace(0.0, 1.0, int(max_points))))
    spread = gaps[-1] - gaps[0]
    pad = 0.5 * spread if spread > 0 else 0.5
    grid = np.concatenate([[gaps[0] - pad], (gaps[:-1] + gaps[1:]) / 2, [gaps[-1] + pad, 0.0]])
    return np.unique(grid)


def choose_calibration(
    seen_scores,
    seen_y,
    unseen_scores,
    unseen_y,
    num_seen: int,
    gammas: Sequence[float] | None = None,
) -> tuple[float, list[dict[str, float]]]:
    """The calibrated-stacking gamma with the best H on a validation set (Chao et al., 2016).

    Choose gamma on images and classes the test never sees: the unseen classes here
    must be disjoint from the test's unseen classes (e.g. seen classes held out of
    training as pseudo-unseen), or the reported H is tuned on the test. The caller
    guarantees that; this function cannot check it.

    Args:
        seen_scores, seen_y: validation images of seen classes, (N, L) scores over all
            labels (seen columns first) and their label ids (< num_seen).
        unseen_scores, unseen_y: validation images of the (pseudo-)unseen classes.
        num_seen: the first `num_seen` columns are the seen labels.
        gammas: the candidates; default `calibration_grid` (which holds the exact
            optimum when there are at most 101 distinct top-score gaps).

    Returns:
        (gamma, table): the gamma with the highest H - on a tie the one nearest 0, then
        the smaller - and one {"gamma", "u", "s", "H"} row per candidate, by gamma.

    Example:
    >>> # Top-score gaps (seen - unseen): seen image 0.4, unseen images 0.2 and -0.3.
    >>> seen, unseen = [[0.9, 0.1, 0.5]], [[0.8, 0.1, 0.6], [0.3, 0.1, 0.6]]
    >>> gamma, table = choose_calibration(seen, [0], unseen, [2, 2], 2, [0.0, 0.3, 0.5])
    >>> gamma, [round(row["H"], 4) for row in table]  # 0.3 gets all three right
    (0.3, [0.6667, 1.0, 0.0])
    """
    if gammas is None:
        gammas = calibration_grid(seen_scores, unseen_scores, num_seen)
    gammas = sorted({_check_gamma(g) for g in gammas})
    if not gammas:
        raise ValueError("no calibration gammas to choose from")
    _check_same_label_count(seen_scores, unseen_scores)
    seen_reduced, seen_y = _top1_competitors(seen_scores, seen_y, num_seen, True)
    unseen_reduced, unseen_y = _top1_competitors(unseen_scores, unseen_y, num_seen, False)
    table = []
    for gamma in gammas:
        s = _calibrated_accuracy(seen_reduced, seen_y, True, gamma)
        u = _calibrated_accuracy(unseen_reduced, unseen_y, False, gamma)
        table.append({"gamma": gamma, "u": u, "s": s, "H": harmonic_mean(u, s)})
    best = max(table, key=lambda row: (row["H"], -abs(row["gamma"]), -row["gamma"]))
    return best["gamma"], table


def unit_rows(matrix, what: str = "vectors") -> np.ndarray:
    """Rows scaled to unit L2 norm (float64); raises on zero or non-finite rows."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be a 2-D matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{what} have non-finite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(f"{what} have all-zero row(s) {zero[:10].tolist()}: no cosine defined")
    return matrix / norms


def cosine_scores(embeddings, label_vectors) -> np.ndarray:
    """(N, L) cosine similarities of image embeddings (N, D) to label vectors (L, D)."""
    embeddings = unit_rows(embeddings, "embeddings")
    label_vectors = unit_rows(label_vectors, "label vectors")
    if embeddings.shape[1] != label_vectors.shape[1]:
        raise ValueError(
            f"embeddings have dim {embeddings.shape[1]}, label vectors {label_vectors.shape[1]}"
        )
    return embeddings @ label_vectors.T


def conse_embedding(probabilities, seen_vectors, top_t: int = 10) -> np.ndarray:
    """ConSE image embeddings: sum_t p(y_t|x) v(y_t) / sum_t p(y_t|x) over the top T labels.

    Norouzi et al. (ICLR 2014), eq. 1: the softmax classifier's T most probable
    seen labels vote with their probabilities for a point in the word-vector space.

    Args:
        probabilities: (N, C) softmax outputs over the seen labels.
        seen_vectors: (C, D) unit word vectors of those labels, same order.
        top_t: T, capped at C. Equal probabilities are taken in label order.

    Returns:
        (N, D) float64 embeddings (not normalized; rank labels by cosine).

    Example:
    >>> e = conse_embedding([[0.6, 0.3, 0.1]], [[1, 0], [0, 1], [-1, 0]], top_t=2)
    >>> [round(float(x), 4) for x in e[0]]  # (0.6 * [1, 0] + 0.3 * [0, 1]) / 0.9
    [0.6667, 0.3333]
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    seen_vectors = np.asarray(seen_vectors, dtype=np.float64)
    if probabilities.ndim != 2 or seen_vectors.ndim != 2:
        raise ValueError(
            f"probabilities (N, C) and seen_vectors (C, D) must be 2-D, got "
            f"{probabilities.shape} and {seen_vectors.shape}"
        )
    if probabilities.shape[1] != seen_vectors.shape[0]:
        raise ValueError(
            f"{probabilities.shape[1]} probability columns but {seen_vectors.shape[0]} "
            "seen label vectors"
        )
    if not np.isfinite(probabilities).all() or (probabilities < 0).any():
        raise ValueError("probabilities must be finite and >= 0")
    t = min(_check_k(top_t), probabilities.shape[1])
    # Stable sort on -p: equal probabilities keep label order, so results are reproducible.
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :t]
    weights = np.take_along_axis(probabilities, top, axis=1)
    totals = weights.sum(axis=1, keepdims=True)
    if (totals == 0).any():
        raise ValueError("a row's top-T probabilities sum to 0: no ConSE embedding")
    return np.einsum("nt,ntd->nd", weights, seen_vectors[top]) / totals


def conse_scores(probabilities, seen_vectors, label_vectors, top_t: int = 10) -> np.ndarray:
    """(N, L) cosine scores of the ConSE embeddings against any label set (L, D)."""
    return cosine_scores(conse_embedding(probabilities, seen_vectors, top_t), label_vectors)


def ground_truth_set(distances, label: int, k: int) -> np.ndarray:
    """Labels within the smallest hop radius r around `label` that holds >= k labels.

    The paper's hierarchical precision@k (Frome et al., supplementary): the list of
    "correct" labels for a true label grows hop by hop through the hierarchy until it
    has at least k labels (or every reachable label, when fewer are reachable).
    """
    row = np.asarray(distances, dtype=np.float64)[label]
    reachable = np.unique(row[np.isfinite(row)])
    for radius in reachable:
        members = np.flatnonzero(row <= radius)
        if members.size >= k:
            return members
    return np.flatnonzero(np.isfinite(row))


def _pessimistic_top_k_hits(row_scores: np.ndarray, in_set: np.ndarray, k: int) -> int:
    """How many of the top k labels are in the set, ties and NaN counted against it."""
    nan = np.isnan(row_scores)
    effective = np.where(nan, np.where(in_set, -np.inf, np.inf), row_scores)
    # lexsort: the last key is primary (higher score first), then outsiders first.
    order = np.lexsort((in_set, -effective))
    return int(in_set[order[:k]].sum())


def hierarchical_precision_at_k(
    scores,
    y_true,
    distances,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
) -> dict[str, object]:
    """Mean hierarchical precision@k: share of the top k labels in the true label's set.

    Args:
        scores: (N, L) scores over the L candidate labels.
        y_true: (N,) true label ids (columns of `scores`).
        distances: (L, L) hop distances between the labels (np.inf where unrelated or
            a label has no synset; 0 on the diagonal). Images whose true label reaches
            no other label (no synset) are skipped and counted.
        k_values: cut-offs, capped at L.

    Top k is taken by score with ties counted against the model, as in hit@k: among
    equal scores the labels outside the true label's set come first, a NaN score ranks
    first outside the set and last inside it. At k = 1 the measure is hit@1.

    Returns:
        {"precision": {k: value}, "num_images": used, "num_skipped": skipped}.

    Example:
    >>> d = [[0, 2, 4], [2, 0, 4], [4, 4, 0]]  # labels 0 and 1 are siblings
    >>> hierarchical_precision_at_k([[0.1, 0.9, 0.0]], [0], d, [1, 2])["precision"]
    {1: 0.0, 2: 1.0}
    """
    scores, y_true = _scores_and_labels(scores, y_true)
    distances = np.asarray(distances, dtype=np.float64)
    num_labels = scores.shape[1]
    if distances.shape != (num_labels, num_labels):
        raise ValueError(
            f"distances must be ({num_labels}, {num_labels}) for {num_labels} labels, "
            f"got {distances.shape}"
        )
    ks = capped_k_values(k_values, num_labels)
    finite = np.isfinite(distances)
    np.fill_diagonal(finite, False)
    usable = finite[y_true].any(axis=1)
    precision = {}
    for k in ks:
        sets = {}
        values = []
        for row, label in enumerate(y_true.tolist()):
            if not usable[row]:
                continue
            if label not in sets:
                in_set = np.zeros(num_labels, bool)
                in_set[ground_truth_set(distances, label, k)] = True
                sets[label] = in_set
            values.append(_pessimistic_top_k_hits(scores[row], sets[label], k) / k)
        precision[k] = float(np.mean(values)) if values else float("nan")
    return {
        "precision": precision,
        "num_images": int(usable.sum()),
        "num_skipped": int((~usable).sum()),
    }


def chance_hit_at_k(num_labels: int, k_values: Sequence[int] = DEFAULT_K_VALUES) -> dict:
    """Expected hit@k of a uniformly random ranking: k / L (for k <= L)."""
    return {k: k / num_labels for k in capped_k_values(k_values, num_labels)}


DEFAULT_HOPS = (2, 3)


def hop_buckets(distances, num_seen: int, hops: Sequence[int] = DEFAULT_HOPS) -> dict:
    """Unseen label ids grouped by hop distance to their nearest seen label.

    The paper's 2-hop / 3-hop zero-shot tasks (Frome et al., Table 3) use the labels
    within h hops of a training label. Labels `num_seen..L-1` are the unseen ones;
    a label without a path to any seen label (no WordNet synset: inf) is in no bucket.

    Returns:
        {"<=h": ids, ..., "mapped": ids with a finite distance}, ids as int arrays.

    Example:
    >>> inf = float("inf")
    >>> d = np.array([[0, 4, 2, 3, inf], [4, 0, 5, 1, inf], [2, 5, 0, 3, inf],
    ...               [3, 1, 3, 0, inf], [inf, inf, inf, inf, 0]])
    >>> {name: ids.tolist() for name, ids in hop_buckets(d, 2).items()}
    {'<=2': [2, 3], '<=3': [2, 3], 'mapped': [2, 3]}
    """
    distances = np.asarray(distances, dtype=np.float64)
    if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(f"distances must be (L, L), got shape {distances.shape}")
    if not 0 < num_seen < distances.shape[0]:
        raise ValueError(f"num_seen must be in [1, {distances.shape[0] - 1}], got {num_seen}")
    unseen = np.arange(num_seen, distances.shape[0])
    nearest = distances[num_seen:, :num_seen].min(axis=1)
    out = {f"<={h}": unseen[nearest <= h] for h in hops}
    out["mapped"] = unseen[np.isfinite(nearest)]
    return out


def zero_shot_hit_at_k_by_hops(
    scores,
    y_true,
    distances,
    num_seen: int,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    hops: Sequence[int] = DEFAULT_HOPS,
) -> dict[str, dict]:
    """Zero-shot "-0" hit@k within each `hop_buckets` bucket.

    For each bucket the candidates are its labels and the images are those of its
    labels (the paper's 2-hop / 3-hop "-0" rows). A bucket with fewer than 2 labels or
    no images gets its counts only.

    Returns:
        {bucket: {"labels": n, "images": m, "hit_at_k": {k: value}}}.

    Example (label 4 has no path to a seen label; image 2 is of label 4):
    >>> inf = float("inf")
    >>> d = np.array([[0, 4, 2, 3, inf], [4, 0, 5, 1, inf], [2, 5, 0, 3, inf],
    ...               [3, 1, 3, 0, inf], [inf, inf, inf, inf, 0]])
    >>> scores = [[0, 0, 0.2, 0.9, 0.1], [0, 0, 0.5, 0.6, 0.9], [0, 0, 0.1, 0.2, 0.3]]
    >>> by_hops = zero_shot_hit_at_k_by_hops(scores, [2, 3, 4], d, 2, [1], hops=(2,))
    >>> by_hops["<=2"]
    {'labels': 2, 'images': 2, 'hit_at_k': {1: 0.5}}
    """
    scores, y_true = _scores_and_labels(scores, y_true)
    out = {}
    for name, bucket in hop_buckets(distances, num_seen, hops).items():
        rows = np.isin(y_true, bucket)
        entry: dict = {"labels": int(len(bucket)), "images": int(rows.sum())}
        if len(bucket) >= 2 and rows.any():
            entry["hit_at_k"] = zero_shot_hit_at_k(
                scores[rows], y_true[rows], bucket.tolist(), k_values, "-0"
            )
        out[name] = entry
    return out


OPEN_SET_HOPS = (0, 2, 3)


def _hop_key(hops: int) -> str:
    return "exact" if hops == 0 else f"<={hops}"


def open_set_hit_at_k(
    top_ids,
    true_ids,
    neighbourhoods,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    hops: Sequence[int] = OPEN_SET_HOPS,
) -> dict[str, dict[int, float]]:
    """Hit@k among ALL WordNet noun synsets, exact and within h hops of the true synset.

    The paper's large-scale protocol (Frome et al., NIPS 2013, section 4.3): each image
    is ranked among every noun synset (`devise_keras.wordnet.noun_synset_texts`,
    searched with `devise_keras.LabelIndex`) plus the dataset's own labels, and a top-k
    prediction counts when it is the image's synset ("exact") or within h hops of it
    (`WordNet.synsets_within_hops`: up hypernyms to a common ancestor, then down).

    A dataset label takes part as the synset it maps to (`WordNet.open_set_id`: the
    label, after aliases, as a whole WordNet noun lemma, first sense - the mapping of
    the hierarchical metrics), so ranking the label's own vector or the synset's text
    vector is the same prediction; a label without a synset is an id of its own
    (its text), hit only exactly. Each row's ids are de-duplicated keeping the first
    (best) occurrence, so top k means k distinct predictions: fetch at least max(k) +
    (number of dataset labels) candidates per image.

    Args:
        top_ids: (N, K) ranked candidate ids per image, best first (ints for synsets,
            strings for labels without one - any hashable ids, as long as they match
            the keys of `neighbourhoods`).
        true_ids: (N,) each image's id in the same id space.
        neighbourhoods: true id -> {id: hops} of the ids within max(hops) hops (e.g.
            `WordNet.neighbourhood(true_id, max(hops))`); every true id needs one.
        k_values: cut-offs; each needs that many distinct ids in every row.
        hops: radii; 0 is the exact hit.

    Returns:
        {"exact": {k: hit@k}, "<=2": {k: ...}, "<=3": {k: ...}} (one key per hop).

    Example:
    >>> near = {"dog": {"dog": 0, "canine": 1, "wolf": 2, "cat": 4}}
    >>> top = [["wolf", "dog", "cat"], ["cat", "wolf", "wolf"]]
    >>> open_set_hit_at_k(top, ["dog", "dog"], near, k_values=[1, 2], hops=(0, 2))
    {'exact': {1: 0.0, 2: 0.5}, '<=2': {1: 0.5, 2: 1.0}}
    """
    rows = [list(row) for row in (top_ids.tolist() if isinstance(top_ids, np.ndarray) else top_ids)]
    true_ids = true_ids.tolist() if isinstance(true_ids, np.ndarray) else list(true_ids)
    if not rows:
        raise ValueError("no images to evaluate")
    if len(true_ids) != len(rows):
        raise ValueError(f"{len(true_ids)} true ids for {len(rows)} rows of top ids")
    ks = sorted({_check_k(k) for k in k_values})
    if not ks:
        raise ValueError("k_values is empty")
    radii = sorted(
        {
            int(h)
            for h in hops
            if not isinstance(h, bool) and isinstance(h, numbers.Integral) and h >= 0
        }
    )
    if not radii or len(radii) != len(set(hops)):
        raise ValueError(f"hops must be ints >= 0, got {list(hops)!r}")
    missing = sorted({repr(t) for t in true_ids if t not in neighbourhoods})
    if missing:
        raise ValueError(f"no neighbourhood for true id(s) {missing[:10]}")
    # hits[h][k] counts the images with a hit within h hops in their top k.
    hits = {h: dict.fromkeys(ks, 0) for h in radii}
    for number, (row, true) in enumerate(zip(rows, true_ids, strict=True)):
        distinct = list(dict.fromkeys(row))
        if len(distinct) < ks[-1]:
            raise ValueError(
                f"row {number} has {len(distinct)} distinct ids among its {len(row)} "
                f"candidates, fewer than k={ks[-1]}: fetch more candidates per image"
            )
        near = neighbourhoods[true]
        first = {}  # hop radius -> rank (1-based) of the first candidate within it
        for rank, candidate in enumerate(distinct[: ks[-1]], start=1):
            distance = 0 if candidate == true else near.get(candidate)
            if distance is None:
                continue
            for h in radii:
                if distance <= h and h not in first:
                    first[h] = rank
            if len(first) == len(radii):
                break
        for h, rank in first.items():
            for k in ks:
                hits[h][k] += rank <= k
    return {_hop_key(h): {k: hits[h][k] / len(rows) for k in ks} for h in radii}
