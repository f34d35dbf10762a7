"""The local Kubeflow launcher on hand-made specs: order, ExecutorInput, resolvers, failures.

The containers here are `python -c` one-liners (no TFX), so these run in seconds; the
compiled devise-keras spec runs in `test_kubeflow_spec_runs_locally.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipeline import kubeflow_local_launcher as launcher
from pipeline.kubeflow_artifact_record import (
    ArtifactRecord,
    QueryError,
    parse_filter,
    schema_title,
    substitute,
)

MODEL_TYPE = {"instanceSchema": "title: tfx.Model\ntype: object\n"}
BLESSING_TYPE = {"instanceSchema": "title: tfx.ModelBlessing\ntype: object\n"}

# Saves the ExecutorInput it got next to its output and blesses the model it was given
# (if any), pointing `current_model_id` at it, as TFX's Evaluator does.
TRAIN = """
import json, pathlib, sys
given = json.loads(sys.argv[1])
out = given["outputs"]["artifacts"]["model"]["artifacts"][0]
pathlib.Path(out["uri"], "executor_input.json").write_text(sys.argv[1])
written = {"artifacts": {"model": {"artifacts": [
    {"name": out["name"], "uri": out["uri"], "metadata": {"steps": 3.0}}]}}}
pathlib.Path(given["outputs"]["outputFile"]).write_text(json.dumps(written))
"""
BLESS = """
import json, pathlib, sys
given = json.loads(sys.argv[1])
model = given["inputs"]["artifacts"]["model"]["artifacts"][0]
out = given["outputs"]["artifacts"]["blessing"]["artifacts"][0]
metadata = {"blessed": 1.0, "current_model_id": model["name"]}
written = {"artifacts": {"blessing": {"artifacts": [{"uri": out["uri"], "metadata": metadata}]}},
           "parameterValues": {"verdict": "ok"}}
pathlib.Path(given["outputs"]["outputFile"]).write_text(json.dumps(written))
"""
FAIL = "import sys; sys.stderr.write('reading gs://no-such-bucket/x: bucket not found\\n'); sys.exit(3)"


def _container(script: str) -> dict:
    return {
        "container": {
            "image": "devise-keras:test",
            "command": ["python", "-c", script],
            "args": ["{{$}}"],
        }
    }


def _artifact_defs(**types) -> dict:
    return {"artifacts": {k: {"artifactType": t} for k, t in types.items()}}


def tiny_spec(root, train=TRAIN) -> dict:
    """Trainer -> Evaluator, and TFX's two-step latest-blessed-model resolver."""
    resolver_filter = (
        'schema_title="tfx.Model" AND state=LIVE AND '
        "name=\"{{$.inputs.artifacts['input'].metadata['current_model_id']}}\""
    )
    return {
        "pipelineSpec": {
            "pipelineInfo": {"name": "tiny"},
            "root": {
                "dag": {
                    "tasks": {
                        "Trainer": {
                            "componentRef": {"name": "Trainer"},
                            "cachingOptions": {"enableCache": True},
                            "inputs": {
                                "parameters": {
                                    "steps": {"runtimeValue": {"constantValue": {"intValue": "3"}}},
                                    "rate": {
                                        "runtimeValue": {"constantValue": {"doubleValue": 0.5}}
                                    },
                                    "name": {"componentInputParameter": "model_name"},
                                }
                            },
                        },
                        "Evaluator": {
                            "componentRef": {"name": "Evaluator"},
                            "dependentTasks": ["Trainer"],
                            "inputs": {
                                "artifacts": {
                                    "model": {
                                        "taskOutputArtifact": {
                                            "producerTask": "Trainer",
                                            "outputArtifactKey": "model",
                                        }
                                    },
                                    "baseline": {
                                        "taskOutputArtifact": {
                                            "producerTask": "ModelResolver",
                                            "outputArtifactKey": "model",
                                        }
                                    },
                                }
                            },
                        },
                        "BlessingResolver": {"componentRef": {"name": "BlessingResolver"}},
                        "ModelResolver": {
                            "componentRef": {"name": "ModelResolver"},
                            "inputs": {
                                "artifacts": {
                                    "input": {
                                        "taskOutputArtifact": {
                                            "producerTask": "BlessingResolver",
                                            "outputArtifactKey": "blessing",
                                        }
                                    }
                                }
                            },
                        },
                    }
                }
            },
            "components": {
                "Trainer": {
                    "executorLabel": "Trainer_executor",
                    "outputDefinitions": _artifact_defs(model=MODEL_TYPE),
                },
                "Evaluator": {
                    "executorLabel": "Evaluator_executor",
                    "outputDefinitions": _artifact_defs(blessing=BLESSING_TYPE),
                },
                "BlessingResolver": {"executorLabel": "BlessingResolver_executor"},
                "ModelResolver": {"executorLabel": "ModelResolver_executor"},
            },
            "deploymentSpec": {
                "executors": {
                    "Trainer_executor": _container(train),
                    "Evaluator_executor": _container(BLESS),
                    "BlessingResolver_executor": {
                        "resolver": {
                            "outputArtifactQueries": {
                                "blessing": {
                                    "filter": 'schema_title="tfx.ModelBlessing" AND state=LIVE'
                                    " AND metadata.blessed.number_value=1"
                                }
                            }
                        }
                    },
                    "ModelResolver_executor": {
                        "resolver": {
                            "outputArtifactQueries": {"model": {"filter": resolver_filter}}
                        }
                    },
                }
            },
        },
        "runtimeConfig": {
            "gcsOutputDirectory": str(root),
            "parameterValues": {"model_name": "tiny-model"},
        },
    }


def test_tasks_run_after_their_dependencies_ties_in_name_order():
    tasks = {
        "d": {"dependentTasks": ["b", "c"]},
        "c": {
            "inputs": {
                "artifacts": {
                    "x": {"taskOutputArtifact": {"producerTask": "a", "outputArtifactKey": "x"}}
                }
            }
        },
        "b": {"dependentTasks": ["a"]},
        "a": {},
        "e": {},
    }
    assert launcher.task_order(tasks) == ["a", "b", "c", "d", "e"]


def test_a_cycle_or_an_unknown_dependency_is_named():
    with pytest.raises(launcher.SpecError, match=r"\['a', 'b'\] depend on each other"):
        launcher.task_order({"a": {"dependentTasks": ["b"]}, "b": {"dependentTasks": ["a"]}})
    with pytest.raises(launcher.SpecError, match="task a depends on unknown task"):
        launcher.task_order({"a": {"dependentTasks": ["ghost"]}})


def test_executor_input_has_the_kfp_launcher_layout():
    model = {
        "name": "p/r1/Trainer/model",
        "uri": "gs://b/root/r1/Trainer/model",
        "type": MODEL_TYPE,
        "metadata": {"steps": 3.0},
        "schema_title": "tfx.Model",
    }
    blessing = {**model, "name": "p/r2/Evaluator/blessing", "uri": "gs://b/root/r2/Ev/blessing"}
    blessing.update(type=BLESSING_TYPE, metadata={})
    got = launcher.executor_input(
        {"model": [model], "baseline": []},
        {"blessing": [blessing]},
        {"steps": 3, "rate": 0.5, "name": "x"},
        "gs://b/root/r2/Evaluator/executor_output.json",
        ["verdict"],
    )
    assert got == {
        "inputs": {
            "artifacts": {
                "model": {
                    "artifacts": [
                        {
                            "name": "p/r1/Trainer/model",
                            "uri": "gs://b/root/r1/Trainer/model",
                            "type": MODEL_TYPE,
                            "metadata": {"steps": 3.0},
                        }
                    ]
                },
                "baseline": {"artifacts": []},
            },
            "parameters": {
                "steps": {"intValue": "3"},
                "rate": {"doubleValue": 0.5},
                "name": {"stringValue": "x"},
            },
            "parameterValues": {"steps": 3, "rate": 0.5, "name": "x"},
        },
        "outputs": {
            "artifacts": {
                "blessing": {
                    "artifacts": [
                        {
                            "name": "p/r2/Evaluator/blessing",
                            "uri": "gs://b/root/r2/Ev/blessing",
                            "type": BLESSING_TYPE,
                            "metadata": {},
                        }
                    ]
                }
            },
            "parameters": {
                "verdict": {"outputFile": "gs://b/root/r2/Evaluator/parameters/verdict"}
            },
            "outputFile": "gs://b/root/r2/Evaluator/executor_output.json",
        },
    }


@pytest.mark.slow  # imports TFX (~30 s)
def test_tfx_entrypoint_parses_the_executor_input():
    """TFX's own parser (the container side) reads what the launcher writes."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils

    model = {"name": "p/r1/T/model", "uri": "/m", "type": MODEL_TYPE, "metadata": {"a": 1.0}}
    payload = launcher.executor_input({"model": [model]}, {}, {"steps": 3}, "/o/x.json")
    parsed = json_format.Parse(json.dumps(payload), pipeline_spec_pb2.ExecutorInput())
    names = {}
    (artifact,) = utils.parse_raw_artifact_dict(parsed.inputs.artifacts, names)["model"]
    assert artifact.type_name == "Model" and artifact.uri == "/m"
    assert names[artifact.id] == "p/r1/T/model"
    assert artifact.get_float_custom_property("a") == 1.0
    props = utils.parse_execution_properties(
        parsed.inputs.parameter_values, parsed.inputs.parameters
    )
    assert props == {"steps": 3}


def test_filters_and_placeholders_as_tfx_writes_them():
    assert parse_filter('schema_title="tfx.Model" AND state=LIVE AND name="a AND b"') == [
        ("schema_title", "tfx.Model"),
        ("state", "LIVE"),
        ("name", "a AND b"),
    ]
    with pytest.raises(QueryError, match="unsupported clause"):
        parse_filter("state!=LIVE")
    inputs = {"input": [{"uri": "/u", "metadata": {"current_model_id": "p/r/T/model"}}]}
    text = "name=\"{{$.inputs.artifacts['input'].metadata['current_model_id']}}\""
    assert substitute(text, inputs, {}, {}) == 'name="p/r/T/model"'
    assert substitute(text, {"input": []}, {}, {}) is None
    assert substitute("{{$}} {{$.inputs.parameters['n']}}", {}, {}, {"n": 2}) == "{{$}} 2"
    with pytest.raises(QueryError, match="unsupported placeholder"):
        substitute("{{$.pipeline_job_name}}", {}, {}, {})
    assert schema_title(BLESSING_TYPE) == "tfx.ModelBlessing"
    assert schema_title({"schemaTitle": "system.Model"}) == "system.Model"


def _artifact(name, title, metadata, pipeline="tiny"):
    return {
        "name": name,
        "uri": f"/root/{name}",
        "type": {"schemaTitle": title},
        "schema_title": title,
        "metadata": metadata,
        "state": "LIVE",
        "pipeline": pipeline,
    }


def test_resolver_queries_answer_from_a_hand_made_record(tmp_path):
    record = ArtifactRecord(tmp_path / "record.json")
    record.add_artifacts(
        [
            _artifact("m1", "tfx.Model", {}),
            _artifact("b1", "tfx.ModelBlessing", {"blessed": 1.0, "current_model_id": "m1"}),
            _artifact("m2", "tfx.Model", {}),
            _artifact("b2", "tfx.ModelBlessing", {"blessed": 0.0, "current_model_id": "m2"}),
            _artifact("b9", "tfx.ModelBlessing", {"blessed": 1.0}, pipeline="other"),
        ]
    )
    record.save()
    record = ArtifactRecord(tmp_path / "record.json")  # read back from the file
    blessed = 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
    assert [a["name"] for a in record.query(blessed, pipeline="tiny")] == ["b1"]
    assert [a["name"] for a in record.query(blessed, pipeline="other")] == ["b9"]
    models = 'schema_title="tfx.Model" AND state=LIVE'
    assert [a["name"] for a in record.query(models, pipeline="tiny")] == ["m2"]  # newest
    assert [a["name"] for a in record.query(models, pipeline="tiny", limit=5)] == ["m2", "m1"]
    assert record.query(f'{models} AND name="m3"', pipeline="tiny") == []
    assert ArtifactRecord(tmp_path / "new.json").query(blessed, pipeline="tiny") == []


def test_first_run_has_no_baseline_second_run_gets_the_blessed_model(tmp_path):
    spec = tiny_spec(tmp_path / "root")
    first = launcher.run_spec(spec, progress=False)
    assert {n: e["state"] for n, e in first.executions.items()} == {
        "BlessingResolver": "COMPLETE",
        "ModelResolver": "COMPLETE",
        "Trainer": "COMPLETE",
        "Evaluator": "COMPLETE",
    }
    (model,) = first.outputs("Trainer", "model")
    assert model["uri"] == f"{tmp_path}/root/{first.run_id}/Trainer/model"
    assert model["metadata"] == {"steps": 3.0}  # read back from the ExecutorOutput
    given = json.loads(
        (tmp_path / "root" / first.run_id / "Trainer/model/executor_input.json").read_text()
    )
    assert given["inputs"]["parameterValues"] == {"steps": 3, "rate": 0.5, "name": "tiny-model"}
    assert given["outputs"]["outputFile"] == (
        f"{tmp_path}/root/{first.run_id}/Trainer/executor_output.json"
    )
    assert first.executions["Evaluator"]["inputs"]["baseline"] == []
    assert first.executions["Evaluator"]["output_parameters"] == {"verdict": "ok"}
    (blessing,) = first.outputs("Evaluator", "blessing")
    assert blessing["metadata"] == {"blessed": 1.0, "current_model_id": model["name"]}

    second = launcher.run_spec(spec, progress=False)
    assert second.executions["Trainer"]["state"] == "CACHED"  # same inputs and parameters
    assert second.outputs("Trainer", "model") == [model]
    assert second.executions["Evaluator"]["state"] == "COMPLETE"  # a new input: the baseline
    assert second.executions["Evaluator"]["inputs"]["baseline"] == [
        {"name": model["name"], "uri": model["uri"]}
    ]
    third = launcher.run_spec(spec, progress=False, enable_cache=False)
    assert third.executions["Trainer"]["state"] == "COMPLETE"


def test_a_failing_task_stops_the_run_naming_it_and_records_nothing_it_made(tmp_path):
    spec = tiny_spec(tmp_path / "root", train=FAIL)
    with pytest.raises(launcher.TaskFailedError) as err:
        launcher.run_spec(spec, progress=False)
    message = str(err.value)
    assert "Kubeflow task Trainer failed (exit code 3)" in message
    assert "gs://no-such-bucket/x: bucket not found" in message  # the tail of its stderr
    record = ArtifactRecord(tmp_path / "root" / launcher.RECORD_FILENAME)
    assert [(e["task"], e["state"]) for e in record.executions][-1] == ("Trainer", "FAILED")
    assert not [a for a in record.artifacts if a["task"] == "Trainer"]
    assert "Evaluator" not in {e["task"] for e in record.executions}


def test_a_hanging_task_is_stopped_after_the_timeout(tmp_path):
    spec = tiny_spec(tmp_path / "root", train="import time; time.sleep(60)")
    with pytest.raises(launcher.TaskFailedError, match=r"Trainer failed \(no result after 1"):
        launcher.run_spec(spec, progress=False, task_timeout=1.5)


def test_the_cli_runs_a_spec_and_names_a_missing_one(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(tmp_path / "root")))
    run = [sys.executable, "-m", "pipeline.cli", "run-kubeflow-spec"]
    done = subprocess.run([*run, str(spec)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Evaluator: COMPLETE -> blessing" in done.stdout
    missing = subprocess.run([*run, str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert missing.returncode == 2
    assert "Kubeflow spec not found" in missing.stderr and "nope.json" in missing.stderr


def test_a_mistyped_pipeline_root_is_named_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"gs:/bucket/root: malformed URI, did you mean gs://"):
        launcher.run_spec(tiny_spec(tmp_path), pipeline_root="gs:/bucket/root", progress=False)
    assert not (tmp_path / launcher.RECORD_FILENAME).exists()
