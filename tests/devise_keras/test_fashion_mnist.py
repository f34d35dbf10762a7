"""Tests of the Fashion-MNIST data step on a slice of the real Debian files."""

from __future__ import annotations

import gzip
import json
import os
import struct

import numpy as np
import pytest
from PIL import Image

from devise_keras.datasets import fashion_mnist
from devise_keras.datasets.fashion_mnist import (
    CLASS_NAMES,
    FOLDER_NAMES,
    prepare_fashion_mnist,
    read_idx,
)

DEBIAN_DIR = fashion_mnist.find_source_dir()
needs_debian = pytest.mark.skipif(
    DEBIAN_DIR is None,
    reason="Debian package dataset-fashion-mnist is not installed "
    "(apt-get install dataset-fashion-mnist; CI installs it)",
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    if DEBIAN_DIR is None:
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    data_dir = tmp_path_factory.mktemp("data")
    return data_dir, prepare_fashion_mnist(data_dir, max_per_class=5, progress=False)


def test_folder_names_are_filesystem_safe_official_names():
    assert FOLDER_NAMES == (
        "T-shirt_top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle_boot",
    )


def test_read_idx_reads_header_shape_and_rejects_bad_files(tmp_path):
    good = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(good, "wb") as f:
        f.write(bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2, 1, 3) + bytes(range(6)))
    assert read_idx(good).tolist() == [[[0, 1, 2]], [[3, 4, 5]]]
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 5) + b"\x01")
    with pytest.raises(ValueError, match="short-idx1-ubyte: IDX header says shape \\(5,\\)"):
        read_idx(short)
    (tmp_path / "text").write_text("hello")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "text")


def test_missing_source_dir_error_says_how_to_install(tmp_path):
    with pytest.raises(fashion_mnist.FashionMnistNotFoundError, match="apt-get install"):
        prepare_fashion_mnist(tmp_path / "data", source_dir=tmp_path, progress=False)


@needs_debian
def test_first_train_label_is_ankle_boot_in_the_idx_file():
    # Label byte 0 of the train label file, read without read_idx: 8-byte header first.
    with gzip.open(DEBIAN_DIR / "train-labels-idx1-ubyte.gz", "rb") as f:
        raw = f.read(9)
    assert struct.unpack(">II", raw[:8]) == (2049, 60000) and raw[8] == 9
    labels = read_idx(DEBIAN_DIR / "train-labels-idx1-ubyte.gz")
    assert labels.shape == (60000,) and labels[0] == 9
    assert CLASS_NAMES[9] == "Ankle boot"
    assert np.bincount(labels).tolist() == [6000] * 10


@needs_debian
def test_prepare_writes_five_28x28_pngs_per_class(prepared):
    data_dir, images = prepared
    assert images == data_dir / "fashion_mnist" / "images_max5"
    assert sorted(os.listdir(images)) == sorted([*FOLDER_NAMES, ".prepared.json"])
    for folder in FOLDER_NAMES:
        names = sorted(os.listdir(images / folder))
        assert len(names) == 5 and all(n.startswith("train_") for n in names)
    image = Image.open(images / "Ankle_boot" / "train_00000.png")
    assert (image.format, image.mode, image.size) == ("PNG", "L", (28, 28))
    train_images = read_idx(DEBIAN_DIR / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(np.asarray(image), train_images[0])
    classes = json.loads((data_dir / "fashion_mnist" / "classes.json").read_text())
    assert classes["T-shirt_top"] == "T-shirt/top" and classes["Ankle_boot"] == "Ankle boot"
    assert list(classes) == list(FOLDER_NAMES)


@needs_debian
def test_prepare_is_idempotent_and_keeps_each_cap_in_its_own_folder(prepared):
    data_dir, images = prepared
    assert images.name == "images_max5"
    first = images / "Bag" / sorted(os.listdir(images / "Bag"))[0]
    mtime = first.stat().st_mtime_ns
    assert prepare_fashion_mnist(data_dir, max_per_class=5, progress=False) == images
    assert first.stat().st_mtime_ns == mtime
    marker = fashion_mnist.read_marker(images)
    assert (marker["count"], marker["max_per_class"]) == (50, 5)
    assert marker["per_class"] == dict.fromkeys(FOLDER_NAMES, 5)

    other = prepare_fashion_mnist(data_dir, max_per_class=2, progress=False)
    assert other == data_dir / "fashion_mnist" / "images_max2"
    assert sum(len(os.listdir(other / f)) for f in FOLDER_NAMES) == 20
    assert first.stat().st_mtime_ns == mtime  # the 5-per-class folder is untouched
    leftovers = [p for p in os.listdir(data_dir / "fashion_mnist") if "tmp" in p]
    assert leftovers == []


@needs_debian
def test_prepare_replaces_an_unfinished_folder(tmp_path):
    unfinished = tmp_path / "fashion_mnist" / "images_max1" / "Bag"
    unfinished.mkdir(parents=True)
    (unfinished / "stale.png").write_bytes(b"")
    images = prepare_fashion_mnist(tmp_path, max_per_class=1, progress=False)
    assert sorted(os.listdir(images / "Bag")) == [
        "train_00023.png"
    ]  # the first Bag in the train file
