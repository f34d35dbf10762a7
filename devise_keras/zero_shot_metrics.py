"""The zero-shot report's numbers: every metric of one model, the chance row, WordNet.

One home for what the ZeroShotEvaluator component writes into report.json and what the
benchmark driver (`bench/zero_shot_report.py`) tabulates, both from score matrices over
ALL labels (seen label columns first, then unseen). The metrics themselves live in
`devise_keras.zero_shot`; this module composes them into the report's layout::

    {"devise" | "softmax" | "conse" | "chance": {
        "flat_hit_at_k": {k: v},                                 # eval images, seen labels
        "zero_shot_hit_at_k": {"-0": {k: v}, "+seen": {k: v}},   # unseen images
        "gzsl": {"u": v, "s": v, "H": v},
        "gzsl_calibrated": {"u": v, "s": v, "H": v},             # with a calibration gamma
        "hierarchical_precision_at_k": {"seen": {k: v}, "+seen": {k: v}},
        "zero_shot_by_hops": {bucket: {"labels", "images", "hit_at_k"}}}}

Keys k are strings (JSON). Pure NumPy; no TFX.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from devise_keras import zero_shot

log = logging.getLogger(__name__)

# Rows of the report, in table order.
MODEL_NAMES = ("devise", "softmax", "conse", "chance")


def check_k_values(k_values: Sequence[int]) -> list[int]:
    """`k_values` sorted without repeats; ValueError unless a non-empty list of ints >= 1.

    Args:
        k_values: the hit@k cut-offs.

    Example:
    >>> check_k_values([5, 1, 5])
    [1, 5]
    """
    ks = list(k_values)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"k_values must be a non-empty list of ints >= 1, got {k_values!r}")
    return sorted(set(ks))


def _keyed(values: dict) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.items()}


def model_metrics(
    seen_scores,
    seen_y,
    unseen_scores,
    unseen_y,
    num_seen: int,
    k_values: Sequence[int],
    distances,
    zero_shot_ok: bool = True,
    calibration: float | None = None,
) -> dict[str, Any]:
    """Every metric of one model, from its scores over ALL labels (seen columns first).

    Ties count against the model (`zero_shot.true_label_ranks`); k is capped by the
    number of labels ranked.

    Args:
        seen_scores: (N, L) scores of the eval images (seen classes) over all L labels.
        seen_y: (N,) their label columns, in [0, num_seen).
        unseen_scores: (M, L) scores of the unseen-class images; None when there are none.
        unseen_y: (M,) their label columns, in [num_seen, L); None when there are none.
        num_seen: the first `num_seen` columns are the seen labels.
        k_values: cut-offs.
        distances: (L, L) label-to-label hop distances (WordNet) or None.
        zero_shot_ok: False for a model that cannot score unseen labels (softmax): no
            zero-shot hit@k, hop buckets or calibrated GZSL.
        calibration: a calibrated-stacking gamma; when set (and zero_shot_ok), also
            "gzsl_calibrated" = u/s/H with gamma subtracted from the seen scores.

    Example:
    >>> seen = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1]])  # labels: a, b (seen), c
    >>> unseen = np.array([[0.6, 0.1, 0.7]])                 # an image of c
    >>> m = model_metrics(seen, [0, 1], unseen, [2], 2, [1], None)
    >>> m["flat_hit_at_k"], m["zero_shot_hit_at_k"]["+seen"], m["gzsl"]["H"]
    ({'1': 1.0}, {'1': 1.0}, 1.0)
    """
    seen_scores = np.asarray(seen_scores)
    out: dict[str, Any] = {
        "flat_hit_at_k": _keyed(zero_shot.hit_at_k(seen_scores[:, :num_seen], seen_y, k_values))
    }
    hierarchical = {}
    if distances is not None:
        hierarchical["seen"] = _keyed(
            zero_shot.hierarchical_precision_at_k(
                seen_scores[:, :num_seen], seen_y, distances[:num_seen, :num_seen], k_values
            )["precision"]
        )
    if unseen_scores is not None and len(unseen_y):
        unseen_ids = list(range(num_seen, seen_scores.shape[1]))
        if zero_shot_ok:
            out["zero_shot_hit_at_k"] = {
                p: _keyed(
                    zero_shot.zero_shot_hit_at_k(unseen_scores, unseen_y, unseen_ids, k_values, p)
                )
                for p in zero_shot.PROTOCOLS
            }
            if distances is not None:
                hierarchical["+seen"] = _keyed(
                    zero_shot.hierarchical_precision_at_k(
                        unseen_scores, unseen_y, distances, k_values
                    )["precision"]
                )
                out["zero_shot_by_hops"] = {
                    bucket: {**entry, "hit_at_k": _keyed(entry.get("hit_at_k", {}))}
                    for bucket, entry in zero_shot.zero_shot_hit_at_k_by_hops(
                        unseen_scores, unseen_y, distances, num_seen, k_values
                    ).items()
                }
        out["gzsl"] = zero_shot.generalized_zero_shot(seen_scores, seen_y, unseen_scores, unseen_y)
        if calibration is not None and zero_shot_ok:
            out["gzsl_calibrated"] = zero_shot.calibrated_generalized_zero_shot(
                seen_scores, seen_y, unseen_scores, unseen_y, num_seen, calibration
            )
    if hierarchical:
        out["hierarchical_precision_at_k"] = hierarchical
    return out


def chance_metrics(
    seen_y, unseen_y, num_seen: int, num_labels: int, k_values: Sequence[int], distances
) -> dict[str, Any]:
    """Expected metrics of a uniformly random ranking (the report's "chance" row).

    Args:
        seen_y: (N,) label columns of the eval images (seen classes).
        unseen_y: (M,) label columns of the unseen-class images, or None.
        num_seen: how many of the labels are seen (the first columns).
        num_labels: how many labels there are (seen + unseen).
        k_values: cut-offs.
        distances: (L, L) label-to-label hop distances (WordNet) or None.

    Example:
    >>> m = chance_metrics([0, 1], [2, 3], 2, 4, [1, 2], None)
    >>> m["flat_hit_at_k"], m["zero_shot_hit_at_k"]["+seen"], m["gzsl"]["H"]
    ({'1': 0.5, '2': 1.0}, {'1': 0.25, '2': 0.5}, 0.25)
    """

    def hierarchical(y, dist):
        n = dist.shape[0]
        return {
            str(k): float(
                np.mean([len(zero_shot.ground_truth_set(dist, int(label), k)) / n for label in y])
            )
            for k in zero_shot.capped_k_values(k_values, n)
        }

    out: dict[str, Any] = {"flat_hit_at_k": _keyed(zero_shot.chance_hit_at_k(num_seen, k_values))}
    if distances is not None:
        out["hierarchical_precision_at_k"] = {
            "seen": hierarchical(seen_y, distances[:num_seen, :num_seen])
        }
    if unseen_y is not None and len(unseen_y):
        out["zero_shot_hit_at_k"] = {
            "-0": _keyed(zero_shot.chance_hit_at_k(num_labels - num_seen, k_values)),
            "+seen": _keyed(zero_shot.chance_hit_at_k(num_labels, k_values)),
        }
        out["gzsl"] = {"u": 1 / num_labels, "s": 1 / num_labels, "H": 1 / num_labels}
        if distances is not None:
            out["hierarchical_precision_at_k"]["+seen"] = hierarchical(unseen_y, distances)
            out["zero_shot_by_hops"] = {
                bucket: {
                    "labels": int(len(ids)),
                    "images": int(np.isin(unseen_y, ids).sum()),
                    "hit_at_k": _keyed(zero_shot.chance_hit_at_k(len(ids), k_values))
                    if len(ids) >= 2
                    else {},
                }
                for bucket, ids in zero_shot.hop_buckets(distances, num_seen).items()
            }
    return out


def padded_softmax_scores(probabilities, num_labels: int) -> np.ndarray:
    """A softmax classifier's (N, S) probabilities as scores over all `num_labels` labels.

    The unseen columns get -1, below every probability: softmax never ranks an unseen
    label first (the report's "softmax" row).

    Args:
        probabilities: (N, S) probabilities over the S seen labels.
        num_labels: S + the number of unseen labels.

    Example:
    >>> padded_softmax_scores([[0.7, 0.3]], 3).tolist()
    [[0.7, 0.3, -1.0]]
    """
    probabilities = np.asarray(probabilities, np.float64)
    extra = num_labels - probabilities.shape[1]
    if extra < 0:
        raise ValueError(
            f"num_labels={num_labels} is below the {probabilities.shape[1]} softmax classes"
        )
    return np.concatenate([probabilities, -np.ones((len(probabilities), extra))], axis=1)


def report_models(
    label_vectors,
    num_seen: int,
    k_values: Sequence[int],
    seen_y,
    seen_embeddings,
    unseen_y=None,
    unseen_embeddings=None,
    seen_probabilities=None,
    unseen_probabilities=None,
    conse_top_t: int = 10,
    distances=None,
    calibration: float | None = None,
) -> dict[str, dict[str, Any]]:
    """The report's rows: DeViSE, and Softmax + ConSE when probabilities are given, and chance.

    DeViSE scores are dot products of the image embeddings with the label vectors (as
    `LabelSimilarity` computes them); ConSE (Norouzi et al., ICLR 2014) embeds each
    image as the probability-weighted mean of its top-T seen label vectors.

    Args:
        label_vectors: (L, D) unit label vectors, the seen labels first.
        num_seen: how many of the labels are seen.
        k_values: cut-offs.
        seen_y: (N,) label columns of the eval images.
        seen_embeddings: (N, D) DeViSE embeddings of the eval images.
        unseen_y: (M,) label columns of the unseen-class images, or None.
        unseen_embeddings: (M, D) their embeddings, or None.
        seen_probabilities: (N, num_seen) softmax probabilities of the eval images, or
            None (no softmax classifier: no Softmax and ConSE rows).
        unseen_probabilities: (M, num_seen) those of the unseen-class images, or None.
        conse_top_t: T of ConSE (capped by `num_seen`).
        distances: (L, L) label-to-label hop distances (WordNet) or None.
        calibration: a calibrated-stacking gamma for the DeViSE and ConSE rows, or None.

    Example:
    >>> vectors = np.eye(3)                     # labels a, b (seen), c (unseen)
    >>> rows = report_models(vectors, 2, [1], [0], [[1.0, 0.2, 0.0]], [2], [[0.3, 0, 1]])
    >>> sorted(rows), rows["devise"]["zero_shot_hit_at_k"]["-0"]
    (['chance', 'devise'], {'1': 1.0})
    """
    label_vectors = np.asarray(label_vectors, np.float64)
    num_labels = len(label_vectors)

    def both(fn, seen_x, unseen_x):
        return fn(np.asarray(seen_x, np.float64)), (
            None if unseen_x is None else fn(np.asarray(unseen_x, np.float64))
        )

    def metrics(scores, zero_shot_ok=True, gamma=calibration):
        seen_scores, unseen_scores = scores
        return model_metrics(
            seen_scores,
            seen_y,
            unseen_scores,
            unseen_y,
            num_seen,
            k_values,
            distances,
            zero_shot_ok,
            gamma,
        )

    models = {
        "devise": metrics(both(lambda e: e @ label_vectors.T, seen_embeddings, unseen_embeddings))
    }
    if seen_probabilities is not None:
        models["softmax"] = metrics(
            both(
                lambda p: padded_softmax_scores(p, num_labels),
                seen_probabilities,
                unseen_probabilities,
            ),
            zero_shot_ok=False,
            gamma=None,
        )
        seen_vectors = label_vectors[:num_seen]
        models["conse"] = metrics(
            both(
                lambda p: zero_shot.conse_scores(p, seen_vectors, label_vectors, conse_top_t),
                seen_probabilities,
                unseen_probabilities,
            )
        )
    models["chance"] = chance_metrics(seen_y, unseen_y, num_seen, num_labels, k_values, distances)
    return models


def wordnet_distances(
    labels: Sequence[str], wordnet_dir: str = ""
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Hop distances between the labels' WordNet noun synsets, and what was mapped.

    Args:
        labels: label names (seen first, then unseen: the score columns' order).
        wordnet_dir: a WordNet dict/ directory; "" looks in the usual places
            (`devise_keras.wordnet.find_wordnet_dir`).

    Returns:
        (distances (L, L) or None, info): info is {"directory", "labels" (each label's
        synset mapping), "without_synset"}; when no WordNet is found, distances is None
        and info is {"skipped": reason}.

    Example:
    >>> distances, info = wordnet_distances(["dog", "cat"], "/no/such/wordnet")  # doctest: +SKIP
    >>> distances is None, "skipped" in info                                     # doctest: +SKIP
    (True, True)
    """
    from devise_keras.wordnet import WordNet, WordNetNotFoundError, find_wordnet_dir

    try:
        directory = find_wordnet_dir([wordnet_dir] if wordnet_dir else None)
    except WordNetNotFoundError as e:
        log.warning("hierarchical precision skipped: %s", e)
        return None, {"skipped": str(e)}
    distances, mapping = WordNet(directory).label_distances(list(labels))
    without = [m["label"] for m in mapping if m["synset"] is None]
    if without:
        log.warning("labels without a WordNet noun synset (skipped): %s", without)
    return distances, {"directory": str(directory), "labels": mapping, "without_synset": without}


def render_markdown(report: dict[str, Any]) -> str:
    """A readable summary of a zero-shot report: one table per metric family, values in %.

    Args:
        report: the report's content, with "labels" ({"seen", "unseen"}), "counts"
            ({"eval", "unseen"}), "models" (rows of `report_models`), optionally
            "gzsl_calibration" and "notes".

    Example:
    >>> rows = {"devise": {"flat_hit_at_k": {"1": 0.5}}}
    >>> report = {"labels": {"seen": ["a", "b"], "unseen": []}, "models": rows,
    ...           "counts": {"eval": 2, "unseen": 0}}
    >>> "| devise | 50.0 |" in render_markdown(report)
    True
    """
    models = [m for m in MODEL_NAMES if m in report["models"]]

    def table(title, getter):
        columns: list[str] = []
        for m in models:
            for key in getter(report["models"][m]) or {}:
                if key not in columns:
                    columns.append(key)
        if not columns:
            return []
        lines = [f"### {title}", "", "| model | " + " | ".join(columns) + " |"]
        lines.append("|---|" + "---|" * len(columns))
        for m in models:
            values = getter(report["models"][m]) or {}
            cells = [f"{100 * values[c]:.1f}" if c in values else "—" for c in columns]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        return lines + [""]

    seen, unseen = report["labels"]["seen"], report["labels"]["unseen"]
    lines = [
        "# Zero-shot report",
        "",
        f"{len(seen)} seen labels ({', '.join(seen)}); {len(unseen)} unseen labels "
        f"({', '.join(unseen) or 'none'}). Images: {report['counts']['eval']} eval, "
        f"{report['counts']['unseen']} unseen. Ties count against the model; k is capped "
        "by the label count. Values in %.",
        "",
    ]

    def sub(*path):
        def get(metrics):
            for key in path:
                metrics = (metrics or {}).get(key)
            return metrics

        return get

    lines += table("Flat hit@k, eval images, seen labels", sub("flat_hit_at_k"))
    lines += table('Zero-shot hit@k "-0" (unseen labels only)', sub("zero_shot_hit_at_k", "-0"))
    lines += table(
        'Zero-shot hit@k "+seen" (seen + unseen labels)', sub("zero_shot_hit_at_k", "+seen")
    )
    lines += table("Generalized zero-shot (per-class top-1 over all labels)", sub("gzsl"))
    if report.get("gzsl_calibration") is not None:
        lines += table(
            "Generalized zero-shot, calibrated stacking (seen scores minus "
            f"{report['gzsl_calibration']:g})",
            sub("gzsl_calibrated"),
        )
    lines += table(
        "Hierarchical precision@k (WordNet), eval images, seen labels",
        sub("hierarchical_precision_at_k", "seen"),
    )
    lines += table(
        "Hierarchical precision@k (WordNet), unseen images, all labels",
        sub("hierarchical_precision_at_k", "+seen"),
    )

    def by_hops(metrics):
        return {
            f"{bucket} hops hit@{k}" if bucket != "mapped" else f"all mapped hit@{k}": value
            for bucket, entry in (metrics.get("zero_shot_by_hops") or {}).items()
            for k, value in entry.get("hit_at_k", {}).items()
        }

    lines += table(
        'Zero-shot hit@k "-0" among the unseen labels within h WordNet hops of a seen label',
        by_hops,
    )
    if report.get("notes"):
        lines += ["### Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(lines)
