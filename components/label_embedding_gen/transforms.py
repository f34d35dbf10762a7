"""Pure Beam transforms of LabelEmbeddingGen: a pass over a vectors file, or a text encoder.

`ReadWantedVectors` splits a text vectors file (GloVe, word2vec text, fastText) into
byte ranges, scans each range in a DoFn keeping only the wanted rows (and the first
N distinct words, for the open vocabulary), and combines the shard results globally:
the first occurrence of each word wins, ordered by byte offset, so the result is the
same for any shard count. Binary word2vec files (no reliable row delimiter) and
`.npy` matrices are scanned by one DoFn, still streaming.

`EncodeTexts` embeds the label texts with a text encoder: the (index, text) items are
batched (`beam.BatchElements`) and a DoFn that loads the encoder once per worker in
`setup()` encodes each batch; `WriteEncodedTexts` collects the rows into one matrix in
index order.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable, Iterable

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from devise_keras.text_encoder import load_text_encoder
from devise_keras.word_vectors import VectorFileHeader, scan_rows, text_shards

DEFAULT_SHARD_BYTES = 64 << 20


def is_nameable_word(word: str) -> bool:
    """Open-vocabulary filter: a label needs a letter (drops ``,``, ``1990``, ``--``)."""
    return any(c.isalpha() for c in word)


@dataclasses.dataclass
class ScanResult:
    """What one pass over (part of) a vectors file found.

    Args:
        found: wanted word -> (position, vector); position orders rows by file position.
        top: the first distinct words that pass the open-vocabulary filter, as
            (position, word, vector), sorted by position.
        rows: rows scanned.
        non_utf8_words: words decoded with the latin-1 fallback.
    """

    found: dict[str, tuple[int, np.ndarray]] = dataclasses.field(default_factory=dict)
    top: list[tuple[int, str, np.ndarray]] = dataclasses.field(default_factory=list)
    rows: int = 0
    non_utf8_words: int = 0


class ScanShardFn(beam.DoFn):
    """Scans one range of a vectors file; emits one `ScanResult`.

    Args:
        header: the file (from `devise_keras.word_vectors.read_header`).
        exact: words wanted as they are.
        casefolded: case-folded forms; a word is wanted when its casefold is here.
        top_n: also collect the first `top_n` distinct words passing `top_filter`.
        top_filter: open-vocabulary word filter.
    """

    def __init__(
        self,
        header: VectorFileHeader,
        exact: Iterable[str],
        casefolded: Iterable[str],
        top_n: int = 0,
        top_filter: Callable[[str], bool] = is_nameable_word,
    ):
        super().__init__()
        self._header = header
        self._exact = frozenset(exact)
        self._casefolded = frozenset(casefolded)
        self._top_n = top_n
        self._top_filter = top_filter

    def process(self, shard: tuple[int, int]):
        start, end = shard
        exact, casefolded, top_n, top_filter = (
            self._exact,
            self._casefolded,
            self._top_n,
            self._top_filter,
        )
        result = ScanResult()
        top_seen: set[str] = set()

        def wanted(word: str) -> bool:
            return word in exact or word.casefold() in casefolded

        def want(word: str) -> bool:
            if wanted(word):
                return True
            return len(top_seen) < top_n and word not in top_seen and top_filter(word)

        stats: dict[str, int] = {}
        for _, position, word, vector in scan_rows(
            self._header, want, start=start, end=end, stats=stats
        ):
            if wanted(word) and word not in result.found:
                result.found[word] = (position, vector)
            if len(top_seen) < top_n and word not in top_seen and top_filter(word):
                top_seen.add(word)
                result.top.append((position, word, vector))
        result.rows = stats["rows"]
        result.non_utf8_words = stats["non_utf8_words"]
        yield result


class MergeScanResults(beam.CombineFn):
    """Merges shard results: first occurrence of a word wins; keeps the first N top words."""

    def __init__(self, top_n: int = 0):
        super().__init__()
        self._top_n = top_n

    def create_accumulator(self) -> ScanResult:
        return ScanResult()

    def add_input(self, accumulator: ScanResult, result: ScanResult) -> ScanResult:
        return self.merge_accumulators([accumulator, result])

    def merge_accumulators(self, accumulators: Iterable[ScanResult]) -> ScanResult:
        merged = ScanResult()
        top: list[tuple[int, str, np.ndarray]] = []
        for acc in accumulators:
            for word, (position, vector) in acc.found.items():
                if word not in merged.found or position < merged.found[word][0]:
                    merged.found[word] = (position, vector)
            top.extend(acc.top)
            merged.rows += acc.rows
            merged.non_utf8_words += acc.non_utf8_words
        merged.top = _first_distinct(top, self._top_n)
        return merged

    def extract_output(self, accumulator: ScanResult) -> ScanResult:
        return accumulator


def _first_distinct(
    rows: list[tuple[int, str, np.ndarray]], n: int
) -> list[tuple[int, str, np.ndarray]]:
    out, seen = [], set()
    for row in sorted(rows, key=lambda r: r[0]):
        if row[1] not in seen:
            seen.add(row[1])
            out.append(row)
            if len(out) >= n:
                break
    return out


class ReadWantedVectors(beam.PTransform):
    """Pipeline root -> a single `ScanResult` with the wanted rows of a vectors file.

    Args:
        header: the file (from `devise_keras.word_vectors.read_header`).
        exact: words wanted as they are.
        casefolded: case-folded forms wanted in any case.
        top_n: also collect the N most frequent distinct (nameable) words.
        shard_bytes: target byte size of the ranges of a text file.
    """

    def __init__(
        self,
        header: VectorFileHeader,
        exact: Iterable[str],
        casefolded: Iterable[str] = (),
        top_n: int = 0,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
    ):
        super().__init__()
        self._header = header
        self._exact = sorted(exact)
        self._casefolded = sorted(casefolded)
        self._top_n = top_n
        self._shard_bytes = shard_bytes

    def expand(self, root):
        shards = text_shards(self._header, self._shard_bytes)
        return (
            root
            | "Shards" >> beam.Create(shards)
            # Reshuffle so a runner may scan the shards in parallel.
            | "Spread" >> beam.Reshuffle()
            | "Scan"
            >> beam.ParDo(ScanShardFn(self._header, self._exact, self._casefolded, self._top_n))
            | "Merge" >> beam.CombineGlobally(MergeScanResults(self._top_n))
        )


class WriteScanResult(beam.PTransform):
    """Writes the single `ScanResult` to `path` (npz; any Beam filesystem)."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, results):
        return results | "Write" >> beam.Map(write_scan_result, self._path)


def write_scan_result(result: ScanResult, path: str) -> str:
    found = sorted(result.found.items(), key=lambda kv: kv[1][0])
    dim_of = [v for _, (_, v) in found] + [v for _, _, v in result.top]
    dim = dim_of[0].shape[0] if dim_of else 0
    buffer = io.BytesIO()
    np.savez(
        buffer,
        found_words=np.array([w for w, _ in found], dtype=np.str_),
        found_positions=np.array([p for _, (p, _) in found], dtype=np.int64),
        found_vectors=_stack([v for _, (_, v) in found], dim),
        top_words=np.array([w for _, w, _ in result.top], dtype=np.str_),
        top_positions=np.array([p for p, _, _ in result.top], dtype=np.int64),
        top_vectors=_stack([v for _, _, v in result.top], dim),
        stats=np.array(json.dumps({"rows": result.rows, "non_utf8_words": result.non_utf8_words})),
    )
    with FileSystems.create(path) as f:
        f.write(buffer.getvalue())
    return path


def read_scan_result(path: str) -> ScanResult:
    with FileSystems.open(path) as f:
        data = np.load(io.BytesIO(f.read()))
    stats = json.loads(str(data["stats"]))
    found = {
        str(w): (int(p), v)
        for w, p, v in zip(
            data["found_words"], data["found_positions"], data["found_vectors"], strict=True
        )
    }
    top = [
        (int(p), str(w), v)
        for w, p, v in zip(
            data["top_words"], data["top_positions"], data["top_vectors"], strict=True
        )
    ]
    return ScanResult(found, top, stats["rows"], stats["non_utf8_words"])


def _stack(vectors: list[np.ndarray], dim: int) -> np.ndarray:
    return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)


# ------------------------------------------------------------------ text encoder


class EncodeTextBatchFn(beam.DoFn):
    """Encodes a batch of (index, text) items; emits (indices, (b, D) unit vectors).

    The encoder is loaded once per DoFn instance (per worker), in `setup`, by handle:
    a loaded TensorFlow object cannot be pickled to the workers.

    Args:
        handle: the text encoder's TF-Hub handle or SavedModel path.
    """

    def __init__(self, handle: str):
        super().__init__()
        self._handle = handle
        self._encoder = None

    def setup(self):
        self._encoder = load_text_encoder(self._handle)

    def process(self, batch: list[tuple[int, str]]):
        indices = np.array([index for index, _ in batch], np.int64)
        vectors = self._encoder.encode([text for _, text in batch], batch_size=len(batch))
        yield indices, vectors


class EncodeTexts(beam.PTransform):
    """Pipeline root -> (indices, vectors) batches encoding `texts` with a text encoder.

    Args:
        handle: the encoder's TF-Hub handle or SavedModel path.
        texts: the strings; item i is encoded as row i.
        batch_size: at most this many texts per encoder call.
    """

    def __init__(self, handle: str, texts: list[str], batch_size: int):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._handle = handle
        self._texts = list(texts)
        self._batch_size = batch_size

    def expand(self, root):
        return (
            root
            | "Texts" >> beam.Create(list(enumerate(self._texts)))
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self._batch_size)
            | "Encode" >> beam.ParDo(EncodeTextBatchFn(self._handle))
        )


class WriteEncodedTexts(beam.PTransform):
    """Collects (indices, vectors) batches into one (count, D) .npy at `path`."""

    def __init__(self, path: str, count: int):
        super().__init__()
        self._path = path
        self._count = count

    def expand(self, batches):
        return (
            batches
            | "Collect" >> beam.combiners.ToList()
            | "Write" >> beam.Map(write_encoded_texts, self._path, self._count)
        )


def write_encoded_texts(batches: list[tuple[np.ndarray, np.ndarray]], path: str, count: int) -> str:
    """Writes the rows of `batches` in index order; each of 0..count-1 exactly once."""
    indices = np.concatenate([i for i, _ in batches]) if batches else np.zeros(0, np.int64)
    if sorted(indices.tolist()) != list(range(count)):
        raise ValueError(f"encoded rows {sorted(indices.tolist())[:10]} are not 0..{count - 1}")
    matrix = np.concatenate([v for _, v in batches]).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, matrix[np.argsort(indices)])
    with FileSystems.create(path) as f:
        f.write(buffer.getvalue())
    return path


def read_encoded_texts(path: str) -> np.ndarray:
    with FileSystems.open(path) as f:
        return np.load(io.BytesIO(f.read()))
