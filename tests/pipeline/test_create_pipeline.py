"""create_pipeline, built and never run (seconds, no Beam): the component ids in order,
which output feeds which input, the roots, no side effects on disk, and LabelEmbeddingGen's
open vocabulary wired into the DeviseTrainer only when `embeddings.open_vocabulary_size > 0`."""

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


# --- the whole graph, built on tmp paths that must stay untouched -----------------------

# TFX's topological order of the built pipeline (tfx 1.16 sorts layer by layer).
COMPONENT_IDS = [
    "ImageExampleGen",
    "LatestBlessedModelResolver",
    "BackboneTrainer",
    "LabelEmbeddingGen",
    "StatisticsGen",
    "DeviseTrainer",
    "SchemaGen",
    "Evaluator",
    "ExampleValidator",
    "ZeroShotEvaluator",
    "Pusher",
]


def _build(tmp_path, monkeypatch, backbone: str = ""):
    """The pipeline over data/vector/backbone paths that do not exist, with the roots and
    the working directory in `tmp_path`; returns (pipeline, paths the build must not touch)."""
    paths = {
        name: tmp_path / name
        for name in ("images", "glove.txt", "hub", "pipeline_root", "serving", "cwd")
    }
    paths["cwd"].mkdir()
    monkeypatch.chdir(paths["cwd"])
    config = DeviseConfig.from_dict(
        {
            "data": {"image_dir": str(paths["images"])},
            "embeddings": {"vectors_path": str(paths["glove.txt"])},
            "model": {"backbone": str(paths["hub"]) if backbone else ""},
        }
    )
    pipeline = create_pipeline(
        config,
        pipeline_root=str(paths["pipeline_root"]),
        serving_dir=str(paths["serving"]),
    )
    return pipeline, paths


def _inputs(pipeline) -> dict[str, dict[str, tuple]]:
    """{component id: {input key: (producer id, producer's output key, artifact type)}};
    the resolver's inputs come from MLMD, not from a component (producer None)."""
    return {
        c.id: {
            key: (
                getattr(channel, "producer_component_id", None),
                channel.output_key,
                channel.type_name,
            )
            for key, channel in c.inputs.items()
        }
        for c in pipeline.components
    }


def test_component_ids_in_order(tmp_path, monkeypatch):
    pipeline, _ = _build(tmp_path, monkeypatch)
    assert [c.id for c in pipeline.components] == COMPONENT_IDS
    seen = set()
    for component in pipeline.components:  # every producer comes before its consumers
        for channel in component.inputs.values():
            assert getattr(channel, "producer_component_id", None) in seen | {None}, component.id
        seen.add(component.id)


def test_with_a_backbone_handle_there_is_no_backbone_trainer(tmp_path, monkeypatch):
    pipeline, _ = _build(tmp_path, monkeypatch, backbone="hub")
    assert [c.id for c in pipeline.components] == [
        i for i in COMPONENT_IDS if i != "BackboneTrainer"
    ]
    inputs = _inputs(pipeline)
    assert "base_model" not in inputs["DeviseTrainer"]
    assert "base_model" not in inputs["ZeroShotEvaluator"]


def test_key_channels_follow_the_data_flow(tmp_path, monkeypatch):
    inputs = _inputs(_build(tmp_path, monkeypatch)[0])
    examples = ("ImageExampleGen", "examples", "Examples")
    label_embeddings = ("LabelEmbeddingGen", "label_embeddings", "devise.LabelEmbeddings")
    devise_model = ("DeviseTrainer", "model", "Model")
    backbone_model = ("BackboneTrainer", "model", "Model")
    statistics = ("StatisticsGen", "statistics", "ExampleStatistics")
    assert inputs["ImageExampleGen"] == {}
    resolver = inputs["LatestBlessedModelResolver"]  # the last blessed model, from MLMD
    assert {k: (p, t) for k, (p, _, t) in resolver.items()} == {
        "model": (None, "Model"),
        "model_blessing": (None, "ModelBlessing"),
    }
    assert inputs["StatisticsGen"] == {"examples": examples}
    assert inputs["SchemaGen"] == {"statistics": statistics}
    assert inputs["ExampleValidator"] == {
        "statistics": statistics,
        "schema": ("SchemaGen", "schema", "Schema"),
    }
    assert inputs["LabelEmbeddingGen"] == {"examples": examples}
    assert inputs["BackboneTrainer"] == {"examples": examples}
    assert inputs["DeviseTrainer"] == {
        "examples": examples,
        "label_embeddings": label_embeddings,
        "base_model": backbone_model,
    }
    assert inputs["ZeroShotEvaluator"] == {
        "examples": examples,
        "model": devise_model,
        "label_embeddings": label_embeddings,
        "base_model": backbone_model,
    }
    assert inputs["Evaluator"] == {
        "examples": examples,
        "model": devise_model,
        "baseline_model": ("LatestBlessedModelResolver", "model", "Model"),
    }
    assert inputs["Pusher"] == {
        "model": devise_model,
        "model_blessing": ("Evaluator", "blessing", "ModelBlessing"),
    }


def test_the_roots_reach_the_pipeline_and_the_pusher(tmp_path, monkeypatch):
    pipeline, paths = _build(tmp_path, monkeypatch)
    assert pipeline.pipeline_info.pipeline_root == str(paths["pipeline_root"])
    (pusher,) = [c for c in pipeline.components if c.id == "Pusher"]
    destination = pusher.exec_properties["push_destination"]
    assert str(paths["serving"]) in str(destination)


def test_building_the_pipeline_has_no_side_effects(tmp_path, monkeypatch):
    _, paths = _build(tmp_path, monkeypatch)
    for name in ("images", "glove.txt", "hub", "pipeline_root", "serving"):
        assert not paths[name].exists(), f"create_pipeline created {name}"
    assert list(paths["cwd"].iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd"]
