"""DeviseTrainer: a TFX Trainer with `label_embeddings` (and optional `open_vocabulary`) inputs.

The stock Trainer has no input slot for a custom artifact, so the label vectors would
otherwise travel as a file path in `custom_config`, outside MLMD lineage. This
component keeps the Trainer's spec, adds the channel, and keeps `module_file` /
`run_fn` handling (and so module packaging) of the stock Trainer.
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.util import udf_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from components.artifacts import LabelEmbeddings
from components.devise_trainer import executor

LABEL_EMBEDDINGS_KEY = executor.LABEL_EMBEDDINGS_KEY
OPEN_VOCABULARY_KEY = executor.OPEN_VOCABULARY_KEY


class DeviseTrainerSpec(standard_component_specs.TrainerSpec):
    """Trainer inputs plus the label embeddings the projection is trained against and,
    optionally, the open vocabulary bundled with the model for the apps."""

    INPUTS = {
        **standard_component_specs.TrainerSpec.INPUTS,
        LABEL_EMBEDDINGS_KEY: ChannelParameter(type=LabelEmbeddings),
        OPEN_VOCABULARY_KEY: ChannelParameter(type=LabelEmbeddings, optional=True),
    }


class DeviseTrainer(base_component.BaseComponent):
    """Trains a DeViSE model (see `devise_keras.trainer_module.run_fn`).

    Args:
        examples: Examples channel from ImageExampleGen.
        label_embeddings: LabelEmbeddings channel from LabelEmbeddingGen.
        open_vocabulary: optional LabelEmbeddings channel (LabelEmbeddingGen's
            `open_vocabulary` output): bundled as `assets.extra/open_vocabulary/`, the
            apps' default word vocabulary.
        base_model: optional Model channel whose serving dir is a TF-Hub-style
            feature-vector SavedModel (the backbone Trainer's output).
        run_fn: dotted path of the run function (default: the library's). Dotted
            paths need no module packaging, which a Kubeflow image with the package
            installed prefers.
        module_file: alternatively, a user module file with `run_fn`.
        train_args / eval_args: TFX TrainArgs / EvalArgs.
        custom_config: must hold {"config": DeviseConfig.to_dict()}.

    Example:
        trainer = DeviseTrainer(
            examples=example_gen.outputs["examples"],
            label_embeddings=embedding_gen.outputs["label_embeddings"],
            custom_config={"config": DeviseConfig().to_dict()},
        )
    """

    SPEC_CLASS = DeviseTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        label_embeddings: types.BaseChannel,
        base_model: types.BaseChannel | None = None,
        open_vocabulary: types.BaseChannel | None = None,
        run_fn: str | None = None,
        module_file: str | None = None,
        train_args: trainer_pb2.TrainArgs | None = None,
        eval_args: trainer_pb2.EvalArgs | None = None,
        custom_config: dict[str, Any] | None = None,
    ):
        if run_fn and module_file:
            raise ValueError("pass run_fn or module_file, not both")
        if not (run_fn or module_file):
            run_fn = "devise_keras.trainer_module.run_fn"
        spec = DeviseTrainerSpec(
            examples=examples,
            label_embeddings=label_embeddings,
            open_vocabulary=open_vocabulary,
            base_model=base_model,
            train_args=train_args or trainer_pb2.TrainArgs(),
            eval_args=eval_args or trainer_pb2.EvalArgs(),
            module_file=module_file,
            run_fn=run_fn,
            custom_config=json_utils.dumps(custom_config),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun),
        )
        super().__init__(spec=spec)
        if module_file and udf_utils.should_package_user_modules():
            # As the stock Trainer: the module file is packaged and passed by module_path.
            udf_utils.add_user_module_dependency(
                self,
                standard_component_specs.MODULE_FILE_KEY,
                standard_component_specs.MODULE_PATH_KEY,
            )
