"""SkipGramTrainer: a TFX component training skip-gram word vectors on CorpusGen's pairs.

Its own component rather than the stock Trainer with a `run_fn`: the Trainer's contract
is Examples (+ schema) in, a servable `Model` out for the Evaluator and Pusher, while
skip-gram training reads a `devise.SkipGramCorpus` and produces a data artifact, a
`devise.WordVectors` file LabelEmbeddingGen reads. Typed in and out, the lineage
corpus -> vectors -> label embeddings is in MLMD and the step is cached like any other.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.artifacts import SkipGramCorpus, WordVectors
from components.skipgram_trainer import executor
from devise_keras.config import CorpusTrainingConfig


class SkipGramTrainerSpec(ComponentSpec):
    """Input, output and hyperparameters of SkipGramTrainer."""

    PARAMETERS = {
        executor.DIM_KEY: ExecutionParameter(type=int, optional=True),
        executor.NEGATIVES_KEY: ExecutionParameter(type=int, optional=True),
        executor.EPOCHS_KEY: ExecutionParameter(type=int, optional=True),
        executor.BATCH_SIZE_KEY: ExecutionParameter(type=int, optional=True),
        executor.LEARNING_RATE_KEY: ExecutionParameter(type=float, optional=True),
        executor.MIN_LEARNING_RATE_KEY: ExecutionParameter(type=float, optional=True),
        executor.SEED_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {executor.CORPUS_KEY: ChannelParameter(type=SkipGramCorpus)}
    OUTPUTS = {executor.WORD_VECTORS_KEY: ChannelParameter(type=WordVectors)}


class SkipGramTrainer(base_component.BaseComponent):
    """Skip-gram with negative sampling (Mikolov et al., NIPS 2013) in Keras 3.

    Trains `devise_keras.skipgram.SkipGram` on the (center, context) pairs of a
    CorpusGen output, word2vec-style (SGD, linear learning-rate decay, unigram^0.75
    negatives), with `keras.callbacks.BackupAndRestore`, and writes the input vectors
    in word2vec text format, most frequent word first.

    Args:
        corpus: a `devise.SkipGramCorpus` channel (CorpusGen's ``corpus``).
        dim, negatives, epochs, batch_size, learning_rate, min_learning_rate, seed:
            see `devise_keras.config.CorpusTrainingConfig`; None takes its default.

    Outputs:
        word_vectors: `devise.WordVectors` (``vectors.txt`` + ``training_log.json``).

    Example::

        trainer = SkipGramTrainer(corpus_gen.outputs["corpus"], dim=100, epochs=3)
        LabelEmbeddingGen.from_config(examples, config.embeddings,
                                      word_vectors=trainer.outputs["word_vectors"])
    """

    SPEC_CLASS = SkipGramTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        corpus: types.BaseChannel,
        dim: int | None = None,
        negatives: int | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        min_learning_rate: float | None = None,
        seed: int | None = None,
    ):
        params = executor.trainer_params(
            {
                executor.DIM_KEY: dim,
                executor.NEGATIVES_KEY: negatives,
                executor.EPOCHS_KEY: epochs,
                executor.BATCH_SIZE_KEY: batch_size,
                executor.LEARNING_RATE_KEY: learning_rate,
                executor.MIN_LEARNING_RATE_KEY: min_learning_rate,
                executor.SEED_KEY: seed,
            }
        )
        spec = SkipGramTrainerSpec(
            corpus=corpus, word_vectors=channel.Channel(type=WordVectors), **params
        )
        super().__init__(spec=spec)

    @classmethod
    def from_config(
        cls, corpus: types.BaseChannel, settings: CorpusTrainingConfig
    ) -> SkipGramTrainer:
        """Builds the component from `embeddings.train_from_corpus` of a `DeviseConfig`."""
        return cls(
            corpus,
            dim=settings.dim,
            negatives=settings.negatives,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            min_learning_rate=settings.min_learning_rate,
            seed=settings.seed,
        )
