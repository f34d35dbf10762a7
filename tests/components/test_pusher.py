"""The atomic Pusher: TFX's blessing and lineage, a version folder that appears whole."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import io_utils, proto_utils

from components.pusher import executor as pusher_executor
from devise_keras.app_bundle import find_app_bundle


def _model(tmp_path, name="model"):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / name)
    serving = tmp_path / name / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "variables" / "variables.index").write_bytes(b"index")
    (serving / "assets.extra").mkdir()
    (serving / "assets.extra" / "model.keras").write_bytes(b"keras")
    (serving / "saved_model.pb").write_bytes(b"graph")
    return model


def _blessing(tmp_path, blessed=True):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _push(model, blessing, base, tmp_path, run=0):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed{run}")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base))
    )
    pusher_executor.Executor().Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination), "custom_config": "null"},
    )
    return pushed


def test_two_pushes_in_one_second_get_two_versions_and_both_are_recorded(tmp_path):
    base = tmp_path / "serving"
    model = _model(tmp_path)
    first = _push(model, _blessing(tmp_path), base, tmp_path, 0)
    second = _push(model, _blessing(tmp_path), base, tmp_path, 1)
    v1 = first.get_string_custom_property("pushed_version")
    v2 = second.get_string_custom_property("pushed_version")
    assert int(v2) == int(v1) + 1 or int(v2) > int(v1)
    assert sorted(os.listdir(base)) == sorted([v1, v2])  # no hidden folder left
    for pushed, version in ((first, v1), (second, v2)):
        assert pushed.get_int_custom_property("pushed") == 1
        assert pushed.get_string_custom_property("pushed_destination") == str(base / version)
        assert (base / version / "saved_model.pb").read_bytes() == b"graph"
        assert (base / version / "assets.extra" / "model.keras").read_bytes() == b"keras"
        assert os.path.isfile(os.path.join(pushed.uri, "saved_model.pb"))  # TFX's archive


def test_a_version_is_never_reused_even_when_the_clock_is_behind(tmp_path):
    base = tmp_path / "serving"
    (base / "5000000000").mkdir(parents=True)  # a version from "the future"
    assert pusher_executor.next_version(str(base), now=1_700_000_000) == 5_000_000_001
    assert pusher_executor.next_version(str(tmp_path / "none"), now=1_700_000_000) == 1_700_000_000


def test_an_unblessed_model_is_not_pushed(tmp_path):
    pushed = _push(_model(tmp_path), _blessing(tmp_path, False), tmp_path / "serving", tmp_path)
    assert pushed.get_int_custom_property("pushed") == 0
    assert not (tmp_path / "serving").exists()


def test_a_failed_copy_leaves_nothing_behind(tmp_path, monkeypatch):
    base = tmp_path / "serving"
    real_copy = io_utils.copy_dir

    def copy_then_fail(src, dst, *args, **kwargs):
        real_copy(src, dst, *args, **kwargs)  # the files are there ...
        raise OSError("disk full")  # ... then the push dies

    monkeypatch.setattr(pusher_executor.io_utils, "copy_dir", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _push(_model(tmp_path), _blessing(tmp_path), base, tmp_path)
    assert os.listdir(base) == []


def test_a_killed_push_is_cleaned_up_and_never_chosen_by_apps(tmp_path):
    base = tmp_path / "serving"
    model = _model(tmp_path)
    first = _push(model, _blessing(tmp_path), base, tmp_path, 0)
    version = first.get_string_custom_property("pushed_version")
    # A push killed mid-copy: its hidden folder (a dead process of this host) ...
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    hidden = base / f".push-9999999999-{pusher_executor.socket.gethostname()}-{dead}"
    (hidden / "assets.extra").mkdir(parents=True)
    # ... and a numeric version folder of a non-atomic copy (object stores) without
    # its saved_model.pb yet.
    partial = base / str(int(version) + 100)
    (partial / "assets.extra").mkdir(parents=True)
    (partial / "assets.extra" / "model.keras").write_bytes(b"half")
    assert find_app_bundle(base) == str(base / version / "assets.extra" / "model.keras")
    _push(model, _blessing(tmp_path), base, tmp_path, 1)
    assert not hidden.exists()  # removed by the next push
