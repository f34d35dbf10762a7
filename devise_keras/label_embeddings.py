"""The on-disk form of a label set with unit-norm word vectors.

This is what the `devise.LabelEmbeddings` TFX artifact holds in its URI, and what the
trainer, the zero-shot evaluation and the apps read. Files:

- `labels.txt`: one label per line, in class-vocabulary order.
- `vectors.npy`: float32 matrix (num_labels, dim), each row unit L2 norm.
- `metadata.json`: {"dim", "num_labels", "source", ...} (free-form extras allowed).
- `match_report.json` (optional): how each label text was matched to the source.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from devise_keras import storage

LABELS_FILE = "labels.txt"
VECTORS_FILE = "vectors.npy"
METADATA_FILE = "metadata.json"
MATCH_REPORT_FILE = "match_report.json"


def unit_normalize(vectors: np.ndarray, what: str = "vectors") -> np.ndarray:
    """Returns float32 rows scaled to unit L2 norm; raises on zero or non-finite rows."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (num, dim) matrix, got shape {vectors.shape}")
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise ValueError(f"{what} has non-finite values in row(s) {bad[:10].tolist()}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(f"{what} has all-zero row(s) {zero[:10].tolist()}")
    # Rows already of unit norm are kept bit for bit, so save -> load is exact.
    norms[np.abs(norms - 1.0) <= 1e-6] = 1.0
    return vectors / norms


@dataclasses.dataclass
class LabelEmbeddings:
    """Labels and their unit-norm vectors, in a fixed order.

    Args:
        labels: label strings; row i of `vectors` belongs to `labels[i]`.
        vectors: (num_labels, dim) matrix; rows are unit-normalized on construction.
        source: where the vectors came from (file path or description).
        metadata: extra JSON-serializable facts (format, OOV policy, ...).
        match_report: per-label record of how the vector was found.

    Example:
    >>> emb = LabelEmbeddings(["cat", "dog"], [[3.0, 4.0], [0.0, 2.0]])
    >>> emb.vectors.tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 1.0]]
    """

    labels: list[str]
    vectors: np.ndarray
    source: str = ""
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    match_report: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        self.labels = [str(label) for label in self.labels]
        self.vectors = unit_normalize(self.vectors, "label vectors")
        if len(self.labels) != self.vectors.shape[0]:
            raise ValueError(f"{len(self.labels)} labels but {self.vectors.shape[0]} vector rows")
        if len(set(self.labels)) != len(self.labels):
            dupes = sorted({x for x in self.labels if self.labels.count(x) > 1})
            raise ValueError(f"duplicate labels: {dupes[:10]}")

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, labels: list[str]) -> LabelEmbeddings:
        """The rows of `labels`, in that order; raises naming labels it lacks."""
        index = {label: i for i, label in enumerate(self.labels)}
        missing = [label for label in labels if label not in index]
        if missing:
            raise KeyError(f"labels without a vector: {missing}")
        rows = [index[label] for label in labels]
        return LabelEmbeddings(list(labels), self.vectors[rows], self.source, dict(self.metadata))

    def save(self, directory: str | Path) -> None:
        directory = str(directory)
        storage.makedirs(directory)
        labels = "".join(f"{label}\n" for label in self.labels)
        storage.write_text(os.path.join(directory, LABELS_FILE), labels)
        storage.save_npy(os.path.join(directory, VECTORS_FILE), self.vectors)
        meta = {**self.metadata, "dim": self.dim, "num_labels": len(self), "source": self.source}
        meta_text = json.dumps(meta, indent=2, sort_keys=True)
        storage.write_text(os.path.join(directory, METADATA_FILE), meta_text)
        if self.match_report:
            report = json.dumps(self.match_report, indent=2)
            storage.write_text(os.path.join(directory, MATCH_REPORT_FILE), report)

    @classmethod
    def load(cls, directory: str | Path) -> LabelEmbeddings:
        directory = str(directory)
        for name in (LABELS_FILE, VECTORS_FILE):
            if not storage.isfile(os.path.join(directory, name)):
                raise FileNotFoundError(
                    f"{directory} is not a label-embeddings directory: {name} is missing"
                )
        labels = storage.read_text(os.path.join(directory, LABELS_FILE)).split("\n")[:-1]
        vectors = storage.load_npy(os.path.join(directory, VECTORS_FILE))
        meta_path = os.path.join(directory, METADATA_FILE)
        meta = json.loads(storage.read_text(meta_path)) if storage.isfile(meta_path) else {}
        report_path = os.path.join(directory, MATCH_REPORT_FILE)
        report = json.loads(storage.read_text(report_path)) if storage.isfile(report_path) else []
        source = meta.pop("source", "")
        meta.pop("dim", None)
        meta.pop("num_labels", None)
        return cls(labels, vectors, source, meta, report)
