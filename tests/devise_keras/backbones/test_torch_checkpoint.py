"""The torch-free checkpoint reader on checkpoints written here in torch's two layouts."""

import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from devise_keras.backbones.torch_checkpoint import (
    LEGACY_MAGIC_NUMBER,
    CheckpointFormatError,
    UnsafeCheckpointError,
    read_torch_state_dict,
)


class _FakeStorage:
    def __init__(self, cls, key, values):
        self.cls, self.key, self.values = cls, key, values


class _FakeTensor:
    """Pickles exactly like a torch tensor: REDUCE of torch._utils._rebuild_tensor_v2."""

    def __init__(self, rebuild, storage, offset, shape, stride):
        self.rebuild, self.args = rebuild, (storage, offset, shape, stride)

    def __reduce__(self):
        return self.rebuild, (*self.args, False, collections.OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch):
    """A stand-in `torch` module, so the standard Pickler writes torch's global names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name goes into the pickle
        raise AssertionError("the reader must not call the pickled function object")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage", "HalfStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _FakeStorage):
            return ("storage", obj.cls, obj.key, "cpu", obj.values.size, None)
        return None


def _state(torch):
    """Three tensors: a plain float matrix, a transposed view with an offset sharing its
    storage, an int64 counter; plus a float16 vector. Returns (state, storages, expected)."""
    floats = _FakeStorage(torch.FloatStorage, "0", np.arange(8, dtype="<f4") * 0.5)
    longs = _FakeStorage(torch.LongStorage, "1", np.array([7], dtype="<i8"))
    halves = _FakeStorage(torch.HalfStorage, "2", np.array([1.5, -2.0, 0.25], dtype="<f2"))
    rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
    state = collections.OrderedDict(
        [
            ("layer.weight", _FakeTensor(rebuild, floats, 0, (2, 3), (3, 1))),
            ("layer.view", _FakeTensor(rebuild, floats, 2, (3, 2), (1, 3))),
            ("bn.num_batches_tracked", _FakeTensor(rebuild, longs, 0, (), ())),
            ("half", _FakeTensor(rebuild, halves, 0, (3,), (1,))),
        ]
    )
    expected = {
        "layer.weight": np.array([[0.0, 0.5, 1.0], [1.5, 2.0, 2.5]], "float32"),
        # offset 2, element (r, c) at 2 + r + 3c: storage [2,3,4] and [5,6,7] as columns
        "layer.view": np.array([[1.0, 2.5], [1.5, 3.0], [2.0, 3.5]], "float32"),
        "bn.num_batches_tracked": np.array(7, "int64"),
        "half": np.array([1.5, -2.0, 0.25], "float16"),
    }
    return state, [floats, longs, halves], expected


def _legacy_bytes(state, storages, main_pickle=None):
    buf = io.BytesIO()
    for header in (LEGACY_MAGIC_NUMBER, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    if main_pickle is None:
        _Pickler(buf, protocol=2).dump(state)
    else:
        buf.write(main_pickle)
    pickle.dump([s.key for s in storages], buf, protocol=2)
    for storage in storages:
        buf.write(struct.pack("<q", storage.values.size) + storage.values.tobytes())
    return buf.getvalue()


def _zip_bytes(state, storages, main_pickle=None):
    data = io.BytesIO()
    if main_pickle is None:
        _Pickler(data, protocol=2).dump(state)
        main_pickle = data.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("archive/data.pkl", main_pickle)
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", storage.values.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("layout", [_legacy_bytes, _zip_bytes], ids=["legacy", "zip"])
def test_handcrafted_checkpoint_round_trips_to_exact_numpy_values(fake_torch, layout, tmp_path):
    state, storages, expected = _state(fake_torch)
    path = tmp_path / "model.pth"
    path.write_bytes(layout(state, storages))
    loaded = read_torch_state_dict(path)
    assert list(loaded) == list(expected)
    for name, value in expected.items():
        assert loaded[name].dtype == value.dtype, name
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    # The arrays are copies, not views of the file's buffer.
    assert loaded["layer.view"].flags.writeable


def _malicious_pickle(marker):
    # What a hostile .pth holds: GLOBAL os.system, then REDUCE with a shell command.
    command = f"touch {marker}".encode()
    return b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(command)) + command + b"\x85R."


@pytest.mark.parametrize("layout", [_legacy_bytes, _zip_bytes], ids=["legacy", "zip"])
def test_a_pickle_asking_for_os_system_is_refused_and_never_run(layout, tmp_path):
    marker = tmp_path / "pwned"
    pickle_bytes = _malicious_pickle(marker)
    with pytest.raises(UnsafeCheckpointError, match=r"os\.system"):
        read_torch_state_dict(layout(None, [], main_pickle=pickle_bytes))
    assert not marker.exists()


@pytest.mark.parametrize(
    "module,name",
    [
        ("builtins", "eval"),
        ("torch", "load"),
        ("torch._utils", "_rebuild_parameter"),
        ("numpy", "load"),
    ],
)
def test_any_global_outside_the_allow_list_is_refused_by_name(module, name):
    stream = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."
    with pytest.raises(UnsafeCheckpointError, match=f"{module}.{name}"):
        read_torch_state_dict(_legacy_bytes(None, [], main_pickle=stream))


def test_a_hostile_global_inside_a_tensor_entry_is_refused(fake_torch):
    state, storages, _ = _state(fake_torch)
    state["evil"] = _FakeTensor(os.system, storages[0], 0, (1,), (1,))  # pickles as posix.system
    with pytest.raises(UnsafeCheckpointError, match=r"system"):
        read_torch_state_dict(_legacy_bytes(state, storages))


def test_truncated_or_foreign_files_give_a_format_error(fake_torch, tmp_path):
    state, storages, _ = _state(fake_torch)
    data = _legacy_bytes(state, storages)
    with pytest.raises(CheckpointFormatError, match="truncated|holds"):
        read_torch_state_dict(data[:-5])
    with pytest.raises(CheckpointFormatError, match="magic number"):
        read_torch_state_dict(pickle.dumps(12345, protocol=2))
    with pytest.raises(CheckpointFormatError, match="not a state dict"):
        read_torch_state_dict(_legacy_bytes([1, 2], []))
    with pytest.raises(CheckpointFormatError, match="not a PyTorch checkpoint"):
        read_torch_state_dict(b"plain text, no pickle")


@pytest.mark.parametrize("side", [40_000, 200_000])
@pytest.mark.parametrize("layout", [_legacy_bytes, _zip_bytes], ids=["legacy", "zip"])
def test_a_stride_zero_view_larger_than_its_storage_is_refused(fake_torch, layout, side):
    # A 409-byte file that would materialise side^2 floats (6.4 GB at 40,000) from ONE
    # stored element: the bounds check alone passes, since the view's extent is 1.
    one = _FakeStorage(fake_torch.FloatStorage, "0", np.array([1.0], "<f4"))
    rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
    state = collections.OrderedDict([("bomb", _FakeTensor(rebuild, one, 0, (side, side), (0, 0)))])
    with pytest.raises(CheckpointFormatError, match=rf"bomb.*{side * side} elements.*holds 1"):
        read_torch_state_dict(layout(state, [one]))


class _ClaimingPickler(pickle.Pickler):
    """Writes a persistent id whose element count is `claim`, whatever the data holds."""

    claim = 0

    def persistent_id(self, obj):
        if isinstance(obj, _FakeStorage):
            return ("storage", obj.cls, obj.key, "cpu", self.claim, None)
        return None


def test_a_storage_claiming_more_bytes_than_the_limit_is_refused_before_reading(fake_torch):
    values = _FakeStorage(fake_torch.FloatStorage, "0", np.arange(4, dtype="<f4"))
    rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
    state = collections.OrderedDict([("w", _FakeTensor(rebuild, values, 0, (4,), (1,)))])
    buf = io.BytesIO()
    pickler = _ClaimingPickler(buf, protocol=2)
    pickler.claim = 10**12  # 4 TB of floats
    pickler.dump(state)
    for layout in (_legacy_bytes, _zip_bytes):
        with pytest.raises(CheckpointFormatError, match="over the .*-byte limit"):
            read_torch_state_dict(layout(state, [values], main_pickle=buf.getvalue()))


def test_a_legacy_storage_header_larger_than_the_file_is_refused(fake_torch):
    state, storages, _ = _state(fake_torch)
    data = bytearray(_legacy_bytes(state, storages))
    # The last storage (3 float16) header: claim 2**40 elements instead.
    header_at = len(data) - 3 * 2 - 8
    assert struct.unpack("<q", data[header_at : header_at + 8]) == (3,)
    data[header_at : header_at + 8] = struct.pack("<q", 2**40)
    with pytest.raises(CheckpointFormatError, match=r"claims 1099511627776 elements"):
        read_torch_state_dict(bytes(data))


def test_the_byte_limit_covers_the_file_and_the_tensors_together(fake_torch, tmp_path):
    state, storages, _ = _state(fake_torch)
    data = _legacy_bytes(state, storages)
    path = tmp_path / "model.pth"
    path.write_bytes(data)
    with pytest.raises(CheckpointFormatError, match="over the 100-byte limit"):
        read_torch_state_dict(path, max_bytes=100)
    # 200 views of one 1,000-float storage: a 17 KB file whose tensors need 800 KB.
    shared = _FakeStorage(fake_torch.FloatStorage, "0", np.arange(1000, dtype="<f4"))
    rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
    views = collections.OrderedDict(
        (f"view{i}", _FakeTensor(rebuild, shared, 0, (1000,), (1,))) for i in range(200)
    )
    data = _legacy_bytes(views, [shared])
    assert len(data) < 20_000
    with pytest.raises(CheckpointFormatError, match="'view100'.*exceed the byte limit"):
        read_torch_state_dict(data, max_bytes=400_000)
    assert len(read_torch_state_dict(data, max_bytes=800_000)) == 200
