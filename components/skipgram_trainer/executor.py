"""SkipGramTrainer executor: SkipGramCorpus -> WordVectors (``vectors.txt``, word2vec text)."""

from __future__ import annotations

import os
from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from devise_keras import skipgram
from devise_keras.config import ConfigError, CorpusTrainingConfig, validate_corpus_training

CORPUS_KEY = "corpus"
WORD_VECTORS_KEY = "word_vectors"
# Execution properties: the field names of devise_keras.config.CorpusTrainingConfig.
DIM_KEY = "dim"
NEGATIVES_KEY = "negatives"
EPOCHS_KEY = "epochs"
BATCH_SIZE_KEY = "batch_size"
LEARNING_RATE_KEY = "learning_rate"
MIN_LEARNING_RATE_KEY = "min_learning_rate"
SEED_KEY = "seed"

# The settings this component reads; their defaults are CorpusTrainingConfig's.
TRAINER_FIELDS = (
    DIM_KEY,
    NEGATIVES_KEY,
    EPOCHS_KEY,
    BATCH_SIZE_KEY,
    LEARNING_RATE_KEY,
    MIN_LEARNING_RATE_KEY,
    SEED_KEY,
)
_BACKUP_DIR = "_backup"


class SkipGramTrainerError(ValueError):
    """A SkipGramTrainer setting is out of range."""


def trainer_params(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """Execution properties with CorpusTrainingConfig's defaults, checked by
    `validate_corpus_training`; raises SkipGramTrainerError."""
    defaults = CorpusTrainingConfig()
    params = {}
    for key in TRAINER_FIELDS:
        default, value = getattr(defaults, key), exec_properties.get(key)
        params[key] = type(default)(default if value is None else value)
    try:
        validate_corpus_training(CorpusTrainingConfig(**params), where="", fields=TRAINER_FIELDS)
    except ConfigError as err:
        raise SkipGramTrainerError(str(err)) from err
    return params


class Executor(base_executor.BaseExecutor):
    """Trains skip-gram vectors with `devise_keras.skipgram.train_skipgram`."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        corpus = artifact_utils.get_single_instance(input_dict[CORPUS_KEY])
        output = artifact_utils.get_single_instance(output_dict[WORD_VECTORS_KEY])
        params = trainer_params(exec_properties)
        log = skipgram.train_skipgram(
            corpus.uri,
            output.uri,
            # A retried execution writing to the same URI resumes at its last epoch;
            # BackupAndRestore deletes the backup when training finishes.
            backup_dir=os.path.join(output.uri, _BACKUP_DIR),
            verbose=2,
            **params,
        )
        output.set_int_custom_property("dim", params[DIM_KEY])
        output.set_int_custom_property("vocabulary_size", log["vocabulary_size"])
        output.set_string_custom_property("format", "word2vec_text")
        logging.info(
            "SkipGramTrainer: %d words x %d, loss per pair %s, %.0f pairs/s",
            log["vocabulary_size"],
            params[DIM_KEY],
            log["loss_per_pair"],
            log["pairs_per_second"],
        )


def vectors_path(word_vectors_uri: str) -> str:
    """The word2vec text file inside a `devise.WordVectors` artifact."""
    return os.path.join(word_vectors_uri, skipgram.VECTORS_FILE)
