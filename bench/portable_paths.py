"""Paths as a committed report may show them: never one machine's absolute paths.

Every bench script that writes into ``bench/results/`` passes the paths it records (its
command line, input files, cache folders) through `portable_path` / `portable_args`:
a path inside the repository becomes repository-relative, one under the user's home
``~/...``, one under the temp folder ``$TMPDIR/...``; any other absolute path keeps its
name only (``<abs>/name``), except the system folders every Debian machine has
(``/usr/...``, ``/etc/...``), which are the same everywhere. tests/test_committed_reports.py
checks the committed reports follow that rule.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PREFIXES = ("/usr/", "/etc/", "/opt/conda/")


def portable_path(
    path: str | os.PathLike, repo_root: str | os.PathLike = REPO_ROOT, home: str | None = None
) -> str:
    """`path` written so that it names no machine: see the module docstring.

    Args:
        path: any path; relative paths and URIs (``gs://...``) come back unchanged.
        repo_root: the repository root (default: this checkout's).
        home: the user's home folder (default: ``~`` expanded).

    Example:
        >>> portable_path("/home/ada/.cache/devise-keras/hub", home="/home/ada")
        '~/.cache/devise-keras/hub'
    """
    text = os.fspath(path)
    if not os.path.isabs(text):
        return text
    absolute = os.path.normpath(text)
    home = os.path.normpath(home or os.path.expanduser("~"))
    places = [
        (os.path.normpath(os.fspath(repo_root)), ""),
        (os.path.normpath(tempfile.gettempdir()), "$TMPDIR/"),
        (home, "~/"),
    ]
    # The innermost folder wins (a checkout inside the home folder is the repository).
    for folder, prefix in sorted(places, key=lambda place: -len(place[0])):
        if absolute == folder:
            return prefix.rstrip("/") or "."
        if absolute.startswith(folder.rstrip("/") + "/"):
            return prefix + os.path.relpath(absolute, folder)
    if absolute.startswith(SYSTEM_PREFIXES):
        return absolute
    return f"<abs>/{os.path.basename(absolute)}"


def portable_args(args: Iterable[str], **kwargs) -> list[str]:
    """A command line's arguments with each absolute path (alone or after ``--flag=``)
    through `portable_path`.

    Example:
        >>> portable_args(["--out=/home/ada/r", "--seeds", "5"], home="/home/ada")
        ['--out=~/r', '--seeds', '5']
    """
    out = []
    for arg in args:
        flag, eq, value = arg.partition("=")
        if eq and flag.startswith("-") and os.path.isabs(value):
            out.append(f"{flag}={portable_path(value, **kwargs)}")
        else:
            out.append(portable_path(arg, **kwargs) if os.path.isabs(arg) else arg)
    return out
