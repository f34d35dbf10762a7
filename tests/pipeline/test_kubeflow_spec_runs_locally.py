"""The compiled Kubeflow V2 spec of the tiny pipeline runs, twice, on emulated `gs://`.

`kubeflow_runner.compile_pipeline` writes the spec; `kubeflow_local_launcher` runs each
container task's command (TFX's Kubeflow V2 entrypoint) in a subprocess with KFP's
ExecutorInput, and answers the LatestBlessedModelResolver queries from its record. The
pipeline root and the serving directory are on the loopback GCS emulator of
`test_object_store_pipeline.py`; the subprocesses inherit its environment.
"""

from __future__ import annotations

import pytest

import devise_keras
from devise_keras import storage
from pipeline import kubeflow_local_launcher as launcher
from pipeline import kubeflow_runner
from tests.pipeline.gcs_emulator import gcs_emulator
from tests.pipeline.test_local_pipeline_e2e import COMPONENTS, png_bytes
from tests.pipeline.test_object_store_pipeline import _config

pytestmark = pytest.mark.slow

BUCKET = "devise-kfp"
RESOLVERS = [
    "LatestBlessedModelResolver-model-blessing-resolver",
    "LatestBlessedModelResolver-model-resolver",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("kfp")
    with gcs_emulator(workdir, buckets=(BUCKET,)):
        root = f"gs://{BUCKET}/devise"
        spec = kubeflow_runner.compile_pipeline(
            _config(workdir).replace(pipeline_name="devise-kfp"),
            workdir / "devise.json",
            pipeline_root=f"{root}/pipeline",
            serving_dir=f"{root}/serving",
        )
        first = launcher.run_spec(spec, log_dir=workdir / "logs1")
        second = launcher.run_spec(spec, log_dir=workdir / "logs2")
        yield root, first, second


def _states(run) -> dict[str, str]:
    return {task: execution["state"] for task, execution in run.executions.items()}


def test_first_run_executes_every_task_and_pushes_a_blessed_model(runs):
    root, first, _ = runs
    assert _states(first) == {task: "COMPLETE" for task in [*COMPONENTS, *RESOLVERS]}
    assert first.executions["Evaluator"]["inputs"]["baseline_model"] == []  # nothing blessed yet
    (model,) = first.outputs("DeviseTrainer", "model")
    assert model["uri"] == f"{root}/pipeline/{first.run_id}/DeviseTrainer/model"
    (blessing,) = first.outputs("Evaluator", "blessing")
    assert blessing["metadata"]["blessed"] == 1
    assert blessing["metadata"]["current_model_id"] == model["name"]
    (pushed,) = first.outputs("Pusher", "pushed_model")
    assert pushed["metadata"]["pushed"] == 1
    assert pushed["metadata"]["pushed_destination"].startswith(f"{root}/serving/")
    (examples,) = first.outputs("ImageExampleGen", "examples")
    splits = {name.rstrip("/") for name in storage.listdir(examples["uri"])}
    assert splits >= {"Split-train", "Split-eval", "Split-unseen"}

    app = devise_keras.load(f"{root}/serving")
    ranked = app.predict_labels([png_bytes((220, 40, 40))], k=2, over="labels")
    assert len(ranked[0]) == 2
    assert {label for label, _ in ranked[0]} <= {"cat", "dog", "car", "tree", "boat"}


def test_second_run_resolves_the_first_model_as_baseline(runs):
    _, first, second = runs
    (first_model,) = first.outputs("DeviseTrainer", "model")
    (resolved,) = second.outputs(RESOLVERS[1], "model")
    assert resolved["name"] == first_model["name"]
    assert second.executions["Evaluator"]["inputs"]["baseline_model"] == [
        {"name": first_model["name"], "uri": first_model["uri"]}
    ]
    # KFP's cache: the same inputs and parameters reuse the first run's outputs up to
    # the Evaluator, whose new input (the baseline) makes it and the Pusher run again.
    states = _states(second)
    assert {t: states[t] for t in COMPONENTS[:-2]} == {t: "CACHED" for t in COMPONENTS[:-2]}
    assert [states["Evaluator"], states["Pusher"]] == ["COMPLETE", "COMPLETE"]
    (blessing,) = second.outputs("Evaluator", "blessing")
    assert blessing["metadata"]["blessed"] == 1  # no worse than itself
