"""TensorFlow's start-up chatter silenced once, the same way in every entry point.

TensorFlow 2.16-2.21 print C++ INFO lines on import (oneDNN notice, CPU features, CUDA
probes) and, on CPU machines, CUDA "errors" (cuInit, plugin registration) that are not
failures. Entry points (the CLIs, bench scripts) call `quiet_tensorflow()` before anything
imports TensorFlow. Only defaults are set (`setdefault`): a user who wants the chatter sets
TF_CPP_MIN_LOG_LEVEL=0. Real failures still raise Python exceptions with their message.

Not reachable from the environment: since TF 2.18, the lines TensorFlow logs before
`absl::InitializeLog()` runs ("WARNING: All log messages before absl::InitializeLog() ...",
the oneDNN and cuda-stub notices) ignore TF_CPP_MIN_LOG_LEVEL (TensorFlow issue 100442).
"""

from __future__ import annotations

import os


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
