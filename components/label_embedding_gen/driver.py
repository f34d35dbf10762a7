"""LabelEmbeddingGen's driver: fingerprints the word-vector files, for the cache key."""

from __future__ import annotations

from typing import Any

from components.input_fingerprint import InputFingerprintDriver
from components.label_embedding_gen import executor


class LabelEmbeddingGenDriver(InputFingerprintDriver):
    """Fingerprints the vectors file, its vocabulary and the alias file (when set).

    Word-vector files run to gigabytes, so their size and modification time stand
    for their content, as in TFX's FileBasedExampleGen.
    """

    def input_files(self, exec_properties: dict[str, Any]) -> list[tuple[str, str]]:
        keys = (executor.VECTORS_PATH_KEY, executor.VOCAB_PATH_KEY, executor.ALIASES_PATH_KEY)
        return [(key, exec_properties[key]) for key in keys if exec_properties.get(key)]
