"""Streaming word-vector readers on tiny fixture files written by the tests."""

from __future__ import annotations

import numpy as np
import pytest

from devise_keras import word_vectors
from devise_keras.word_vectors import (
    WordVectorsError,
    iter_vectors,
    read_header,
    read_top_words,
    read_vectors_for,
    scan_rows,
    text_shards,
)

WORDS = ["the", "Cat", "cat", "dog", "golden_retriever", "CAT", "boot"]
# Multiples of 1/8 are exact in float32 and in their decimal text form.
VECTORS = (np.arange(len(WORDS) * 3, dtype=np.float32).reshape(-1, 3) - 4.0) / 8.0


def _row_text(word, vector):
    return word + " " + " ".join(repr(float(x)) for x in vector)


def write_glove(path, words=WORDS, vectors=VECTORS):
    path.write_text("".join(_row_text(w, v) + "\n" for w, v in zip(words, vectors, strict=True)))
    return path


def write_word2vec_text(path, words=WORDS, vectors=VECTORS, trailing=""):
    lines = [f"{len(words)} {vectors.shape[1]}"]
    lines += [_row_text(w, v) + trailing for w, v in zip(words, vectors, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_word2vec_binary(path, words=WORDS, vectors=VECTORS, newline=True):
    with open(path, "wb") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n".encode())
        for w, v in zip(words, vectors, strict=True):
            word = w if isinstance(w, bytes) else w.encode("utf-8")
            f.write(word + b" " + v.astype("<f4").tobytes() + (b"\n" if newline else b""))
    return path


def write_npy(tmp_path, vocab="txt", words=WORDS, vectors=VECTORS):
    np.save(tmp_path / "m.npy", vectors)
    if vocab == "txt":
        (tmp_path / "vocab.txt").write_text("".join(w + "\n" for w in words))
        return tmp_path / "m.npy", tmp_path / "vocab.txt"
    pa = pytest.importorskip("pyarrow", reason="a .parquet vocabulary needs pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"index": words}), tmp_path / "vocab.parquet")
    return tmp_path / "m.npy", tmp_path / "vocab.parquet"


FIXTURES = {
    "glove_text": lambda tmp: (write_glove(tmp / "v.txt"), ""),
    "word2vec_text": lambda tmp: (write_word2vec_text(tmp / "v.txt"), ""),
    "fasttext_vec": lambda tmp: (write_word2vec_text(tmp / "v.vec", trailing=" "), ""),
    "word2vec_binary": lambda tmp: (write_word2vec_binary(tmp / "v.bin"), ""),
    "word2vec_binary_no_newline": lambda tmp: (
        write_word2vec_binary(tmp / "v.bin", newline=False),
        "",
    ),
    "npy_txt_vocab": lambda tmp: write_npy(tmp, "txt"),
    "npy_parquet_vocab": lambda tmp: write_npy(tmp, "parquet"),
}
EXPECTED_FORMAT = {
    "glove_text": "glove_text",
    "word2vec_text": "word2vec_text",
    "fasttext_vec": "word2vec_text",
    "word2vec_binary": "word2vec_binary",
    "word2vec_binary_no_newline": "word2vec_binary",
    "npy_txt_vocab": "npy",
    "npy_parquet_vocab": "npy",
}


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_each_format_is_detected_and_returns_exact_wanted_vectors(tmp_path, kind):
    path, vocab = FIXTURES[kind](tmp_path)
    vectors, dim, info = read_vectors_for(path, {"cat", "boot", "absent"}, vocab_path=str(vocab))
    assert info["format"] == EXPECTED_FORMAT[kind]
    assert dim == 3
    assert sorted(vectors) == ["boot", "cat"]
    np.testing.assert_array_equal(vectors["cat"], VECTORS[2])
    np.testing.assert_array_equal(vectors["boot"], VECTORS[6])
    assert vectors["cat"].dtype == np.float32
    assert info["ranks"] == {"cat": 2, "boot": 6}
    assert info["rows"] == len(WORDS)


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_iter_vectors_yields_every_row_in_rank_order(tmp_path, kind):
    path, vocab = FIXTURES[kind](tmp_path)
    rows = list(iter_vectors(path, vocab_path=str(vocab)))
    assert [r[0] for r in rows] == list(range(len(WORDS)))
    assert [r[1] for r in rows] == WORDS
    np.testing.assert_array_equal(np.stack([r[2] for r in rows]), VECTORS)


@pytest.mark.parametrize("kind", ["glove_text", "word2vec_binary", "npy_txt_vocab"])
def test_casefold_key_collects_every_case_variant_in_one_pass(tmp_path, kind):
    path, vocab = FIXTURES[kind](tmp_path)
    vectors, _, info = read_vectors_for(path, {"cat"}, vocab_path=str(vocab), key=str.casefold)
    assert list(vectors) == ["Cat", "cat", "CAT"]
    assert info["ranks"] == {"Cat": 1, "cat": 2, "CAT": 5}


def test_parsing_only_wanted_rows_skips_malformed_unwanted_rows(tmp_path):
    # Streaming: rows nobody asked for are never parsed, so their bad values go unseen.
    path = tmp_path / "v.txt"
    path.write_text("a 1 2\nbroken x y\nb 3 4\n")
    vectors, _, info = read_vectors_for(path, {"b"})
    assert list(vectors) == ["b"]
    np.testing.assert_array_equal(vectors["b"], [3.0, 4.0])
    assert info["rows"] == 3


def test_npy_is_memory_mapped_not_loaded(tmp_path, monkeypatch):
    path, vocab = write_npy(tmp_path)
    modes = []
    real_load = np.load

    def spy(*args, **kwargs):
        modes.append(kwargs.get("mmap_mode"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(word_vectors.np, "load", spy)
    vectors, _, _ = read_vectors_for(path, {"dog"}, vocab_path=str(vocab))
    np.testing.assert_array_equal(vectors["dog"], VECTORS[3])
    assert modes and set(modes) == {"r"}


def test_duplicate_words_keep_the_first_row(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("dog 1 2\ncat 3 4\ndog 5 6\n")
    vectors, _, info = read_vectors_for(path, {"dog"})
    np.testing.assert_array_equal(vectors["dog"], [1.0, 2.0])
    assert info["duplicates"] == 1
    assert info["ranks"] == {"dog": 0}


def test_word_without_values_names_the_line(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("a 1 2\nb 3 4\nlonely\n")
    with pytest.raises(WordVectorsError, match=r"v\.txt: line 3: expected 'word v1 \.\.\. v2'"):
        read_vectors_for(path, {"a"})


def test_wrong_dimension_names_the_line_and_counts(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("2 2\na 1 2\nb 3 4 5\n")
    with pytest.raises(WordVectorsError, match=r"line 3: expected 2 values, got 3"):
        read_vectors_for(path, {"b"})


def test_values_that_are_not_numbers_name_the_line(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("a 1 2\nb 3 oops\n")
    with pytest.raises(WordVectorsError, match=r"line 2: values are not numbers"):
        read_vectors_for(path, {"b"})


def test_non_finite_values_are_rejected(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("a 1 2\nb nan 4\n")
    with pytest.raises(WordVectorsError, match=r"line 2: non-finite"):
        read_vectors_for(path, {"b"})


def test_truncated_binary_file_is_reported(tmp_path):
    path = write_word2vec_binary(tmp_path / "v.bin")
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    with pytest.raises(WordVectorsError, match=r"row 7 .*no complete '<word> <3 float32>'"):
        read_vectors_for(path, {"boot"})


def test_non_utf8_binary_word_falls_back_to_latin1_and_is_counted(tmp_path):
    words = [b"caf\xe9", b"cat"]
    path = write_word2vec_binary(tmp_path / "v.bin", words, VECTORS[:2])
    vectors, _, info = read_vectors_for(path, {"caf\xe9", "cat"})
    assert list(vectors) == ["café", "cat"]
    np.testing.assert_array_equal(vectors["café"], VECTORS[0])
    assert info["non_utf8_words"] == 1
    replaced, _, _ = read_vectors_for(path, {"caf\ufffd"}, unicode_errors="replace")
    assert list(replaced) == ["caf\ufffd"]
    with pytest.raises(WordVectorsError, match=r"byte 4 is not UTF-8"):
        read_vectors_for(path, {"cat"}, unicode_errors="strict")


def test_binary_file_without_bin_extension_is_detected_as_binary(tmp_path):
    path = write_word2vec_binary(tmp_path / "vectors.w2v")
    assert read_header(path).format == "word2vec_binary"


def test_read_top_words_stops_after_n_distinct_kept_words(tmp_path):
    path = write_glove(tmp_path / "v.txt")
    words, matrix, info = read_top_words(path, 3, keep=lambda w: w.islower())
    assert words == ["the", "cat", "dog"]
    np.testing.assert_array_equal(matrix, VECTORS[[0, 2, 3]])
    assert info["rows"] == 4  # stopped at "dog", the 4th row


def test_read_top_words_returns_fewer_when_the_file_is_short(tmp_path):
    path, vocab = write_npy(tmp_path)
    words, matrix, _ = read_top_words(path, 100, vocab_path=str(vocab))
    assert words == WORDS
    assert matrix.shape == (len(WORDS), 3)


@pytest.mark.parametrize("shard_bytes", [1, 7, 20, 10_000])
def test_text_shards_cover_each_row_exactly_once(tmp_path, shard_bytes):
    path = write_word2vec_text(tmp_path / "v.vec")
    header = read_header(path)
    seen = []
    for start, end in text_shards(header, shard_bytes):
        seen += [(pos, word) for _, pos, word, _ in scan_rows(header, bool, start=start, end=end)]
    assert [w for _, w in sorted(seen)] == WORDS
    assert len({pos for pos, _ in seen}) == len(WORDS)


def test_npy_vocabulary_of_wrong_length_is_rejected(tmp_path):
    path, vocab = write_npy(tmp_path)
    vocab.write_text("".join(w + "\n" for w in WORDS[:-1]))
    with pytest.raises(WordVectorsError, match=r"lists 6 words but .*m\.npy has 7 rows"):
        read_vectors_for(path, {"boot"}, vocab_path=str(vocab))


def test_npy_without_vocabulary_asks_for_it(tmp_path):
    path, _ = write_npy(tmp_path)
    with pytest.raises(WordVectorsError, match=r"also pass vocab_path"):
        read_vectors_for(path, {"cat"})


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(WordVectorsError, match=r"nope\.txt' does not exist .*vectors_path"):
        read_vectors_for(tmp_path / "nope.txt", {"cat"})


def test_undetectable_format_is_a_clear_error(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("hello world\nfoo bar\n")
    with pytest.raises(WordVectorsError, match=r"cannot detect the format"):
        read_header(path)


def test_explicit_glove_format_on_a_headered_file_is_rejected(tmp_path):
    path = write_word2vec_text(tmp_path / "v.txt")
    with pytest.raises(WordVectorsError, match=r"looks like a word2vec header"):
        read_header(path, "glove_text")


def test_unknown_format_name_is_rejected(tmp_path):
    path = write_glove(tmp_path / "v.txt")
    with pytest.raises(WordVectorsError, match=r"unknown vectors format 'bert'"):
        read_header(path, "bert")
