"""tf.data input pipeline: gzipped TFRecords of tf.Examples -> decoded image batches.

Images stay encoded in the records (STYLE.md rule 8); they are decoded and resized here,
in parallel, with `features.decode_images` semantics, so training, TFMA and serving all
see the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from devise_keras import features


def make_dataset(
    file_patterns: Sequence[str],
    *,
    image_size: int,
    batch_size: int,
    num_labels: int,
    label_vectors: np.ndarray | None = None,
    shuffle: bool = False,
    repeat: bool = False,
    seed: int = 0,
    shuffle_buffer: int = 16384,
    shuffle_buffer_bytes: int = 256 * 2**20,
    cache: bool = False,
    num_records: int | None = None,
) -> tf.data.Dataset:
    """Batches of (images, targets) for `model.fit` from TFRecord file patterns.

    Args:
        file_patterns: glob patterns of gzipped TFRecord files (TFX `Split-*/*`).
        image_size: square size images are resized to.
        batch_size: examples per batch.
        num_labels: labels the model scores; records whose label id is outside
            [0, num_labels) (e.g. unseen classes) raise, since they cannot be trained on.
        label_vectors: (num_labels, D) unit label vectors; when given, targets also hold
            "embedding" (the label's vector) for the L2/cosine losses.
        shuffle: shuffle files and records (training).
        repeat: repeat forever (training with steps_per_epoch).
        seed: shuffle seed.
        shuffle_buffer: at most this many elements in the shuffle buffer.
        shuffle_buffer_bytes: and at most about this many bytes: the element count is
            capped by the size of one element (the mean record size of the files, or
            one decoded uint8 image with `cache`), so memory stays bounded at any
            image size.
        cache: keep the decoded images in memory after the first pass (size x size x 3
            uint8 each: 2.4 KB at 28 px, 150 KB at 224 px), so later epochs skip the
            parse and decode. For data sets that fit in memory.
        num_records: records in the files, when known (ImageExampleGen's report), for
            the mean record size; without it the element cap stands in for it.

    Returns:
        A dataset of `(images, {"scores": label_ids[, "embedding": vectors]})`.
    """
    files = sorted({f for p in file_patterns for f in tf.io.gfile.glob(p)})
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {list(file_patterns)}")
    element_bytes = (
        image_size * image_size * 3
        if cache
        else _mean_record_bytes(files, num_records or shuffle_buffer)
    )
    buffer = shuffle_buffer_elements(shuffle_buffer, shuffle_buffer_bytes, element_bytes)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
        cycle_length=min(4, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not shuffle,
    )
    table = None if label_vectors is None else tf.constant(label_vectors, tf.float32)

    def parse(record):
        parsed = tf.io.parse_single_example(record, features.FEATURE_SPEC)
        label = parsed[features.LABEL_ID_KEY]
        tf.debugging.assert_less(
            label,
            tf.constant(num_labels, tf.int64),
            message=f"a record's label id is not among the {num_labels} trained labels "
            "(unseen-class records cannot be trained on)",
        )
        return features.decode_image_uint8(parsed[features.IMAGE_KEY], image_size), label

    def shuffled(ds):
        if shuffle:
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        return ds.repeat() if repeat else ds

    decode = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
    if cache:
        # Decode once, then shuffle the decoded images on every pass.
        ds = shuffled(ds.map(parse, **decode).cache())
    else:
        # Shuffle the small encoded records, decode after.
        ds = shuffled(ds).map(parse, **decode)

    def with_targets(images, labels):
        # uint8 up to here (4x smaller in the cache and the shuffle buffer).
        images = tf.cast(images, tf.float32) / 255.0
        targets = {"scores": labels}
        if table is not None:
            targets["embedding"] = tf.gather(table, labels)
        return images, targets

    return ds.batch(batch_size).map(with_targets).prefetch(tf.data.AUTOTUNE)


def shuffle_buffer_elements(max_elements: int, max_bytes: int, element_bytes: float) -> int:
    """Elements a shuffle buffer may hold: at most `max_elements` and about `max_bytes`.

    Example:
    >>> shuffle_buffer_elements(16384, 256 * 2**20, 224 * 224 * 3)  # 224 px uint8 images
    1783
    """
    return int(max(1, min(max_elements, max_bytes // max(1.0, element_bytes))))


def _mean_record_bytes(files: Sequence[str], num_records_hint: int) -> float:
    """Mean bytes per record from the file sizes (gzip barely shrinks encoded images).

    Counting the records would read every file: the count comes from the caller.
    """
    total = sum(tf.io.gfile.stat(f).length for f in files)
    return total / max(1, num_records_hint)


def count_records(file_patterns: Sequence[str]) -> int:
    """Number of records in gzipped TFRecord files (one pass, no decoding)."""
    files = sorted({f for p in file_patterns for f in tf.io.gfile.glob(p)})
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())
