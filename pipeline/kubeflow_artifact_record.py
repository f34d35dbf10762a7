"""The local Kubeflow launcher's metadata store: a JSON record of artifacts and executions.

On a cluster, KFP keeps artifacts and executions in ML Metadata and answers resolver
tasks (`outputArtifactQueries`) from it. The local launcher (`kubeflow_local_launcher`)
keeps the same facts in one JSON file beside the pipeline root, on any filesystem
TensorFlow knows, and answers the queries TFX compiles into the spec from it:

    schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1
    schema_title="tfx.Model" AND state=LIVE AND name="{{$.inputs.artifacts['input'].metadata['current_model_id']}}"

An artifact is a dict: name, uri, type (KFP's ArtifactTypeSchema as JSON), schema_title,
metadata, state, pipeline, run_id, task, output_key, created. An execution: pipeline,
run_id, task, state (COMPLETE, CACHED, FAILED), cache_key, inputs {key: [{name, uri}]},
outputs {key: [name]}, output_parameters, started, finished.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from devise_keras import storage

RECORD_VERSION = 1
LIVE = "LIVE"

# A KFP runtime placeholder inside a filter or an argument, e.g.
# {{$.inputs.artifacts['input'].metadata['current_model_id']}}.
_PLACEHOLDER = re.compile(r"\{\{\$(?P<path>[^{}]*)\}\}")
_PLACEHOLDER_PATH = re.compile(
    r"^\.(?P<side>inputs|outputs)\.(?P<kind>artifacts|parameters)\['(?P<key>[^']+)'\]"
    r"(?P<rest>(?:\.uri|\.metadata\['[^']+'\])?)$"
)
_METADATA_KEY = re.compile(r"^\.metadata\['(?P<key>[^']+)'\]$")
_METADATA_FIELD = re.compile(
    r"^metadata\.(?P<key>.+)\.(?P<kind>number_value|string_value|bool_value)$"
)


class QueryError(ValueError):
    """An artifact query or placeholder this launcher cannot evaluate."""


def schema_title(type_schema: dict) -> str:
    """The artifact type's title from KFP's ArtifactTypeSchema (JSON form).

    TFX writes `instanceSchema` (YAML whose `title:` line names the type, e.g.
    `tfx.Model` or `devise.LabelEmbeddings`); KFP's own types use `schemaTitle`.
    """
    if type_schema.get("schemaTitle"):
        return type_schema["schemaTitle"]
    for line in type_schema.get("instanceSchema", "").splitlines():
        if line.startswith("title:"):
            return line.split(":", 1)[1].strip()
    raise QueryError(f"artifact type has no title: {json.dumps(type_schema)[:200]}")


def resolve_placeholder(path: str, inputs: dict, outputs: dict, parameters: dict) -> Any:
    """The value of one `{{$...}}` placeholder path (without braces and `$`).

    Args:
        path: e.g. `.inputs.artifacts['input'].metadata['current_model_id']`,
            `.inputs.parameters['name']`, `.outputs.artifacts['model'].uri`.
        inputs / outputs: {key: [artifact dict]} of the task.
        parameters: {name: plain value} of the task's inputs.

    Returns None when the artifact list is empty (a resolver found nothing).
    """
    match = _PLACEHOLDER_PATH.match(path)
    if not match:
        raise QueryError(f"unsupported placeholder {{{{${path}}}}}")
    side, kind, key, rest = match["side"], match["kind"], match["key"], match["rest"]
    if kind == "parameters":
        if side != "inputs" or rest or key not in parameters:
            raise QueryError(f"unknown parameter in placeholder {{{{${path}}}}}")
        return parameters[key]
    artifacts = (inputs if side == "inputs" else outputs).get(key)
    if artifacts is None:
        raise QueryError(f"unknown artifact {key!r} in placeholder {{{{${path}}}}}")
    if not artifacts:
        return None
    if not rest:
        raise QueryError(f"placeholder {{{{${path}}}}} needs .uri or .metadata['key']")
    if rest == ".uri":
        return artifacts[0]["uri"]
    return artifacts[0].get("metadata", {}).get(_METADATA_KEY.match(rest)["key"])


def substitute(text: str, inputs: dict, outputs: dict, parameters: dict) -> str | None:
    """`text` with every `{{$...}}` placeholder (except the bare `{{$}}`) replaced.

    Returns None when a placeholder refers to an empty artifact list.
    """
    missing = False

    def replace(match: re.Match) -> str:
        nonlocal missing
        value = resolve_placeholder(match["path"], inputs, outputs, parameters)
        if value is None:
            missing = True
            return ""
        return value if isinstance(value, str) else json.dumps(value)

    result = _PLACEHOLDER.sub(lambda m: m[0] if not m["path"] else replace(m), text)
    return None if missing else result


def _split_and(text: str) -> list[str]:
    """Splits a filter on ` AND ` outside double quotes."""
    clauses, current, quoted, i = [], [], False, 0
    while i < len(text):
        if text[i] == '"':
            quoted = not quoted
        if not quoted and text.startswith(" AND ", i):
            clauses.append("".join(current).strip())
            current, i = [], i + 5
            continue
        current.append(text[i])
        i += 1
    clauses.append("".join(current).strip())
    return clauses


def parse_filter(text: str) -> list[tuple[str, str]]:
    """`a="x" AND b=y` -> [("a", "x"), ("b", "y")]: the equality filters TFX writes."""
    terms = []
    for clause in _split_and(text):
        field, sep, value = clause.partition("=")
        field, value = field.strip(), value.strip()
        if not sep or not field or field.endswith(("!", "<", ">")):
            raise QueryError(f"unsupported clause {clause!r} in artifact filter {text!r}")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        terms.append((field, value))
    return terms


def _term_matches(artifact: dict, field: str, value: str) -> bool:
    if field == "schema_title":
        return artifact["schema_title"] == value
    if field in ("state", "name", "uri"):
        return str(artifact.get(field, "")) == value
    match = _METADATA_FIELD.match(field)
    if not match:
        raise QueryError(f"unsupported field {field!r} in artifact filter")
    actual = artifact.get("metadata", {}).get(match["key"])
    if actual is None:
        return False
    if match["kind"] == "number_value":
        try:
            return isinstance(actual, int | float) and float(actual) == float(value)
        except ValueError as err:
            raise QueryError(f"{field}={value!r} is not a number") from err
    if match["kind"] == "bool_value":
        return isinstance(actual, bool) and actual == (value.lower() == "true")
    return isinstance(actual, str) and actual == value


def matches(artifact: dict, terms: list[tuple[str, str]]) -> bool:
    """True if the artifact satisfies every (field, value) term of a parsed filter."""
    return all(_term_matches(artifact, field, value) for field, value in terms)


class ArtifactRecord:
    """Artifacts and executions of every local launcher run of a pipeline root.

    Args:
        path: the JSON file (local or any `scheme://` TensorFlow knows). It is read
            if it exists and rewritten by `save()`.

    Example:
        >>> record = ArtifactRecord("/tmp/no-such-dir/record.json")
        >>> record.query('schema_title="tfx.Model" AND state=LIVE', pipeline="p")
        []
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.artifacts: list[dict] = []
        self.executions: list[dict] = []
        if storage.exists(self.path):
            try:
                data = json.loads(storage.read_text(self.path))
            except json.JSONDecodeError as err:
                raise ValueError(f"launcher record {self.path} is not JSON: {err}") from err
            if data.get("version") != RECORD_VERSION:
                raise ValueError(
                    f"launcher record {self.path} has version {data.get('version')!r}, "
                    f"this launcher writes {RECORD_VERSION}"
                )
            self.artifacts = data["artifacts"]
            self.executions = data["executions"]

    def save(self) -> None:
        parent = os.path.dirname(self.path)
        if parent:
            storage.makedirs(parent)
        payload = {
            "version": RECORD_VERSION,
            "artifacts": self.artifacts,
            "executions": self.executions,
        }
        storage.write_text(self.path, json.dumps(payload, indent=1, sort_keys=True))

    def add_artifacts(self, artifacts: list[dict]) -> None:
        known = {a["name"] for a in self.artifacts}
        for artifact in artifacts:
            if artifact["name"] in known:
                raise ValueError(f"artifact {artifact['name']} is already recorded")
            self.artifacts.append(artifact)

    def add_execution(self, execution: dict) -> None:
        self.executions.append(execution)

    def by_name(self, name: str) -> dict | None:
        return next((a for a in self.artifacts if a["name"] == name), None)

    def query(self, filter_text: str, *, pipeline: str, limit: int = 1) -> list[dict]:
        """The newest `limit` artifacts of `pipeline` that match the filter, newest first.

        KFP answers a query within the pipeline's context; an unset limit (0) means the
        latest one, which TFX's LatestBlessedModelResolver relies on.
        """
        terms = parse_filter(filter_text)
        found = [a for a in reversed(self.artifacts) if a["pipeline"] == pipeline]
        found = [a for a in found if matches(a, terms)]
        return found[: max(limit, 1)]

    def cached_execution(self, pipeline: str, task: str, cache_key: str) -> dict | None:
        """The newest successful execution with this cache key whose outputs are recorded."""
        for execution in reversed(self.executions):
            if (
                execution["pipeline"] == pipeline
                and execution["task"] == task
                and execution["cache_key"] == cache_key
                and execution["state"] in ("COMPLETE", "CACHED")
                and all(
                    self.by_name(name) is not None
                    for names in execution["outputs"].values()
                    for name in names
                )
            ):
                return execution
        return None
