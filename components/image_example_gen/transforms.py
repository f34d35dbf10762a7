"""Pure Beam transforms of ImageExampleGen: list images, split, cap, check, encode.

Nothing here knows about TFX artifacts; the executor wires these into one Beam job and
the tests run them with `TestPipeline`. Only paths and small tuples travel until
`ReadAndCheckImage`, which reads one file at a time, so listing a million images needs
memory for the paths only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image, UnidentifiedImageError

from devise_keras import features
from devise_keras.class_split import stable_hash
from devise_keras.config import DataConfig

METRICS_NAMESPACE = "ImageExampleGen"

# Why an image was left out; the skip report and the counters use these names.
UNREADABLE = "unreadable"
EMPTY_FILE = "empty_file"
UNKNOWN_FORMAT = "unknown_format"
UNDECODABLE = "undecodable"
TOO_LARGE = "too_large"
TOO_SMALL = "too_small"
SKIP_REASONS = (UNREADABLE, EMPTY_FILE, UNKNOWN_FORMAT, UNDECODABLE, TOO_LARGE, TOO_SMALL)

# Encoded bytes kept as they are only when tf.io.decode_image (features.decode_images)
# decodes them to the right colours: CMYK JPEGs and palette BMPs it does not, so
# those (and formats it cannot read at all, e.g. TIFF/WebP) are re-encoded as PNG.
_KEEP_AS_IS = {"JPEG": {"L", "RGB"}, "PNG": None, "GIF": None, "BMP": {"RGB", "RGBA"}}

SKIPPED_TAG = "skipped"
_MANIFEST_SPLITS = ("", "train", "eval", "unseen")
# Columns of a manifest without a header line; later columns are ignored.
POSITIONAL_COLUMNS = ("path", "label", "split")
REQUIRED_COLUMNS = ("path", "label")


class ImageRef(NamedTuple):
    """One candidate image: path relative to the root, its label, an explicit split or "",
    and its style ("" when the manifest has no style column)."""

    path: str
    label: str
    split: str = ""
    style: str = ""


class ImageLimits(NamedTuple):
    """Image sizes ImageExampleGen accepts, checked from the header before decoding."""

    max_pixels: int = DataConfig.max_image_pixels
    min_side: int = 1


DEFAULT_LIMITS = ImageLimits()


class CheckedImage(NamedTuple):
    """Result of `check_image`: bytes to store, or None and the skip reason."""

    data: bytes | None
    reason: str | None = None
    reencoded: bool = False


def choose_split(
    ref: ImageRef,
    unseen: frozenset[str],
    eval_fraction: float,
    seed: int,
    eval_style: str = "",
) -> str:
    """Unseen classes go to "unseen"; seen images to train/eval.

    An explicit split in the manifest wins; else with `eval_style` the images of that
    style are "eval" and every other style "train" (flat evaluation on a style the
    model never saw); else a stable path hash puts `eval_fraction` of them in "eval".
    """
    if ref.label in unseen:
        return "unseen"
    if ref.split:
        return ref.split
    if eval_style:
        return "eval" if ref.style == eval_style else "train"
    bucket = stable_hash(seed, "split", ref.path) / 2.0**64
    return "eval" if bucket < eval_fraction else "train"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in next(csv.reader([line]))]


def is_manifest_header(line: str) -> bool:
    """A header line has cells `path` and `label` (any order, any case)."""
    cells = {cell.lower() for cell in _cells(line)} if line.strip() else set()
    return {"path", "label"} <= cells


def manifest_columns(header: str | None) -> tuple[str, ...]:
    """Column names from a header line (None or a data line: `path,label,split`).

    Raises ValueError when a header lacks a required column or names one twice.
    """
    if header is None or not is_manifest_header(header):
        return POSITIONAL_COLUMNS
    names = tuple(cell.lower() for cell in _cells(header))
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        raise ValueError(f"manifest header names column(s) {duplicates} more than once")
    return names


def read_manifest_columns(manifest: str) -> tuple[str, ...]:
    """The column names of a manifest file: its header's, else `path,label,split`."""
    with tf.io.gfile.GFile(manifest, "r") as f:
        for line in f:
            if line.strip():
                return manifest_columns(line)
    return POSITIONAL_COLUMNS


def parse_manifest_line(
    line: str, line_number: int = 0, columns: tuple[str, ...] = POSITIONAL_COLUMNS
) -> ImageRef | None:
    """Parses one manifest line; None for blank lines and the header.

    `columns` names the cells (from the header, `manifest_columns`): `path` and `label`
    are required, `split` (train/eval/unseen or empty) and `style` are read, any other
    column (e.g. the emoji set's `category`) is metadata for other tools. Without a
    header the columns are `path,label[,split]` and later cells are ignored.

    Raises ValueError naming the line for a row without a path or a label, or with a
    split other than train/eval/unseen.
    """
    if not line.strip() or is_manifest_header(line):
        return None
    row = _cells(line)
    where = f"manifest line {line_number}" if line_number else "manifest line"
    cells = dict(zip(columns, row, strict=False))
    if not cells.get("path") or not cells.get("label"):
        expected = ",".join(columns) if columns != POSITIONAL_COLUMNS else "path,label[,split]"
        raise ValueError(f"{where}: expected '{expected}', got {line.strip()!r}")
    split = cells.get("split", "").lower()
    if split not in _MANIFEST_SPLITS:
        raise ValueError(
            f"{where}: split must be one of train/eval/unseen (or empty), got {cells['split']!r}"
        )
    return ImageRef(
        path=cells["path"], label=cells["label"], split=split, style=cells.get("style", "")
    )


def check_image(
    data: bytes, image_size: int | None = None, limits: ImageLimits = DEFAULT_LIMITS
) -> CheckedImage:
    """Decodes `data` fully with PIL and returns the bytes to store or a skip reason.

    The size in the header is checked against `limits` first, so an oversized image
    is refused before anything is decoded. With `image_size`, the image is resized
    by `features.resize_pixels`, the very function serving uses, and stored as PNG
    (lossless), so a served image reaches the model with the training pixels;
    otherwise the original bytes are kept unless TensorFlow could not decode them
    faithfully.
    """
    if not data:
        return CheckedImage(None, EMPTY_FILE)
    try:
        image = Image.open(io.BytesIO(data))
        image_format = image.format
    except (UnidentifiedImageError, OSError, ValueError):
        return CheckedImage(None, UNKNOWN_FORMAT)
    width, height = image.size
    if width * height > limits.max_pixels:
        return CheckedImage(None, TOO_LARGE)
    if min(width, height) < limits.min_side:
        return CheckedImage(None, TOO_SMALL)
    try:
        # verify() finds truncated/corrupt files cheaply but leaves the image unusable,
        # so the full decode needs a fresh handle.
        image.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:  # PIL raises many types (OSError, SyntaxError, struct.error, ...)
        return CheckedImage(None, UNDECODABLE)
    modes = _KEEP_AS_IS.get(image_format, set())
    faithful = modes is None or image.mode in modes
    if image_size:
        # TensorFlow decodes what it decodes faithfully, exactly as serving will;
        # the rest (CMYK JPEG, WebP, ...) is converted by PIL first.
        if faithful:
            pixels = features.decode_image_uint8(tf.constant(data), image_size)
        else:
            rgb = np.asarray(image.convert("RGB"))
            pixels = features.resize_pixels(tf.constant(rgb), image_size)
        return CheckedImage(_png_bytes(Image.fromarray(pixels.numpy())), None, True)
    if faithful:
        return CheckedImage(data, None, False)
    return CheckedImage(_png_bytes(_to_png_mode(image)), None, True)


def _to_png_mode(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode == "LA":
        return image.convert("L")
    return image.convert("RGB")


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_example(path: str, label: str, label_id: int, data: bytes) -> tf.train.Example:
    """The tf.Example of one image, keyed as in `devise_keras.features`."""

    def bytes_feature(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    return tf.train.Example(
        features=tf.train.Features(
            feature={
                features.IMAGE_KEY: bytes_feature(data),
                features.LABEL_TEXT_KEY: bytes_feature(label.encode()),
                features.LABEL_ID_KEY: tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[label_id])
                ),
                features.FILENAME_KEY: bytes_feature(path.encode()),
            }
        )
    )


def _counter(name: str):
    return beam.metrics.Metrics.counter(METRICS_NAMESPACE, name)


class ListClassFolder(beam.DoFn):
    """Class name -> ImageRef for every file under `<root>/<class>/` (recursive).

    Hidden files (".name") are ignored; everything else is a candidate, so non-images
    show up in the skip report instead of vanishing silently.
    """

    def __init__(self, root: str):
        self._root = root

    def setup(self):
        self._listed = _counter("files_listed")

    def process(self, label: str):
        class_dir = os.path.join(self._root, label)
        paths = []
        for folder, _, files in tf.io.gfile.walk(class_dir):
            rel_folder = os.path.relpath(folder, self._root)
            paths.extend(os.path.join(rel_folder, f) for f in files if not f.startswith("."))
        self._listed.inc(len(paths))
        logging.info("ImageExampleGen: %d files in class %r", len(paths), label)
        for path in sorted(paths):
            yield ImageRef(path=path.replace(os.sep, "/"), label=label)


class ListImageDir(beam.PTransform):
    """ImageNet layout `<root>/<label>/<image>` -> PCollection[ImageRef] (one task per class)."""

    def __init__(self, root: str, classes: list[str]):
        super().__init__()
        self._root = root
        self._classes = list(classes)

    def expand(self, pipeline):
        return (
            pipeline
            | "Classes" >> beam.Create(self._classes)
            # Spread the per-class listings over workers before they fan out.
            | "Spread" >> beam.Reshuffle()
            | "List" >> beam.ParDo(ListClassFolder(self._root))
        )


class ReadManifest(beam.PTransform):
    """CSV `path,label[,split]`, or any columns named by a header -> PCollection[ImageRef].

    One row per line (quoted commas are fine, quoted newlines are not), so the file
    can be read in parallel; the header is read once, here.
    """

    def __init__(self, manifest: str):
        super().__init__()
        self._manifest = manifest

    def expand(self, pipeline):
        listed = _counter("files_listed")
        columns = read_manifest_columns(self._manifest)

        def parse(line):
            ref = parse_manifest_line(line, columns=columns)
            if ref is not None:
                listed.inc()
                yield ref

        return (
            pipeline
            | "ReadLines" >> beam.io.ReadFromText(self._manifest, strip_trailing_newlines=True)
            | "Parse" >> beam.FlatMap(parse)
        )


class CapPerClass(beam.PTransform):
    """Keeps the `max_per_class` images of each class with the smallest stable hashes.

    Deterministic, and a combiner holds only `max_per_class` (hash, ImageRef) pairs per
    class, never the images themselves.
    """

    def __init__(self, max_per_class: int, seed: int):
        super().__init__()
        self._max = max_per_class
        self._seed = seed

    def expand(self, refs):
        seed = self._seed
        return (
            refs
            | "KeyByClass" >> beam.Map(lambda r: (r.label, (stable_hash(seed, "cap", r.path), r)))
            | "SmallestHashes" >> beam.combiners.Top.SmallestPerKey(self._max)
            | "Unpack" >> beam.FlatMap(lambda kv: [ref for _, ref in kv[1]])
        )


class ReadAndCheckImage(beam.DoFn):
    """(ImageRef, split) -> (split, label, serialized tf.Example); bad files to "skipped".

    The skipped output carries (path, reason, label).
    """

    def __init__(
        self,
        root: str,
        label_ids: dict[str, int],
        image_size: int | None,
        limits: ImageLimits = DEFAULT_LIMITS,
    ):
        self._root = root
        self._label_ids = dict(label_ids)
        self._image_size = image_size
        self._limits = ImageLimits(*limits)

    def setup(self):
        self._written = _counter("images_written")
        self._reencoded = _counter("images_reencoded")
        self._skipped = {reason: _counter(f"skipped_{reason}") for reason in SKIP_REASONS}

    def process(self, element):
        ref, split = element
        try:
            with tf.io.gfile.GFile(os.path.join(self._root, ref.path), "rb") as f:
                data = f.read()
        except (tf.errors.OpError, OSError):
            result = CheckedImage(None, UNREADABLE)
        else:
            result = check_image(data, self._image_size, self._limits)
        if result.data is None:
            self._skipped[result.reason].inc()
            yield beam.pvalue.TaggedOutput(SKIPPED_TAG, (ref.path, result.reason, ref.label))
            return
        self._written.inc()
        if result.reencoded:
            self._reencoded.inc()
        example = make_example(ref.path, ref.label, self._label_ids[ref.label], result.data)
        yield split, ref.label, example.SerializeToString()


class GenerateExamples(beam.PTransform):
    """PCollection[ImageRef] -> {"examples", "skipped", "counts"}.

    - examples: (split, label, serialized tf.Example)
    - skipped: (path, reason, label)
    - counts: ((kind, label, detail), n) with kind "listed" (detail ""), "written"
      (detail = split) or "skipped" (detail = reason); small, one entry per class and kind.

    Args:
        root: folder the ImageRef paths are relative to.
        seen: seen class names; unseen: unseen class names (label ids follow
            sorted(seen) + sorted(unseen)).
        eval_fraction: share of each seen class's images hashed to "eval".
        seed: seed of the stable hashes.
        max_per_class: optional cap (smallest hashes kept, before the images are read).
        image_size: optional square size to re-encode images at (PNG).
        limits: the accepted image sizes (`ImageLimits`).
        eval_style: when set, seen images of this style go to "eval", the others to
            "train" (instead of the hash split).
    """

    def __init__(
        self,
        root: str,
        seen: list[str],
        unseen: list[str],
        eval_fraction: float,
        seed: int,
        max_per_class: int | None = None,
        image_size: int | None = None,
        limits: ImageLimits = DEFAULT_LIMITS,
        eval_style: str = "",
    ):
        super().__init__()
        self._root = root
        self._eval_style = eval_style
        self._vocabulary = sorted(seen) + sorted(unseen)
        self._unseen = frozenset(unseen)
        self._eval_fraction = eval_fraction
        self._seed = seed
        self._max_per_class = max_per_class
        self._image_size = image_size
        self._limits = limits

    def expand(self, refs):
        unseen, eval_fraction, seed = self._unseen, self._eval_fraction, self._seed
        eval_style = self._eval_style
        listed = refs | "CountListed" >> beam.Map(lambda r: ("listed", r.label, ""))
        if self._max_per_class:
            refs = refs | "Cap" >> CapPerClass(self._max_per_class, seed)
        label_ids = {label: i for i, label in enumerate(self._vocabulary)}
        checked = (
            refs
            | "Split"
            >> beam.Map(lambda r: (r, choose_split(r, unseen, eval_fraction, seed, eval_style)))
            # Fan the reads out over workers: listings arrive grouped by class.
            | "SpreadReads" >> beam.Reshuffle()
            | "ReadAndCheck"
            >> beam.ParDo(
                ReadAndCheckImage(self._root, label_ids, self._image_size, self._limits)
            ).with_outputs(SKIPPED_TAG, main="examples")
        )
        examples, skipped = checked.examples, checked[SKIPPED_TAG]
        counts = (
            (
                listed,
                examples | "CountWritten" >> beam.Map(lambda e: ("written", e[1], e[0])),
                skipped | "CountSkipped" >> beam.Map(lambda s: ("skipped", s[2], s[1])),
            )
            | "AllCounts" >> beam.Flatten()
            | "Count" >> beam.combiners.Count.PerElement()
        )
        return {"examples": examples, "skipped": skipped, "counts": counts}


def skip_report_line(skipped: tuple[str, str, str]) -> str:
    """(path, reason, label) -> one CSV line `path,reason` (quoted when needed)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(skipped[:2])
    return buffer.getvalue()


def counts_to_json(counts: list) -> str:
    """The combined counts as one JSON line: [[kind, label, detail, n], ...] sorted."""
    return json.dumps(sorted([*key, n] for key, n in counts))


# Records of one bucket are held together while the bucket is written: 1,024 keeps a
# bucket near 130 MB at ImageNet scale (1.2M images of ~110 KB).
MIX_BUCKETS = 1024


def mix_key(record: bytes) -> int:
    """A deterministic pseudo-random key of a serialized record."""
    return int.from_bytes(hashlib.blake2b(record, digest_size=8).digest(), "big")


class MixOrder(beam.PTransform):
    """Reorders records so that any run of them mixes the classes.

    Records arrive class by class (the listing order; a Reshuffle is only a fusion
    break on the DirectRunner, whose GroupByKey keeps first-seen order). Each record
    goes to a hash bucket, and each bucket is written in hash order, so every bucket
    is a random sample of all classes whatever order the runner emits buckets in.

    Args:
        buckets: number of hash buckets (fewer, larger buckets mix small data better).
    """

    def __init__(self, buckets: int = MIX_BUCKETS):
        super().__init__()
        self._buckets = buckets

    def expand(self, records):
        buckets = self._buckets
        return (
            records
            | "KeyByHash" >> beam.Map(lambda r: (mix_key(r) % buckets, r))
            | "Buckets" >> beam.GroupByKey()
            | "Emit" >> beam.FlatMap(lambda kv: sorted(kv[1], key=mix_key))
        )


class WriteOutputs(beam.PTransform):
    """Writes GenerateExamples' outputs: split TFRecords, the skip report, the counts.

    Split files are `<uri>/Split-<split>/data_tfrecord-*.gz` (TFX ExampleGen layout),
    the skip report one CSV `path,reason` with a header.
    """

    def __init__(self, uri: str, skip_report_path: str, counts_path: str, splits=features.SPLITS):
        super().__init__()
        self._uri = uri
        self._skip_report_path = skip_report_path
        self._counts_path = counts_path
        self._splits = tuple(splits)

    def expand(self, outputs):
        splits = self._splits
        parts = outputs["examples"] | "BySplit" >> beam.Partition(
            lambda kv, _: splits.index(kv[0]), len(splits)
        )
        for split, part in zip(splits, parts, strict=True):
            _ = (
                part
                | f"Records[{split}]" >> beam.Map(lambda e: e[2])
                # Records come out class by class (a Reshuffle is only a fusion break
                # on the DirectRunner), and a trainer's shuffle buffer cannot mix
                # class-sized blocks: write them in an order mixed by a content hash.
                | f"Mix[{split}]" >> MixOrder()
                | f"Write[{split}]"
                >> beam.io.WriteToTFRecord(
                    os.path.join(self._uri, f"Split-{split}", "data_tfrecord"),
                    file_name_suffix=".gz",
                )
            )
        _ = (
            outputs["skipped"]
            | "SkipLines" >> beam.Map(skip_report_line)
            | "WriteSkipReport"
            >> beam.io.WriteToText(
                self._skip_report_path,
                shard_name_template="",
                num_shards=1,
                header="path,reason",
            )
        )
        return (
            outputs["counts"]
            | "CountsList" >> beam.combiners.ToList()
            | "CountsJson" >> beam.Map(counts_to_json)
            | "WriteCounts"
            >> beam.io.WriteToText(self._counts_path, shard_name_template="", num_shards=1)
        )
