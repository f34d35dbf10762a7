"""Beam transforms of CorpusGen: read documents, count words, generate skip-gram pairs.

Everything here is per document or a combiner, so a runner spreads the corpus over its
workers; no step holds the corpus in one process. The vocabulary (words with
``count >= min_count``; for a Wikipedia-sized corpus a few million entries) is read by
each pair-generation worker from the ``vocab.tsv`` the driver wrote between the two
jobs, as word2vec C holds it in memory too.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes

from devise_keras import skipgram_corpus as sg
from devise_keras.config import DOCUMENT_PER

NON_UTF8 = "non_utf8"
_TOKENIZE_BATCH = 256


def _decode(element: tuple[str, bytes]):
    path, data = element
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        yield beam.pvalue.TaggedOutput(NON_UTF8, path)
        return
    text = text.rstrip("\r")
    if text.strip():
        yield text


def _read_whole_file(readable) -> tuple[str, bytes]:
    with readable.open(compression_type=CompressionTypes.AUTO) as f:
        return readable.metadata.path, f.read()


@beam.ptransform_fn
def ReadDocuments(pipeline, patterns: list[str], document_per: str):  # noqa: N802
    """Text documents of the files matching `patterns` (gzip by ``.gz`` suffix).

    ``document_per="line"``: each non-blank line is a document; ``"file"``: each file.
    Returns a `DoOutputsTuple`: the main output holds the decoded documents (str),
    ``non_utf8`` the path of every line (or file) that is not valid UTF-8 (skipped).
    """
    if document_per not in DOCUMENT_PER:
        raise ValueError(f"document_per must be one of {DOCUMENT_PER}, got {document_per!r}")
    if document_per == "line":
        reads = [
            pipeline
            | f"ReadLines{i}"
            >> beam.io.ReadFromTextWithFilename(pattern, coder=beam.coders.BytesCoder())
            for i, pattern in enumerate(patterns)
        ]
        raw = reads | "FlattenFiles" >> beam.Flatten()
    else:
        raw = (
            pipeline
            | "Patterns" >> beam.Create(patterns)
            | "Match" >> fileio.MatchAll()
            | "Open" >> fileio.ReadMatches()
            | "ReadFile" >> beam.Map(_read_whole_file)
        )
    return raw | "DecodeUtf8" >> beam.FlatMap(_decode).with_outputs(NON_UTF8, main="documents")


class _TokenizeBatch(beam.DoFn):
    """(text, words) per document; tensorflow-text runs on batches of documents."""

    def process(self, texts: list[str]):
        from devise_keras.label_matching import text_words

        yield from zip(texts, text_words(texts), strict=True)


@beam.ptransform_fn
def Tokenize(documents):  # noqa: N802
    """(text, words) per document, words as label matching normalises them."""
    return (
        documents
        | "Batch" >> beam.BatchElements(min_batch_size=8, max_batch_size=_TOKENIZE_BATCH)
        | "TextWords" >> beam.ParDo(_TokenizeBatch())
    )


def _batch_counts(batch: list[tuple[str, list[str]]]):
    counts = collections.Counter()
    for _, words in batch:
        counts.update(words)
    return counts.items()


class _CorpusSummary(beam.CombineFn):
    """Documents, tokens and the documents with no word, over the whole corpus."""

    def create_accumulator(self):
        return [0, 0, 0]

    def add_input(self, acc, element):
        words = element[1]
        acc[0] += 1
        acc[1] += len(words)
        acc[2] += not words
        return acc

    def merge_accumulators(self, accs):
        return [sum(a[i] for a in accs) for i in range(3)]

    def extract_output(self, acc):
        return {"documents": acc[0], "tokens": acc[1], "documents_without_words": acc[2]}


class _CountSummary(beam.CombineFn):
    """Distinct words, the largest count, and the words reaching min_count."""

    def __init__(self, min_count: int):
        self._min_count = min_count

    def create_accumulator(self):
        return [0, 0, 0, 0]

    def add_input(self, acc, word_count):
        count = word_count[1]
        acc[0] += 1
        acc[1] = max(acc[1], count)
        if count >= self._min_count:
            acc[2] += 1
            acc[3] += count
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        return [
            sum(a[0] for a in accs),
            max(a[1] for a in accs),
            sum(a[2] for a in accs),
            sum(a[3] for a in accs),
        ]

    def extract_output(self, acc):
        return {
            "distinct_words": acc[0],
            "max_count": acc[1],
            "vocabulary_size": acc[2],
            "train_words": acc[3],
        }


def _merge_summaries(main: dict, counts: dict, bad: list[tuple[str, int]]) -> str:
    non_utf8 = dict(sorted(bad))
    return json.dumps(
        {**main, **counts, "non_utf8_files": non_utf8, "non_utf8_skipped": sum(non_utf8.values())},
        sort_keys=True,
    )


@beam.ptransform_fn
def CountWords(pipeline, patterns: list[str], document_per: str, min_count: int, out_dir: str):  # noqa: N802
    """Job 1: word counts ``>= min_count`` (``counts-*`` shards, word<TAB>count) and a
    summary (``summary.json``: documents, tokens, distinct words, max count, non-UTF-8
    skips per file) under `out_dir`."""
    read = pipeline | "Read" >> ReadDocuments(patterns, document_per)
    tokenized = read.documents | "Tokenize" >> Tokenize()
    counts = (
        tokenized
        | "BatchForCounts" >> beam.BatchElements(min_batch_size=64, max_batch_size=1024)
        | "CountBatch" >> beam.FlatMap(_batch_counts)
        | "SumCounts" >> beam.CombinePerKey(sum)
    )
    _ = (
        counts
        | "KeepFrequent" >> beam.Filter(lambda wc: wc[1] >= min_count)
        | "FormatCounts" >> beam.MapTuple(lambda w, c: f"{w}\t{c}")
        | "WriteCounts" >> beam.io.WriteToText(os.path.join(out_dir, "counts"))
    )
    main = tokenized | "Summarize" >> beam.CombineGlobally(_CorpusSummary())
    count_summary = counts | "SummarizeCounts" >> beam.CombineGlobally(_CountSummary(min_count))
    bad = (
        read[NON_UTF8]
        | "CountNonUtf8" >> beam.combiners.Count.PerElement()
        | "NonUtf8List" >> beam.combiners.ToList()
    )
    return (
        main
        | "MergeSummaries"
        >> beam.Map(
            _merge_summaries,
            beam.pvalue.AsSingleton(count_summary),
            beam.pvalue.AsSingleton(bad),
        )
        | "WriteSummary"
        >> beam.io.WriteToText(os.path.join(out_dir, "summary.json"), shard_name_template="")
    )


class _DocumentPairs(beam.DoFn):
    """Serialized pair records of one document (`skipgram_corpus.document_pairs`)."""

    def __init__(self, corpus_dir: str, sample: float, window: int, seed: int):
        self._corpus_dir = corpus_dir
        self._sample = sample
        self._window = window
        self._seed = seed
        self._pairs = beam.metrics.Metrics.counter("corpus_gen", "pairs")

    def setup(self):
        vocabulary = sg.read_vocabulary(self._corpus_dir)
        self._ids = {w: i for i, (w, _) in enumerate(vocabulary)}
        counts = np.array([c for _, c in vocabulary], dtype=np.int64)
        self._keep = sg.keep_probabilities(counts, self._sample)

    def process(self, element: tuple[str, list[str]]):
        text, words = element
        pairs = sg.document_pairs(text, words, self._ids, self._keep, self._window, self._seed)
        if len(pairs):
            self._pairs.inc(len(pairs))
            yield beam.pvalue.TaggedOutput("count", len(pairs))
            yield from sg.pair_records(pairs)


@beam.ptransform_fn
def GeneratePairs(  # noqa: N802
    pipeline,
    patterns: list[str],
    document_per: str,
    corpus_dir: str,
    params: dict[str, Any],
):
    """Job 2: (center, context) pair records in ``<corpus_dir>/pairs/pairs-*`` TFRecords
    and ``<corpus_dir>/_pairs/count.json`` (the number of pairs)."""
    read = pipeline | "Read" >> ReadDocuments(patterns, document_per)
    tokenized = read.documents | "Tokenize" >> Tokenize()
    generated = tokenized | "Pairs" >> beam.ParDo(
        _DocumentPairs(corpus_dir, params["sample"], params["window"], params["seed"])
    ).with_outputs("count", main="records")
    _ = (
        generated.records
        # Spreads each document's records over the shards, so reading shards in
        # parallel mixes documents.
        | "Reshuffle" >> beam.Reshuffle()
        | "WritePairs"
        >> beam.io.WriteToTFRecord(
            os.path.join(corpus_dir, sg.PAIRS_DIR, sg.PAIRS_PREFIX),
            num_shards=params["num_shards"],
        )
    )
    return (
        generated.count
        | "SumPairs" >> beam.CombineGlobally(sum)
        | "FormatCount" >> beam.Map(lambda n: json.dumps({"pairs": n}))
        | "WriteCount"
        >> beam.io.WriteToText(
            os.path.join(corpus_dir, "_pairs", "count.json"), shard_name_template=""
        )
    )
