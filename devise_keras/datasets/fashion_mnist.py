"""Fashion-MNIST (Xiao et al., 2017) as class folders of PNGs, the input of ImageExampleGen.

The four original IDX files come from the Debian package ``dataset-fashion-mnist``
(``apt-get install dataset-fashion-mnist``, files under /usr/share/datasets/fashion-mnist);
without it, the Keras download (`keras.datasets.fashion_mnist.load_data`) is tried.
`prepare_fashion_mnist` writes the 60,000 train + 10,000 test images (or the first
``max_per_class`` of each class, train before test) as 28x28 greyscale PNGs:

    <data_dir>/fashion_mnist/images/<folder>/<train|test>_<index>.png   (all 70,000)
    <data_dir>/fashion_mnist/images_max<N>/<folder>/...                  (max_per_class=N)
    <data_dir>/fashion_mnist/<images dir>/.prepared.json   marker: counts, source, cap
    <data_dir>/fashion_mnist/classes.json                  {folder: official class name}

Each cap gets its own folder, built under a temporary name and renamed into place with
its marker inside, so runs with different caps (or two runs at once) never delete
each other's images and an interrupted run leaves nothing that looks finished.

Folder names are the official class names with "/" and " " replaced by "_"
("T-shirt/top" -> "T-shirt_top", "Ankle boot" -> "Ankle_boot"): safe on every file
system, readable as label text for the word-vector lookup (the label matcher reads
"_" as a space and folds case), and mapped back to the official names in classes.json.
The file name keeps the image's index in the original IDX file.

Run it by hand: ``python -m devise_keras.datasets.fashion_mnist [DATA_DIR] [MAX_PER_CLASS]``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

# Official class names, in label-id order (Fashion-MNIST README).
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SUBDIR = "fashion_mnist"
IMAGES_DIR = "images"
CLASSES_FILE = "classes.json"
DONE_FILE = ".prepared.json"  # inside the images folder: renamed into place with it
# IDX type byte -> numpy dtype (big-endian multi-byte types), from the IDX format spec.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class FashionMnistNotFoundError(FileNotFoundError):
    """Neither the Debian files nor the Keras download are available."""


def folder_name(class_name: str) -> str:
    """The class folder of an official class name: "T-shirt/top" -> "T-shirt_top"."""
    return class_name.replace("/", "_").replace(" ", "_")


FOLDER_NAMES = tuple(folder_name(name) for name in CLASS_NAMES)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads a (gzipped) IDX file into an array of its declared type and shape.

    Raises ValueError naming the file when the header or the size is wrong.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic bytes {data[:4]!r})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], ">u4"))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: IDX header says shape {shape}, so {expected} bytes, got {len(data)}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_source_dir() -> Path | None:
    """The folder holding the four IDX files of the Debian package, or None."""
    candidates = [Path(DEBIAN_DIR)]
    try:
        listed = subprocess.run(
            ["dpkg", "-L", DEBIAN_PACKAGE], capture_output=True, text=True, check=False
        ).stdout.split()
        candidates += [Path(p).parent for p in listed if p.endswith(IDX_FILES["train"][0])]
    except OSError:  # no dpkg: not a Debian system
        pass
    for folder in candidates:
        if all((folder / name).is_file() for pair in IDX_FILES.values() for name in pair):
            return folder
    return None


def load_fashion_mnist(source_dir: str | os.PathLike | None = None) -> tuple[dict, str]:
    """Returns ({"train": (images, labels), "test": (...)}, source description).

    `source_dir` (a folder with the four IDX .gz files) wins; then the Debian package;
    then the Keras download. Raises FashionMnistNotFoundError saying how to install.
    """
    if source_dir is not None:
        folder = Path(source_dir)
        missing = [n for pair in IDX_FILES.values() for n in pair if not (folder / n).is_file()]
        if missing:
            raise FashionMnistNotFoundError(
                f"source_dir {str(folder)!r} lacks the Fashion-MNIST IDX files {missing}; "
                f"install them with `apt-get install {DEBIAN_PACKAGE}` ({DEBIAN_DIR})"
            )
    else:
        folder = find_source_dir()
    if folder is not None:
        splits = {
            split: (read_idx(folder / images), read_idx(folder / labels))
            for split, (images, labels) in IDX_FILES.items()
        }
        for split, (images, labels) in splits.items():
            if images.shape[1:] != (28, 28) or len(images) != len(labels):
                raise ValueError(
                    f"{folder}: {split} images {images.shape} do not match labels {labels.shape}"
                )
        return splits, str(folder)
    return _load_with_keras(), "keras.datasets.fashion_mnist"


def _load_with_keras() -> dict:
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as error:
        raise FashionMnistNotFoundError(
            f"Fashion-MNIST is not installed and the Keras download failed ({error}). "
            f"Install the Debian package: `apt-get install {DEBIAN_PACKAGE}`"
        ) from error
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


def prepare_fashion_mnist(
    data_dir: str | os.PathLike,
    *,
    max_per_class: int | None = None,
    source_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Writes Fashion-MNIST as `<data_dir>/fashion_mnist/images[_max<N>]/<class>/*.png`;
    returns that images folder (the `image_dir` of ImageExampleGen).

    Idempotent: a marker records what was written, so a second call with the same
    `max_per_class` returns at once; each `max_per_class` has its own folder
    (`images`, `images_max<N>`).

    Args:
        data_dir: where the `fashion_mnist/` folder goes.
        max_per_class: keep the first N images of each class (train, then test);
            None keeps all 70,000.
        source_dir: folder with the four IDX .gz files (default: the Debian package,
            else the Keras download).
        progress: show a tqdm progress bar.

    Example:
    >>> images = prepare_fashion_mnist("/tmp/devise-data", max_per_class=5, progress=False)
    >>> sorted(p.name for p in images.iterdir())[:2]
    ['Ankle_boot', 'Bag']
    """
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(f"max_per_class must be >= 1 or None, got {max_per_class}")
    root = Path(data_dir) / SUBDIR
    images_dir = root / images_dir_name(max_per_class)
    if _is_done(images_dir, max_per_class):
        return images_dir

    splits, source = load_fashion_mnist(source_dir)
    selected = _select(splits, max_per_class)
    building = root / f".{images_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    for name in FOLDER_NAMES:
        (building / name).mkdir(parents=True)
    start = time.perf_counter()
    per_class = [0] * len(CLASS_NAMES)
    for split, index in tqdm(selected, disable=not progress, unit="img", desc="Fashion-MNIST"):
        images, labels = splits[split]
        label = int(labels[index])
        path = building / FOLDER_NAMES[label] / f"{split}_{index:05d}.png"
        Image.fromarray(images[index]).save(path, format="PNG")
        per_class[label] += 1
    marker = {
        "count": len(selected),
        "max_per_class": max_per_class,
        "per_class": dict(zip(FOLDER_NAMES, per_class, strict=True)),
        "source": source,
        "seconds": round(time.perf_counter() - start, 2),
    }
    (building / DONE_FILE).write_text(json.dumps(marker, indent=2) + "\n")
    _write_atomically(
        root / CLASSES_FILE, json.dumps(dict(zip(FOLDER_NAMES, CLASS_NAMES, strict=True)), indent=2)
    )
    try:
        os.rename(building, images_dir)  # fails if images_dir exists and is not empty
    except OSError:
        if _is_done(images_dir, max_per_class):  # another process finished first
            shutil.rmtree(building)
            return images_dir
        shutil.rmtree(images_dir)  # a folder without a marker is unfinished
        os.rename(building, images_dir)
    return images_dir


def images_dir_name(max_per_class: int | None) -> str:
    """The folder name: images for the full set, images_max<N> for N per class."""
    return IMAGES_DIR if max_per_class is None else f"{IMAGES_DIR}_max{max_per_class}"


def read_marker(images_dir: str | os.PathLike) -> dict | None:
    """What `prepare_fashion_mnist` recorded in `images_dir`, or None if unfinished."""
    try:
        return json.loads((Path(images_dir) / DONE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _is_done(images_dir: Path, max_per_class: int | None) -> bool:
    marker = read_marker(images_dir)
    return marker is not None and marker.get("max_per_class") == max_per_class


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    partial.write_text(text + "\n")
    os.replace(partial, path)


def _select(splits: dict, max_per_class: int | None) -> list[tuple[str, int]]:
    """(split, index) pairs to write: everything, or the first N of each class."""
    if max_per_class is None:
        return [(split, i) for split in IDX_FILES for i in range(len(splits[split][1]))]
    taken = [0] * len(CLASS_NAMES)
    selected = []
    for split in IDX_FILES:
        for index, label in enumerate(splits[split][1]):
            if taken[label] < max_per_class:
                taken[label] += 1
                selected.append((split, index))
    return selected


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    data_dir = argv[0] if argv else ".devise-data"
    max_per_class = int(argv[1]) if len(argv) > 1 else None
    print(prepare_fashion_mnist(data_dir, max_per_class=max_per_class))


if __name__ == "__main__":
    main()
