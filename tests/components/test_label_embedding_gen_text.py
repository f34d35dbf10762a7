"""LabelEmbeddingGen with a text encoder: executor over artifacts, fail-fast errors, driver."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.orchestration.portable import data_types
from tfx.types import Channel, standard_artifacts

from components.input_fingerprint import INPUT_FINGERPRINT_KEY
from components.label_embedding_gen import transforms
from components.label_embedding_gen.component import LabelEmbeddingGen
from components.label_embedding_gen.driver import LabelEmbeddingGenDriver
from components.label_embedding_gen.executor import Executor, LabelEmbeddingGenError
from devise_keras.config import EmbeddingConfig
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.label_texts import LabelTextsError
from devise_keras.text_encoder import TextEncoderError
from tests.components.test_label_embedding_gen import examples_artifact, output_artifact, prop
from tests.text_encoder_testutil import write_bag_of_words_encoder

WORDS = {"red": [1.0, 0.0, 0.0], "fruit": [0.0, 1.0, 0.0], "sky": [0.0, 0.0, 1.0]}
SPLIT = {"classes": ["apple", "sky", "zebra"], "seen": ["apple", "sky"], "unseen": ["zebra"]}
S2, S3 = 1 / np.sqrt(2), 1 / np.sqrt(3)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return write_bag_of_words_encoder(str(tmp_path_factory.mktemp("enc") / "bow"), WORDS)


def run_executor(tmp_path, exec_properties, split=SPLIT, beam_allowed=True, open_vocab=False):
    outputs = {"label_embeddings": [output_artifact(tmp_path, "label_embeddings")]}
    if open_vocab:
        outputs["open_vocabulary"] = [output_artifact(tmp_path, "open_vocabulary")]
    executor = Executor()
    if not beam_allowed:
        executor._make_beam_pipeline = _no_beam
    executor.Do({"examples": [examples_artifact(tmp_path, split)]}, outputs, exec_properties)
    return outputs["label_embeddings"][0] if not open_vocab else outputs


def _no_beam():
    raise AssertionError("the Beam pipeline was built before the input error was raised")


def write_csv(tmp_path, content: bytes | str) -> str:
    path = tmp_path / "texts.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


@pytest.mark.slow
def test_executor_encodes_names_alone_without_label_texts(tmp_path, encoder):
    artifact = run_executor(tmp_path, {"text_encoder": encoder, "text_batch_size": 2})
    emb = LabelEmbeddings.load(artifact.uri)
    assert emb.labels == ["apple", "sky", "zebra"]
    # "apple" and "zebra" are unknown words -> the encoder's (1, 1, 1); "sky" -> sky.
    np.testing.assert_allclose(emb.vectors, [[S3, S3, S3], [0, 0, 1], [S3, S3, S3]], rtol=1e-6)
    assert [r["text"] for r in emb.match_report] == ["apple", "sky", "zebra"]
    assert emb.metadata["label_texts_path"] == ""
    assert prop(artifact, "dim") == 3 and prop(artifact, "source") == encoder


@pytest.mark.slow
def test_executor_encodes_name_and_description_with_metadata(tmp_path, encoder):
    texts = write_csv(tmp_path, "label,text\napple,red fruit\nzebra,RED Red\n")
    artifact = run_executor(
        tmp_path, {"text_encoder": encoder, "label_texts": texts, "text_batch_size": 1}
    )
    emb = LabelEmbeddings.load(artifact.uri)
    expected = [
        [S2, S2, 0],  # "apple: red fruit": "apple:" unknown, mean(red, fruit)
        [0, 0, 1],  # "sky", no row
        [1, 0, 0],  # "zebra: RED Red": lower-cased red twice
    ]
    np.testing.assert_allclose(emb.vectors, expected, rtol=1e-6, atol=1e-7)
    assert emb.match_report == [
        {"label": "apple", "method": "text_encoder", "text": "apple: red fruit"},
        {"label": "sky", "method": "text_encoder", "text": "sky"},
        {"label": "zebra", "method": "text_encoder", "text": "zebra: RED Red"},
    ]
    meta = emb.metadata
    assert meta["kind"] == "text_encoder"
    assert meta["text_encoder"] == encoder
    assert meta["label_texts_path"] == texts
    assert meta["truncated_texts"] == 0
    assert meta["seen_labels"] == ["apple", "sky"] and meta["unseen_labels"] == ["zebra"]
    assert prop(artifact, "num_labels") == 3
    assert sorted(os.listdir(artifact.uri)) == [
        "labels.txt",
        "match_report.json",
        "metadata.json",
        "vectors.npy",
    ]


@pytest.mark.slow
def test_executor_truncates_a_100k_character_text_and_counts_it(tmp_path, encoder):
    long_text = ("fruit " * 16_667)[:100_000]
    texts = write_csv(tmp_path, f"label,text\napple,{long_text}\n")
    artifact = run_executor(tmp_path, {"text_encoder": encoder, "label_texts": texts})
    emb = LabelEmbeddings.load(artifact.uri)
    assert emb.metadata["truncated_texts"] == 1
    assert len(emb.match_report[0]["text"]) == 2000  # EmbeddingConfig.max_text_chars
    np.testing.assert_allclose(emb.vectors[0], [0, 1, 0], atol=1e-7)


@pytest.mark.slow
def test_executor_encodes_the_first_words_of_vocab_path_as_open_vocabulary(tmp_path, encoder):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the 100\n, 90\nred 80\n\nthe 70\nsky 60\nfruit 50\n")
    outputs = run_executor(
        tmp_path,
        {"text_encoder": encoder, "vocab_path": str(vocab), "open_vocabulary_size": 3},
        open_vocab=True,
    )
    words = LabelEmbeddings.load(outputs["open_vocabulary"][0].uri)
    assert words.labels == ["the", "red", "sky"]  # "," has no letter, "the" once
    np.testing.assert_allclose(words.vectors, [[S3, S3, S3], [1, 0, 0], [0, 0, 1]], rtol=1e-6)
    assert words.metadata["kind"] == "open_vocabulary"
    assert words.metadata["text_encoder"] == encoder
    labels = LabelEmbeddings.load(outputs["label_embeddings"][0].uri)
    assert labels.labels == ["apple", "sky", "zebra"]


def test_open_vocabulary_with_a_text_encoder_needs_vocab_path(tmp_path, encoder):
    with pytest.raises(LabelEmbeddingGenError, match="needs vocab_path"):
        run_executor(
            tmp_path,
            {"text_encoder": encoder, "open_vocabulary_size": 3},
            beam_allowed=False,
            open_vocab=True,
        )
    with pytest.raises(ValueError, match="needs vocab_path"):
        LabelEmbeddingGen(
            examples=Channel(type=standard_artifacts.Examples),
            text_encoder="/m",
            open_vocabulary_size=3,
        )


def test_missing_encoder_handle_fails_naming_it_before_beam(tmp_path):
    handle = str(tmp_path / "no-such-encoder")
    with pytest.raises(TextEncoderError, match="no-such-encoder"):
        run_executor(tmp_path, {"text_encoder": handle}, beam_allowed=False)


def test_a_folder_that_is_no_saved_model_fails_naming_it_before_beam(tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "README.txt").write_text("hello")
    with pytest.raises(TextEncoderError, match="not-a-model"):
        run_executor(tmp_path, {"text_encoder": str(folder)}, beam_allowed=False)


class _RankOne(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        return tf.cast(tf.strings.length(texts), tf.float32)  # (B,), not (B, D)


class _IntVectors(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        return tf.stack([tf.strings.length(texts)] * 2, axis=1)  # int32 (B, 2)


@pytest.mark.parametrize(
    "module, message", [(_RankOne, r"to shape \(2,\), expected \(2, D\)"), (_IntVectors, "int32")]
)
def test_an_encoder_of_wrong_rank_or_dtype_fails_naming_it_before_beam(tmp_path, module, message):
    handle = str(tmp_path / "bad-encoder")
    tf.saved_model.save(module(), handle)
    with pytest.raises(TextEncoderError, match=message) as info:
        run_executor(tmp_path, {"text_encoder": handle}, beam_allowed=False)
    assert handle in str(info.value)


def test_bad_label_texts_fail_naming_the_file_before_beam(tmp_path, encoder):
    texts = write_csv(tmp_path, "label,text\napple,fruit\npear,fruit\n")
    with pytest.raises(LabelTextsError, match=r"texts\.csv: 1 label\(s\) not in the class"):
        run_executor(tmp_path, {"text_encoder": encoder, "label_texts": texts}, beam_allowed=False)


def test_text_encoder_with_vectors_path_is_rejected(tmp_path, encoder):
    with pytest.raises(LabelEmbeddingGenError, match=r"vectors_path .* are both set; keep one"):
        run_executor(tmp_path, {"text_encoder": encoder, "vectors_path": "glove.txt"})


def test_encoded_rows_are_written_in_index_order(tmp_path):
    batches = [
        (np.array([2, 0]), np.array([[0, 0, 1], [1, 0, 0]], np.float32)),
        (np.array([1]), np.array([[0, 1, 0]], np.float32)),
    ]
    path = transforms.write_encoded_texts(batches, str(tmp_path / "e.npy"), 3)
    np.testing.assert_array_equal(transforms.read_encoded_texts(path), np.eye(3))
    with pytest.raises(ValueError, match=r"not 0\.\.3"):
        transforms.write_encoded_texts(batches, str(tmp_path / "e.npy"), 4)


# ------------------------------------------------------------------ component, driver


def test_component_passes_the_text_encoder_fields_from_config():
    config = EmbeddingConfig(text_encoder="/m/use", label_texts="t.csv", max_text_chars=50)
    gen = LabelEmbeddingGen.from_config(Channel(type=standard_artifacts.Examples), config)
    props = gen.exec_properties
    assert (props["text_encoder"], props["label_texts"]) == ("/m/use", "t.csv")
    assert (props["max_text_chars"], props["text_batch_size"]) == (50, 128)
    assert props["vectors_path"] == ""


@pytest.mark.parametrize(
    "kwargs, given",
    [({}, "none"), ({"vectors_path": "v.txt", "text_encoder": "/m"}, "vectors_path")],
)
def test_component_needs_exactly_one_vector_source(kwargs, given):
    with pytest.raises(ValueError, match=rf"exactly one of .*given: .*{given}"):
        LabelEmbeddingGen(examples=Channel(type=standard_artifacts.Examples), **kwargs)


def test_driver_fingerprint_changes_with_the_encoder_files_and_label_texts(tmp_path, encoder):
    import shutil

    handle = str(tmp_path / "enc")
    shutil.copytree(encoder, handle)
    texts = write_csv(tmp_path, "label,text\napple,red fruit\n")
    props = {"text_encoder": handle, "label_texts": texts}

    def fingerprint():
        info = data_types.ExecutionInfo(exec_properties=props)
        return LabelEmbeddingGenDriver(None).run(info).exec_properties[INPUT_FINGERPRINT_KEY]

    first = fingerprint().string_value
    n_files = len([f for _, _, fs in os.walk(handle) for f in fs]) + 1
    assert first.startswith(f"files:{n_files},")
    assert fingerprint().string_value == first
    with open(os.path.join(handle, "saved_model.pb"), "ab") as f:
        f.write(b"\0")
    second = fingerprint().string_value
    assert second != first
    with open(texts, "a") as f:
        f.write("sky,blue\n")
    assert fingerprint().string_value not in (first, second)
    hub = {"text_encoder": "https://tfhub.dev/google/universal-sentence-encoder/4"}
    info = data_types.ExecutionInfo(exec_properties=hub)
    value = LabelEmbeddingGenDriver(None).run(info).exec_properties[INPUT_FINGERPRINT_KEY]
    assert value.string_value.startswith("files:0,")
