"""create_pipeline wires LabelEmbeddingGen's open vocabulary into the DeviseTrainer only
when `embeddings.open_vocabulary_size > 0` (built, not run)."""

from __future__ import annotations

from devise_keras.config import DeviseConfig
from pipeline.pipeline import create_pipeline


def _trainer_inputs(open_vocabulary_size: int):
    config = DeviseConfig.from_dict(
        {
            "data": {"image_dir": "gs://bucket/images"},
            "embeddings": {
                "vectors_path": "gs://bucket/glove.txt",
                "open_vocabulary_size": open_vocabulary_size,
            },
            "model": {"backbone": "gs://bucket/hub"},
        }
    )
    pipeline = create_pipeline(config, pipeline_root="/tmp/root", serving_dir="/tmp/serving")
    (trainer,) = [c for c in pipeline.components if c.id == "DeviseTrainer"]
    return trainer.inputs


def test_the_open_vocabulary_reaches_the_trainer_when_requested():
    channel = _trainer_inputs(5)["open_vocabulary"]
    assert (channel.producer_component_id, channel.output_key) == (
        "LabelEmbeddingGen",
        "open_vocabulary",
    )
    assert channel.type_name == "devise.LabelEmbeddings"


def test_without_an_open_vocabulary_the_trainer_has_no_such_input():
    assert "open_vocabulary" not in _trainer_inputs(0)
