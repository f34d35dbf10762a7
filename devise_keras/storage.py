"""File operations on any filesystem TensorFlow knows (local, `gs://`, `s3://`, `ram://`, ...).

Artifacts and user data may live on an object store (a Kubeflow pipeline root is a
`gs://` URI), so every read and write of the library goes through `tf.io.gfile`.
Paths without a scheme keep their local fast paths (Python's buffered `open`,
memory-mapped `.npy`), which `tf.io.gfile` cannot give. TensorFlow is imported only
when a remote path is met, so local-only callers stay quick to import.

Example:
>>> import tempfile
>>> path = tempfile.mkdtemp() + "/a.npy"
>>> save_npy(path, np.arange(3, dtype=np.float32))
>>> load_npy(path).tolist()
[0.0, 1.0, 2.0]
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

# `gs:/bucket`, `gs:bucket`: a scheme and a colon without `//` (one letter is a drive).
_MISTYPED_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):(?!//)")
_EMPTY_BUCKET = re.compile(r"^(?!file://)[A-Za-z][A-Za-z0-9+.-]*:///")
# How long TensorFlow's GCS filesystem retries an unreachable store by default (10
# retries, backoff 1 s doubling to 32 s: measured ~196 s per call), and how to bound it.
_GCS_RETRY_HINT = (
    "TensorFlow retries an unreachable gs:// store about 3 minutes per call; "
    "GCS_RETRY_CONFIG_MAX_RETRIES bounds it"
)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def is_local(path: str | os.PathLike) -> bool:
    """True for a plain local path (no `scheme://`, or `file://`)."""
    path = os.fspath(path)
    return "://" not in path or path.startswith("file://")


def _local(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    return path.removeprefix("file://")


def open_file(path: str | os.PathLike, mode: str = "rb") -> IO[Any]:
    """A file object: Python's buffered `open` for local paths, `GFile` elsewhere.

    Text modes read and write UTF-8. Remote files support `read`, `readline`, line
    iteration, `seek` and `tell` (what the word-vector scanners use).
    """
    if is_local(path):
        if "b" in mode:
            return open(_local(path), mode, buffering=1 << 20)
        return open(_local(path), mode, encoding="utf-8")
    return _gfile().GFile(os.fspath(path), mode)


def exists(path: str | os.PathLike) -> bool:
    if is_local(path):
        return os.path.exists(_local(path))
    return _gfile().exists(os.fspath(path))


def isdir(path: str | os.PathLike) -> bool:
    if is_local(path):
        return os.path.isdir(_local(path))
    return _gfile().isdir(os.fspath(path))


def isfile(path: str | os.PathLike) -> bool:
    if is_local(path):
        return os.path.isfile(_local(path))
    gfile = _gfile()
    return gfile.exists(os.fspath(path)) and not gfile.isdir(os.fspath(path))


def makedirs(path: str | os.PathLike) -> None:
    """Creates `path` and its parents (a no-op where they exist)."""
    if is_local(path):
        os.makedirs(_local(path), exist_ok=True)
    else:
        _gfile().makedirs(os.fspath(path))


def getsize(path: str | os.PathLike) -> int:
    if is_local(path):
        return os.path.getsize(_local(path))
    return int(_gfile().stat(os.fspath(path)).length)


def stat(path: str | os.PathLike) -> tuple[int, int]:
    """(size in bytes, modification time in ns) of a file."""
    if is_local(path):
        st = os.stat(_local(path))
        return int(st.st_size), int(st.st_mtime_ns)
    import tensorflow as tf

    try:
        st = tf.io.gfile.stat(os.fspath(path))
    except tf.errors.NotFoundError:
        raise FileNotFoundError(f"no such file: {os.fspath(path)}") from None
    return int(st.length), int(st.mtime_nsec)


def listdir(path: str | os.PathLike) -> list[str]:
    """Entry names of a directory (no trailing '/'), sorted."""
    if is_local(path):
        return sorted(os.listdir(_local(path)))
    return sorted(name.rstrip("/") for name in _gfile().listdir(os.fspath(path)))


def walk_files(root: str | os.PathLike) -> Iterator[str]:
    """Paths of every file under `root`, recursively, relative to it ('/'-separated), sorted."""
    root = os.fspath(root)
    found = []
    if is_local(root):
        base = _local(root)
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            rel = os.path.relpath(folder, base)
            found += [f if rel == "." else f"{rel}/{f}".replace(os.sep, "/") for f in files]
    else:
        base = root.rstrip("/")
        for folder, _, files in _gfile().walk(base):
            rel = folder.rstrip("/")[len(base) :].lstrip("/")
            found += [f"{rel}/{f}" if rel else f for f in files]
    return iter(sorted(found))


def read_bytes(path: str | os.PathLike) -> bytes:
    with open_file(path, "rb") as f:
        return f.read()


def read_text(path: str | os.PathLike) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with open_file(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """`np.save` to any filesystem (the array is serialized in memory first)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    write_bytes(path, buffer.getvalue())


def load_npy(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """`np.load` from any filesystem; `mmap=True` memory-maps local files (read-only).

    A remote file is read into memory whole: object stores cannot be memory-mapped.
    """
    if is_local(path):
        return np.load(_local(path), mmap_mode="r" if mmap else None, allow_pickle=False)
    return np.load(io.BytesIO(read_bytes(path)), allow_pickle=False)


def npy_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """The shape of a `.npy` array without reading its data (raises ValueError if not .npy)."""
    if is_local(path):
        return tuple(np.load(_local(path), mmap_mode="r", allow_pickle=False).shape)
    with open_file(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(f)
    return tuple(shape)


def copy_tree(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copies the folder `src` to `dst` (created; existing files are overwritten)."""
    src, dst = os.fspath(src), os.fspath(dst)
    if not isdir(src):
        raise FileNotFoundError(f"cannot copy {src}: not a directory")
    makedirs(dst)
    if is_local(src) and is_local(dst):
        import shutil

        shutil.copytree(_local(src), _local(dst), dirs_exist_ok=True)
        return
    gfile = _gfile()
    for rel in walk_files(src):
        target = f"{dst.rstrip('/')}/{rel}"
        gfile.makedirs(target.rsplit("/", 1)[0])
        gfile.copy(f"{src.rstrip('/')}/{rel}", target, overwrite=True)


def rmtree(path: str | os.PathLike) -> None:
    """Deletes a folder and everything in it; a missing folder is not an error."""
    if is_local(path):
        import shutil

        shutil.rmtree(_local(path), ignore_errors=True)
    elif _gfile().exists(os.fspath(path)):
        _gfile().rmtree(os.fspath(path))


def check_uri(path: str | os.PathLike) -> str:
    """`path` unchanged if it is a local path or a URI of a filesystem TensorFlow knows.

    Raises ValueError naming the path for a mistyped scheme (`gs:/bucket/x`, which would
    silently become a local folder `gs:`), a missing bucket (`gs:///x`) or a scheme no
    filesystem is registered for (`gcs://bucket`).

    Example:
        >>> check_uri("/data/images")
        '/data/images'
        >>> check_uri("gs:/bucket/root")
        Traceback (most recent call last):
        ...
        ValueError: gs:/bucket/root: malformed URI, did you mean gs://bucket/root?
    """
    path = os.fspath(path)
    typo = _MISTYPED_SCHEME.match(path)
    if typo:
        rest = path[typo.end() :].lstrip("/")
        raise ValueError(f"{path}: malformed URI, did you mean {typo['scheme']}://{rest}?")
    if _EMPTY_BUCKET.match(path):
        raise ValueError(f"{path}: the URI names no bucket or host after '://'")
    if not is_local(path):
        scheme = path.split("://", 1)[0]
        known = _gfile().get_registered_schemes()
        if scheme not in known:
            names = ", ".join(sorted(s for s in known if s))
            raise ValueError(f"{path}: no filesystem for '{scheme}://' (TensorFlow knows {names})")
    return path


def make_root(root: str | os.PathLike, what: str = "pipeline root") -> None:
    """Creates a root folder for artifacts; on an object store, first checks its bucket.

    TensorFlow's GCS filesystem retries writes into a missing bucket for minutes, so the
    bucket is looked up first. Every failure is an OSError naming `root`.
    """
    root = check_uri(root)
    if not is_local(root):
        scheme, _, rest = root.partition("://")
        bucket = f"{scheme}://{rest.split('/')[0]}"
        try:
            found = exists(bucket)  # raises if the store is unreachable (isdir says False)
        except Exception as error:  # TensorFlow raises its own error types per filesystem
            hint = f" ({_GCS_RETRY_HINT})" if scheme == "gs" else ""
            raise OSError(f"cannot reach the {what} {root}: {error}{hint}") from error
        if not found:
            raise OSError(f"cannot use the {what} {root}: {bucket} does not exist")
    try:
        makedirs(root)
    except Exception as error:
        raise OSError(f"cannot create the {what} {root}: {error}") from error
