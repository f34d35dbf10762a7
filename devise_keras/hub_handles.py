"""TF-Hub handles -> local SavedModel directories, with or without `tensorflow_hub`.

tensorflow_hub is not a dependency of the library (BUILD.md: tfx 1.16 pins it below 0.16,
and hub 0.15 cannot import under TensorFlow 2.16), yet backbones and text encoders are
named by TF-Hub handles. `resolve` therefore:

- uses a path (local, or any filesystem `tf.io.gfile` knows: `gs://`, `s3://`, `ram://`)
  as is;
- resolves an http(s) handle with `tensorflow_hub.resolve` when tensorflow_hub imports
  (the normal route; it honours TFHUB_CACHE_DIR and its other settings);
- otherwise downloads `<handle>?tf-hub-format=compressed` (the protocol of
  tensorflow_hub's compressed resolver) into the same cache folder tensorflow_hub uses,
  `$TFHUB_CACHE_DIR/<sha1 of the handle>` (default `<temp dir>/tfhub_modules`), so the
  two share one cache. The archive is extracted safely (no absolute or `..` members, no
  links) into a temporary folder that is renamed into place in one step.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid

from devise_keras import storage

_COMPRESSED_FORMAT_QUERY = ("tf-hub-format", "compressed")
_DOWNLOAD_TIMEOUT_S = 60
_OFFLINE_HINT = (
    "Without network access, download the model elsewhere and pass its local SavedModel "
    "directory, or point TFHUB_CACHE_DIR at a cache that already holds it."
)


class HubHandleError(ValueError):
    """A handle cannot be resolved to a SavedModel directory (the message names it)."""


def is_http_handle(handle: str) -> bool:
    """True for handles that are downloaded (http:// and https:// URLs)."""
    return handle.startswith(("http://", "https://"))


def cache_dir() -> str:
    """tensorflow_hub's cache folder: TFHUB_CACHE_DIR, else `<temp dir>/tfhub_modules`."""
    return os.environ.get("TFHUB_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "tfhub_modules")


def cached_module_dir(handle: str) -> str:
    """The folder tensorflow_hub caches `handle` in: `<cache_dir()>/<sha1 of the handle>`."""
    return os.path.join(cache_dir(), hashlib.sha1(handle.encode("utf8")).hexdigest())


def resolve(handle: str) -> str:
    """Returns a SavedModel directory for a TF-Hub handle or a path.

    Args:
        handle: a SavedModel directory (local or on a filesystem `tf.io.gfile` knows), or an
            http(s) TF-Hub/Kaggle handle (downloaded once into the TF-Hub cache).

    Returns:
        The directory holding `saved_model.pb`.

    Raises:
        HubHandleError: naming the handle, when it is empty, missing, cannot be downloaded
            (HTTP error, no network, not a tar archive, unsafe members) or is not a SavedModel.

    Example:
        >>> resolve("/models/my_feature_vector")  # doctest: +SKIP
        '/models/my_feature_vector'
        >>> resolve("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5")  # doctest: +SKIP
        '/tmp/tfhub_modules/145bb06ec3b59b08fb564ab752bd5aa222bfb50a'
    """
    if not isinstance(handle, str) or not handle:
        raise HubHandleError(f"handle must be a non-empty string, got {handle!r}")
    if not is_http_handle(handle):
        if not storage.exists(handle):
            raise HubHandleError(
                f"handle {handle!r} is neither an existing local directory nor a URL; give "
                "the path of a SavedModel directory or a TF-Hub/Kaggle handle"
            )
        path = handle
    else:
        hub = _tensorflow_hub()
        if hub is not None:
            try:
                path = hub.resolve(handle)
            except Exception as error:  # network, HTTP, cache and format errors alike
                raise HubHandleError(
                    f"handle {handle!r}: cannot resolve it ({type(error).__name__}: {error}). "
                    + _OFFLINE_HINT
                ) from error
        else:
            path = download_compressed(handle)
    import tensorflow as tf

    if not storage.isdir(path) or not tf.saved_model.contains_saved_model(path):
        raise HubHandleError(
            f"handle {handle!r} resolved to {path!r}, which is not a SavedModel "
            "directory (no saved_model.pb)"
        )
    return path


def _tensorflow_hub():
    # Imported lazily (slow). Any failure counts as "not available": hub 0.15 installed
    # next to TensorFlow 2.16 (what plain pip gives with tfx 1.16) fails at import.
    try:
        import tensorflow_hub
    except Exception:
        return None
    return tensorflow_hub


def compressed_url(handle: str) -> str:
    """`handle` with the query asking a TF-Hub/Kaggle server for a tar.gz archive."""
    parts = list(urllib.parse.urlparse(handle))
    query = urllib.parse.parse_qsl(parts[4])
    query.append(_COMPRESSED_FORMAT_QUERY)
    parts[4] = urllib.parse.urlencode(query)
    return urllib.parse.urlunparse(parts)


def download_compressed(handle: str) -> str:
    """Downloads and extracts `handle`'s tar.gz into the TF-Hub cache (cache hits skip it).

    Args:
        handle: an http(s) TF-Hub/Kaggle handle.

    Returns:
        `cached_module_dir(handle)`, a non-empty folder.

    Raises:
        HubHandleError: naming the handle on an HTTP error, no network, a body that is not
            a tar archive, or a member that would land outside the folder.

    Example:
        >>> download_compressed("https://tfhub.dev/google/nnlm-en-dim50/2")  # doctest: +SKIP
        '/tmp/tfhub_modules/...'
    """
    module_dir = cached_module_dir(handle)
    if not storage.is_local(module_dir):
        raise HubHandleError(
            f"handle {handle!r}: cannot download it into TFHUB_CACHE_DIR={cache_dir()!r}: "
            "without tensorflow_hub only a local cache folder is supported"
        )
    if os.path.isdir(module_dir) and os.listdir(module_dir):
        return module_dir  # a cache hit, ours or tensorflow_hub's
    os.makedirs(cache_dir(), exist_ok=True)
    url = compressed_url(handle)
    tmp_dir = f"{module_dir}.{uuid.uuid4().hex}.tmp"  # tensorflow_hub's temp-folder name
    os.makedirs(tmp_dir)
    try:
        try:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                _extract_tar_stream(response, tmp_dir, handle)
        except urllib.error.HTTPError as error:
            raise HubHandleError(
                f"handle {handle!r}: cannot download it, HTTP {error.code} {error.reason} from {url}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise HubHandleError(
                f"handle {handle!r}: cannot download it from {url} ({reason}). " + _OFFLINE_HINT
            ) from None
        except tarfile.TarError as error:
            raise HubHandleError(
                f"handle {handle!r}: {url} did not send a tar archive of a model ({error})"
            ) from None
        if not os.listdir(tmp_dir):
            raise HubHandleError(f"handle {handle!r}: the archive from {url} is empty")
        if os.path.isdir(module_dir) and not os.listdir(module_dir):
            os.rmdir(module_dir)  # an empty leftover; tensorflow_hub replaces it too
        try:
            os.rename(tmp_dir, module_dir)
        except OSError:
            if not (os.path.isdir(module_dir) and os.listdir(module_dir)):
                raise
            # Another process (or tensorflow_hub) finished the same download first.
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return module_dir


def _extract_tar_stream(fileobj, destination: str, handle: str) -> None:
    # Streamed ("r|*": gz or plain), one member at a time. Only regular files and folders
    # below `destination`; links and devices are refused, as tensorflow_hub does.
    with tarfile.open(mode="r|*", fileobj=fileobj) as archive:
        for member in archive:
            target = _member_target(destination, member.name, handle)
            if member.isdir():
                os.makedirs(target, exist_ok=True)
            elif member.isfile():
                os.makedirs(os.path.dirname(target), exist_ok=True)
                source = archive.extractfile(member)
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
            else:
                kind = "link" if member.issym() or member.islnk() else "special file"
                raise HubHandleError(
                    f"handle {handle!r}: the archive holds a {kind} {member.name!r}; only "
                    "files and folders are extracted"
                )


def _member_target(destination: str, name: str, handle: str) -> str:
    normalized = posixpath.normpath(name)
    if name.startswith(("/", "\\")) or posixpath.isabs(normalized):
        raise HubHandleError(
            f"handle {handle!r}: the archive holds an absolute path {name!r}; refused"
        )
    if normalized == ".." or normalized.startswith("../"):
        raise HubHandleError(
            f"handle {handle!r}: the archive holds a path leaving its folder {name!r}; refused"
        )
    if normalized == ".":
        return destination
    return os.path.join(destination, *normalized.split("/"))
