"""CorpusGen executor: two Beam jobs with a small driver step between them.

Job 1 counts the words of every document (`transforms.CountWords`). The driver then
checks the counts (an empty corpus, or ``min_count`` above every count, is a clear
`CorpusGenError`, not a Beam stack trace), sorts the vocabulary and writes
``vocab.tsv`` and the unigram^0.75 table. Job 2 (`transforms.GeneratePairs`) reads the
corpus again, as word2vec C does, and writes the (center, context) pairs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from components.corpus_gen import transforms
from devise_keras import skipgram_corpus as sg
from devise_keras.config import ConfigError, CorpusTrainingConfig, validate_corpus_training

CORPUS_KEY = "corpus"
# Execution properties: the field names of devise_keras.config.CorpusTrainingConfig
# (corpus_paths as a JSON list).
CORPUS_PATHS_KEY = "corpus_paths"
DOCUMENT_PER_KEY = "document_per"
MIN_COUNT_KEY = "min_count"
SAMPLE_KEY = "sample"
WINDOW_KEY = "window"
SEED_KEY = "seed"
NUM_SHARDS_KEY = "num_shards"
# The settings this component reads; their defaults are CorpusTrainingConfig's.
CORPUS_FIELDS = (
    CORPUS_PATHS_KEY,
    DOCUMENT_PER_KEY,
    MIN_COUNT_KEY,
    SAMPLE_KEY,
    WINDOW_KEY,
    SEED_KEY,
    NUM_SHARDS_KEY,
)

_COUNT_DIR = "_count"
_PAIRS_COUNT_DIR = "_pairs"


class CorpusGenError(sg.CorpusError):
    """The corpus or the settings of CorpusGen give no usable training data."""


class Executor(base_beam_executor.BaseBeamExecutor):
    """Writes a `devise.SkipGramCorpus`: vocabulary, unigram table, pairs, statistics."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        output = artifact_utils.get_single_instance(output_dict[CORPUS_KEY])
        params = corpus_params(exec_properties)
        patterns = params[CORPUS_PATHS_KEY]
        files = check_patterns(patterns)
        out = output.uri
        count_dir = os.path.join(out, _COUNT_DIR)

        start = time.perf_counter()
        with self._make_beam_pipeline() as pipeline:
            _ = pipeline | "CountWords" >> transforms.CountWords(
                patterns, params[DOCUMENT_PER_KEY], params[MIN_COUNT_KEY], count_dir
            )
        count_seconds = time.perf_counter() - start
        summary = _read_json(os.path.join(count_dir, "summary.json"))
        vocabulary = check_counts(summary, _read_counts(count_dir), params, len(files))
        sg.write_vocabulary(out, vocabulary)
        tf.io.gfile.rmtree(count_dir)
        logging.info(
            "CorpusGen: %d documents, %d tokens, vocabulary %d (min_count %d)",
            summary["documents"],
            summary["tokens"],
            len(vocabulary),
            params[MIN_COUNT_KEY],
        )

        start = time.perf_counter()
        with self._make_beam_pipeline() as pipeline:
            _ = pipeline | "GeneratePairs" >> transforms.GeneratePairs(
                patterns, params[DOCUMENT_PER_KEY], out, params
            )
        pairs_seconds = time.perf_counter() - start
        pairs = _read_json(os.path.join(out, _PAIRS_COUNT_DIR, "count.json"))["pairs"]
        tf.io.gfile.rmtree(os.path.join(out, _PAIRS_COUNT_DIR))
        if pairs == 0:
            raise CorpusGenError(
                f"the corpus gave no (center, context) pair: no document has two vocabulary "
                f"words left after subsampling (sample={params[SAMPLE_KEY]}); use longer "
                "documents, a lower min_count or sample=0"
            )
        stats = {
            **summary,
            "vocabulary_size": len(vocabulary),
            "pairs": pairs,
            "files": len(files),
            "settings": dict(params),
            # Wall time of the two Beam jobs (pipeline start-up included).
            "seconds": {"count_words": count_seconds, "generate_pairs": pairs_seconds},
        }
        sg.write_stats(out, stats)
        output.set_int_custom_property("vocabulary_size", len(vocabulary))
        output.set_int_custom_property("tokens", summary["tokens"])
        output.set_int_custom_property("pairs", pairs)
        if summary["non_utf8_skipped"]:
            logging.warning(
                "CorpusGen: skipped %d non-UTF-8 %ss: %s",
                summary["non_utf8_skipped"],
                params[DOCUMENT_PER_KEY],
                summary["non_utf8_files"],
            )


def corpus_params(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """Execution properties with CorpusTrainingConfig's defaults, checked by
    `validate_corpus_training`; raises CorpusGenError."""
    raw_paths = exec_properties.get(CORPUS_PATHS_KEY) or "[]"
    paths = json.loads(raw_paths) if isinstance(raw_paths, str) else list(raw_paths)

    def get(key: str, default: Any) -> Any:
        value = exec_properties.get(key)
        return default if value is None or value == "" else value

    defaults = CorpusTrainingConfig()
    params: dict[str, Any] = {CORPUS_PATHS_KEY: [str(p) for p in paths]}
    for key in CORPUS_FIELDS[1:]:
        default = getattr(defaults, key)
        params[key] = type(default)(get(key, default))
    try:
        validate_corpus_training(CorpusTrainingConfig(**params), where="", fields=CORPUS_FIELDS)
    except ConfigError as err:
        raise CorpusGenError(str(err)) from err
    return params


def check_patterns(patterns: list[str]) -> list[str]:
    """The files matching `patterns`; each pattern must match at least one file."""
    files = []
    for pattern in patterns:
        matched = [p for p in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(p)]
        if not matched:
            raise CorpusGenError(f"corpus path {pattern!r} matches no file")
        files += matched
    return sorted(set(files))


def check_counts(
    summary: dict[str, Any], counts: dict[str, int], params: dict[str, Any], num_files: int
) -> list[tuple[str, int]]:
    """The vocabulary, or a CorpusGenError saying why there is none."""
    skipped = summary["non_utf8_skipped"]
    if summary["tokens"] == 0:
        raise CorpusGenError(
            f"the corpus has no words: {num_files} file(s) matched {params[CORPUS_PATHS_KEY]}, "
            f"{summary['documents']} non-blank document(s), {skipped} non-UTF-8 "
            f"{params[DOCUMENT_PER_KEY]}(s) skipped {summary['non_utf8_files'] or ''}".rstrip()
        )
    vocabulary = sg.build_vocabulary(counts, params[MIN_COUNT_KEY])
    if not vocabulary:
        raise CorpusGenError(
            f"min_count={params[MIN_COUNT_KEY]} is larger than every word count (the most "
            f"frequent word occurs {summary['max_count']} times in {summary['tokens']} tokens); "
            "lower min_count or use a larger corpus"
        )
    return vocabulary


def _read_counts(count_dir: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in tf.io.gfile.glob(os.path.join(count_dir, "counts-*")):
        with tf.io.gfile.GFile(path, "r") as f:
            for line in f:
                word, count = line.rstrip("\n").split("\t")
                counts[word] = int(count)
    return counts


def _read_json(path: str) -> dict[str, Any]:
    with tf.io.gfile.GFile(path, "r") as f:
        return json.loads(f.read())
