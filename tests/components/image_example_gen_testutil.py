"""Builds tiny image trees for the ImageExampleGen tests and reads its output back."""

from __future__ import annotations

import glob
import io
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from devise_keras import features

# label -> number of good images; "bird" gets JPEGs, "fish" grey PNGs, the rest RGB PNGs.
GOOD_IMAGES = {"bird": 5, "cat": 6, "dog": 6, "fish": 6}
BAD_FILES = {
    "cat/broken.png": "undecodable",  # a PNG cut in half: the header parses, the data does not
    "dog/empty.jpg": "empty_file",
    "fish/notes.txt": "unknown_format",
}


def encode(array: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format)
    return buffer.getvalue()


def make_image_tree(root: Path) -> dict[str, str]:
    """Writes `root/<label>/<image>` (3 bad files among them); returns {good path: label}."""
    rng = np.random.default_rng(0)
    good = {}
    for label, count in GOOD_IMAGES.items():
        (root / label).mkdir(parents=True)
        for i in range(count):
            if label == "bird":
                name, data = f"{i}.jpg", encode(rng.integers(0, 255, (9, 7, 3), np.uint8), "JPEG")
            elif label == "fish":
                name, data = f"{i}.png", encode(rng.integers(0, 255, (6, 6), np.uint8), "PNG")
            else:
                name, data = f"{i}.png", encode(rng.integers(0, 255, (5, 8, 3), np.uint8), "PNG")
            (root / label / name).write_bytes(data)
            good[f"{label}/{name}"] = label
    whole = encode(rng.integers(0, 255, (32, 32, 3), np.uint8), "PNG")
    (root / "cat" / "broken.png").write_bytes(whole[: len(whole) // 2])
    (root / "dog" / "empty.jpg").write_bytes(b"")
    (root / "fish" / "notes.txt").write_text("not an image\n")
    (root / "cat" / ".DS_Store").write_bytes(b"hidden files are ignored")
    return good


def read_split(uri: str, split: str) -> list[dict]:
    """Parsed records of one split, sorted by file name."""
    files = sorted(glob.glob(os.path.join(uri, f"Split-{split}", "data_tfrecord-*.gz")))
    records = []
    for raw in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        feature = tf.train.Example.FromString(raw).features.feature
        records.append(
            {
                "path": feature[features.FILENAME_KEY].bytes_list.value[0].decode(),
                "label": feature[features.LABEL_TEXT_KEY].bytes_list.value[0].decode(),
                "label_id": feature[features.LABEL_ID_KEY].int64_list.value[0],
                "image": feature[features.IMAGE_KEY].bytes_list.value[0],
            }
        )
    return sorted(records, key=lambda r: r["path"])
