"""ZeroShotEvaluator executor: Examples + DeViSE model + label vectors -> report.json/.md.

The images of the `eval` (seen classes) and `unseen` splits are decoded batch by batch
with `features.decode_images` (the pixels the trainer and the serving signatures see),
embedded by the DeViSE model, and scored against the unit label vectors of every class
(dot products, as `LabelSimilarity` does). Only the small score matrices are kept, and
every number comes from `devise_keras.zero_shot_metrics` (over `devise_keras.zero_shot`),
which the benchmark driver shares.

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

from devise_keras import zero_shot_metrics

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


class ZeroShotEvaluatorError(ValueError):
    """The inputs of ZeroShotEvaluator are missing or inconsistent."""


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

        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        model_uri = artifact_utils.get_single_uri(input_dict[MODEL_KEY])
        embeddings_uri = artifact_utils.get_single_uri(input_dict[LABEL_EMBEDDINGS_KEY])
        base_models = input_dict.get(BASE_MODEL_KEY) or []
        report_artifact = artifact_utils.get_single_instance(output_dict[REPORT_KEY])
        k_values = zero_shot_metrics.check_k_values(json.loads(exec_properties[K_VALUES_KEY]))
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

        distances, wordnet_info = zero_shot_metrics.wordnet_distances(labels, wordnet_dir)
        if distances is None:
            notes.append("hierarchical precision skipped: " + wordnet_info["skipped"])
        models = zero_shot_metrics.report_models(
            label_vectors,
            num_seen,
            k_values,
            seen_y,
            seen_emb,
            unseen_y,
            unseen_emb,
            seen_prob,
            unseen_prob,
            conse_top_t=top_t,
            distances=distances,
            calibration=calibration,
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
            f.write(zero_shot_metrics.render_markdown(report))
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
