"""CorpusGen: a Beam TFX component turning text files into skip-gram training pairs.

DeViSE (Frome et al., NIPS 2013) trained its own skip-gram model (Mikolov et al., NIPS
2013) on Wikipedia before embedding labels. CorpusGen is the data half of that: it
tokenizes the corpus as label matching does (`devise_keras.label_matching.text_words`),
counts the vocabulary, subsamples frequent words and writes (center, context) pairs of
dynamic windows, all in Beam, so the same code runs on Dataflow for a large corpus.
SkipGramTrainer trains the vectors from its output.
"""

from __future__ import annotations

import json

from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.artifacts import SkipGramCorpus
from components.corpus_gen import executor
from components.corpus_gen.driver import CorpusGenDriver
from components.input_fingerprint import INPUT_FINGERPRINT_KEY
from devise_keras.config import CorpusTrainingConfig


class CorpusGenSpec(ComponentSpec):
    """Parameters and output of CorpusGen (it has no input channel: it reads files)."""

    PARAMETERS = {
        executor.CORPUS_PATHS_KEY: ExecutionParameter(type=str),
        executor.DOCUMENT_PER_KEY: ExecutionParameter(type=str, optional=True),
        executor.MIN_COUNT_KEY: ExecutionParameter(type=int, optional=True),
        executor.SAMPLE_KEY: ExecutionParameter(type=float, optional=True),
        executor.WINDOW_KEY: ExecutionParameter(type=int, optional=True),
        executor.SEED_KEY: ExecutionParameter(type=int, optional=True),
        executor.NUM_SHARDS_KEY: ExecutionParameter(type=int, optional=True),
        # Filled by CorpusGenDriver when the component runs (covered by the cache key).
        INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {executor.CORPUS_KEY: ChannelParameter(type=SkipGramCorpus)}


class CorpusGen(base_beam_component.BaseBeamComponent):
    """Skip-gram (center, context) pairs, vocabulary and unigram table from text files.

    Word2vec's data preparation (Mikolov et al., NIPS 2013) as a Beam job: words with
    ``count >= min_count``; frequent words kept with probability
    ``min(1, (sqrt(f / sample) + 1) * sample / f)``; each kept word paired with the
    words within a reach drawn uniformly from 1..window; draws seeded per document, so
    the output does not depend on the runner's sharding. Non-UTF-8 lines (or files,
    with ``document_per="file"``) are skipped and counted in ``corpus_stats.json``.

    Args:
        corpus_paths: text files or glob patterns (``.gz`` read as gzip); a list.
        document_per: "line" or "file".
        min_count: smallest count of a vocabulary word.
        sample: subsampling threshold (0 keeps every word).
        window: largest window reach.
        seed: seed of the per-document draws.
        num_shards: pair TFRecord shards (0: the runner decides).
        Settings left None take `devise_keras.config.CorpusTrainingConfig`'s defaults.

    Outputs:
        corpus: `devise.SkipGramCorpus` (see `devise_keras.skipgram_corpus`).

    Example::

        corpus_gen = CorpusGen.from_config(config.embeddings.train_from_corpus)
        trainer = SkipGramTrainer.from_config(corpus_gen.outputs["corpus"], ...)
    """

    SPEC_CLASS = CorpusGenSpec
    DRIVER_CLASS = CorpusGenDriver
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        corpus_paths: list[str],
        document_per: str | None = None,
        min_count: int | None = None,
        sample: float | None = None,
        window: int | None = None,
        seed: int | None = None,
        num_shards: int | None = None,
    ):
        params = executor.corpus_params(
            {
                executor.CORPUS_PATHS_KEY: list(corpus_paths),
                executor.DOCUMENT_PER_KEY: document_per,
                executor.MIN_COUNT_KEY: min_count,
                executor.SAMPLE_KEY: sample,
                executor.WINDOW_KEY: window,
                executor.SEED_KEY: seed,
                executor.NUM_SHARDS_KEY: num_shards,
            }
        )
        params[executor.CORPUS_PATHS_KEY] = json.dumps(params[executor.CORPUS_PATHS_KEY])
        spec = CorpusGenSpec(
            corpus=channel.Channel(type=SkipGramCorpus),
            **params,
        )
        super().__init__(spec=spec)

    @classmethod
    def from_config(cls, corpus: CorpusTrainingConfig) -> CorpusGen:
        """Builds the component from `embeddings.train_from_corpus` of a `DeviseConfig`."""
        return cls(
            corpus_paths=corpus.corpus_paths,
            document_per=corpus.document_per,
            min_count=corpus.min_count,
            sample=corpus.sample,
            window=corpus.window,
            seed=corpus.seed,
            num_shards=corpus.num_shards,
        )
