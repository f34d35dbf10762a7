"""One line per component as a local run goes: started, finished, elapsed, key number.

LocalDagRunner logs "Component X is running." / "is finished." at INFO among hundreds
of TensorFlow, Beam and TFX lines. `ComponentProgress` turns those two messages into
lines a person can follow, and reads each finished component's key number (records
written, labels matched, hit@k, blessed, pushed) from its output artifacts in MLMD.
`quiet_known_noise` silences the warnings known to be harmless here, explained once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable
from typing import TextIO

import tensorflow as tf

_RUNNING = re.compile(r"^Component (\S+) is running\.$")
_FINISHED = re.compile(r"^Component (\S+) is finished\.$")
_CACHED = re.compile(r"^A cached execution \d+ is used\.$")

# Harmless messages of this stack, and why they can be ignored.
KNOWN_NOISE = {
    "TF_USE_LEGACY_KERAS": "tensorflow_transform asks for legacy tf-keras; devise-keras "
    "runs Keras 3 on purpose (BUILD.md)",
    "ran out of data": "Keras's end-of-dataset notice",
    "non-supported Python version": "google-api-core's notice about Python 3.10, which "
    "TFX 1.16 requires",
    "is not a known metric": "TFMA's notice about devise-keras's own Beam metrics",
    "tensorflow_hub": "tensorflow-hub's deprecation notices",
    "Could not find TensorRT": "no GPU libraries on this machine",
    "pkg_resources is deprecated": "setuptools' notice inside tensorflow-hub",
    "python-snappy": "Beam's note that an optional CRC speed-up is not installed",
    "property_predicate is not supported": "TFX's local resolver notice; the blessed-model "
    "baseline is still found",
}


def artifact_summary(type_name: str, uri: str, custom: dict) -> str | None:
    """The key number of one output artifact, in words (None: nothing worth saying)."""
    if type_name == "Examples" and "num_examples" in custom:
        return f"{custom['num_examples']} records, {custom.get('num_skipped', 0)} skipped"
    if type_name == "devise.LabelEmbeddings" and "num_labels" in custom:
        return f"{custom['num_labels']} labels matched ({custom.get('dim', '?')}-d)"
    if type_name in ("ModelRun", "Model"):
        # DeviseTrainer: <model_run>/metrics.json; BackboneTrainer: <model>/softmax/...
        name = "metrics.json" if type_name == "ModelRun" else "softmax/metrics.json"
        path = os.path.join(uri, name)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                metrics = json.loads(f.read())
            shown = [f"{k.replace('_at_', '@')} {v:.3f}" for k, v in metrics.items() if "hit" in k]
            return "eval " + ", ".join(shown[:2]) if shown else None
    if type_name == "ModelBlessing":
        return "blessed" if custom.get("blessed") else "NOT blessed (nothing will be pushed)"
    if type_name == "PushedModel":
        if custom.get("pushed"):
            return f"pushed to {custom.get('pushed_destination', '?')}"
        return "not pushed"
    if type_name == "devise.ZeroShotReport" and "zero_shot_hit_at_1" in custom:
        return f'zero-shot hit@1 ("-0") {custom["zero_shot_hit_at_1"]:.3f}'
    return None


def mlmd_summary(metadata_path: str) -> Callable[[str], str]:
    """A function node_id -> key numbers of its newest outputs, read from MLMD."""

    def summarize(node_id: str) -> str:
        from pipeline import results

        store = results.open_store(metadata_path)
        marker = f"{os.sep}{node_id}{os.sep}"
        newest: dict[int, object] = {}
        for artifact in store.get_artifacts():
            if marker in artifact.uri:
                kept = newest.get(artifact.type_id)
                if kept is None or artifact.id > kept.id:
                    newest[artifact.type_id] = artifact
        types = {t.id: t.name for t in store.get_artifact_types_by_id(list(newest))}
        parts = []
        for type_id, artifact in sorted(newest.items()):
            custom = {
                k: getattr(v, v.WhichOneof("value"))
                for k, v in artifact.custom_properties.items()
                if v.WhichOneof("value") in ("int_value", "double_value", "string_value")
            }
            text = artifact_summary(types[type_id], artifact.uri, custom)
            if text:
                parts.append(text)
        return "; ".join(parts)

    return summarize


class ComponentProgress(logging.Handler):
    """Prints a start line and a finish line (elapsed, cached, key number) per component.

    Args:
        summarize: node_id -> key numbers of its outputs ("" for none).
        stream: where the lines go (stdout).
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(
        self,
        summarize: Callable[[str], str],
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(logging.INFO)
        self.summarize = summarize
        self.stream = stream
        self.clock = clock
        self._started: dict[str, float] = {}
        self._cached: set[str] = set()
        self._current: str | None = None

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed third-party record is not our concern
            return
        if match := _RUNNING.match(message):
            node = match.group(1)
            self._started[node] = self.clock()
            self._current = node
            self._print(f"[{node}] started")
        elif _CACHED.match(message) and self._current:
            self._cached.add(self._current)
        elif match := _FINISHED.match(message):
            node = match.group(1)
            now = self.clock()
            elapsed = now - self._started.get(node, now)
            cached = " (cached)" if node in self._cached else ""
            try:
                key = self.summarize(node)
            except Exception as error:  # progress must never break a run
                key = f"(no summary: {type(error).__name__})"
            self._print(
                f"[{node}] finished in {elapsed:.1f} s{cached}" + (f": {key}" if key else "")
            )


class _DropKnownNoise(logging.Filter):
    def __init__(self):
        super().__init__()
        self.explained: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        for needle, why in KNOWN_NOISE.items():
            if needle in message:
                if needle not in self.explained:
                    self.explained.add(needle)
                    print(f"(note: silenced a harmless message: {why})", file=sys.stderr)
                return False
        return True


def quiet_known_noise() -> None:
    """Drops the known harmless warnings (explaining each once) and TFX's INFO chatter."""
    noise = _DropKnownNoise()
    for name in ("", "absl", "tensorflow", "py.warnings"):
        logging.getLogger(name).addFilter(noise)
    for handler in logging.getLogger().handlers + logging.getLogger("absl").handlers:
        handler.addFilter(noise)
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def attach(metadata_path: str, stream: TextIO | None = None) -> ComponentProgress:
    """Adds a ComponentProgress to the loggers TFX uses; INFO stays off the console."""
    from absl import logging as absl_logging

    absl_logger = logging.getLogger("absl")
    for old in [h for h in absl_logger.handlers if isinstance(h, ComponentProgress)]:
        absl_logger.removeHandler(old)
    progress = ComponentProgress(mlmd_summary(metadata_path), stream)
    absl_logging.set_verbosity(absl_logging.INFO)
    # The console keeps warnings and errors only; our handler sees INFO.
    absl_logging.get_absl_handler().setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.setLevel(max(handler.level, logging.WARNING))
    absl_logger.addHandler(progress)
    return progress
