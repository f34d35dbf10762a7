"""Reads PyTorch checkpoints (state dicts) into numpy arrays without torch, safely.

A PyTorch ``.pth`` file is a pickle, and ``pickle.load`` of a downloaded file runs
whatever callables the file names. `read_torch_state_dict` unpickles with an
allow-list: only the tensor-rebuild function (``torch._utils._rebuild_tensor_v2``),
the typed storage classes (``torch.FloatStorage`` ...) and
``collections.OrderedDict`` resolve, and none of them is the torch object: the
rebuild function records (storage, offset, shape, strides) and the storages become
numpy buffers read from the file. Any other global raises `UnsafeCheckpointError`
naming it.

Both layouts torch has written are read:
- the legacy stream (torch < 1.6 and ``_use_new_zipfile_serialization=False``):
  magic number, protocol version and system-info pickles, the state-dict pickle,
  the list of storage keys, then per storage an int64 element count and its bytes;
- the zip archive (torch >= 1.6): ``<name>/data.pkl`` plus one raw file per storage
  under ``<name>/data/<key>``.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
from typing import IO

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch storage class -> numpy dtype; bfloat16 has no numpy dtype and is widened.
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
REBUILD_TENSOR = ("torch._utils", "_rebuild_tensor_v2")


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint's pickle asks for a global outside the allow-list."""


class CheckpointFormatError(ValueError):
    """The file is not a PyTorch state dict this reader understands."""


# Bytes one checkpoint may hold and materialise: the file itself, each storage, and all
# tensors together (ImageNet backbones are 20-200 MB; 4 GiB leaves room for big ones).
DEFAULT_MAX_BYTES = 4 << 30


class _StorageType:
    """Stands for ``torch.<Name>Storage`` inside persistent ids; never callable."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _Storage:
    __slots__ = ("dtype", "key", "numel", "array")

    def __init__(self, dtype: np.dtype, key: str, numel: int):
        self.dtype, self.key, self.numel, self.array = dtype, key, numel, None


class _TensorRef:
    """What ``_rebuild_tensor_v2`` returns here: a view to take once the storage is read."""

    __slots__ = ("storage", "offset", "shape", "strides")

    def __init__(self, storage, offset, shape, strides):
        self.storage, self.offset, self.shape, self.strides = storage, offset, shape, strides


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, *_unused):
    if not isinstance(storage, _Storage):
        raise CheckpointFormatError(f"tensor rebuilt from {type(storage).__name__}, not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(
        self,
        file: IO[bytes],
        storages: dict[str, _Storage] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ):
        super().__init__(file)
        self.storages = storages if storages is not None else {}
        self.max_bytes = max_bytes

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == REBUILD_TENSOR:
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"refusing to load global {module}.{name} from a checkpoint: only "
            "torch._utils._rebuild_tensor_v2, torch.*Storage and collections.OrderedDict are "
            "allowed (a state dict of tensors needs nothing else)"
        )

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, numel[, view metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointFormatError(f"unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointFormatError(f"persistent id names no storage class: {pid!r}")
        if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
            raise CheckpointFormatError(f"storage {key}: element count {numel!r} is not >= 0")
        if numel * storage_type.dtype.itemsize > self.max_bytes:
            raise CheckpointFormatError(
                f"storage {key} claims {numel} elements ({numel * storage_type.dtype.itemsize} "
                f"bytes), over the {self.max_bytes}-byte limit"
            )
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointFormatError(f"storage views are not supported: {pid!r}")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(storage_type.dtype, key, numel)
        return storage


def _materialize(ref: _TensorRef, name: str, budget: list[int]) -> np.ndarray:
    """A copy of the tensor's elements; `budget` ([bytes left]) caps all tensors together."""
    storage = ref.storage
    if storage.array is None:
        raise CheckpointFormatError(f"tensor {name!r}: storage {storage.key} has no data")
    itemsize = storage.dtype.itemsize
    if len(ref.shape) != len(ref.strides):
        raise CheckpointFormatError(f"tensor {name!r}: shape {ref.shape} vs strides {ref.strides}")
    if any(
        isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in (*ref.shape, *ref.strides)
    ):
        raise CheckpointFormatError(
            f"tensor {name!r}: shape {ref.shape} and strides {ref.strides} must be ints >= 0"
        )
    # The element count from the shape alone: stride-0 (broadcast) views would otherwise
    # turn a one-element storage into an array of any size. A state dict tensor never
    # holds more elements than its storage.
    count = math.prod(ref.shape)
    if count > storage.array.size:
        raise CheckpointFormatError(
            f"tensor {name!r} of shape {ref.shape} has {count} elements but its storage holds "
            f"{storage.array.size} (a broadcast view with strides {ref.strides}?); a state dict "
            "tensor cannot be larger than its storage"
        )
    if count * itemsize > budget[0]:
        raise CheckpointFormatError(
            f"tensor {name!r} of shape {ref.shape} needs {count * itemsize} bytes; the "
            "checkpoint's tensors would exceed the byte limit"
        )
    budget[0] -= count * itemsize
    extent = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.strides, strict=True)) + 1
    if count == 0:
        extent = 0
    if ref.offset < 0 or extent > storage.array.size:
        raise CheckpointFormatError(
            f"tensor {name!r} of shape {ref.shape} reads past its storage "
            f"({storage.array.size} elements)"
        )
    view = np.lib.stride_tricks.as_strided(
        storage.array[ref.offset :],
        shape=ref.shape,
        strides=tuple(s * itemsize for s in ref.strides),
        writeable=False,
    )
    array = np.array(view, copy=True)
    if storage.dtype == STORAGE_DTYPES["BFloat16Storage"] and storage.array.dtype == np.uint16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _to_state_dict(obj, path: str, max_bytes: int) -> collections.OrderedDict:
    if not isinstance(obj, dict):
        raise CheckpointFormatError(
            f"{path} holds a {type(obj).__name__}, not a state dict (name -> tensor)"
        )
    out = collections.OrderedDict()
    budget = [max_bytes]
    for name, value in obj.items():
        if not isinstance(value, _TensorRef):
            raise CheckpointFormatError(
                f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor; pass a "
                "plain state dict (model.state_dict())"
            )
        out[str(name)] = _materialize(value, name, budget)
    return out


def _read_legacy(f: io.BytesIO, path: str, max_bytes: int) -> collections.OrderedDict:
    magic = _RestrictedUnpickler(f).load()
    if magic != LEGACY_MAGIC_NUMBER:
        raise CheckpointFormatError(f"{path} is not a PyTorch checkpoint (bad magic number)")
    protocol = _RestrictedUnpickler(f).load()
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise CheckpointFormatError(f"{path}: unsupported legacy protocol version {protocol}")
    sys_info = _RestrictedUnpickler(f).load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise CheckpointFormatError(f"{path} was written big-endian; not supported")
    unpickler = _RestrictedUnpickler(f, max_bytes=max_bytes)
    obj = unpickler.load()
    keys = _RestrictedUnpickler(f).load()
    if not isinstance(keys, list):
        raise CheckpointFormatError(f"{path}: the storage key list is a {type(keys).__name__}")
    for key in keys:
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise CheckpointFormatError(f"{path}: storage {key!r} is listed but never used")
        header = f.read(8)
        if len(header) != 8:
            raise CheckpointFormatError(f"{path} is truncated (storage {key})")
        (numel,) = struct.unpack("<q", header)
        nbytes = numel * storage.dtype.itemsize
        left = len(f.getbuffer()) - f.tell()
        if numel != storage.numel or not 0 <= nbytes <= left:
            raise CheckpointFormatError(
                f"{path} is truncated or inconsistent: storage {key} claims {numel} elements "
                f"({nbytes} bytes) with {left} bytes left in the file; the pickle said "
                f"{storage.numel}"
            )
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise CheckpointFormatError(
                f"{path}: storage {key} holds {len(data)} bytes, expected "
                f"{storage.numel} x {storage.dtype.itemsize}"
            )
        storage.array = np.frombuffer(data, dtype=storage.dtype)
    return _to_state_dict(obj, path, max_bytes)


def _read_zip(archive: zipfile.ZipFile, path: str, max_bytes: int) -> collections.OrderedDict:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointFormatError(f"{path}: a zip checkpoint needs one data.pkl, found {pickles}")
    prefix = pickles[0][: -len("data.pkl")]
    if f"{prefix}byteorder" in archive.namelist():
        byteorder = archive.read(f"{prefix}byteorder").strip()
        if byteorder != b"little":
            raise CheckpointFormatError(f"{path} was written {byteorder.decode()}-endian")
    if archive.getinfo(pickles[0]).file_size > max_bytes:
        raise CheckpointFormatError(f"{path}: {pickles[0]} is over the {max_bytes}-byte limit")
    unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), max_bytes=max_bytes)
    obj = unpickler.load()
    names = set(archive.namelist())
    for key, storage in unpickler.storages.items():
        member = f"{prefix}data/{key}"
        if member not in names:
            raise CheckpointFormatError(f"{path}: storage file {member} is missing")
        expected = storage.numel * storage.dtype.itemsize
        # The size in the zip directory is checked before the member is inflated.
        if archive.getinfo(member).file_size != expected:
            raise CheckpointFormatError(
                f"{path}: {member} holds {archive.getinfo(member).file_size} bytes, expected "
                f"{storage.numel} x {storage.dtype.itemsize}"
            )
        data = archive.read(member)
        if len(data) != expected:
            raise CheckpointFormatError(
                f"{path}: {member} holds {len(data)} bytes, expected "
                f"{storage.numel} x {storage.dtype.itemsize}"
            )
        storage.array = np.frombuffer(data, dtype=storage.dtype)
    return _to_state_dict(obj, path, max_bytes)


def read_torch_state_dict(
    source: str | os.PathLike | bytes | IO[bytes], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> collections.OrderedDict:
    """A PyTorch state dict as an OrderedDict name -> numpy array, read without torch.

    Args:
        source: path of a ``.pth``/``.pt`` file, its bytes, or a binary file object
            (e.g. a member opened from a wheel with `zipfile`).
        max_bytes: cap on the file's size, on each storage and on all tensors together;
            the sizes are checked before anything of that size is read or allocated.

    Returns:
        ``OrderedDict`` mapping each tensor name to a fresh numpy array (float32 for
        FloatStorage, int64 for LongStorage ...; bfloat16 becomes float32).

    Raises:
        UnsafeCheckpointError: the pickle asks for any other global (e.g. ``os.system``).
        CheckpointFormatError: not a state dict, truncated, inconsistent sizes, a tensor
            larger than its storage (a stride-0 view), or over `max_bytes`.

    Example:
        >>> weights = read_torch_state_dict("efficientnet-lite0.pth")  # doctest: +SKIP
        >>> weights["_conv_stem.weight"].shape                         # doctest: +SKIP
        (32, 3, 3, 3)
    """
    if isinstance(source, bytes | bytearray):
        data, path = bytes(source), "<bytes>"
    elif hasattr(source, "read"):
        path = getattr(source, "name", "<file>")
        data = source.read(max_bytes + 1)
    else:
        path = os.fspath(source)
        if os.path.getsize(path) > max_bytes:
            raise CheckpointFormatError(
                f"{path} is {os.path.getsize(path)} bytes, over the {max_bytes}-byte limit"
            )
        with open(path, "rb") as f:
            data = f.read()
    if len(data) > max_bytes:
        raise CheckpointFormatError(f"{path} is over the {max_bytes}-byte limit")
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return _read_zip(archive, str(path), max_bytes)
        return _read_legacy(io.BytesIO(data), str(path), max_bytes)
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except MemoryError:
        raise CheckpointFormatError(
            f"{path}: not enough memory for the tensors it declares"
        ) from None
    except (
        EOFError,
        struct.error,
        pickle.UnpicklingError,
        TypeError,
        ValueError,
        OverflowError,
        zipfile.BadZipFile,
        KeyError,
    ) as error:
        raise CheckpointFormatError(
            f"{path} is truncated or not a PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from error
