"""With embeddings.train_from_corpus, the pipeline trains vectors and feeds LabelEmbeddingGen."""

from __future__ import annotations

import json

import pytest

from devise_keras.config import ConfigError, DeviseConfig

CORPUS = {"corpus_paths": ["gs://bucket/corpus/*.txt.gz"], "dim": 64, "epochs": 2, "window": 3}


def test_config_round_trip_and_checks():
    cfg = DeviseConfig.from_dict({"embeddings": {"train_from_corpus": CORPUS}})
    assert cfg.embeddings.train_from_corpus.dim == 64
    assert cfg.embeddings.train_from_corpus.sample == 1e-5
    assert DeviseConfig.from_json(cfg.to_json()) == cfg
    assert DeviseConfig().embeddings.train_from_corpus is None
    with pytest.raises(ConfigError, match="vectors_path and embeddings.train_from_corpus"):
        DeviseConfig.from_dict(
            {"embeddings": {"vectors_path": "glove.txt", "train_from_corpus": CORPUS}}
        )
    with pytest.raises(ConfigError, match="train_from_corpus.window must be >= 1"):
        DeviseConfig.from_dict({"embeddings": {"train_from_corpus": {**CORPUS, "window": 0}}})
    with pytest.raises(ConfigError, match="corpus_paths is empty"):
        DeviseConfig.from_dict({"embeddings": {"train_from_corpus": {"dim": 8}}})


@pytest.mark.slow
def test_kubeflow_spec_has_the_corpus_components(tmp_path):
    from pipeline import kubeflow_runner

    config = DeviseConfig.from_dict(
        {
            "data": {"image_dir": "gs://bucket/images"},
            "embeddings": {"train_from_corpus": CORPUS},
        }
    )
    path = kubeflow_runner.compile_pipeline(
        config,
        tmp_path / "devise.json",
        pipeline_root="gs://bucket/root",
        serving_dir="gs://bucket/serving",
        image="example.org/devise-keras:test",
    )
    spec = json.loads(open(path).read())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert {"CorpusGen", "SkipGramTrainer", "LabelEmbeddingGen"} <= set(tasks)
    vectors_in = tasks["LabelEmbeddingGen"]["inputs"]["artifacts"]["word_vectors"]
    assert vectors_in["taskOutputArtifact"]["producerTask"] == "SkipGramTrainer"
    corpus_in = tasks["SkipGramTrainer"]["inputs"]["artifacts"]["corpus"]
    assert corpus_in["taskOutputArtifact"]["producerTask"] == "CorpusGen"
    params = tasks["CorpusGen"]["inputs"]["parameters"]
    assert "gs://bucket/corpus/*.txt.gz" in json.dumps(params["corpus_paths"])
