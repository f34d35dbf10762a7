"""File operations through tf.io.gfile, on TensorFlow's in-memory `ram://` filesystem.

`ram://` goes through the same `tf.io.gfile` code path as `gs://` and `s3://` (a
non-local scheme), so these round trips prove the library never falls back to local
`open`/`os.path` for a URI, without a network or an emulator.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import tensorflow as tf

from devise_keras import storage, word_vectors
from devise_keras.app_bundle import find_app_bundle
from devise_keras.apps import load_vocabulary
from devise_keras.config import DeviseConfig
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.label_matching import load_aliases
from tests.devise_keras.test_word_vectors import FIXTURES, VECTORS, WORDS


@pytest.fixture
def ram():
    """A fresh ram:// folder, deleted afterwards."""
    root = f"ram://devise-test-{uuid.uuid4().hex}"
    tf.io.gfile.makedirs(root)
    yield root
    tf.io.gfile.rmtree(root)


def test_is_local_tells_schemes_apart():
    assert storage.is_local("/tmp/x") and storage.is_local("rel/x")
    assert storage.is_local("file:///tmp/x")
    assert not storage.is_local("gs://bucket/x")
    assert not storage.is_local("ram://x")


def test_text_and_bytes_round_trip(ram):
    storage.makedirs(f"{ram}/a/b")
    storage.write_text(f"{ram}/a/b/t.txt", "héllo\nworld\n")
    assert storage.read_text(f"{ram}/a/b/t.txt") == "héllo\nworld\n"
    assert storage.isfile(f"{ram}/a/b/t.txt") and not storage.isdir(f"{ram}/a/b/t.txt")
    assert storage.isdir(f"{ram}/a") and not storage.isfile(f"{ram}/a")
    assert storage.getsize(f"{ram}/a/b/t.txt") == len("héllo\nworld\n".encode())
    assert storage.stat(f"{ram}/a/b/t.txt")[0] == 13
    assert not storage.exists(f"{ram}/nope")


def test_npy_round_trip_on_ram_and_local(ram, tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4) / 8.0
    for path in (f"{ram}/m.npy", str(tmp_path / "m.npy")):
        storage.save_npy(path, array)
        np.testing.assert_array_equal(storage.load_npy(path), array)
        assert storage.npy_shape(path) == (3, 4)
    mapped = storage.load_npy(str(tmp_path / "m.npy"), mmap=True)
    assert isinstance(mapped, np.memmap)
    remote = storage.load_npy(f"{ram}/m.npy", mmap=True)  # object stores cannot be mapped
    assert not isinstance(remote, np.memmap)
    np.testing.assert_array_equal(remote, array)


def test_copy_tree_and_walk_files_across_filesystems(ram, tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.bin").write_bytes(b"\x00\x01")
    (tmp_path / "src" / "sub" / "b.txt").write_text("b")
    storage.copy_tree(str(tmp_path / "src"), f"{ram}/copy")
    assert list(storage.walk_files(f"{ram}/copy")) == ["a.bin", "sub/b.txt"]
    assert storage.read_bytes(f"{ram}/copy/a.bin") == b"\x00\x01"
    storage.copy_tree(f"{ram}/copy", str(tmp_path / "back"))
    assert list(storage.walk_files(str(tmp_path / "back"))) == ["a.bin", "sub/b.txt"]
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == "b"
    storage.rmtree(f"{ram}/copy")
    assert not storage.exists(f"{ram}/copy")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        storage.copy_tree(f"{ram}/missing", f"{ram}/x")


def test_label_embeddings_save_load_on_ram(ram):
    emb = LabelEmbeddings(
        ["cat", "dog"], [[3.0, 4.0], [0.0, 2.0]], "glove", {"k": 1}, [{"label": "cat"}]
    )
    emb.save(f"{ram}/emb")
    back = LabelEmbeddings.load(f"{ram}/emb")
    assert back.labels == ["cat", "dog"]
    np.testing.assert_array_equal(back.vectors, emb.vectors)  # bit for bit
    np.testing.assert_allclose(back.vectors, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    assert (back.source, back.metadata, back.match_report) == ("glove", {"k": 1}, emb.match_report)
    with pytest.raises(FileNotFoundError, match="labels.txt is missing"):
        LabelEmbeddings.load(f"{ram}/nothing")


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_word_vector_readers_give_the_same_rows_on_ram(name, ram, tmp_path):
    path, vocab = FIXTURES[name](tmp_path)
    storage.copy_tree(str(tmp_path), f"{ram}/v")
    remote = f"{ram}/v/{path.name}"
    remote_vocab = f"{ram}/v/{vocab.name}" if vocab else ""
    wanted = {"cat", "dog", "boot"}
    local_result = word_vectors.read_vectors_for(str(path), wanted, vocab_path=str(vocab or ""))
    remote_result = word_vectors.read_vectors_for(remote, wanted, vocab_path=remote_vocab)
    assert sorted(remote_result[0]) == ["boot", "cat", "dog"]
    for word in wanted:
        np.testing.assert_array_equal(remote_result[0][word], VECTORS[WORDS.index(word)])
    assert remote_result[1] == local_result[1] == 3
    assert remote_result[2]["ranks"] == local_result[2]["ranks"]
    # Byte-range shards (the Beam job's unit of work) read the same rows remotely.
    header = word_vectors.read_header(remote, vocab_path=remote_vocab)
    rows = []
    for start, end in word_vectors.text_shards(header, 40):
        rows += [w for _, _, w, _ in word_vectors.scan_rows(header, bool, start=start, end=end)]
    assert rows == WORDS


def test_config_and_aliases_read_from_ram(ram):
    config = DeviseConfig()
    config.save(f"{ram}/config.json")
    assert DeviseConfig.load(f"{ram}/config.json") == config
    storage.write_text(f"{ram}/aliases.json", '{"T-shirt": "shirt"}')
    assert load_aliases(f"{ram}/aliases.json", defaults=False) == {"T-shirt": "shirt"}
    with pytest.raises(FileNotFoundError, match="alias file"):
        load_aliases(f"{ram}/none.json")


def test_find_app_bundle_and_vocabulary_on_ram(ram):
    for version in ("3", "12"):
        storage.makedirs(f"{ram}/serving/{version}/assets.extra")
        storage.write_bytes(f"{ram}/serving/{version}/assets.extra/model.keras", b"zip")
        storage.write_bytes(f"{ram}/serving/{version}/saved_model.pb", b"graph")
    assert find_app_bundle(f"{ram}/serving") == f"{ram}/serving/12/assets.extra/model.keras"
    assert find_app_bundle(f"{ram}/serving/3/") == f"{ram}/serving/3/assets.extra/model.keras"
    with pytest.raises(FileNotFoundError, match="model not found"):
        find_app_bundle(f"{ram}/none")
    LabelEmbeddings(["cat", "dog"], [[1.0, 0.0], [0.0, 1.0]]).save(f"{ram}/vocab")
    assert load_vocabulary(f"{ram}/vocab").labels.tolist() == ["cat", "dog"]


def test_check_uri_names_a_mistyped_scheme_a_missing_bucket_and_an_unknown_scheme(tmp_path):
    for fine in (str(tmp_path), "relative/dir", "gs://bucket/root", "ram://x", "file:///tmp"):
        assert storage.check_uri(fine) == fine
    with pytest.raises(
        ValueError, match=r"gs:/bucket/root: malformed URI, did you mean gs://bucket/root\?"
    ):
        storage.check_uri("gs:/bucket/root")
    with pytest.raises(ValueError, match=r"s3:bucket: malformed URI, did you mean s3://bucket\?"):
        storage.check_uri("s3:bucket")
    with pytest.raises(ValueError, match="gs:///root: the URI names no bucket"):
        storage.check_uri("gs:///root")
    with pytest.raises(ValueError, match=r"gcs://bucket/root: no filesystem for 'gcs://'.*\bgs\b"):
        storage.check_uri("gcs://bucket/root")


def test_make_root_creates_the_folder_or_names_the_root(tmp_path, ram):
    storage.make_root(tmp_path / "a" / "root")
    assert (tmp_path / "a" / "root").is_dir()
    storage.make_root(f"{ram}/pipeline")
    assert storage.isdir(f"{ram}/pipeline")
    with pytest.raises(ValueError, match="gs:/b/root"):
        storage.make_root("gs:/b/root")
