"""LabelEmbeddingGen: executor over real artifacts, the Beam transforms, the component spec."""

from __future__ import annotations

import json
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from tfx.types import standard_artifacts

from components.artifacts import LabelEmbeddings as LabelEmbeddingsArtifact
from components.label_embedding_gen import transforms
from components.label_embedding_gen.component import LabelEmbeddingGen
from components.label_embedding_gen.executor import Executor, LabelEmbeddingGenError
from devise_keras.config import EmbeddingConfig
from devise_keras.features import CLASS_SPLIT_FILE
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.label_matching import OOVError
from devise_keras.word_vectors import read_header

# Frequency-ordered like GloVe: punctuation and numbers first, then words.
VOCAB = [
    (",", [1.0, 1.0]),
    ("the", [2.0, 0.0]),
    ("1990", [1.0, 2.0]),
    ("shirt", [0.0, 5.0]),
    ("t-shirt", [3.0, 4.0]),
    ("trouser", [4.0, 3.0]),
    ("Bag", [0.0, 2.0]),
    ("ankle", [1.0, 0.0]),
    ("boot", [0.0, 3.0]),
    ("bag", [6.0, 0.0]),
    ("the", [9.0, 9.0]),  # duplicate: the first row wins
]
SPLIT = {
    "classes": ["Ankle_boot", "Trouser", "T-shirt_top", "bag"],
    "seen": ["Ankle_boot", "Trouser"],
    "unseen": ["T-shirt_top", "bag"],
}


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def write_glove(path, vocab=VOCAB):
    path.write_text("".join(f"{w} {v[0]} {v[1]}\n" for w, v in vocab))
    return str(path)


def write_word2vec_binary(path, vocab=VOCAB):
    with open(path, "wb") as f:
        f.write(f"{len(vocab)} 2\n".encode())
        for w, v in vocab:
            f.write(w.encode() + b" " + np.asarray(v, "<f4").tobytes() + b"\n")
    return str(path)


def prop(artifact, name):
    """A property whether the type declares it or the executor stored it as custom."""
    if name in (artifact.PROPERTIES or {}):
        return getattr(artifact, name)
    return artifact.get_custom_property(name)


def examples_artifact(tmp_path, split=SPLIT):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    os.makedirs(examples.uri)
    if split is not None:
        with open(os.path.join(examples.uri, CLASS_SPLIT_FILE), "w") as f:
            json.dump(split, f)
    return examples


def output_artifact(tmp_path, name):
    artifact = LabelEmbeddingsArtifact()
    artifact.uri = str(tmp_path / name)
    return artifact


def run_executor(tmp_path, exec_properties, split=SPLIT, open_vocabulary=False, shard_bytes=16):
    outputs = {"label_embeddings": [output_artifact(tmp_path, "label_embeddings")]}
    if open_vocabulary:
        outputs["open_vocabulary"] = [output_artifact(tmp_path, "open_vocabulary")]
    executor = Executor()
    executor.shard_bytes = shard_bytes  # several Beam shards even for a tiny file
    executor.Do({"examples": [examples_artifact(tmp_path, split)]}, outputs, exec_properties)
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize("writer", [write_glove, write_word2vec_binary])
def test_executor_writes_unit_vectors_in_class_vocabulary_order(tmp_path, writer):
    vectors_path = writer(tmp_path / "vectors.bin")
    outputs = run_executor(
        tmp_path,
        {"vectors_path": vectors_path, "vectors_format": "auto", "open_vocabulary_size": 3},
        open_vocabulary=True,
    )
    artifact = outputs["label_embeddings"][0]
    emb = LabelEmbeddings.load(artifact.uri)
    assert emb.labels == ["Ankle_boot", "Trouser", "T-shirt_top", "bag"]
    expected = [
        unit([0.5, 1.5]),  # mean(ankle (1, 0), boot (0, 3))
        [0.8, 0.6],  # trouser (4, 3) / 5, case-folded
        [0.6, 0.8],  # built-in alias T-shirt_top -> t-shirt (3, 4) / 5
        [1.0, 0.0],  # bag (6, 0) exact, not "Bag"
    ]
    np.testing.assert_allclose(emb.vectors, expected, rtol=1e-6)
    assert [r["method"] for r in emb.match_report] == [
        "token_mean",
        "casefold",
        "alias:exact",
        "exact",
    ]
    assert emb.match_report[0]["words"] == ["ankle", "boot"]
    assert prop(artifact, "dim") == 2
    assert prop(artifact, "num_labels") == 4
    assert prop(artifact, "source") == vectors_path
    assert emb.metadata["seen_labels"] == ["Ankle_boot", "Trouser"]
    assert emb.metadata["unseen_labels"] == ["T-shirt_top", "bag"]
    assert emb.metadata["rows_scanned"] == len(VOCAB)
    assert sorted(os.listdir(artifact.uri)) == [
        "labels.txt",
        "match_report.json",
        "metadata.json",
        "vectors.npy",
    ]
    vocab_artifact = outputs["open_vocabulary"][0]
    open_vocab = LabelEmbeddings.load(vocab_artifact.uri)
    assert open_vocab.labels == ["the", "shirt", "t-shirt"]  # "," and "1990" have no letter
    np.testing.assert_allclose(open_vocab.vectors, [[1, 0], [0, 1], [0.6, 0.8]], rtol=1e-6)
    assert prop(vocab_artifact, "num_labels") == 3
    assert open_vocab.metadata["kind"] == "open_vocabulary"


@pytest.mark.slow
def test_executor_reads_npy_with_parquet_vocabulary(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    words = [w for w, _ in VOCAB[:-1]]
    np.save(tmp_path / "m.npy", np.array([v for _, v in VOCAB[:-1]], np.float32))
    pq.write_table(pa.table({"index": words}), tmp_path / "index.parquet")
    outputs = run_executor(
        tmp_path,
        {
            "vectors_path": str(tmp_path / "m.npy"),
            "vocab_path": str(tmp_path / "index.parquet"),
        },
    )
    emb = LabelEmbeddings.load(outputs["label_embeddings"][0].uri)
    assert emb.metadata["format"] == "npy"
    np.testing.assert_allclose(emb.vectors[1], [0.8, 0.6], rtol=1e-6)


@pytest.mark.slow
def test_executor_oov_error_names_every_label_and_the_file(tmp_path):
    vectors_path = write_glove(tmp_path / "v.txt", VOCAB[:4])
    split = {
        "classes": ["shirt", "Zyzzyva", "Quux"],
        "seen": ["shirt"],
        "unseen": ["Zyzzyva", "Quux"],
    }
    with pytest.raises(OOVError) as info:
        run_executor(tmp_path, {"vectors_path": vectors_path}, split=split)
    message = str(info.value)
    assert f"2 of 3 labels have no vector in {vectors_path}" in message
    assert "'Zyzzyva': tried Zyzzyva" in message and "'Quux': tried Quux" in message


@pytest.mark.slow
def test_executor_skip_policy_reports_dropped_labels(tmp_path):
    vectors_path = write_glove(tmp_path / "v.txt")
    split = {"classes": ["bag", "Zyzzyva"], "seen": ["bag"], "unseen": ["Zyzzyva"]}
    outputs = run_executor(tmp_path, {"vectors_path": vectors_path, "oov_policy": "skip"}, split)
    emb = LabelEmbeddings.load(outputs["label_embeddings"][0].uri)
    assert emb.labels == ["bag"]
    assert emb.metadata["skipped_labels"] == ["Zyzzyva"]
    assert emb.metadata["unseen_labels"] == []
    assert prop(outputs["label_embeddings"][0], "num_labels") == 1


def test_executor_missing_vectors_file_names_path_and_fix(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.txt' does not exist .*vectors_path"):
        run_executor(tmp_path, {"vectors_path": str(tmp_path / "nope.txt")})


def test_executor_empty_vectors_path_says_what_to_set(tmp_path):
    with pytest.raises(LabelEmbeddingGenError, match=r"vectors_path is empty"):
        run_executor(tmp_path, {"vectors_path": ""})


def test_executor_without_class_split_names_the_file(tmp_path):
    vectors_path = write_glove(tmp_path / "v.txt")
    with pytest.raises(LabelEmbeddingGenError, match=r"has no class_split\.json"):
        run_executor(tmp_path, {"vectors_path": vectors_path}, split=None)


def test_executor_rejects_classes_not_seen_then_unseen(tmp_path):
    vectors_path = write_glove(tmp_path / "v.txt")
    split = {"classes": ["bag", "boot"], "seen": ["boot"], "unseen": ["bag"]}
    with pytest.raises(LabelEmbeddingGenError, match=r"'seen' followed by 'unseen'"):
        run_executor(tmp_path, {"vectors_path": vectors_path}, split=split)


# ------------------------------------------------------------------ Beam transforms


@pytest.mark.slow
@pytest.mark.parametrize("shard_bytes", [5, 40, 1 << 20])
def test_read_wanted_vectors_is_the_same_for_any_shard_count(tmp_path, shard_bytes):
    header = read_header(write_glove(tmp_path / "v.txt"))

    def summary(result):
        found = {w: v.tolist() for w, (_, v) in result.found.items()}
        return found, [w for _, w, _ in result.top], result.rows

    with test_pipeline.TestPipeline() as p:
        out = (
            p
            | transforms.ReadWantedVectors(
                header, {"the", "boot"}, {"bag"}, top_n=2, shard_bytes=shard_bytes
            )
            | beam.Map(summary)
        )
        expected_found = {
            "the": [2.0, 0.0],  # first of the two "the" rows
            "boot": [0.0, 3.0],
            "Bag": [0.0, 2.0],
            "bag": [6.0, 0.0],
        }
        assert_that(out, equal_to([(expected_found, ["the", "shirt"], len(VOCAB))]))


def test_merge_scan_results_keeps_earliest_position_and_first_top_words():
    v = np.zeros(2, np.float32)
    a = transforms.ScanResult({"x": (50, v + 1)}, [(40, "late", v), (60, "x", v)], rows=3)
    b = transforms.ScanResult({"x": (10, v + 2)}, [(0, "early", v), (20, "late", v)], rows=4)
    merged = transforms.MergeScanResults(top_n=2).merge_accumulators([a, b])
    assert merged.found["x"][0] == 10
    np.testing.assert_array_equal(merged.found["x"][1], [2.0, 2.0])
    assert [(p, w) for p, w, _ in merged.top] == [(0, "early"), (20, "late")]
    assert merged.rows == 7


def test_scan_result_round_trips_through_the_file(tmp_path):
    v = np.array([0.25, -1.5], np.float32)
    result = transforms.ScanResult({"café": (7, v)}, [(0, "the", v * 2)], rows=9, non_utf8_words=1)
    path = transforms.write_scan_result(result, str(tmp_path / "scan.npz"))
    back = transforms.read_scan_result(path)
    assert list(back.found) == ["café"] and back.found["café"][0] == 7
    np.testing.assert_array_equal(back.found["café"][1], v)
    assert [(p, w) for p, w, _ in back.top] == [(0, "the")]
    assert (back.rows, back.non_utf8_words) == (9, 1)


# ------------------------------------------------------------------------ component


def test_component_wires_open_vocabulary_only_when_requested():
    examples = standard_artifacts.Examples
    from tfx.types import Channel

    channel = Channel(type=examples)
    without = LabelEmbeddingGen(examples=channel, vectors_path="v.txt")
    assert set(without.outputs) == {"label_embeddings"}
    config = EmbeddingConfig(vectors_path="v.npy", vocab_path="v.txt", open_vocabulary_size=5)
    with_vocab = LabelEmbeddingGen.from_config(channel, config)
    assert set(with_vocab.outputs) == {"label_embeddings", "open_vocabulary"}
    assert with_vocab.outputs["open_vocabulary"].type_name == "devise.LabelEmbeddings"
    assert with_vocab.exec_properties["vocab_path"] == "v.txt"
    assert with_vocab.exec_properties["open_vocabulary_size"] == 5
