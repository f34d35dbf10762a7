"""Input fingerprints of the Beam components' drivers: change with the files, and only then."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import tensorflow as tf
from tfx.orchestration.portable import data_types

from components.corpus_gen.driver import CorpusGenDriver, corpus_files
from components.image_example_gen.driver import ImageExampleGenDriver, manifest_files
from components.input_fingerprint import INPUT_FINGERPRINT_KEY, fingerprint_files, folder_files
from components.label_embedding_gen.driver import LabelEmbeddingGenDriver
from devise_keras import storage


def _folder(root):
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "a.png").write_bytes(b"12345")
    (root / "dog").mkdir()
    (root / "dog" / "b.png").write_bytes(b"678")
    (root / "dog" / ".hidden").write_bytes(b"x")
    return root


def test_folder_fingerprint_counts_visible_files_and_their_bytes(tmp_path):
    root = _folder(tmp_path / "images")
    assert [name for name, _ in folder_files(str(root))] == ["cat/a.png", "dog/b.png"]
    assert fingerprint_files(folder_files(str(root))).startswith("files:2,bytes:8,sha256:")


def test_fingerprint_is_stable_until_a_file_is_edited_in_place(tmp_path):
    root = _folder(tmp_path / "images")
    first = fingerprint_files(folder_files(str(root)))
    assert fingerprint_files(folder_files(str(root))) == first
    (root / ".more").write_bytes(b"hidden files are not inputs")
    assert fingerprint_files(folder_files(str(root))) == first
    path = root / "cat" / "a.png"
    stat = path.stat()
    path.write_bytes(b"54321")  # same size: only the modification time tells
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    edited = fingerprint_files(folder_files(str(root)))
    assert edited != first and edited.startswith("files:2,bytes:8,")


def test_missing_inputs_are_fingerprinted_not_raised(tmp_path):
    missing = fingerprint_files(folder_files(str(tmp_path / "none")))
    assert missing.startswith("files:0,bytes:0,")
    assert missing != fingerprint_files([])


def test_folder_fingerprint_on_an_object_store_path(tmp_path):
    root = f"ram://fingerprint-{uuid.uuid4().hex}"
    storage.copy_tree(str(_folder(tmp_path / "images")), root)
    try:
        names = [name for name, _ in folder_files(root)]
        assert names == ["cat/a.png", "dog/b.png"]
        assert fingerprint_files(folder_files(root)).startswith("files:2,bytes:8,")
    finally:
        tf.io.gfile.rmtree(root)


def test_manifest_fingerprint_covers_the_manifest_and_the_images_it_lists(tmp_path):
    _folder(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\ncat/a.png,cat\ndog/b.png,dog,unseen\n")
    names = [name for name, _ in manifest_files(str(manifest))]
    assert names == [str(manifest), "cat/a.png", "dog/b.png"]
    assert fingerprint_files(manifest_files(str(manifest))).startswith("files:3,")


def test_corpus_fingerprint_covers_every_matched_file_and_missing_patterns(tmp_path):
    root = _folder(tmp_path / "corpus")
    files = corpus_files([str(root / "*" / "*.png"), str(root / "none-*.txt")])
    assert files == [
        (str(root / "cat" / "a.png"),) * 2,
        (str(root / "dog" / "b.png"),) * 2,
        (str(root / "none-*.txt"),) * 2,  # matches nothing: recorded as missing
    ]
    first = fingerprint_files(files)
    assert first.startswith("files:2,bytes:8,")
    (root / "none-1.txt").write_text("a new corpus file")
    appeared = fingerprint_files(
        corpus_files([str(root / "*" / "*.png"), str(root / "none-*.txt")])
    )
    assert appeared.startswith("files:3,bytes:25,") and appeared != first


@pytest.mark.parametrize(
    "driver, properties",
    [
        (ImageExampleGenDriver, lambda tmp: {"image_dir": str(_folder(tmp / "images"))}),
        (
            CorpusGenDriver,
            lambda tmp: {"corpus_paths": json.dumps([str(_folder(tmp / "c") / "*" / "*.png")])},
        ),
        (
            LabelEmbeddingGenDriver,
            lambda tmp: {
                "vectors_path": str(_folder(tmp / "v") / "cat" / "a.png"),
                "vocab_path": "",
            },
        ),
    ],
)
def test_drivers_return_the_fingerprint_as_an_execution_property(driver, properties, tmp_path):
    info = data_types.ExecutionInfo(exec_properties=properties(tmp_path))
    out = driver(None).run(info)
    assert list(out.exec_properties) == [INPUT_FINGERPRINT_KEY]
    assert out.exec_properties[INPUT_FINGERPRINT_KEY].string_value.startswith("files:")
