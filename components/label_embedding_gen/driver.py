"""LabelEmbeddingGen's driver: fingerprints the label-vector source files, for the cache key."""

from __future__ import annotations

import os
from typing import Any

from components.input_fingerprint import InputFingerprintDriver, folder_files
from components.label_embedding_gen import executor

# Handles that name a remote model rather than files (their text is in the cache key).
_REMOTE_HANDLES = ("http://", "https://")


class LabelEmbeddingGenDriver(InputFingerprintDriver):
    """Fingerprints the vectors file, its vocabulary, the alias file, the text encoder's
    files and the label-texts CSV (those that are set).

    Word-vector files run to gigabytes, so their size and modification time stand
    for their content, as in TFX's FileBasedExampleGen. A local text encoder is a
    SavedModel folder: every file under it (saved_model.pb, variables/, assets/)
    counts, so re-exporting it in place re-runs the component. A TF-Hub URL handle
    is covered by its text alone.
    """

    def input_files(self, exec_properties: dict[str, Any]) -> list[tuple[str, str]]:
        keys = (
            executor.VECTORS_PATH_KEY,
            executor.VOCAB_PATH_KEY,
            executor.ALIASES_PATH_KEY,
            executor.LABEL_TEXTS_KEY,
        )
        files = [(key, exec_properties[key]) for key in keys if exec_properties.get(key)]
        handle = exec_properties.get(executor.TEXT_ENCODER_KEY) or ""
        if handle and not handle.startswith(_REMOTE_HANDLES):
            root = os.path.expanduser(handle)
            key = executor.TEXT_ENCODER_KEY
            files += [(f"{key}/{name}", path) for name, path in folder_files(root)]
        return files
