"""TensorFlow's start-up chatter silenced once, the same way in every entry point.

TensorFlow 2.16-2.21 print C++ INFO lines on import (oneDNN notice, CPU features, CUDA
probes) and, on CPU machines, CUDA "errors" (cuInit, plugin registration) that are not
failures. Entry points (the CLIs, bench scripts) call `quiet_tensorflow()` before anything
imports TensorFlow. Only defaults are set (`setdefault`): a user who wants the chatter sets
TF_CPP_MIN_LOG_LEVEL=0. Real failures still raise Python exceptions with their message.

Not reachable from the environment: since TF 2.18, the lines TensorFlow logs while it loads,
before `absl::InitializeLog()` runs ("WARNING: All log messages before absl::InitializeLog()
...", the oneDNN, cuda-stub and CPU-feature notices), ignore TF_CPP_MIN_LOG_LEVEL (TensorFlow
issue 100442). `import_tensorflow_quietly()` imports TensorFlow with stderr captured and
writes back every line except exactly those notices; entry points call it once they know
they will need TensorFlow (after argument parsing, so `--help` stays instant).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from types import ModuleType

# What TensorFlow 2.18-2.21 print while loading on a CPU machine, INFO lines only: a
# warning or error line (W..., E...) and anything else is always written back.
_LOAD_NOTICES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ (port|cudart_stub|cpu_feature_guard)\.cc:\d+\] .*"
    r"|To enable the following instructions: .*, in other operations, rebuild TensorFlow "
    r"with the appropriate compiler flags\."
)


def quiet_tensorflow() -> None:
    """Sets the log defaults that hide TensorFlow's start-up noise (idempotent).

    TF_CPP_MIN_LOG_LEVEL=3 (C++ INFO, WARNING and the CPU-machine CUDA errors),
    GRPC_VERBOSITY=ERROR, and absl's Python logging at WARNING when absl is installed.
    Call it before TensorFlow is imported; later calls change nothing TensorFlow reads.

    Example:
        >>> quiet_tensorflow()
        >>> os.environ["TF_CPP_MIN_LOG_LEVEL"] in {"0", "1", "2", "3"}
        True
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        from absl import logging as absl_logging
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to quiet
        return
    if absl_logging.get_verbosity() > absl_logging.WARNING:  # absl: higher is chattier
        absl_logging.set_verbosity(absl_logging.WARNING)


def drop_load_notices(text: str) -> str:
    """`text` without TensorFlow's load-time INFO notices (whole lines only).

    Example:
        >>> drop_load_notices("I0000 00:00:17.9  42 port.cc:153] oneDNN custom operations are on.\\nreal\\n")
        'real\\n'
    """
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not _LOAD_NOTICES.fullmatch(line.rstrip("\r\n")))


def import_tensorflow_quietly() -> ModuleType:
    """Imports TensorFlow (once) without its load-time notices; returns the module.

    Calls `quiet_tensorflow()` first. Stderr (file descriptor 2, where TensorFlow's C++
    code writes) goes to a temporary file during the import; afterwards everything but the
    notices `drop_load_notices` knows is written back, also when the import fails. With
    TF_CPP_MIN_LOG_LEVEL=0 nothing is filtered.

    Example:
        >>> tf = import_tensorflow_quietly()  # doctest: +SKIP
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    quiet_tensorflow()
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = drop_load_notices(captured.read().decode("utf-8", errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
    return tensorflow
