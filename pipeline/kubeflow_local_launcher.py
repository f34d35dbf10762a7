"""Runs a compiled Kubeflow Pipelines V2 spec on this machine: a smoke test before upload.

`devise-keras compile-kubeflow` writes a KFP V2 pipeline job JSON. This launcher executes
it the way a KFP cluster would, without one and without the kfp package (whose current
release needs a newer protobuf than TFX 1.16):

- tasks of `pipelineSpec.root.dag.tasks` in dependency order (`dependentTasks` and the
  producers of input artifacts and parameters);
- a container task runs its executor's `command` + `args` exactly as in the spec (TFX's
  Kubeflow V2 entrypoint), in a subprocess with `python` meaning this interpreter (the
  container image's python is this environment here), `{{$}}` replaced by KFP's
  ExecutorInput JSON: input artifacts (name, uri, type, metadata), parameters, fresh
  output URIs `<root>/<run id>/<task>/<output key>`, and `outputs.outputFile`;
- the ExecutorOutput the task writes back (artifact metadata, e.g. `blessed`) is read and
  every produced artifact recorded in `ArtifactRecord`, a JSON file beside the pipeline
  root that persists across runs; a failed task records nothing it produced;
- resolver tasks (`outputArtifactQueries`, TFX's LatestBlessedModelResolver) and importer
  tasks are answered from that record; caching follows KFP's rule (same component, same
  input artifacts, same parameters: reuse the recorded outputs).

Usage:
    devise-keras run-kubeflow-spec devise_pipeline.json
    python -m pipeline.kubeflow_local_launcher devise_pipeline.json --no-cache

The pipeline root is the spec's `runtimeConfig.gcsOutputDirectory` (or `--pipeline-root`)
and may be any filesystem TensorFlow knows; every task sees this process's environment.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import Any

from devise_keras import storage
from pipeline.kubeflow_artifact_record import ArtifactRecord, schema_title, substitute

RECORD_FILENAME = "kubeflow_local_launcher.json"
EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
STDERR_TAIL_LINES = 25
_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")


class TaskFailedError(RuntimeError):
    """A task of the spec failed; the message names it and ends with its stderr."""


class SpecError(ValueError):
    """The spec uses something this launcher does not execute, or is malformed."""


@dataclasses.dataclass
class LauncherRun:
    """What one launcher run did: its id, where it wrote, and each task's execution."""

    run_id: str
    pipeline: str
    pipeline_root: str
    record_path: str
    log_dir: str
    executions: dict[str, dict]

    def outputs(self, task: str, key: str) -> list[dict]:
        """The artifacts `task` produced (or resolved) under output `key`."""
        record = ArtifactRecord(self.record_path)
        return [record.by_name(name) for name in self.executions[task]["outputs"].get(key, [])]


def load_spec(path: str | os.PathLike) -> dict:
    """The pipeline job JSON (`pipelineSpec` + `runtimeConfig`), or a bare PipelineSpec."""
    if not storage.exists(path):
        raise FileNotFoundError(f"Kubeflow spec not found: {os.fspath(path)}")
    try:
        spec = json.loads(storage.read_text(path))
    except json.JSONDecodeError as err:
        raise SpecError(f"{os.fspath(path)} is not JSON: {err}") from err
    if "pipelineSpec" not in spec:
        spec = {"pipelineSpec": spec, "runtimeConfig": {}}
    for key in ("root", "components", "deploymentSpec", "pipelineInfo"):
        if key not in spec["pipelineSpec"]:
            raise SpecError(f"{os.fspath(path)} is not a KFP V2 pipeline spec (no {key!r})")
    return spec


def task_dependencies(task: dict) -> set[str]:
    """Tasks that must finish first: `dependentTasks` and producers of inputs."""
    deps = set(task.get("dependentTasks", []))
    inputs = task.get("inputs", {})
    for source in inputs.get("artifacts", {}).values():
        if "taskOutputArtifact" in source:
            deps.add(source["taskOutputArtifact"]["producerTask"])
    for source in inputs.get("parameters", {}).values():
        if "taskOutputParameter" in source:
            deps.add(source["taskOutputParameter"]["producerTask"])
    return deps


def task_order(tasks: dict[str, dict]) -> list[str]:
    """Task names in dependency order; ties in name order, so runs are repeatable."""
    deps = {name: task_dependencies(task) for name, task in tasks.items()}
    for name, needed in deps.items():
        unknown = needed - tasks.keys()
        if unknown:
            raise SpecError(f"task {name} depends on unknown task(s) {sorted(unknown)}")
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(tasks):
        ready = sorted(n for n in tasks if n not in done and deps[n] <= done)
        if not ready:
            stuck = sorted(n for n in tasks if n not in done)
            raise SpecError(f"the tasks {stuck} depend on each other in a cycle")
        order.append(ready[0])
        done.add(ready[0])
    return order


def _plain(value: dict) -> Any:
    """A KFP `Value` ({intValue|doubleValue|stringValue}) as a Python value."""
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "stringValue" in value:
        return value["stringValue"]
    return value.get("boolValue", "")


def _kfp_value(plain: Any) -> dict:
    """A Python value as a KFP `Value` (the deprecated `parameters` field)."""
    if isinstance(plain, bool) or not isinstance(plain, int | float):
        return {"stringValue": plain if isinstance(plain, str) else json.dumps(plain)}
    if isinstance(plain, int):
        return {"intValue": str(plain)}
    return {"doubleValue": plain}


def task_parameters(task_name: str, task: dict, runtime: dict, produced: dict) -> dict:
    """{name: plain value} of the task's input parameters."""
    result = {}
    for name, source in task.get("inputs", {}).get("parameters", {}).items():
        if "runtimeValue" in source:
            runtime_value = source["runtimeValue"]
            if "constantValue" in runtime_value:
                result[name] = _plain(runtime_value["constantValue"])
            else:
                result[name] = runtime_value.get("constant")
        elif "componentInputParameter" in source:
            key = source["componentInputParameter"]
            given = {**runtime.get("parameters", {}), **runtime.get("parameterValues", {})}
            if key not in given:
                raise SpecError(
                    f"task {task_name}: pipeline parameter {key!r} has no value in runtimeConfig"
                )
            value = given[key]
            result[name] = _plain(value) if isinstance(value, dict) else value
        elif "taskOutputParameter" in source:
            producer = source["taskOutputParameter"]["producerTask"]
            key = source["taskOutputParameter"]["outputParameterKey"]
            result[name] = produced[producer]["output_parameters"][key]
        else:
            raise SpecError(f"task {task_name}: unsupported parameter source {source}")
    return result


def runtime_artifact(artifact: dict) -> dict:
    """An artifact in KFP's RuntimeArtifact JSON form."""
    return {k: artifact[k] for k in ("name", "uri", "type", "metadata")}


def executor_input(
    inputs: dict[str, list[dict]],
    outputs: dict[str, list[dict]],
    parameters: dict[str, Any],
    output_file: str,
    output_parameters: Sequence[str] = (),
) -> dict:
    """KFP's ExecutorInput JSON: what the KFP launcher hands a container as `{{$}}`.

    Parameters appear twice, as KFP does for old and new readers: `parameters`
    (KFP `Value`s, which TFX's entrypoint reads without an inputs spec) and
    `parameterValues` (protobuf `Value`s, read with one).
    """
    task_root = os.path.dirname(output_file)
    return {
        "inputs": {
            "artifacts": {
                key: {"artifacts": [runtime_artifact(a) for a in artifacts]}
                for key, artifacts in inputs.items()
            },
            "parameters": {k: _kfp_value(v) for k, v in parameters.items()},
            "parameterValues": parameters,
        },
        "outputs": {
            "artifacts": {
                key: {"artifacts": [runtime_artifact(a) for a in artifacts]}
                for key, artifacts in outputs.items()
            },
            "parameters": {
                key: {"outputFile": f"{task_root}/parameters/{key}"} for key in output_parameters
            },
            "outputFile": output_file,
        },
    }


def container_command(container: dict, executor_input_json: str, context: tuple) -> list[str]:
    """The container's command + args, placeholders filled, `python` as this interpreter."""
    argv = []
    for part in [*container.get("command", []), *container.get("args", [])]:
        filled = substitute(part, *context)
        part = part if filled is None else filled
        argv.append(part.replace(EXECUTOR_INPUT_PLACEHOLDER, executor_input_json))
    if argv and _PYTHON.match(argv[0]):
        argv[0] = sys.executable
    return argv


def cache_key(component: dict, executor: dict, inputs: dict, parameters: dict) -> str:
    """KFP's cache rule: same component and executor, same input artifacts and parameters."""
    payload = {
        "component": component,
        "executor": executor,
        "inputs": {k: [a["name"] for a in v] for k, v in inputs.items()},
        "parameters": parameters,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _tail(path: str, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return "(no stderr captured)"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Launcher:
    """One run of a spec; `run_spec` is the public entry point."""

    def __init__(self, spec, pipeline_root, record_path, enable_cache, log_dir, task_timeout):
        self.spec = spec["pipelineSpec"]
        self.runtime = spec.get("runtimeConfig", {})
        self.pipeline = self.spec["pipelineInfo"]["name"]
        self.root = (pipeline_root or self.runtime.get("gcsOutputDirectory", "")).rstrip("/")
        if not self.root:
            raise SpecError("the spec names no pipeline root (runtimeConfig.gcsOutputDirectory)")
        storage.make_root(self.root)  # an unreachable store or a typo stops here, named
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.run_id = f"{self.pipeline}-{stamp}-{uuid.uuid4().hex[:6]}"
        self.record = ArtifactRecord(record_path or f"{self.root}/{RECORD_FILENAME}")
        if log_dir is None:
            log_dir = (
                os.path.join(self.root, self.run_id, "logs")
                if storage.is_local(self.root)
                else os.path.join(tempfile.gettempdir(), "devise-kfp-logs", self.run_id)
            )
        self.log_dir = os.fspath(log_dir)
        self.enable_cache = enable_cache
        self.task_timeout = task_timeout
        self.executions: dict[str, dict] = {}

    def run(self, progress: bool) -> LauncherRun:
        from tqdm import tqdm

        tasks = self.spec["root"].get("dag", {}).get("tasks", {})
        order = task_order(tasks)
        os.makedirs(self.log_dir, exist_ok=True)
        bar = tqdm(
            order, desc=f"{self.pipeline} (local Kubeflow)", unit="task", disable=not progress
        )
        for name in bar:
            bar.set_postfix_str(name)
            start = time.monotonic()
            execution = self._run_task(name, tasks[name])
            self.executions[name] = execution
            if progress:
                bar.write(f"{name}: {execution['state']} ({time.monotonic() - start:.0f} s)")
        return LauncherRun(
            run_id=self.run_id,
            pipeline=self.pipeline,
            pipeline_root=self.root,
            record_path=self.record.path,
            log_dir=self.log_dir,
            executions=self.executions,
        )

    def _input_artifacts(self, name: str, task: dict) -> dict[str, list[dict]]:
        result = {}
        for key, source in task.get("inputs", {}).get("artifacts", {}).items():
            if "taskOutputArtifact" not in source:
                raise SpecError(f"task {name}: unsupported input artifact source {source}")
            producer = source["taskOutputArtifact"]["producerTask"]
            output_key = source["taskOutputArtifact"]["outputArtifactKey"]
            names = self.executions[producer]["outputs"].get(output_key, [])
            result[key] = [self.record.by_name(n) for n in names]
        return result

    def _run_task(self, name: str, task: dict) -> dict:
        for unsupported in ("triggerPolicy", "iteratorPolicy", "parameterIterator"):
            if unsupported in task:
                raise SpecError(f"task {name}: {unsupported} is not supported by this launcher")
        component = self.spec["components"][task["componentRef"]["name"]]
        if "executorLabel" not in component:
            raise SpecError(f"task {name}: sub-DAG components are not supported")
        executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
        inputs = self._input_artifacts(name, task)
        parameters = task_parameters(name, task, self.runtime, self.executions)
        execution = {
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "task": name,
            "inputs": {
                k: [{"name": a["name"], "uri": a["uri"]} for a in v] for k, v in inputs.items()
            },
            "parameters": parameters,
            "output_parameters": {},
            "cache_key": "",
            "started": _now(),
        }
        if "resolver" in executor:
            outputs = self._resolve(name, executor["resolver"], inputs, parameters)
        elif "importer" in executor:
            outputs = self._import(name, component, executor["importer"], parameters)
        elif "container" in executor:
            key = cache_key(component, executor, inputs, parameters)
            execution["cache_key"] = key
            enabled = self.enable_cache and task.get("cachingOptions", {}).get("enableCache")
            cached = self.record.cached_execution(self.pipeline, name, key) if enabled else None
            if cached:
                execution["state"] = "CACHED"
                execution["output_parameters"] = cached["output_parameters"]
                outputs = {
                    k: [self.record.by_name(n) for n in v] for k, v in cached["outputs"].items()
                }
            else:
                outputs = self._run_container(
                    name, component, executor["container"], inputs, parameters, execution
                )
        else:
            raise SpecError(f"task {name}: executor kind {sorted(executor)} is not supported")
        execution.setdefault("state", "COMPLETE")
        execution["outputs"] = {k: [a["name"] for a in v] for k, v in outputs.items()}
        execution["finished"] = _now()
        self.record.add_execution(execution)
        self.record.save()
        return execution

    def _resolve(self, name, resolver, inputs, parameters) -> dict[str, list[dict]]:
        outputs = {}
        for key, query in resolver.get("outputArtifactQueries", {}).items():
            text = substitute(query["filter"], inputs, {}, parameters)
            # A placeholder on an empty input (no blessed model yet): nothing to find.
            outputs[key] = (
                []
                if text is None
                else self.record.query(text, pipeline=self.pipeline, limit=query.get("limit", 0))
            )
        return outputs

    def _new_artifact(self, task: str, key: str, type_schema: dict, uri: str) -> dict:
        return {
            "name": f"{self.pipeline}/{self.run_id}/{task}/{key}",
            "uri": uri,
            "type": type_schema,
            "schema_title": schema_title(type_schema),
            "metadata": {},
            "state": "LIVE",
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "task": task,
            "output_key": key,
            "created": _now(),
        }

    def _import(self, name, component, importer, parameters) -> dict[str, list[dict]]:
        source = importer.get("artifactUri", {})
        if "constantValue" in source:
            uri = _plain(source["constantValue"])
        elif "runtimeParameter" in source:
            uri = parameters.get(source["runtimeParameter"])
        else:
            uri = source.get("constant")
        if not uri:
            raise SpecError(f"importer task {name} has no artifact URI")
        (key,) = component.get("outputDefinitions", {}).get("artifacts", {"artifact": None})
        type_schema = importer["typeSchema"]
        if not importer.get("reimport"):
            for known in reversed(self.record.artifacts):
                if known["uri"] == uri and known["schema_title"] == schema_title(type_schema):
                    return {key: [known]}
        artifact = self._new_artifact(name, key, type_schema, uri)
        artifact["metadata"] = importer.get("metadata", {})
        self.record.add_artifacts([artifact])
        return {key: [artifact]}

    def _run_container(self, name, component, container, inputs, parameters, execution):
        for hook in ("lifecycle",):
            if hook in container:
                raise SpecError(f"task {name}: container lifecycle hooks are not supported")
        task_root = f"{self.root}/{self.run_id}/{name}"
        definitions = component.get("outputDefinitions", {})
        outputs = {
            key: [self._new_artifact(name, key, d["artifactType"], f"{task_root}/{key}")]
            for key, d in definitions.get("artifacts", {}).items()
        }
        for artifacts in outputs.values():
            storage.makedirs(artifacts[0]["uri"])  # as KFP's launcher prepares output folders
        output_file = f"{task_root}/executor_output.json"
        payload = executor_input(
            inputs, outputs, parameters, output_file, list(definitions.get("parameters", {}))
        )
        argv = container_command(container, json.dumps(payload), (inputs, outputs, parameters))
        stdout_path = os.path.join(self.log_dir, f"{name}.stdout.log")
        stderr_path = os.path.join(self.log_dir, f"{name}.stderr.log")
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            try:
                code = subprocess.run(
                    argv, stdout=out, stderr=err, timeout=self.task_timeout
                ).returncode
                reason = f"exit code {code}" if code else ""
            except subprocess.TimeoutExpired:
                reason = f"no result after {self.task_timeout} s (stopped)"
        if not reason:
            try:
                self._read_executor_output(output_file, outputs, execution)
            except (OSError, ValueError) as exc:
                reason = f"unreadable executor output {output_file}: {exc}"
        if reason:
            execution.update(state="FAILED", outputs={}, finished=_now())
            self.record.add_execution(execution)
            self.record.save()
            raise TaskFailedError(
                f"Kubeflow task {name} failed ({reason}) in run {self.run_id}; its outputs "
                f"are not recorded. Last lines of its stderr ({stderr_path}):\n"
                f"{_tail(stderr_path)}"
            )
        produced = [a for artifacts in outputs.values() for a in artifacts]
        self.record.add_artifacts(produced)
        return outputs

    @staticmethod
    def _read_executor_output(output_file: str, outputs: dict, execution: dict) -> None:
        """Merges the task's ExecutorOutput (artifact metadata, output parameters)."""
        if not storage.exists(output_file):
            return  # KFP accepts a container that writes none: outputs keep their metadata
        written = json.loads(storage.read_text(output_file))
        for key, artifact_list in written.get("artifacts", {}).items():
            for mine, theirs in zip(
                outputs.get(key, []), artifact_list.get("artifacts", []), strict=False
            ):
                mine["metadata"] = copy.deepcopy(theirs.get("metadata", {}))
                mine["uri"] = theirs.get("uri") or mine["uri"]
        values = {k: _plain(v) for k, v in written.get("parameters", {}).items()}
        values.update(written.get("parameterValues", {}))
        execution["output_parameters"] = values


def run_spec(
    spec: str | os.PathLike | dict,
    *,
    pipeline_root: str | None = None,
    record_path: str | None = None,
    enable_cache: bool = True,
    log_dir: str | os.PathLike | None = None,
    task_timeout: float | None = None,
    progress: bool = True,
) -> LauncherRun:
    """Executes a compiled KFP V2 spec task by task on this machine.

    Args:
        spec: the JSON file `devise-keras compile-kubeflow` wrote, or its parsed dict.
        pipeline_root: artifact root (default: the spec's runtimeConfig.gcsOutputDirectory).
        record_path: the launcher's artifact record (default: in the pipeline root).
        enable_cache: reuse a recorded execution with the same cache key (KFP's rule),
            for tasks whose `cachingOptions.enableCache` is on.
        log_dir: local folder for each task's stdout/stderr (default: under the run's
            folder in a local root, else in the temporary directory).
        task_timeout: seconds after which a task is stopped and counts as failed.
        progress: a progress bar and one line per task on stderr.

    Raises:
        TaskFailedError: a task failed; nothing it produced is recorded.
        SpecError: the spec uses a KFP feature this launcher does not execute.
    """
    parsed = load_spec(spec) if not isinstance(spec, dict) else spec
    launcher = _Launcher(parsed, pipeline_root, record_path, enable_cache, log_dir, task_timeout)
    return launcher.run(progress)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the pipeline JSON written by `devise-keras compile-kubeflow`")
    parser.add_argument("--pipeline-root", help="artifact root (default: the spec's own)")
    parser.add_argument("--record", help="launcher record JSON (default: in the pipeline root)")
    parser.add_argument("--log-dir", help="local folder for each task's stdout and stderr")
    parser.add_argument("--no-cache", action="store_true", help="run every task again")
    parser.add_argument("--task-timeout", type=float, help="stop a task after this many seconds")


def run_from_args(args: argparse.Namespace) -> int:
    result = run_spec(
        args.spec,
        pipeline_root=args.pipeline_root,
        record_path=args.record,
        enable_cache=not args.no_cache,
        log_dir=args.log_dir,
        task_timeout=args.task_timeout,
    )
    print(f"run {result.run_id}: {len(result.executions)} tasks")
    for name, execution in result.executions.items():
        produced = ", ".join(n.rsplit("/", 1)[-1] for v in execution["outputs"].values() for n in v)
        print(f"  {name}: {execution['state']}" + (f" -> {produced}" if produced else ""))
    print(f"artifacts under {result.pipeline_root}/{result.run_id}; record {result.record_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.kubeflow_local_launcher", description=__doc__.split("\n")[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except (TaskFailedError, SpecError, FileNotFoundError) as err:
        print(f"kubeflow_local_launcher: failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
