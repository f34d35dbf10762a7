"""The user cache of devise-keras: where prepared data sets, backbones and encoders live.

One root, ``$XDG_CACHE_HOME/devise-keras`` (``~/.cache/devise-keras`` without it),
outside any repository and shared by every run of the user. Each preparer keeps its
files in a sub-folder of its own (``glove_6b_50d/``, ``npm/``, ``backbones/``,
``text_encoders/``, ``sample_photos/``, ``image_search/``); the root is read from the
environment when asked for, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIRNAME = "devise-keras"
NPM_SUBDIR = "npm"  # npm tarballs (the emoji images and keywords), read in place


def default_data_dir() -> Path:
    """The cache root: ``$XDG_CACHE_HOME/devise-keras`` (``~/.cache/devise-keras``).

    Example:
        >>> default_data_dir().name
        'devise-keras'
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / CACHE_DIRNAME


def cache_subdir(name: str, root: str | os.PathLike | None = None) -> Path:
    """``<root>/<name>``; an empty or None `root` is `default_data_dir()` (``~`` expanded).

    Args:
        name: the preparer's sub-folder, e.g. "npm" or "backbones".
        root: a cache root given by the user, or None.

    Example:
        >>> cache_subdir("npm", "/tmp/c").as_posix()
        '/tmp/c/npm'
    """
    base = Path(root).expanduser() if root else default_data_dir()
    return base / name
