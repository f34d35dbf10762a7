"""The Kubeflow V2 runner compiles the pipeline offline into a runnable spec."""

from __future__ import annotations

import importlib
import json

import pytest

from devise_keras.config import DeviseConfig
from pipeline import kubeflow_runner
from tests.pipeline.test_local_pipeline_e2e import COMPONENTS

pytestmark = pytest.mark.slow


def _compile(tmp_path, **model):
    config = DeviseConfig.from_dict(
        {
            "data": {"image_dir": "gs://bucket/images"},
            "embeddings": {"vectors_path": "gs://bucket/glove.txt"},
            "model": model,
        }
    )
    path = kubeflow_runner.compile_pipeline(
        config,
        tmp_path / "devise.json",
        pipeline_root="gs://bucket/root",
        serving_dir="gs://bucket/serving",
        image="example.org/devise-keras:test",
    )
    return json.loads(open(path).read())


def _executors(spec):
    return spec["pipelineSpec"]["deploymentSpec"]["executors"]


def test_compiles_every_component_with_importable_executors(tmp_path):
    spec = _compile(tmp_path)
    tasks = set(spec["pipelineSpec"]["root"]["dag"]["tasks"])
    # Every component the local e2e run executes, plus the baseline resolver.
    assert {*COMPONENTS, "LatestBlessedModelResolver-model-resolver"} <= tasks
    executors = _executors(spec)
    for name, executor in executors.items():
        container = executor.get("container")
        if not container:
            continue
        assert container["image"] == "example.org/devise-keras:test", name
        args = container.get("args", [])
        if "--executor_class_path" in args:
            class_path = args[args.index("--executor_class_path") + 1]
            module, _, cls = class_path.rpartition(".")
            assert hasattr(importlib.import_module(module), cls), class_path


def test_every_artifact_type_title_imports_in_the_container(tmp_path):
    """TFX's V2 entrypoint rebuilds each artifact by importing its schema title."""
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.utils import import_utils

    from pipeline.kubeflow_artifact_record import schema_title

    titles = set()
    for component in _compile(tmp_path)["pipelineSpec"]["components"].values():
        for side in ("inputDefinitions", "outputDefinitions"):
            for spec in component.get(side, {}).get("artifacts", {}).values():
                titles.add(schema_title(spec["artifactType"]))
    assert {"tfx.Examples", "devise.LabelEmbeddings", "devise.ZeroShotReport"} <= titles
    for title in titles:
        path = compiler_utils.TITLE_TO_CLASS_PATH.get(title, title)
        assert import_utils.import_class_by_path(path).TYPE_NAME.endswith(title.split(".")[1])


def test_custom_components_point_at_this_package(tmp_path):
    executors = _executors(_compile(tmp_path))
    paths = set()
    for executor in executors.values():
        args = executor.get("container", {}).get("args", [])
        if "--executor_class_path" in args:
            paths.add(args[args.index("--executor_class_path") + 1])
    assert "components.devise_trainer.executor.Executor" in paths
    assert any(p.startswith("components.image_example_gen.") for p in paths)
    assert any(p.startswith("components.label_embedding_gen.") for p in paths)
    assert "components.zero_shot_evaluator.executor.Executor" in paths


def test_hub_backbone_drops_the_backbone_trainer(tmp_path):
    tasks = set(
        _compile(tmp_path, backbone="gs://bucket/hub_model")["pipelineSpec"]["root"]["dag"]["tasks"]
    )
    assert "BackboneTrainer" not in tasks
    assert "DeviseTrainer" in tasks
