"""Input fingerprints, so that TFX's cache notices input files edited in place.

A component that reads files named by its parameters (an image folder, a word-vector
file) gets the same cache key after those files change, and TFX would reuse stale
outputs. TFX's FileBasedExampleGen solves this with a driver that records a
fingerprint of its input files (count, sizes, modification times) in an execution
property before the launcher computes the cache key; `InputFingerprintDriver` does
the same for this project's Beam components. The driver runs when the component is
about to run, not when the pipeline is built, so `create_pipeline` stays free of I/O
and a long-lived compiled pipeline still sees today's files.

A fingerprint is ``files:<n>,bytes:<total>,sha256:<hex>``, the hash covering every
file's name, size and modification time in nanoseconds. A missing input is recorded as
missing (the executor then fails with a message naming it): the driver never fails.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Iterable
from typing import Any

from tfx.dsl.components.base import base_driver
from tfx.orchestration.portable import base_driver as ir_base_driver
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import driver_output_pb2

from devise_keras import storage

# The execution property the drivers fill (declared optional in each component spec).
INPUT_FINGERPRINT_KEY = "input_fingerprint"


def fingerprint_files(files: Iterable[tuple[str, str]]) -> str:
    """Fingerprint of `(name, path)` pairs: their names, sizes and modification times.

    Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> _ = open(path, "w").write("abc")
    >>> fingerprint_files([("a.txt", path)]).split(",")[:2]
    ['files:1', 'bytes:3']
    """
    digest = hashlib.sha256()
    count = total = 0
    for name, path in sorted(files):
        try:
            size, mtime_ns = storage.stat(path)
        except FileNotFoundError:
            digest.update(f"{name}\tmissing\n".encode())
            continue
        digest.update(f"{name}\t{size}\t{mtime_ns}\n".encode())
        count += 1
        total += size
    return f"files:{count},bytes:{total},sha256:{digest.hexdigest()}"


def folder_files(root: str) -> list[tuple[str, str]]:
    """`(relative name, path)` of every non-hidden file under `root` (none if missing)."""
    if not storage.isdir(root):
        return [(root, root)]  # fingerprinted as missing
    names = storage.walk_files(root)
    visible = [n for n in names if not any(part.startswith(".") for part in n.split("/"))]
    return [(name, f"{root.rstrip('/')}/{name}") for name in visible]


class InputFingerprintDriver(base_driver.BaseDriver, ir_base_driver.BaseDriver):
    """Records `input_fingerprint` for the files `input_files` names, before the cache check.

    Subclasses say which files a component reads, from its execution properties.
    """

    def __init__(self, metadata_handle):
        base_driver.BaseDriver.__init__(self, metadata_handle)
        ir_base_driver.BaseDriver.__init__(self, metadata_handle)

    @abc.abstractmethod
    def input_files(self, exec_properties: dict[str, Any]) -> list[tuple[str, str]]:
        """`(name, path)` of every file the component reads (named by its parameters)."""

    def run(self, execution_info: data_types.ExecutionInfo) -> driver_output_pb2.DriverOutput:
        result = driver_output_pb2.DriverOutput()
        fingerprint = fingerprint_files(self.input_files(execution_info.exec_properties))
        result.exec_properties[INPUT_FINGERPRINT_KEY].string_value = fingerprint
        return result
