"""Reads a finished local run from MLMD and prints what a user wants to see."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow_model_analysis as tfma
from ml_metadata import errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from devise_keras import app_bundle, storage


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def latest_artifact(store, type_name: str, uri_part: str = ""):
    """The newest artifact of `type_name` (optionally whose URI contains `uri_part`)."""
    try:
        arts = store.get_artifacts_by_type(type_name)
    except errors.NotFoundError:  # the type was never registered: no such run step
        return None
    arts = [a for a in arts if uri_part in a.uri]
    live = [a for a in arts if a.state == metadata_store_pb2.Artifact.LIVE] or arts
    return max(live, key=lambda a: a.id) if live else None


def evaluator_metrics(evaluation_uri: str) -> tuple[dict[str, float], dict[str, dict]]:
    """(overall hit@k, per-class hit@k) from an Evaluator output."""
    overall, per_class = {}, {}
    for result in tfma.load_metrics(evaluation_uri):
        slice_key = tfma.slicer.deserialize_slice_key(result.slice_key)
        values = {}
        for kv in result.metric_keys_and_values:
            if kv.key.is_diff:  # change against the baseline model, not a value
                continue
            if kv.key.model_name == tfma.BASELINE_KEY:  # the last blessed model's values
                continue
            values[kv.key.name] = kv.value.double_value.value
        if not slice_key:
            overall = values
        else:
            per_class[str(slice_key[0][1])] = values
    return overall, per_class


def _custom(artifact, name: str) -> Any:
    if artifact is None or name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    return value.string_value or value.int_value


def collect(paths: dict[str, str]) -> dict[str, Any]:
    """Facts of the newest run: metrics of both models, blessing, push destination."""
    store = open_store(paths["metadata_path"])
    out: dict[str, Any] = {"softmax": {}, "devise": {}, "per_class": {}}
    backbone = latest_artifact(store, "Model", "BackboneTrainer")
    if backbone is not None:
        path = os.path.join(backbone.uri, app_bundle.SOFTMAX_DIRNAME, app_bundle.METRICS_FILENAME)
        if storage.isfile(path):
            out["softmax"] = json.loads(storage.read_text(path))
    evaluation = latest_artifact(store, "ModelEvaluation")
    if evaluation is not None:
        out["devise"], out["per_class"] = evaluator_metrics(evaluation.uri)
    blessing = latest_artifact(store, "ModelBlessing")
    out["blessed"] = bool(_custom(blessing, "blessed"))
    report = latest_artifact(store, "devise.ZeroShotReport")
    out["zero_shot_report"] = os.path.join(report.uri, "report.md") if report is not None else None
    out["zero_shot"] = (
        {
            k: v.double_value
            for k, v in report.custom_properties.items()
            if v.HasField("double_value")
        }
        if report is not None
        else {}
    )
    pushed = latest_artifact(store, "PushedModel")
    out["pushed"] = bool(_custom(pushed, "pushed"))
    out["pushed_destination"] = _custom(pushed, "pushed_destination")
    return out


def summary(paths: dict[str, str], elapsed_seconds: float | None = None) -> str:
    facts = collect(paths)
    ks = sorted(
        {int(name.split("_")[-1]) for name in facts["devise"] if name.startswith("hit_at_")}
        | {int(name.split("_")[-1]) for name in facts["softmax"] if name.startswith("hit_at_")}
    )
    if facts["per_class"]:
        # hit@k for k >= the number of seen labels is 1.0 for any model: not shown.
        ks = [k for k in ks if k < len(facts["per_class"])]
    lines = ["", "Flat hit@k on the eval split (seen classes):", ""]
    lines.append("| model | " + " | ".join(f"hit@{k}" for k in ks) + " |")
    lines.append("|---|" + "---|" * len(ks))
    for name, metrics in (("softmax backbone", facts["softmax"]), ("DeViSE", facts["devise"])):
        cells = [f"{metrics[f'hit_at_{k}']:.3f}" if f"hit_at_{k}" in metrics else "-" for k in ks]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    zero_shot = facts["zero_shot"]
    if zero_shot:
        named = {
            "zero_shot_hit_at_1": 'zero-shot hit@1 ("-0", unseen labels only)',
            "gzsl_h": "generalized zero-shot H",
        }
        for key, text in named.items():
            if key in zero_shot:
                lines.append(f"{text}: {zero_shot[key]:.3f}")
        lines.append(f"zero-shot report: {facts['zero_shot_report']}")
    lines.append(f"blessed: {facts['blessed']}")
    if facts["pushed"]:
        dest = facts["pushed_destination"]
        lines += [
            f"pushed model: {dest}",
            f"query it: .venv/bin/devise-keras predict --model {dest} IMAGE.png",
            "   (or serve it with TF Serving: README, 'Serving with TF Serving')",
        ]
    else:
        lines.append("not pushed (the Evaluator did not bless the model)")
    if elapsed_seconds is not None:
        lines.append(f"pipeline wall time: {elapsed_seconds / 60:.1f} min")
    return "\n".join(lines)
