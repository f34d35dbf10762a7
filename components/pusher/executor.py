"""Pusher executor: TFX's Pusher, with a push that watchers see whole or not at all.

TFX's own filesystem push copies the model into `<base>/<unix time>/` file by file
(saved_model.pb last), so a model server or app polling the folder can meet a
half-copied version, a killed push leaves its partial folder behind forever, and a
second push in the same second is skipped yet recorded as pushed. This executor keeps
TFX's blessing check, lineage and output properties (`pushed`, `pushed_destination`,
`pushed_version`, the archived copy in the PushedModel artifact) and changes only how
the version folder is written:

1. the version is the current unix time, or one more than the newest numeric version
   already there (never reused, always the newest);
2. the model is copied into a hidden `<base>/.push-<version>-<host>-<pid>/` (TF Serving
   and `devise_keras.app_bundle.find_app_bundle` ignore non-numeric folders) and renamed
   to `<base>/<version>/` in one step; a failed copy removes its hidden folder;
3. hidden folders of pushes killed earlier on this host (their process is gone) are
   removed before a push.

On object stores (gs://, s3://) a folder rename is a copy, not atomic: there the
version folder is written directly with saved_model.pb last, as TFX does, and
`find_app_bundle` takes only versions whose saved_model.pb is present.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from devise_keras import storage
from devise_keras.app_bundle import SAVED_MODEL_FILENAME

TEMP_PREFIX = ".push-"


def next_version(base_directory: str, now: float | None = None) -> int:
    """The version to push: unix time, or one past the newest numeric version there."""
    now_version = int(time.time() if now is None else now)
    existing = [int(n) for n in _listdir(base_directory) if n.isdigit()]
    return max([now_version, *(v + 1 for v in existing)])


def _listdir(path: str) -> list[str]:
    return storage.listdir(path) if storage.isdir(path) else []


def _temp_name(version: int) -> str:
    return f"{TEMP_PREFIX}{version}-{socket.gethostname()}-{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned_pushes(base_directory: str) -> list[str]:
    """Removes hidden push folders of this host whose process is gone; returns them."""
    removed = []
    host = socket.gethostname()
    for name in _listdir(base_directory):
        if not name.startswith(TEMP_PREFIX):
            continue
        parts = name[len(TEMP_PREFIX) :].split("-")
        if len(parts) < 3 or not parts[-1].isdigit() or "-".join(parts[1:-1]) != host:
            continue  # another host's push, or not ours: left alone
        if _process_alive(int(parts[-1])):
            continue
        storage.rmtree(os.path.join(base_directory, name))
        removed.append(name)
    return removed


def push_atomically(model_path: str, base_directory: str, now: float | None = None) -> str:
    """Copies the SavedModel folder `model_path` to a new version folder; returns it."""
    storage.makedirs(base_directory)
    for name in remove_abandoned_pushes(base_directory):
        logging.info("removed the folder of an abandoned push: %s", name)
    version = next_version(base_directory, now)
    final = os.path.join(base_directory, str(version))
    if not storage.is_local(base_directory):
        # No atomic folder rename on object stores: saved_model.pb last marks it complete.
        io_utils.copy_dir(model_path, final, deny_regex_patterns=[r"saved_model\.pb"])
        io_utils.copy_file(
            os.path.join(model_path, SAVED_MODEL_FILENAME),
            os.path.join(final, SAVED_MODEL_FILENAME),
        )
        return final
    temp = os.path.join(base_directory, _temp_name(version))
    try:
        io_utils.copy_dir(model_path, temp)
        os.rename(temp, final)  # one step: watchers see no version, or all of it
    except BaseException:
        if os.path.exists(temp):
            storage.rmtree(temp)
        raise
    return final


class Executor(tfx_pusher_executor.Executor):
    """TFX's Pusher executor with an atomic, never-reused version folder (module doc)."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(
                "this Pusher pushes to a filesystem destination only, got "
                f"{destination.WhichOneof('destination')!r}"
            )
        model_path = self.GetModelPath(input_dict)
        if not fileio.exists(os.path.join(model_path, SAVED_MODEL_FILENAME)):
            raise RuntimeError(f"the model to push has no {SAVED_MODEL_FILENAME}: {model_path}")
        serving_path = push_atomically(model_path, destination.filesystem.base_directory)
        logging.info("Model written to serving path %s.", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)  # TFX's archived copy, for lineage
        self._MarkPushed(
            model_push,
            pushed_destination=serving_path,
            pushed_version=os.path.basename(serving_path),
        )
