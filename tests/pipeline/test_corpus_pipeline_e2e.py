"""End to end: the local pipeline with `embeddings.train_from_corpus` on a tiny corpus.

CorpusGen -> SkipGramTrainer -> LabelEmbeddingGen -> ... -> Pusher on the tiny image
fixture, the label vectors coming from skip-gram vectors trained on a generated corpus
in which every class name occurs. Asserts MLMD execution states (every component once,
then cache hits up to the Evaluator, then a corpus edited in place retrains the vectors
and what depends on them), that the label vectors LabelEmbeddingGen wrote are the
trained vectors of those words (unit-normalized), and that a model was pushed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from devise_keras.config import CorpusTrainingConfig, DeviseConfig
from devise_keras.label_embeddings import LabelEmbeddings
from pipeline import local_runner, results
from tests.pipeline import tiny_data
from tests.pipeline.test_local_pipeline_e2e import COMPONENTS, Execution, executions_by_node

pytestmark = pytest.mark.slow

CORPUS_COMPONENTS = ["CorpusGen", "SkipGramTrainer"]
ALL_COMPONENTS = COMPONENTS[:4] + CORPUS_COMPONENTS + COMPONENTS[4:]
# Everything whose inputs are the trained vectors (Evaluator and Pusher rerun anyway: the
# first run's blessed model becomes the Evaluator's baseline, see test_local_pipeline_e2e).
VECTOR_DEPENDENTS = {"LabelEmbeddingGen", "DeviseTrainer", "ZeroShotEvaluator"}
CONTEXT_WORDS = ["the", "a", "small", "big", "red", "old", "runs", "sees", "near", "with"]


def write_corpus(path: Path, lines: int = 300, seed: int = 0) -> Path:
    """Sentences of 6-12 words: every class name and context word occurs many times."""
    rng = np.random.default_rng(seed)
    words = [*tiny_data.CLASS_COLOURS, *CONTEXT_WORDS]
    text = [" ".join(rng.choice(words, size=rng.integers(6, 13))) for _ in range(lines)]
    path.write_text("\n".join(text) + "\n")
    return path


def corpus_config(root: Path) -> DeviseConfig:
    corpus = write_corpus(root / "corpus.txt")
    return DeviseConfig.from_dict(
        {
            "pipeline_name": "devise-corpus-e2e",
            "data": {
                "image_dir": str(tiny_data.write_images(root / "images")),
                "unseen_classes": ["boat"],
                "eval_fraction": 0.25,
            },
            "embeddings": {
                "train_from_corpus": dataclasses.asdict(
                    CorpusTrainingConfig(
                        corpus_paths=[str(corpus)],
                        min_count=2,
                        sample=0.0,
                        window=2,
                        dim=8,
                        epochs=1,
                        batch_size=64,
                        num_shards=2,
                    )
                )
            },
            "model": {"image_size": 16, "cnn_filters": [4, 8], "feature_dim": 16},
            "train": {
                "batch_size": 8,
                "backbone_epochs": 1,
                "projection_epochs": 1,
                "finetune_epochs": 0,
                "steps_per_epoch": 2,
            },
            "eval": {"k_values": [1, 2, 5]},
        }
    )


def latest_states(paths) -> dict[str, int]:
    by_node = executions_by_node(paths["metadata_path"])
    return {n: by_node[n][-1].last_known_state for n in ALL_COMPONENTS}


def read_word2vec_text(path: str) -> dict[str, np.ndarray]:
    with open(path, encoding="utf-8") as f:
        count, dim = map(int, f.readline().split())
        rows = [line.rstrip("\n").split(" ") for line in f]
    assert len(rows) == count and all(len(r) == dim + 1 for r in rows)
    return {r[0]: np.asarray(r[1:], np.float32) for r in rows}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus_e2e")
    config = corpus_config(root)
    paths = local_runner.run(config, root / "out")
    return config, root, paths


def test_first_run_executes_every_component_once_and_pushes(first_run):
    _, _, paths = first_run
    by_node = executions_by_node(paths["metadata_path"])
    for node in ALL_COMPONENTS:
        states = [e.last_known_state for e in by_node[node]]
        assert states == [Execution.COMPLETE], f"{node}: {states}"
    facts = results.collect(paths)
    assert facts["blessed"] is True and facts["pushed"] is True


def test_label_vectors_are_the_trained_word_vectors(first_run):
    _, _, paths = first_run
    store = results.open_store(paths["metadata_path"])
    corpus = results.latest_artifact(store, "devise.SkipGramCorpus")
    assert corpus.custom_properties["vocabulary_size"].int_value == 15  # 5 classes + 10 others
    trained_artifact = results.latest_artifact(store, "devise.WordVectors")
    trained = read_word2vec_text(str(Path(trained_artifact.uri) / "vectors.txt"))
    assert set(trained) == {*tiny_data.CLASS_COLOURS, *CONTEXT_WORDS}
    assert all(v.shape == (8,) for v in trained.values())

    labels = LabelEmbeddings.load(results.latest_artifact(store, "devise.LabelEmbeddings").uri)
    assert labels.labels == ["car", "cat", "dog", "tree", "boat"]  # seen, then unseen
    assert trained_artifact.uri in labels.source
    for label, row in zip(labels.labels, labels.vectors, strict=True):
        expected = trained[label] / np.linalg.norm(trained[label])
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6, err_msg=label)
    # Trained, not the initial uniform draw in +-0.5/dim: some vector left that range.
    assert max(np.abs(v).max() for v in trained.values()) > 0.5 / 8


def test_rerun_is_cached_and_a_corpus_edit_retrains_the_vectors(first_run):
    config, root, paths = first_run
    local_runner.run(config, root / "out")
    rerun = {"Evaluator", "Pusher"}
    assert latest_states(paths) == {
        n: Execution.COMPLETE if n in rerun else Execution.CACHED for n in ALL_COMPONENTS
    }
    write_corpus(root / "corpus.txt", seed=1)  # same path, other text
    local_runner.run(config, root / "out")
    rerun |= {*CORPUS_COMPONENTS, *VECTOR_DEPENDENTS}
    assert latest_states(paths) == {
        n: Execution.COMPLETE if n in rerun else Execution.CACHED for n in ALL_COMPONENTS
    }
