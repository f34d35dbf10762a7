"""The Trainer's input pipeline: TFRecords of encoded images -> decoded batches."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from devise_keras import features, input_pipeline


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _record(pixels: np.ndarray, label: int) -> bytes:
    feature = {
        features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[_png(pixels)])),
        features.LABEL_TEXT_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"])),
        features.LABEL_ID_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture
def records(tmp_path):
    """6 grey 4x4 images; image i has every pixel = 40 * i, label i % 3."""
    folder = tmp_path / "Split-train"
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / "data-0.gz"), options="GZIP") as writer:
        for i in range(6):
            writer.write(_record(np.full((4, 4), 40 * i, np.uint8), i % 3))
    return str(folder / "*")


VECTORS = np.eye(3, 5, dtype=np.float32)


def test_batches_hold_decoded_pixels_labels_and_label_vectors(records):
    ds = input_pipeline.make_dataset(
        [records], image_size=4, batch_size=4, num_labels=3, label_vectors=VECTORS
    )
    batches = list(ds)
    assert [b[0].shape for b in batches] == [(4, 4, 4, 3), (2, 4, 4, 3)]
    images = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1]["scores"].numpy() for b in batches])
    # Not shuffled: file order. Grey becomes 3 equal channels, scaled to [0, 1].
    np.testing.assert_allclose(images[:, 0, 0, 0], [40 * i / 255 for i in range(6)], rtol=1e-6)
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2])
    embeddings = np.concatenate([b[1]["embedding"].numpy() for b in batches])
    np.testing.assert_array_equal(embeddings, VECTORS[labels])


def test_images_are_resized_to_the_model_size(records):
    ds = input_pipeline.make_dataset([records], image_size=8, batch_size=6, num_labels=3)
    images, targets = next(iter(ds))
    assert images.shape == (6, 8, 8, 3)
    assert set(targets) == {"scores"}  # no label vectors, no embedding target
    np.testing.assert_allclose(images[5].numpy(), 200 / 255, rtol=1e-5)  # flat stays flat


def test_cached_and_shuffled_passes_cover_every_record_once(records):
    ds = input_pipeline.make_dataset(
        [records], image_size=4, batch_size=6, num_labels=3, shuffle=True, cache=True, seed=1
    )
    for _ in range(2):  # the second pass reads the cache
        images, _ = next(iter(ds))
        assert sorted(np.round(images[:, 0, 0, 0].numpy() * 255)) == [0, 40, 80, 120, 160, 200]


def test_label_outside_the_trained_labels_is_a_clear_error(records):
    ds = input_pipeline.make_dataset([records], image_size=4, batch_size=6, num_labels=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not among the 2 trained labels"):
        list(ds)


def test_missing_files_and_record_count(records, tmp_path):
    with pytest.raises(FileNotFoundError, match="no TFRecord files match"):
        input_pipeline.make_dataset(
            [str(tmp_path / "nothing/*")], image_size=4, batch_size=2, num_labels=3
        )
    assert input_pipeline.count_records([records]) == 6


def test_shuffle_buffer_is_bounded_in_bytes():
    # 224 px uint8 images are 150,528 bytes: 256 MiB hold 1,783 of them, not 16,384.
    assert input_pipeline.shuffle_buffer_elements(16384, 256 * 2**20, 224 * 224 * 3) == 1783
    # Small records: the element cap applies.
    assert input_pipeline.shuffle_buffer_elements(16384, 256 * 2**20, 800) == 16384
    assert input_pipeline.shuffle_buffer_elements(16384, 10, 10**6) == 1
