"""ZeroShotEvaluator executor: Examples + DeViSE model + label vectors -> report.json/.md.

The images of the `eval` (seen classes) and `unseen` splits are decoded batch by batch
with `features.decode_images` (the pixels the trainer and the serving signatures see),
embedded by the DeViSE model, and scored against the unit label vectors of every class
(dot products, as `LabelSimilarity` does). Only the small score matrices are kept, and
every number comes from `devise_keras.zero_shot`, which the benchmark driver shares.

report.json::

    {"labels": {"seen": [...], "unseen": [...]},
     "counts": {"eval": n, "unseen": n, "skipped_without_vector": {label: n}},
     "k_values": [...], "conse_top_t": T,
     "models": {"devise" | "softmax" | "conse" | "chance": {
         "flat_hit_at_k": {k: v},                       # eval images, seen labels
         "zero_shot_hit_at_k": {"-0": {k: v}, "+seen": {k: v}},   # unseen images
         "gzsl": {"u": v, "s": v, "H": v},
         "gzsl_calibrated": {"u": v, "s": v, "H": v},  # with gzsl_calibration set
         "hierarchical_precision_at_k": {"seen": {k: v}, "+seen": {k: v}}}},
     "wordnet": {"directory": ..., "labels": [...], "without_synset": [...]}
                | {"skipped": reason},
     "gzsl_calibration": gamma}                         # only when set

"gzsl_calibrated" is GZSL after calibrated stacking (Chao et al., ECCV 2016): gamma is
subtracted from every seen label's score (in the model's own score units) before the
top-1 label is taken. It is reported for the models that score unseen labels (DeViSE,
ConSE), not for the softmax or chance rows.

Metrics that cannot be computed (no unseen classes, no softmax base model, no WordNet)
are left out and say why in "notes".
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
LABEL_EMBEDDINGS_KEY = "label_embeddings"
BASE_MODEL_KEY = "base_model"
REPORT_KEY = "report"
K_VALUES_KEY = "k_values"
CONSE_TOP_T_KEY = "conse_top_t"
WORDNET_DIR_KEY = "wordnet_dir"
BATCH_SIZE_KEY = "batch_size"
GZSL_CALIBRATION_KEY = "gzsl_calibration"

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
MODEL_NAMES = ("devise", "softmax", "conse", "chance")


class ZeroShotEvaluatorError(ValueError):
    """The inputs of ZeroShotEvaluator are missing or inconsistent."""


def check_k_values(k_values) -> list[int]:
    ks = list(k_values)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"k_values must be a non-empty list of ints >= 1, got {k_values!r}")
    return sorted(set(ks))


def read_class_split(examples_uri: str) -> dict[str, list[str]]:
    from devise_keras import features

    try:
        return features.read_class_split(examples_uri, "the ZeroShotEvaluator")
    except features.ClassSplitError as err:
        raise ZeroShotEvaluatorError(str(err)) from None


def app_bundle_dir(model_uri: str) -> str:
    """`<model uri>/Format-Serving/assets.extra`, where DeviseTrainer writes model.keras."""
    from devise_keras.app_bundle import APP_DIRNAME

    return os.path.join(path_utils.serving_model_path(model_uri), APP_DIRNAME)


def load_keras_model(path: str):
    import keras

    import devise_keras

    devise_keras.register_keras_objects()
    if not fileio.exists(path):
        raise ZeroShotEvaluatorError(f"{path} is missing: cannot load the model to evaluate")
    return keras.models.load_model(path, compile=False)


def iter_split(examples: types.Artifact, split: str, image_size: int, batch_size: int):
    """Yields (images float32 (B, S, S, 3), label ids int64 (B,)) of one split."""
    import tensorflow as tf

    from devise_keras import features

    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = sorted(fileio.glob(pattern))
    if not files:
        raise ZeroShotEvaluatorError(f"no records for split {split!r} ({pattern})")
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    ds = ds.batch(batch_size).map(lambda r: tf.io.parse_example(r, features.FEATURE_SPEC))
    for batch in ds:
        images = features.decode_images(batch[features.IMAGE_KEY], image_size)
        yield images, batch[features.LABEL_ID_KEY].numpy()


def _outputs(model, images, key: str) -> np.ndarray:
    out = model(images, training=False)
    return np.asarray(out[key] if isinstance(out, dict) else out)


def score_split(examples, split, image_size, batch_size, devise, softmax, keep_ids):
    """Embeddings, softmax probabilities and label ids of one split's usable images."""
    embeddings, probabilities, labels = [], [], []
    for images, ids in iter_split(examples, split, image_size, batch_size):
        keep = np.isin(ids, keep_ids)
        if not keep.any():
            continue
        images = images.numpy()[keep]
        embeddings.append(_outputs(devise, images, "embedding").astype(np.float64))
        if softmax is not None:
            probabilities.append(_outputs(softmax, images, "scores").astype(np.float64))
        labels.append(ids[keep])
    if not labels:
        return None, None, np.zeros(0, np.int64)
    return (
        np.concatenate(embeddings),
        np.concatenate(probabilities) if probabilities else None,
        np.concatenate(labels),
    )


def _keyed(values: dict) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.items()}


def model_metrics(
    seen_scores,
    seen_y,
    unseen_scores,
    unseen_y,
    num_seen,
    k_values,
    distances,
    zero_shot_ok=True,
    calibration=None,
) -> dict[str, Any]:
    """Every metric of one model, from its scores over ALL labels (seen columns first).

    Args:
        seen_scores, seen_y: eval images (seen classes), (N, L) scores and label ids.
        unseen_scores, unseen_y: unseen-class images; None when there are none.
        num_seen: the first `num_seen` columns are the seen labels.
        k_values: cut-offs.
        distances: (L, L) hop distances or None.
        zero_shot_ok: False for a model that cannot score unseen labels (softmax).
        calibration: a calibrated-stacking gamma; when set (and zero_shot_ok), also
            "gzsl_calibrated" = u/s/H with gamma subtracted from the seen scores.
    """
    from devise_keras import zero_shot

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


def chance_metrics(seen_y, unseen_y, num_seen, num_labels, k_values, distances) -> dict:
    """Expected metrics of a uniformly random ranking (the "chance" row)."""
    from devise_keras import zero_shot

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


def wordnet_distances(labels: list[str], wordnet_dir: str) -> tuple[np.ndarray | None, dict]:
    from devise_keras.wordnet import WordNet, WordNetNotFoundError, find_wordnet_dir

    try:
        directory = find_wordnet_dir([wordnet_dir] if wordnet_dir else None)
    except WordNetNotFoundError as e:
        logging.warning("hierarchical precision skipped: %s", e)
        return None, {"skipped": str(e)}
    distances, mapping = WordNet(directory).label_distances(labels)
    without = [m["label"] for m in mapping if m["synset"] is None]
    if without:
        logging.warning("labels without a WordNet noun synset (skipped): %s", without)
    return distances, {"directory": str(directory), "labels": mapping, "without_synset": without}


def render_markdown(report: dict[str, Any]) -> str:
    """A readable summary of report.json: one table per metric family, values in %."""
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


class Executor(base_executor.BaseExecutor):
    """Scores the model on the eval and unseen splits and writes the report."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        from devise_keras.app_bundle import (
            CONFIG_FILENAME,
            MODEL_KERAS_FILENAME,
            SOFTMAX_DIRNAME,
        )
        from devise_keras.config import DeviseConfig
        from devise_keras.label_embeddings import LabelEmbeddings
        from devise_keras.zero_shot import conse_scores

        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        model_uri = artifact_utils.get_single_uri(input_dict[MODEL_KEY])
        embeddings_uri = artifact_utils.get_single_uri(input_dict[LABEL_EMBEDDINGS_KEY])
        base_models = input_dict.get(BASE_MODEL_KEY) or []
        report_artifact = artifact_utils.get_single_instance(output_dict[REPORT_KEY])
        k_values = check_k_values(json.loads(exec_properties[K_VALUES_KEY]))
        top_t = int(exec_properties[CONSE_TOP_T_KEY])
        batch_size = int(exec_properties.get(BATCH_SIZE_KEY) or 256)
        wordnet_dir = exec_properties.get(WORDNET_DIR_KEY) or ""
        calibration = exec_properties.get(GZSL_CALIBRATION_KEY)
        calibration = None if calibration is None else float(calibration)

        split = read_class_split(examples.uri)
        bundle = app_bundle_dir(model_uri)
        config_path = os.path.join(bundle, CONFIG_FILENAME)
        if not fileio.exists(config_path):
            raise ZeroShotEvaluatorError(
                f"{config_path} is missing: the model must come from the DeviseTrainer, whose "
                "app bundle (assets.extra) holds model.keras and config.json"
            )
        with fileio.open(config_path, "r") as f:
            image_size = DeviseConfig.from_json(f.read()).model.image_size
        devise = load_keras_model(os.path.join(bundle, MODEL_KERAS_FILENAME))
        softmax = None
        notes = []
        if base_models:
            softmax_path = os.path.join(base_models[0].uri, SOFTMAX_DIRNAME, MODEL_KERAS_FILENAME)
            if fileio.exists(softmax_path):
                softmax = load_keras_model(softmax_path)
            else:
                notes.append(f"no softmax classifier at {softmax_path}: no Softmax/ConSE rows")
        else:
            notes.append("no base_model (TF-Hub backbone): no Softmax/ConSE rows")

        vectors = LabelEmbeddings.load(embeddings_uri)
        missing_seen = [c for c in split["seen"] if c not in vectors.labels]
        if missing_seen:
            raise ZeroShotEvaluatorError(
                f"seen classes without a label vector: {missing_seen}; the model was trained "
                "on them, so the label embeddings do not belong to this model"
            )
        unseen = [c for c in split["unseen"] if c in vectors.labels]
        dropped = [c for c in split["unseen"] if c not in vectors.labels]
        if dropped:
            notes.append(f"unseen classes without a label vector, their images skipped: {dropped}")
        labels = split["seen"] + unseen
        num_seen = len(split["seen"])
        label_vectors = vectors.subset(labels).vectors.astype(np.float64)
        class_ids = {c: i for i, c in enumerate(split["seen"] + split["unseen"])}
        # Label ids in the records index seen + unseen (all); map them to `labels` columns.
        to_column = np.full(len(class_ids), -1, np.int64)
        for column, label in enumerate(labels):
            to_column[class_ids[label]] = column

        seen_emb, seen_prob, seen_ids = score_split(
            examples, "eval", image_size, batch_size, devise, softmax, np.arange(num_seen)
        )
        if not len(seen_ids):
            raise ZeroShotEvaluatorError("the eval split has no images of the seen classes")
        seen_y = to_column[seen_ids]
        unseen_y = unseen_emb = unseen_prob = None
        counts: dict[str, Any] = {"eval": int(len(seen_y)), "unseen": 0}
        if unseen:
            keep = np.array([class_ids[c] for c in unseen])
            unseen_emb, unseen_prob, unseen_ids = score_split(
                examples, "unseen", image_size, batch_size, devise, softmax, keep
            )
            unseen_y = to_column[unseen_ids]
            counts["unseen"] = int(len(unseen_y))
            if not len(unseen_y):
                notes.append("the unseen split has no images: zero-shot metrics left out")
                unseen_y = unseen_emb = unseen_prob = None
        else:
            notes.append("no unseen classes: zero-shot metrics left out")

        distances, wordnet_info = wordnet_distances(labels, wordnet_dir)
        if distances is None:
            notes.append("hierarchical precision skipped: " + wordnet_info["skipped"])

        def both(fn, seen_x, unseen_x):
            return fn(seen_x), (None if unseen_x is None else fn(unseen_x))

        models: dict[str, Any] = {}
        seen_s, unseen_s = both(lambda e: e @ label_vectors.T, seen_emb, unseen_emb)
        models["devise"] = model_metrics(
            seen_s, seen_y, unseen_s, unseen_y, num_seen, k_values, distances, True, calibration
        )
        if softmax is not None:
            extra = len(labels) - num_seen

            def padded(p):
                # Below every probability: softmax never ranks an unseen label first.
                return np.concatenate([p, -np.ones((len(p), extra))], axis=1)

            seen_s, unseen_s = both(padded, seen_prob, unseen_prob)
            models["softmax"] = model_metrics(
                seen_s, seen_y, unseen_s, unseen_y, num_seen, k_values, distances, False
            )
            seen_v = label_vectors[:num_seen]
            seen_s, unseen_s = both(
                lambda p: conse_scores(p, seen_v, label_vectors, top_t), seen_prob, unseen_prob
            )
            models["conse"] = model_metrics(
                seen_s, seen_y, unseen_s, unseen_y, num_seen, k_values, distances, True, calibration
            )
        models["chance"] = chance_metrics(
            seen_y, unseen_y, num_seen, len(labels), k_values, distances
        )
        report = {
            "labels": {"seen": split["seen"], "unseen": unseen},
            "counts": counts,
            "k_values": k_values,
            "conse_top_t": min(top_t, num_seen),
            "models": models,
            "wordnet": wordnet_info,
            "notes": notes,
        }
        if calibration is not None:
            report["gzsl_calibration"] = calibration
        fileio.makedirs(report_artifact.uri)
        with fileio.open(os.path.join(report_artifact.uri, REPORT_JSON), "w") as f:
            f.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
        with fileio.open(os.path.join(report_artifact.uri, REPORT_MD), "w") as f:
            f.write(render_markdown(report))
        devise_metrics = models["devise"]
        if "zero_shot_hit_at_k" in devise_metrics:
            report_artifact.set_float_custom_property(
                "zero_shot_hit_at_1", devise_metrics["zero_shot_hit_at_k"]["-0"]["1"]
            )
            report_artifact.set_float_custom_property("gzsl_h", devise_metrics["gzsl"]["H"])
            if "gzsl_calibrated" in devise_metrics:
                report_artifact.set_float_custom_property(
                    "gzsl_h_calibrated", devise_metrics["gzsl_calibrated"]["H"]
                )
        report_artifact.set_float_custom_property(
            "flat_hit_at_1", devise_metrics["flat_hit_at_k"]["1"]
        )
        logging.info("zero-shot report written to %s", report_artifact.uri)
