import numpy as np
import pytest

from devise_keras.label_embeddings import LabelEmbeddings, unit_normalize


def test_rows_are_unit_normalized():
    emb = LabelEmbeddings(["a", "b"], [[3.0, 4.0], [0.0, -2.0]])
    np.testing.assert_allclose(emb.vectors, [[0.6, 0.8], [0.0, -1.0]], rtol=1e-6)
    assert emb.vectors.dtype == np.float32
    assert emb.dim == 2 and len(emb) == 2


def test_save_load_round_trip_keeps_order_metadata_and_report(tmp_path):
    emb = LabelEmbeddings(
        ["golden retriever", "cat", "T-shirt/top"],
        np.arange(12, dtype=np.float32).reshape(3, 4) + 1,
        source="toy.txt",
        metadata={"format": "glove_text"},
        match_report=[{"label": "cat", "method": "exact"}],
    )
    emb.save(tmp_path)
    again = LabelEmbeddings.load(tmp_path)
    assert again.labels == ["golden retriever", "cat", "T-shirt/top"]
    np.testing.assert_array_equal(again.vectors, emb.vectors)
    assert again.source == "toy.txt"
    assert again.metadata == {"format": "glove_text"}
    assert again.match_report == [{"label": "cat", "method": "exact"}]


def test_subset_reorders_rows():
    emb = LabelEmbeddings(["a", "b", "c"], np.eye(3))
    sub = emb.subset(["c", "a"])
    assert sub.labels == ["c", "a"]
    np.testing.assert_array_equal(sub.vectors, [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(KeyError, match="labels without a vector: \\['z'\\]"):
        emb.subset(["z"])


@pytest.mark.parametrize(
    "vectors, message",
    [
        ([[1.0, np.nan]], "non-finite values in row\\(s\\) \\[0\\]"),
        ([[1.0, 0.0], [0.0, 0.0]], "all-zero row\\(s\\) \\[1\\]"),
        ([1.0, 2.0], "must be a 2-D"),
    ],
)
def test_bad_vectors_raise_clear_errors(vectors, message):
    with pytest.raises(ValueError, match=message):
        unit_normalize(np.asarray(vectors))


def test_label_count_mismatch_and_duplicates():
    with pytest.raises(ValueError, match="2 labels but 1 vector rows"):
        LabelEmbeddings(["a", "b"], [[1.0, 0.0]])
    with pytest.raises(ValueError, match="duplicate labels: \\['a'\\]"):
        LabelEmbeddings(["a", "a"], np.eye(2))


def test_load_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.txt is missing"):
        LabelEmbeddings.load(tmp_path)
