"""LabelEmbeddingGen executor: class vocabulary + word vectors or a text encoder -> LabelEmbeddings.

The Beam job streams the vectors file once (`transforms.ReadWantedVectors`) for every
candidate form of every class name (computed up front by
`devise_keras.label_matching.plan_lookups`) and, when asked, the most frequent words;
the driver then matches labels to vectors and writes the artifacts, so matching
errors reach the user as one clear message instead of a Beam stack trace.

With a text encoder, the label texts (`devise_keras.label_texts`) are read and the
encoder is loaded and probed once before the Beam job, so a bad handle or CSV fails
with a message naming it; the job (`transforms.EncodeTexts`) encodes the texts in
batches.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from components.label_embedding_gen import transforms
from devise_keras import features, storage
from devise_keras.config import EmbeddingConfig
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.label_matching import OOV_POLICIES, load_aliases, match_labels, plan_lookups
from devise_keras.label_texts import label_text_list, read_label_texts, text_encoder_embeddings
from devise_keras.text_encoder import load_text_encoder
from devise_keras.word_vectors import read_header

EXAMPLES_KEY = "examples"
WORD_VECTORS_KEY = "word_vectors"
LABEL_EMBEDDINGS_KEY = "label_embeddings"
OPEN_VOCABULARY_KEY = "open_vocabulary"
# Execution properties: the field names of devise_keras.config.EmbeddingConfig.
VECTORS_PATH_KEY = "vectors_path"
VECTORS_FORMAT_KEY = "vectors_format"
VOCAB_PATH_KEY = "vocab_path"
ALIASES_PATH_KEY = "aliases_path"
OOV_POLICY_KEY = "oov_policy"
OPEN_VOCABULARY_SIZE_KEY = "open_vocabulary_size"
TEXT_ENCODER_KEY = "text_encoder"
LABEL_TEXTS_KEY = "label_texts"
MAX_TEXT_CHARS_KEY = "max_text_chars"
TEXT_BATCH_SIZE_KEY = "text_batch_size"

_SCAN_DIR = "_scan"


class LabelEmbeddingGenError(ValueError):
    """The inputs of LabelEmbeddingGen are missing or inconsistent."""


def read_class_split(examples_uri: str) -> dict[str, list[str]]:
    try:
        return features.read_class_split(examples_uri, "LabelEmbeddingGen")
    except features.ClassSplitError as err:
        raise LabelEmbeddingGenError(str(err)) from None


class Executor(base_beam_executor.BaseBeamExecutor):
    """Writes unit-norm vectors of the class names (and optionally an open vocabulary).

    The vectors come from a word-vector file (`vectors_path`), vectors trained in the
    pipeline (the `word_vectors` input), or a text encoder (`text_encoder`): exactly one.
    """

    # Byte size of the ranges a text vectors file is split into (tests lower it).
    shard_bytes = transforms.DEFAULT_SHARD_BYTES

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        output = artifact_utils.get_single_instance(output_dict[LABEL_EMBEDDINGS_KEY])
        open_vocab = output_dict.get(OPEN_VOCABULARY_KEY) or []
        trained = input_dict.get(WORD_VECTORS_KEY) or []
        if exec_properties.get(TEXT_ENCODER_KEY):
            _check_one_source(exec_properties, trained, open_vocab)
            vocab_output = open_vocab[0] if open_vocab else None
            self._embed_texts(examples, output, vocab_output, _text_params(exec_properties))
            return
        if trained:
            # Vectors trained in the pipeline (SkipGramTrainer) replace vectors_path.
            from components.skipgram_trainer.executor import vectors_path

            uri = artifact_utils.get_single_instance(trained).uri
            exec_properties = {
                **exec_properties,
                VECTORS_PATH_KEY: vectors_path(uri),
                VECTORS_FORMAT_KEY: "word2vec_text",
                VOCAB_PATH_KEY: "",
            }
        params = _params(exec_properties)
        top_n = params[OPEN_VOCABULARY_SIZE_KEY]
        if open_vocab and top_n <= 0:
            raise LabelEmbeddingGenError(
                "the open_vocabulary output is wired but open_vocabulary_size is "
                f"{top_n}; set it > 0"
            )
        if not open_vocab:
            top_n = 0

        split = read_class_split(examples.uri)
        header = read_header(
            params[VECTORS_PATH_KEY], params[VECTORS_FORMAT_KEY], params[VOCAB_PATH_KEY]
        )
        plan = plan_lookups(split["classes"], load_aliases(params[ALIASES_PATH_KEY]))

        scan_path = os.path.join(output.uri, _SCAN_DIR, "scan.npz")
        with self._make_beam_pipeline() as pipeline:
            _ = (
                pipeline
                | "ReadWantedVectors"
                >> transforms.ReadWantedVectors(
                    header, plan.exact, plan.casefolded, top_n, self.shard_bytes
                )
                | "WriteScanResult" >> transforms.WriteScanResult(scan_path)
            )
        scan = transforms.read_scan_result(scan_path)
        fileio.rmtree(os.path.join(output.uri, _SCAN_DIR))

        source = params[VECTORS_PATH_KEY]
        embeddings = match_labels(
            plan,
            {word: vector for word, (_, vector) in scan.found.items()},
            header.dim,
            ranks={word: position for word, (position, _) in scan.found.items()},
            oov_policy=params[OOV_POLICY_KEY],
            source=source,
            metadata=_metadata(params, header, scan),
        )
        kept = set(embeddings.labels)
        embeddings.metadata["seen_labels"] = [c for c in split["seen"] if c in kept]
        embeddings.metadata["unseen_labels"] = [c for c in split["unseen"] if c in kept]
        _write(embeddings, output)
        logging.info(
            "LabelEmbeddingGen: %d labels from %s, methods %s",
            len(embeddings),
            source,
            embeddings.metadata["match_methods"],
        )
        if open_vocab:
            _write(_open_vocabulary(scan, header.dim, source, params), open_vocab[0])

    def _embed_texts(
        self,
        examples: types.Artifact,
        output: types.Artifact,
        vocab_output: types.Artifact | None,
        params: dict[str, Any],
    ) -> None:
        handle = params[TEXT_ENCODER_KEY]
        split = read_class_split(examples.uri)
        labels = split["classes"]
        path = params[LABEL_TEXTS_KEY]
        descriptions = read_label_texts(path, labels) if path else {}
        texts, truncated = label_text_list(labels, descriptions, params[MAX_TEXT_CHARS_KEY])
        if truncated:
            logging.warning(
                "LabelEmbeddingGen: %d label text(s) longer than max_text_chars=%d were "
                "truncated",
                truncated,
                params[MAX_TEXT_CHARS_KEY],
            )
        words = []
        if vocab_output is not None:
            words = _first_words(params[VOCAB_PATH_KEY], params[OPEN_VOCABULARY_SIZE_KEY])
        # Load and probe once here: a bad handle fails naming it, before Beam runs.
        encoder = load_text_encoder(handle)
        logging.info("LabelEmbeddingGen: text encoder %s (dim %d)", handle, encoder.dim)
        del encoder  # each Beam worker loads its own in DoFn.setup

        scan_dir = os.path.join(output.uri, _SCAN_DIR)
        encoded_path = os.path.join(scan_dir, "encoded.npy")
        vocab_path = os.path.join(scan_dir, "open_vocabulary.npy")
        batch = params[TEXT_BATCH_SIZE_KEY]
        with self._make_beam_pipeline() as pipeline:
            _ = (
                pipeline
                | "EncodeTexts" >> transforms.EncodeTexts(handle, texts, batch)
                | "WriteEncodedTexts" >> transforms.WriteEncodedTexts(encoded_path, len(texts))
            )
            if words:
                _ = (
                    pipeline
                    | "EncodeOpenVocabulary" >> transforms.EncodeTexts(handle, words, batch)
                    | "WriteOpenVocabulary" >> transforms.WriteEncodedTexts(vocab_path, len(words))
                )
        vectors = transforms.read_encoded_texts(encoded_path)
        vocab_vectors = transforms.read_encoded_texts(vocab_path) if words else None
        fileio.rmtree(scan_dir)

        embeddings = text_encoder_embeddings(
            labels,
            texts,
            vectors,
            text_encoder=handle,
            label_texts_path=path,
            truncated_texts=truncated,
            metadata={
                "max_text_chars": params[MAX_TEXT_CHARS_KEY],
                "labels_with_text": len(descriptions),
                "seen_labels": list(split["seen"]),
                "unseen_labels": list(split["unseen"]),
            },
        )
        _write(embeddings, output)
        logging.info(
            "LabelEmbeddingGen: %d labels from text encoder %s (%d with a description)",
            len(embeddings),
            handle,
            len(descriptions),
        )
        if vocab_output is not None:
            meta = {
                "kind": "open_vocabulary",
                "requested": params[OPEN_VOCABULARY_SIZE_KEY],
                "filter": "the first words of vocab_path containing a letter",
                "vocab_path": params[VOCAB_PATH_KEY],
                "text_encoder": handle,
            }
            _write(LabelEmbeddings(words, vocab_vectors, handle, meta), vocab_output)


def _first_words(path: str, count: int) -> list[str]:
    """The first `count` distinct words (first field of a line, with a letter) of `path`."""
    if not path:
        raise LabelEmbeddingGenError(
            "open_vocabulary_size > 0 with a text_encoder needs vocab_path: a word list, "
            "one word per line, most frequent first (the words to encode)"
        )
    if not storage.isfile(path):
        raise LabelEmbeddingGenError(f"vocab_path {path!r} does not exist")
    words: list[str] = []
    seen: set[str] = set()
    for line in storage.read_text(path).splitlines():
        fields = line.split()
        word = fields[0] if fields else ""
        if word and word not in seen and transforms.is_nameable_word(word):
            seen.add(word)
            words.append(word)
            if len(words) == count:
                break
    if not words:
        raise LabelEmbeddingGenError(f"vocab_path {path} has no word for the open vocabulary")
    return words


def _check_one_source(exec_properties, trained, open_vocab) -> None:
    handle = exec_properties[TEXT_ENCODER_KEY]
    if exec_properties.get(VECTORS_PATH_KEY):
        raise LabelEmbeddingGenError(
            f"text_encoder ({handle!r}) and vectors_path "
            f"({exec_properties[VECTORS_PATH_KEY]!r}) are both set; keep one"
        )
    if trained:
        raise LabelEmbeddingGenError(
            f"text_encoder ({handle!r}) is set and the word_vectors input is wired; keep one"
        )
    if open_vocab and int(exec_properties.get(OPEN_VOCABULARY_SIZE_KEY) or 0) <= 0:
        raise LabelEmbeddingGenError(
            "the open_vocabulary output is wired but open_vocabulary_size is "
            f"{exec_properties.get(OPEN_VOCABULARY_SIZE_KEY)}; set it > 0"
        )


def _text_params(exec_properties: dict[str, Any]) -> dict[str, Any]:
    defaults = EmbeddingConfig()

    def number(key: str) -> int:
        value = exec_properties.get(key)
        return getattr(defaults, key) if value is None else int(value)

    params = {
        TEXT_ENCODER_KEY: exec_properties[TEXT_ENCODER_KEY],
        LABEL_TEXTS_KEY: exec_properties.get(LABEL_TEXTS_KEY) or "",
        MAX_TEXT_CHARS_KEY: number(MAX_TEXT_CHARS_KEY),
        TEXT_BATCH_SIZE_KEY: number(TEXT_BATCH_SIZE_KEY),
        VOCAB_PATH_KEY: exec_properties.get(VOCAB_PATH_KEY) or "",
        OPEN_VOCABULARY_SIZE_KEY: int(exec_properties.get(OPEN_VOCABULARY_SIZE_KEY) or 0),
    }
    for key in (MAX_TEXT_CHARS_KEY, TEXT_BATCH_SIZE_KEY):
        if params[key] < 1:
            raise LabelEmbeddingGenError(f"{key} must be >= 1, got {params[key]}")
    return params


def _params(exec_properties: dict[str, Any]) -> dict[str, Any]:
    params = {
        VECTORS_PATH_KEY: exec_properties.get(VECTORS_PATH_KEY) or "",
        VECTORS_FORMAT_KEY: exec_properties.get(VECTORS_FORMAT_KEY) or "auto",
        VOCAB_PATH_KEY: exec_properties.get(VOCAB_PATH_KEY) or "",
        ALIASES_PATH_KEY: exec_properties.get(ALIASES_PATH_KEY) or "",
        OOV_POLICY_KEY: exec_properties.get(OOV_POLICY_KEY) or "error",
        OPEN_VOCABULARY_SIZE_KEY: int(exec_properties.get(OPEN_VOCABULARY_SIZE_KEY) or 0),
    }
    if not params[VECTORS_PATH_KEY]:
        raise LabelEmbeddingGenError(
            "vectors_path is empty: set embeddings.vectors_path to a word-vector file "
            "(devise_keras.datasets.glove.prepare_glove prepares GloVe), or "
            "embeddings.text_encoder to a TF-Hub text encoder"
        )
    if params[OOV_POLICY_KEY] not in OOV_POLICIES:
        raise LabelEmbeddingGenError(
            f"oov_policy must be one of {OOV_POLICIES}, got {params[OOV_POLICY_KEY]!r}"
        )
    if params[OPEN_VOCABULARY_SIZE_KEY] < 0:
        raise LabelEmbeddingGenError(
            f"open_vocabulary_size must be >= 0, got {params[OPEN_VOCABULARY_SIZE_KEY]}"
        )
    return params


def _metadata(params, header, scan: transforms.ScanResult) -> dict[str, Any]:
    return {
        "format": header.format,
        "vectors_path": params[VECTORS_PATH_KEY],
        "vocab_path": params[VOCAB_PATH_KEY],
        "aliases_path": params[ALIASES_PATH_KEY],
        "rows_scanned": scan.rows,
        "non_utf8_words": scan.non_utf8_words,
    }


def _open_vocabulary(scan: transforms.ScanResult, dim: int, source: str, params) -> LabelEmbeddings:
    words, rows = [], []
    for _, word, vector in scan.top:
        if np.isfinite(vector).all() and np.any(vector):  # a zero row cannot be normalized
            words.append(word)
            rows.append(vector)
    if not words:
        raise LabelEmbeddingGenError(f"{source} has no word usable for the open vocabulary")
    matrix = np.stack(rows)
    meta = {
        "kind": "open_vocabulary",
        "requested": params[OPEN_VOCABULARY_SIZE_KEY],
        "filter": "the most frequent words containing a letter",
        "vectors_path": params[VECTORS_PATH_KEY],
    }
    return LabelEmbeddings(words, matrix, source, meta)


def _write(embeddings: LabelEmbeddings, artifact: types.Artifact) -> None:
    embeddings.save(artifact.uri)
    _set_property(artifact, "dim", embeddings.dim)
    _set_property(artifact, "num_labels", len(embeddings))
    _set_property(artifact, "source", embeddings.source)


def _set_property(artifact: types.Artifact, name: str, value: int | str) -> None:
    # Declared properties when the artifact type has them; custom properties otherwise
    # (the Kubeflow V2 compiler of TFX 1.16 rejects custom types that declare any).
    if name in (artifact.PROPERTIES or {}):
        setattr(artifact, name, value)
    elif isinstance(value, int):
        artifact.set_int_custom_property(name, value)
    else:
        artifact.set_string_custom_property(name, value)
