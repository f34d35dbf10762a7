"""Label texts: reading the label,text CSV, building the encoded strings, embedding them."""

from __future__ import annotations

import numpy as np
import pytest

from devise_keras.label_texts import (
    LabelTextsError,
    embed_label_texts,
    label_text,
    label_text_list,
    read_label_texts,
)
from devise_keras.text_encoder import load_text_encoder
from tests.text_encoder_testutil import write_bag_of_words_encoder

LABELS = ["apple", "sky", "zebra"]


def write_csv(tmp_path, content: bytes | str, name="texts.csv"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def test_read_label_texts_keeps_known_rows_strips_and_ignores_extra_columns(tmp_path):
    path = write_csv(
        tmp_path,
        '\ufefflabel,source,text\napple,wiki," a red fruit "\nsky,x,"blue, above us"\n',
    )
    assert read_label_texts(path, LABELS) == {"apple": "a red fruit", "sky": "blue, above us"}


def test_read_label_texts_names_unknown_labels_and_their_lines(tmp_path):
    path = write_csv(tmp_path, "label,text\napple,fruit\npear,fruit\nkiwi,fruit\n")
    with pytest.raises(LabelTextsError) as info:
        read_label_texts(path, LABELS)
    message = str(info.value)
    assert path in message
    assert "2 label(s) not in the class vocabulary: 'pear' (line 3), 'kiwi' (line 4)" in message


def test_read_label_texts_rejects_a_duplicate_label_naming_both_lines(tmp_path):
    path = write_csv(tmp_path, "label,text\napple,fruit\nsky,blue\napple,red\n")
    with pytest.raises(
        LabelTextsError, match=r"line 4 gives label 'apple' again \(first on line 2"
    ):
        read_label_texts(path, LABELS)


@pytest.mark.parametrize(
    "header, missing", [("label,description", "'text'"), ("name,text", "'label'")]
)
def test_read_label_texts_names_a_missing_column(tmp_path, header, missing):
    path = write_csv(tmp_path, f"{header}\napple,fruit\n")
    with pytest.raises(LabelTextsError, match=rf"line 1 has no {missing} column"):
        read_label_texts(path, LABELS)


def test_read_label_texts_names_the_offset_of_non_utf8_bytes(tmp_path):
    # "label,text\n" is 11 bytes, "apple,caf" 9 more: the latin-1 é is byte 20, line 2.
    path = write_csv(tmp_path, b"label,text\napple,caf\xe9\n")
    with pytest.raises(
        LabelTextsError, match=r"byte b'\\xe9' at offset 20 \(line 2\) is not UTF-8"
    ):
        read_label_texts(path, LABELS)


@pytest.mark.parametrize("text", ['""', '"   "', '" \t "'])
def test_read_label_texts_rejects_an_empty_or_blank_text(tmp_path, text):
    path = write_csv(tmp_path, f"label,text\nsky,blue\napple,{text}\n")
    with pytest.raises(LabelTextsError, match=r"line 3: the text of label 'apple' is empty"):
        read_label_texts(path, LABELS)


def test_read_label_texts_names_a_missing_file(tmp_path):
    with pytest.raises(LabelTextsError, match=r"nope\.csv' does not exist"):
        read_label_texts(str(tmp_path / "nope.csv"), LABELS)


def test_label_text_joins_name_and_description_and_truncates():
    assert label_text("apple", "a red fruit", 2000) == ("apple: a red fruit", False)
    assert label_text("apple", None, 2000) == ("apple", False)
    assert label_text("apple", "a red fruit", 5) == ("apple", True)
    texts, truncated = label_text_list(LABELS, {"apple": "x" * 100_000}, 2000)
    assert [len(t) for t in texts] == [2000, 3, 5] and truncated == 1
    with pytest.raises(ValueError, match="max_chars must be >= 1"):
        label_text("apple", "", 0)


def test_embed_label_texts_gives_the_unit_mean_of_the_known_words(tmp_path):
    handle = write_bag_of_words_encoder(
        str(tmp_path / "enc"), {"red": [1, 0, 0], "fruit": [0, 1, 0], "sky": [0, 0, 1]}
    )
    encoder = load_text_encoder(handle)
    emb = embed_label_texts(LABELS, {"apple": "red fruit"}, encoder, 2000, batch_size=2)
    s = 1 / np.sqrt(2)
    t = 1 / np.sqrt(3)
    # "apple: red fruit" -> mean(red, fruit); "sky" -> sky; "zebra" -> the unknown (1, 1, 1).
    np.testing.assert_allclose(emb.vectors, [[s, s, 0], [0, 0, 1], [t, t, t]], rtol=1e-6)
    assert emb.labels == LABELS
    assert emb.metadata["kind"] == "text_encoder"
    assert emb.metadata["text_encoder"] == handle
    assert emb.metadata["truncated_texts"] == 0
    assert emb.match_report[0] == {
        "label": "apple",
        "method": "text_encoder",
        "text": "apple: red fruit",
    }
