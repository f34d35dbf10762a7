"""Pusher: TFX's Pusher component with an atomic push (see `executor`).

Same spec, inputs, outputs and id ("Pusher") as `tfx.components.Pusher`, so blessing,
lineage and caching behave as in TFX; only the executor differs.
"""

from __future__ import annotations

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.pusher import executor


class Pusher(tfx.components.Pusher):
    """Pushes a blessed model to `<base_directory>/<version>/` in one rename.

    Args: as `tfx.components.Pusher` (model, model_blessing, push_destination, ...).

    Example::

        pusher = Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)
            ),
        )
    """

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
