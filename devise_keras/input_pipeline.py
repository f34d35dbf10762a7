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
    cache: bool = False,
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
        shuffle_buffer: records in the shuffle buffer (encoded, so cheap to hold).
        cache: keep the decoded images in memory after the first pass (size x size x 3
            float32 each: 9.4 KB at 28 px, 600 KB at 224 px), so later epochs skip the
            parse and decode. For data sets that fit in memory.

    Returns:
        A dataset of `(images, {"scores": label_ids[, "embedding": vectors]})`.
    """
    files = sorted({f for p in file_patterns for f in tf.io.gfile.glob(p)})
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {list(file_patterns)}")
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
        return features.decode_image(parsed[features.IMAGE_KEY], image_size), label

    def shuffled(ds):
        if shuffle:
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        return ds.repeat() if repeat else ds

    decode = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
    if cache:
        # Decode once, then shuffle the decoded images on every pass.
        ds = shuffled(ds.map(parse, **decode).cache())
    else:
        # Shuffle the small encoded records, decode after.
        ds = shuffled(ds).map(parse, **decode)

    def with_targets(images, labels):
        targets = {"scores": labels}
        if table is not None:
            targets["embedding"] = tf.gather(table, labels)
        return images, targets

    return ds.batch(batch_size).map(with_targets).prefetch(tf.data.AUTOTUNE)


def count_records(file_patterns: Sequence[str]) -> int:
    """Number of records in gzipped TFRecord files (one pass, no decoding)."""
    files = sorted({f for p in file_patterns for f in tf.io.gfile.glob(p)})
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())
