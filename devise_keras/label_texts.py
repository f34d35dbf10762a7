"""Label descriptions for a text encoder: ``label,text`` CSV -> the strings to embed.

DeViSE (Frome et al., NIPS 2013) embeds each label by the word vector of its name. A
sentence encoder (`devise_keras.text_encoder`) can embed more than a name: this module
reads a CSV of descriptions (columns ``label,text``), builds the string the encoder
sees for each label (``"<label>: <description>"``, or the label alone when it has no
row; `label_text`), and embeds them (`embed_label_texts`). LabelEmbeddingGen runs the
same steps in Beam; both build the artifact with `text_encoder_embeddings`, so its
metadata and match report have one home.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from devise_keras import storage
from devise_keras.label_embeddings import LabelEmbeddings

LABEL_COLUMN = "label"
TEXT_COLUMN = "text"
# metadata["kind"] of label embeddings made by a text encoder.
TEXT_ENCODER_KIND = "text_encoder"
_BOM = b"\xef\xbb\xbf"


class LabelTextsError(ValueError):
    """A label-texts CSV is unreadable, or its rows do not fit the class vocabulary."""


def read_label_texts(path: str, labels: Sequence[str]) -> dict[str, str]:
    """Reads a ``label,text`` CSV: {label: description} for labels of `labels`.

    Other columns are ignored; labels without a row are simply absent from the result.

    Args:
        path: the CSV (UTF-8, an optional byte-order mark; local or object store).
        labels: the class vocabulary every row's label must belong to.

    Raises:
        LabelTextsError: naming the file (and line and value) for a missing file, bytes
            that are not UTF-8 (with their byte offset), a missing ``label`` or ``text``
            column, labels outside `labels`, a label given twice, or an empty text.

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "texts.csv")
    >>> _ = open(path, "w").write("label,text\\napple,a red fruit\\n")
    >>> read_label_texts(path, ["apple", "pear"])
    {'apple': 'a red fruit'}
    """
    if not storage.isfile(path):
        raise LabelTextsError(f"label texts {path!r} does not exist (embeddings.label_texts)")
    data = storage.read_bytes(path)
    offset = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[offset:].decode("utf-8")
    except UnicodeDecodeError as error:
        at = offset + error.start
        line = data.count(b"\n", 0, at) + 1
        raise LabelTextsError(
            f"label texts {path}: byte {data[at:at + 1]!r} at offset {at} (line {line}) is "
            "not UTF-8; save the file as UTF-8"
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    missing = [c for c in (LABEL_COLUMN, TEXT_COLUMN) if c not in columns]
    if missing:
        raise LabelTextsError(
            f"label texts {path}: line 1 has no {' and no '.join(repr(c) for c in missing)} "
            f"column (header: {columns}); the CSV needs the columns label,text"
        )
    known = set(labels)
    texts: dict[str, str] = {}
    lines: dict[str, int] = {}
    unknown: list[str] = []
    for row in reader:
        line = reader.line_num
        label = (row.get(LABEL_COLUMN) or "").strip()
        value = row.get(TEXT_COLUMN) or ""
        if label not in known:
            unknown.append(f"{label!r} (line {line})")
            continue
        if label in texts:
            raise LabelTextsError(
                f"label texts {path}: line {line} gives label {label!r} again (first on "
                f"line {lines[label]}); keep one row per label"
            )
        if not value.strip():
            raise LabelTextsError(
                f"label texts {path}: line {line}: the text of label {label!r} is empty or "
                f"whitespace only ({value!r}); give a description or drop the row"
            )
        texts[label] = value.strip()
        lines[label] = line
    if unknown:
        raise LabelTextsError(
            f"label texts {path}: {len(unknown)} label(s) not in the class vocabulary: "
            f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}"
        )
    return texts


def label_text(name: str, description: str | None, max_chars: int) -> tuple[str, bool]:
    """The string the encoder embeds for one label, and whether it was truncated.

    ``"<name>: <description>"``, or `name` alone without a description; cut to its
    first `max_chars` characters.

    Example:
    >>> label_text("apple", "a red fruit", 2000)
    ('apple: a red fruit', False)
    >>> label_text("apple", "a red fruit", 9)
    ('apple: a ', True)
    >>> label_text("pear", None, 2000)
    ('pear', False)
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    text = f"{name}: {description}" if description else name
    if len(text) > max_chars:
        return text[:max_chars], True
    return text, False


def label_text_list(
    labels: Sequence[str], descriptions: Mapping[str, str], max_chars: int
) -> tuple[list[str], int]:
    """`label_text` of every label, in order, and how many were truncated."""
    built = [label_text(label, descriptions.get(label), max_chars) for label in labels]
    return [text for text, _ in built], sum(truncated for _, truncated in built)


def text_encoder_embeddings(
    labels: Sequence[str],
    texts: Sequence[str],
    vectors: np.ndarray,
    *,
    text_encoder: str,
    label_texts_path: str = "",
    truncated_texts: int = 0,
    metadata: Mapping[str, Any] | None = None,
) -> LabelEmbeddings:
    """The LabelEmbeddings of encoded label texts, with their metadata and match report.

    Args:
        labels: the labels, in class-vocabulary order.
        texts: the string encoded for each label (`label_text_list`).
        vectors: (len(labels), D) encoder outputs (unit-normalized here).
        text_encoder: the handle as configured (``metadata["text_encoder"]``: apps
            read it to bundle the encoder).
        label_texts_path: the descriptions CSV, or "".
        truncated_texts: how many texts were cut to the character limit.
        metadata: further metadata entries.
    """
    meta = {
        **(metadata or {}),
        "kind": TEXT_ENCODER_KIND,
        "text_encoder": text_encoder,
        "label_texts_path": label_texts_path,
        "truncated_texts": int(truncated_texts),
        "match_methods": {TEXT_ENCODER_KIND: len(labels)},
    }
    report = [
        {"label": label, "method": TEXT_ENCODER_KIND, "text": text}
        for label, text in zip(labels, texts, strict=True)
    ]
    return LabelEmbeddings(list(labels), vectors, text_encoder, meta, report)


def embed_label_texts(
    labels: Sequence[str],
    texts: Mapping[str, str],
    encoder: Any,
    max_chars: int = 2000,
    *,
    batch_size: int = 128,
    label_texts_path: str = "",
) -> LabelEmbeddings:
    """Embeds every label's text with a text encoder, outside Beam.

    Args:
        labels: the labels, in the order of the output rows.
        texts: {label: description} (`read_label_texts`); labels without one are
            embedded by their name alone.
        encoder: a `devise_keras.text_encoder.TextEncoder` (`load_text_encoder`).
        max_chars: longer texts are truncated; the count is ``metadata["truncated_texts"]``.
        batch_size: texts per encoder call.
        label_texts_path: recorded in the metadata.

    Example::

        encoder = load_text_encoder("https://tfhub.dev/google/universal-sentence-encoder/4")
        emb = embed_label_texts(["apple", "pear"], {"apple": "a red fruit"}, encoder)
        emb.match_report[0]["text"]  # 'apple: a red fruit'
    """
    strings, truncated = label_text_list(labels, texts, max_chars)
    vectors = encoder.encode(strings, batch_size=batch_size)
    return text_encoder_embeddings(
        labels,
        strings,
        vectors,
        text_encoder=encoder.handle,
        label_texts_path=label_texts_path,
        truncated_texts=truncated,
    )
