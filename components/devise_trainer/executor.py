"""DeviseTrainer executor: the generic Trainer executor plus the label-embeddings inputs."""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.types import artifact_utils

from devise_keras.trainer_module import LABEL_EMBEDDINGS_URI_KEY, OPEN_VOCABULARY_URI_KEY

LABEL_EMBEDDINGS_KEY = "label_embeddings"
OPEN_VOCABULARY_KEY = "open_vocabulary"


class Executor(trainer_executor.GenericExecutor):
    """Passes the `label_embeddings` artifact's URI (and the optional `open_vocabulary`
    artifact's, when wired) to `run_fn` via `custom_config`.

    Placeholders cannot go into `custom_config` at pipeline-definition time, so the URIs
    are resolved here, at execution time, from the resolved input artifacts.
    """

    def _GetFnArgs(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ):
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        custom = dict(fn_args.custom_config or {})
        custom[LABEL_EMBEDDINGS_URI_KEY] = artifact_utils.get_single_uri(
            input_dict[LABEL_EMBEDDINGS_KEY]
        )
        if input_dict.get(OPEN_VOCABULARY_KEY):
            custom[OPEN_VOCABULARY_URI_KEY] = artifact_utils.get_single_uri(
                input_dict[OPEN_VOCABULARY_KEY]
            )
        fn_args.custom_config = custom
        return fn_args
