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
from collections.abc import Iterator
from typing import IO, Any

import numpy as np


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
