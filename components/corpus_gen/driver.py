"""CorpusGen's driver: fingerprints the text files it will read, for the cache key."""

from __future__ import annotations

import json
from typing import Any

import tensorflow as tf

from components.corpus_gen import executor
from components.input_fingerprint import InputFingerprintDriver


def corpus_files(patterns: list[str]) -> list[tuple[str, str]]:
    """`(path, path)` of every file the patterns match; a pattern matching none stands as missing.

    The executor names a pattern that matches nothing; the driver only records it, so
    the cache key still changes when that file appears.
    """
    files = []
    for pattern in patterns:
        try:
            matched = sorted(p for p in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(p))
        except tf.errors.OpError:  # e.g. a bucket that does not exist
            matched = []
        files += [(path, path) for path in matched] or [(pattern, pattern)]
    return files


class CorpusGenDriver(InputFingerprintDriver):
    """Fingerprints every corpus file (count, sizes, modification times).

    Without it, a corpus edited in place keeps CorpusGen's cache key (its parameters
    are only the glob patterns) and the pipeline would reuse vectors of the old text.
    """

    def input_files(self, exec_properties: dict[str, Any]) -> list[tuple[str, str]]:
        raw = exec_properties.get(executor.CORPUS_PATHS_KEY) or "[]"
        try:
            patterns = json.loads(raw) if isinstance(raw, str) else list(raw)
        except ValueError:
            return [(str(raw), str(raw))]  # malformed: the executor names the problem
        return corpus_files([str(p) for p in patterns])
