"""CorpusGen and SkipGramTrainer executors over real artifacts, then LabelEmbeddingGen
reading the trained vectors; bad corpora fail with clear errors."""

from __future__ import annotations

import collections
import gzip
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.artifacts import LabelEmbeddings as LabelEmbeddingsArtifact
from components.artifacts import SkipGramCorpus, WordVectors
from components.corpus_gen.component import CorpusGen
from components.corpus_gen.executor import CorpusGenError
from components.corpus_gen.executor import Executor as CorpusGenExecutor
from components.skipgram_trainer.executor import Executor as TrainerExecutor
from devise_keras import skipgram_corpus as sg
from devise_keras.config import CorpusTrainingConfig
from devise_keras.label_embeddings import LabelEmbeddings
from tests.devise_keras.test_skipgram_corpus import reference_pairs

pytestmark = pytest.mark.slow

LINES = [
    "The cat sat on the mat.",
    "The dog sat on the log; the cat saw the dog.",
    "a cat and a dog and a cat and a dog",
]


def run_corpus_gen(tmp_path, patterns, **props):
    out = SkipGramCorpus()
    out.uri = str(tmp_path / "corpus")
    params = {"corpus_paths": json.dumps([str(p) for p in patterns]), **props}
    CorpusGenExecutor().Do({}, {"corpus": [out]}, params)
    return out


def read_pairs(corpus_dir):
    pairs = []
    for record in tf.data.TFRecordDataset(sg.pair_files(corpus_dir)):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        centers = feature[sg.CENTER_FEATURE].int64_list.value
        contexts = feature[sg.CONTEXT_FEATURE].int64_list.value
        pairs += list(zip(centers, contexts, strict=True))
    return pairs


def test_pairs_vocabulary_and_report_match_the_reference(tmp_path):
    (tmp_path / "a.txt").write_text("\n".join(LINES[:2]) + "\n\n")
    with gzip.open(tmp_path / "b.txt.gz", "wt") as f:
        f.write(LINES[2] + "\n")
    (tmp_path / "c.txt").write_bytes(b"caf\xe9 in latin-1\nthe cat\n")  # one non-UTF-8 line
    out = run_corpus_gen(
        tmp_path, [tmp_path / "*.txt", tmp_path / "*.gz"], min_count=2, sample=0.05, window=3,
        seed=3, num_shards=2,
    )  # fmt: skip
    texts = [*LINES, "the cat"]
    vocab, expected = reference_pairs(texts, min_count=2, sample=0.05, window=3, seed=3)
    assert [w for w, _ in sg.read_vocabulary(out.uri)] == vocab
    assert dict(sg.read_vocabulary(out.uri))["the"] == 7
    assert collections.Counter(read_pairs(out.uri)) == collections.Counter(expected)
    assert len(sg.pair_files(out.uri)) == 2
    counts = np.array([c for _, c in sg.read_vocabulary(out.uri)])
    np.testing.assert_allclose(
        sg.read_noise_distribution(out.uri), counts**0.75 / (counts**0.75).sum()
    )
    stats = sg.read_stats(out.uri)
    assert stats["documents"] == 4 and stats["pairs"] == len(expected)
    assert stats["non_utf8_skipped"] == 1
    assert stats["non_utf8_files"] == {str(tmp_path / "c.txt"): 1}
    assert out.get_custom_property("vocabulary_size") == len(vocab)

    # The vectors trained on it are a word2vec text file LabelEmbeddingGen reads.
    vectors = WordVectors()
    vectors.uri = str(tmp_path / "vectors")
    TrainerExecutor().Do(
        {"corpus": [out]}, {"word_vectors": [vectors]}, {"dim": 8, "epochs": 2, "batch_size": 8}
    )
    with open(os.path.join(vectors.uri, "vectors.txt")) as f:
        assert f.readline().split() == [str(len(vocab)), "8"]
    assert not os.path.exists(os.path.join(vectors.uri, "_backup"))
    assert vectors.get_custom_property("dim") == 8

    from components.label_embedding_gen.executor import Executor as LabelExecutor
    from tests.components.test_label_embedding_gen import examples_artifact

    split = {"classes": ["Cat", "dog_mat"], "seen": ["Cat"], "unseen": ["dog_mat"]}
    examples = examples_artifact(tmp_path, split)
    label_out = LabelEmbeddingsArtifact()
    label_out.uri = str(tmp_path / "labels")
    LabelExecutor().Do(
        {"examples": [examples], "word_vectors": [vectors]},
        {"label_embeddings": [label_out]},
        {"vectors_path": ""},
    )
    embeddings = LabelEmbeddings.load(label_out.uri)
    assert embeddings.labels == ["Cat", "dog_mat"]
    assert [r["method"] for r in embeddings.match_report] == ["casefold", "token_mean"]
    assert embeddings.dim == 8


def test_document_per_file(tmp_path):
    (tmp_path / "one.txt").write_text("the cat\nsat on the mat\n")
    (tmp_path / "two.txt").write_text("the dog sat\n")
    out = run_corpus_gen(tmp_path, [tmp_path / "*.txt"], document_per="file", min_count=1,
                         sample=0.0, window=1)  # fmt: skip
    stats = sg.read_stats(out.uri)
    assert stats["documents"] == 2 and stats["tokens"] == 9
    # One document per file: the window crosses the line break (cat -> sat).
    words = [w for w, _ in sg.read_vocabulary(out.uri)]
    pairs = {(words[c], words[x]) for c, x in read_pairs(out.uri)}
    assert ("cat", "sat") in pairs and ("dog", "sat") in pairs


def test_empty_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n... !!\n")
    with pytest.raises(CorpusGenError, match="the corpus has no words"):
        run_corpus_gen(tmp_path, [tmp_path / "empty.txt"])


def test_only_non_utf8_lines_is_an_empty_corpus_naming_the_file(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("café crème\n".encode("latin-1"))
    with pytest.raises(CorpusGenError, match="1 non-UTF-8 line.*latin1.txt"):
        run_corpus_gen(tmp_path, [tmp_path / "latin1.txt"])


def test_min_count_above_every_count_is_a_clear_error(tmp_path):
    (tmp_path / "a.txt").write_text("the cat sat on the mat\n")
    with pytest.raises(
        CorpusGenError, match=r"min_count=3 is larger than every word count.*2 times"
    ):
        run_corpus_gen(tmp_path, [tmp_path / "a.txt"], min_count=3)


def test_a_pattern_matching_nothing_is_named(tmp_path):
    with pytest.raises(CorpusGenError, match="matches no file"):
        run_corpus_gen(tmp_path, [tmp_path / "missing*.txt"])


def test_component_from_config_checks_settings():
    gen = CorpusGen.from_config(CorpusTrainingConfig(corpus_paths=["/x/*.txt"], window=3))
    assert json.loads(gen.exec_properties["corpus_paths"]) == ["/x/*.txt"]
    assert gen.exec_properties["window"] == 3
    assert gen.outputs["corpus"].type_name == "devise.SkipGramCorpus"
    with pytest.raises(CorpusGenError, match="document_per must be one of"):
        CorpusGen(corpus_paths=["/x"], document_per="paragraph")


def test_both_components_default_to_the_config_and_check_with_it():
    from components.corpus_gen.executor import corpus_params
    from components.skipgram_trainer.executor import SkipGramTrainerError, trainer_params

    defaults = CorpusTrainingConfig()
    assert trainer_params({}) == {
        "dim": defaults.dim,
        "negatives": defaults.negatives,
        "epochs": defaults.epochs,
        "batch_size": defaults.batch_size,
        "learning_rate": defaults.learning_rate,
        "min_learning_rate": defaults.min_learning_rate,
        "seed": defaults.seed,
    }
    assert trainer_params({"dim": 64})["dim"] == 64
    params = corpus_params({"corpus_paths": '["/x/a.txt"]'})
    assert (params["min_count"], params["window"], params["num_shards"]) == (
        defaults.min_count,
        defaults.window,
        defaults.num_shards,
    )
    # The config's one range check, with the component's own error class.
    with pytest.raises(SkipGramTrainerError, match="^negatives must be >= 1, got 0$"):
        trainer_params({"negatives": 0})
    with pytest.raises(SkipGramTrainerError, match="^needs 0 < min_learning_rate <= learning"):
        trainer_params({"learning_rate": 0.001, "min_learning_rate": 0.01})
    with pytest.raises(CorpusGenError, match="^window must be >= 1, got 0$"):
        corpus_params({"corpus_paths": '["/x/a.txt"]', "window": 0})
    with pytest.raises(CorpusGenError, match="^corpus_paths is empty: name text files"):
        corpus_params({})
