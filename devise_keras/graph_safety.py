"""Model files are programs: refuse SavedModels whose graph touches files or runs Python.

A SavedModel (and so a `.keras` archive that bundles one, as `HubBackbone` and app
bundles do) is a TensorFlow program: loading and calling it runs whatever ops its
graph holds, and Keras' `safe_mode` guards only Python lambdas in the Keras config,
never graph ops. A crafted image backbone could list or overwrite files on the first
`predict`. `check_saved_model` reads `saved_model.pb` as data (nothing is loaded or
run), finds every op a loaded model could execute, and refuses the types in
`REFUSED_OPS` unless the caller trusts the model (`trust_model=True`, or the
`trusted_models()` scope that `devise_keras.load(..., trust_model=True)` opens around
Keras' loader, so the `HubBackbone` that Keras deserializes sees it too).

The checkpoint ops (SaveV2, RestoreV2, MergeV2Checkpoints) are in every SavedModel: its
saver functions, reached only from the MetaGraph's `saver_def`, write and read the
model's own variables. They are allowed there, and refused anywhere else (e.g. called
from `__call__`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from devise_keras import storage

# The one list. Each name is an op type of TF 2.16's registry (tf.raw_ops); a test
# checks that they all exist, so a renamed op cannot silently drop out.
FILE_SYSTEM_OPS = frozenset(
    {
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "FileSystemSetConfiguration",
        "ImmutableConst",  # memory-maps a named file
        "PrintV2",  # output_stream may be "file://<path>"
        "RecordInput",
        "InitializeTableFromTextFile",
        "InitializeTableFromTextFileV2",
        "LoadAndRemapMatrix",
        "CreateSummaryFileWriter",
        "CreateSummaryDbWriter",
        "Restore",
        "RestoreSlice",
        "Save",
        "SaveSlices",
    }
)
READER_OPS = frozenset(
    {
        "WholeFileReader",
        "WholeFileReaderV2",
        "TextLineReader",
        "TextLineReaderV2",
        "TFRecordReader",
        "TFRecordReaderV2",
        "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2",
        "LMDBReader",
    }
)
DATASET_FILE_OPS = frozenset(
    {
        "MatchingFilesDataset",
        "ExperimentalMatchingFilesDataset",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "TextLineDataset",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "CSVDataset",
        "CSVDatasetV2",
        "ExperimentalCSVDataset",
        "LMDBDataset",
        "ExperimentalLMDBDataset",
        "SqlDataset",
        "ExperimentalSqlDataset",
        "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord",
        "SaveDataset",
        "SaveDatasetV2",
        "LoadDataset",
        "DistributedSave",
        "CacheDatasetV2",  # its filename caches to disk
        "SnapshotDatasetV2",
        "SnapshotDatasetReader",
        "SnapshotNestedDatasetReader",
    }
)
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
# Allowed only in the saver functions (the model's own variables), refused elsewhere.
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints"})
REFUSED_OPS = FILE_SYSTEM_OPS | READER_OPS | DATASET_FILE_OPS | PYTHON_OPS | CHECKPOINT_OPS

_scope = threading.local()


class UntrustedModelError(ValueError):
    """A SavedModel's graph holds ops that touch files or run Python; the message names them."""


def trusting() -> bool:
    """True inside a `trusted_models()` scope (of this thread)."""
    return getattr(_scope, "depth", 0) > 0


@contextlib.contextmanager
def trusted_models(trust: bool = True) -> Iterator[None]:
    """Within this scope, `check_saved_model` accepts every SavedModel (when `trust`).

    `devise_keras.load(path, trust_model=True)` wraps `keras.models.load_model` in it:
    Keras builds the `HubBackbone` of a `.keras` archive itself, so a flag cannot be
    passed to it as an argument. The scope is per thread and nests.

    Example:
        >>> with trusted_models():                               # doctest: +SKIP
        ...     model = keras.models.load_model("model.keras")
    """
    if not trust:
        yield
        return
    _scope.depth = getattr(_scope, "depth", 0) + 1
    try:
        yield
    finally:
        _scope.depth -= 1


@contextlib.contextmanager
def recorded_refusals() -> Iterator[list[UntrustedModelError]]:
    """Collects every `UntrustedModelError` raised in this scope (of this thread).

    Keras turns an error raised while it loads a layer's assets into a generic
    "objects could not be loaded" ValueError; `devise_keras.load` reads the refusal
    from here to name the model file and the ops.

    Example:
        >>> with recorded_refusals() as refused:                 # doctest: +SKIP
        ...     keras.models.load_model("model.keras")
    """
    stack = _scope.__dict__.setdefault("recorders", [])
    refused: list[UntrustedModelError] = []
    stack.append(refused)
    try:
        yield refused
    finally:
        stack.remove(refused)


def _read_saved_model(saved_model_dir: str):
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    binary = os.path.join(saved_model_dir, "saved_model.pb")
    text = os.path.join(saved_model_dir, "saved_model.pbtxt")
    proto = saved_model_pb2.SavedModel()
    try:
        if storage.isfile(binary):
            with storage.open_file(binary, "rb") as f:
                proto.ParseFromString(f.read())
        elif storage.isfile(text):
            text_format.Parse(storage.read_text(text), proto)
        else:
            raise UntrustedModelError(f"{saved_model_dir} is not a SavedModel (no saved_model.pb)")
    except UntrustedModelError:
        raise
    except Exception as error:  # DecodeError, ParseError: a damaged or foreign file
        raise UntrustedModelError(
            f"{binary} is not a readable SavedModel ({type(error).__name__}: {error})"
        ) from None
    return proto


def _called_functions(node, library: set[str]) -> set[str]:
    """Library functions a node calls: as its op, or through func / list(func) attrs."""
    called = {node.op} & library
    for value in node.attr.values():
        if value.HasField("func"):
            called.add(value.func.name)
        if value.HasField("list"):
            called.update(f.name for f in value.list.func)
    return called & library


def _reach(roots: set[str], calls: dict[str, set[str]]) -> set[str]:
    seen, stack = set(), list(roots)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(calls.get(name, ()))
    return seen


def _saver_nodes(graph_def, saver_def) -> set[str]:
    """Graph nodes that feed the saver's save / restore / filename tensors (and only them)."""
    nodes = {node.name: node for node in graph_def.node}
    targets = [
        saver_def.save_tensor_name,
        saver_def.restore_op_name,
        saver_def.filename_tensor_name,
    ]
    stack = [t.split(":")[0].lstrip("^") for t in targets if t]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        stack.extend(i.split(":")[0].lstrip("^") for i in nodes[name].input)
    return seen


def unsafe_ops(saved_model_dir: str) -> dict[str, list[str]]:
    """Refused op types in a SavedModel, each with where it occurs; {} when it is safe.

    Reads `saved_model.pb` (every MetaGraph: its graph and its whole function library)
    without loading or running it. Checkpoint ops count only outside the saver.

    Args:
        saved_model_dir: a SavedModel directory (local or on a filesystem TensorFlow knows).

    Returns:
        {op type: ["function <name>", "graph node <name>", ...]}, sorted.

    Example:
        >>> unsafe_ops("/path/to/hub_export")  # doctest: +SKIP
        {}
    """
    found: dict[str, set[str]] = {}
    for meta_graph in _read_saved_model(saved_model_dir).meta_graphs:
        graph_def = meta_graph.graph_def
        functions = {f.signature.name: f for f in graph_def.library.function}
        library = set(functions)
        calls = {
            name: set().union(*(_called_functions(n, library) for n in f.node_def))
            for name, f in functions.items()
        }
        saver = _saver_nodes(graph_def, meta_graph.saver_def)
        live_roots = set(meta_graph.object_graph_def.concrete_functions) & library
        saver_roots: set[str] = set()
        for node in graph_def.node:
            (saver_roots if node.name in saver else live_roots).update(
                _called_functions(node, library)
            )
        live = _reach(live_roots, calls)
        saver_only = _reach(saver_roots, calls) - live

        def note(op: str, where: str, in_saver: bool) -> None:
            if op in REFUSED_OPS and not (in_saver and op in CHECKPOINT_OPS):
                found.setdefault(op, set()).add(where)

        for node in graph_def.node:
            note(node.op, f"graph node {node.name}", node.name in saver)
        for name, function in functions.items():
            for node in function.node_def:
                note(node.op, f"function {name}", name in saver_only)
    return {op: sorted(where) for op, where in sorted(found.items())}


def check_saved_model(path: str, what: str, trust_model: bool = False) -> None:
    """Raises `UntrustedModelError` when the SavedModel at `path` holds refused ops.

    Nothing is checked when `trust_model` is True or inside `trusted_models()`.

    Args:
        path: the SavedModel directory.
        what: what it is, for the message (e.g. "backbone 'hub/'").
        trust_model: accept it without looking.

    Example:
        >>> check_saved_model("/path/to/hub_export", "backbone")  # doctest: +SKIP
    """
    if trust_model or trusting():
        return
    found = unsafe_ops(path)
    if found:
        ops = ", ".join(f"{op} (in {', '.join(where[:3])})" for op, where in found.items())
        error = UntrustedModelError(
            f"refusing to load the {what} SavedModel at {path}: its graph runs ops that "
            f"touch files or run Python: {ops}. A SavedModel or .keras file is a program; "
            "if you trust where it came from, pass trust_model=True (CLI: --trust-model)"
        )
        for refused in getattr(_scope, "recorders", ()):
            refused.append(error)
        raise error
