"""Real photos for checking an ImageNet backbone: scikit-image's bundled sample images.

scikit-image's wheel ships a few photos in ``skimage/data/`` (a tabby cat, a cup of
coffee, a rocket, a motorcycle, an astronaut). `prepare_sample_photos` fetches the
wheel from PyPI as a file (never installs it) and copies the photos out, once.
They check that a converted backbone sees what an ImageNet classifier should
(``tests/devise_keras/backbones``), and they are real inputs for `predict` demos.

Run it by hand: ``python -m devise_keras.datasets.sample_photos [DATA_DIR]``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

from devise_keras.data_cache import cache_subdir
from devise_keras.datasets.pypi_wheel import WheelDownloadError, fetch_wheel

WHEEL_REQUIREMENT = "scikit-image==0.25.2"
WHEEL_GLOB = "scikit_image-0.25.2-*.whl"
# Any build holds the same photos; pinning one makes the download independent of
# the interpreter and machine that runs the data step.
PIP_ARGS = ("--python-version", "3.10", "--platform", "manylinux2014_x86_64")
PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "astronaut.png")
MEMBER_DIR = "skimage/data/"
LICENSE_MEMBER = "scikit_image-0.25.2.dist-info/LICENSE.txt"
SUBDIR = "sample_photos"
DONE_FILE = "prepared.json"


class SamplePhotosError(RuntimeError):
    """The photos could not be fetched or the wheel does not hold them."""


def prepared_sample_photos(data_dir: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """``{"dir": ..., "photos": {name: path}}`` when already prepared, else None (no download)."""
    out = cache_subdir(SUBDIR, data_dir)
    done = out / DONE_FILE
    if not done.is_file():
        return None
    info = json.loads(done.read_text())
    if not all(Path(p).is_file() for p in info["photos"].values()):
        return None
    return info


def prepare_sample_photos(
    data_dir: str | os.PathLike | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Copies scikit-image's sample photos into ``<data_dir>/sample_photos/`` (once).

    Args:
        data_dir: cache directory (default ``~/.cache/devise-keras``).
        progress: show pip's download bar.

    Returns:
        ``{"dir": folder, "photos": {"chelsea.png": path, ...}, "source": ...}``.

    Raises:
        SamplePhotosError: the wheel cannot be downloaded or lacks a photo.
    """
    existing = prepared_sample_photos(data_dir)
    if existing is not None:
        return existing
    out = cache_subdir(SUBDIR, data_dir)
    out.mkdir(parents=True, exist_ok=True)
    download_dir = out / "download"
    try:
        wheel = fetch_wheel(
            WHEEL_REQUIREMENT, download_dir, WHEEL_GLOB, pip_args=PIP_ARGS, progress=progress
        )
    except WheelDownloadError as error:
        raise SamplePhotosError(str(error)) from error
    photos = {}
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            for name in PHOTOS:
                if MEMBER_DIR + name not in names:
                    raise SamplePhotosError(f"{wheel} has no {MEMBER_DIR}{name}")
                target = out / name
                target.write_bytes(archive.read(MEMBER_DIR + name))
                photos[name] = str(target)
            if LICENSE_MEMBER in names:
                (out / "LICENSE.txt").write_bytes(archive.read(LICENSE_MEMBER))
    except (zipfile.BadZipFile, OSError) as error:
        raise SamplePhotosError(f"{wheel} is not a readable wheel ({error}); delete it") from error
    info = {
        "dir": str(out),
        "photos": photos,
        "source": f"skimage/data/ of the PyPI wheel {WHEEL_REQUIREMENT} (BSD-3-Clause, "
        "see LICENSE.txt; per-image credits in the skimage.data docs)",
    }
    (out / DONE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(download_dir, ignore_errors=True)
    return info


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(json.dumps(prepare_sample_photos(args[0] if args else None), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
