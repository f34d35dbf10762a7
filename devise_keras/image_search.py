"""Text -> image search over a folder, with the image embeddings cached on disk."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from devise_keras.apps import DeviseApp, image_files
from devise_keras.data_cache import cache_subdir

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/devise-keras/image_search`` (``~/.cache/...``)."""
    return cache_subdir("image_search")


class ImageSearch:
    """Finds the images of a folder that best match a word or phrase.

    DeViSE (Frome et al., NIPS 2013) maps images and words into one space, so the
    ranking that labels an image also runs the other way: a query's unit vector is
    compared by cosine with every image's embedding. The query is free text embedded
    by the model's text encoder when its bundle has one (`DeviseApp.embed_texts`),
    else a word or phrase looked up in the word vectors (a phrase: the mean of its
    words' unit vectors, `DeviseApp.word_vector`). The embeddings are computed once and cached in an ``.npz``
    file; an entry is reused while the file's path, size and modification time and the
    model's fingerprint (sha256 of model.keras) are unchanged, so a second search
    over the same folder embeds nothing and an edited folder embeds only what changed.

    Args:
        app: a `DeviseApp` (`devise_keras.load(...)`).
        image_dir: folder searched recursively for .jpg/.jpeg/.png/.gif/.bmp files.
        cache_dir: where the ``.npz`` cache goes (default `default_cache_dir()`).
        batch_size: images embedded per model call.
        progress: show a progress bar while embedding.

    Example:
        >>> search = ImageSearch(devise_keras.load("runs/demo/serving"), "photos/")  # doctest: +SKIP
        >>> search.search("red shoe", k=3)                                          # doctest: +SKIP
        [('photos/a.png', 0.61), ('photos/c.jpg', 0.58), ('photos/b.png', 0.40)]
    """

    def __init__(
        self,
        app: DeviseApp,
        image_dir: str | os.PathLike,
        *,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ):
        self.app = app
        self.image_dir = Path(image_dir).expanduser().resolve()
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"image folder not found: {image_dir}")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.batch_size = batch_size
        self.progress = progress
        self.fingerprint = app.fingerprint
        self.paths: list[str] = []
        self.embeddings = np.zeros((0, app.dim), np.float32)
        self.skipped: dict[str, str] = {}
        self.embedded_count = 0  # images embedded (not taken from the cache) by refresh()
        self._stats: dict[str, tuple[int, int]] = {}
        self._loaded = False

    @property
    def cache_path(self) -> Path:
        key = hashlib.sha256(f"{self.image_dir}\0{self.fingerprint}".encode()).hexdigest()
        return self.cache_dir / f"{self.image_dir.name}-{key[:16]}.npz"

    def _read_cache(self) -> dict[str, tuple[int, int, np.ndarray]]:
        path = self.cache_path
        if not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["version"]) != CACHE_VERSION or str(data["fingerprint"]) != (
                    self.fingerprint
                ):
                    return {}
                return {
                    str(p): (int(m), int(s), e)
                    for p, m, s, e in zip(
                        data["paths"],
                        data["mtimes"],
                        data["sizes"],
                        data["embeddings"],
                        strict=True,
                    )
                }
        except Exception as error:  # BadZipFile, EOFError, CRC errors, bad keys, ...
            # Any unreadable cache is rebuilt: one warning, never an error on later searches.
            log.warning(
                "ignoring unreadable image-search cache %s (%s: %s); it is rebuilt",
                path,
                type(error).__name__,
                error,
            )
            return {}

    def _write_cache(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # A temp name of this writer's own (two processes searching one folder each write
        # theirs), renamed over the cache at once: a reader sees the old or the new file.
        fd, tmp = tempfile.mkstemp(
            dir=self.cache_dir, prefix=f".{self.cache_path.stem}.", suffix=".tmp.npz"
        )
        with os.fdopen(fd, "wb") as out:
            self._save_cache(out)
        try:
            os.replace(tmp, self.cache_path)
        except OSError:
            os.unlink(tmp)
            raise

    def _save_cache(self, out) -> None:
        np.savez(
            out,
            version=np.int64(CACHE_VERSION),
            fingerprint=np.str_(self.fingerprint),
            paths=np.array(self.paths, dtype=str),
            mtimes=np.array([self._stats[p][0] for p in self.paths], np.int64),
            sizes=np.array([self._stats[p][1] for p in self.paths], np.int64),
            embeddings=self.embeddings,
        )

    def refresh(self) -> ImageSearch:
        """Embeds the images that are new or changed since the cache was written."""
        cached = self._read_cache()
        files = image_files(self.image_dir)
        stats = {}
        for f in files:
            st = f.stat()
            stats[str(f)] = (st.st_mtime_ns, st.st_size)
        keep = {p: c[2] for p, c in cached.items() if p in stats and stats[p] == c[:2]}
        todo = [p for p in stats if p not in keep]
        self.skipped = {}
        fresh: dict[str, np.ndarray] = {}
        if todo:
            fresh = self._embed(todo)
        self.embedded_count = len(fresh)
        vectors = {**keep, **fresh}
        self.paths = [p for p in stats if p in vectors]
        self._stats = {p: stats[p] for p in self.paths}
        self.embeddings = (
            np.stack([vectors[p] for p in self.paths]).astype(np.float32)
            if self.paths
            else np.zeros((0, self.app.dim), np.float32)
        )
        if fresh or set(cached) != set(self.paths):
            self._write_cache()
        self._loaded = True
        return self

    def _embed(self, paths: list[str]) -> dict[str, np.ndarray]:
        chunks = range(0, len(paths), self.batch_size)
        if self.progress:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc=f"embedding {len(paths)} images", unit="batch")
        out: dict[str, np.ndarray] = {}
        for start in chunks:
            batch = paths[start : start + self.batch_size]
            try:
                vectors = self.app.embed_images(batch, batch_size=self.batch_size)
                out.update(zip(batch, vectors, strict=True))
            except ValueError:
                # One bad file must not sink the folder: retry one by one, skip the bad.
                for path in batch:
                    try:
                        out[path] = self.app.embed_images([path])[0]
                    except ValueError as error:
                        self.skipped[path] = str(error)
                        log.info("skipping %s", error)
        return out

    def search(self, query: str, k: int = 5) -> list[tuple[str, float]]:
        """The k images (path, cosine) nearest to a query, best first.

        The query is free text when the model has a text encoder, else a word or
        phrase of its word vectors (see the class docstring).
        """
        if not self._loaded:
            self.refresh()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not self.paths:
            raise FileNotFoundError(f"no decodable images in {self.image_dir}")
        from devise_keras.label_index import LabelIndex

        if self.app.text_encoder is not None:
            vector = self.app.embed_texts([query])[0]
        else:
            vector = self.app.word_vector(query)
        norms = np.linalg.norm(self.embeddings, axis=1)
        usable = np.flatnonzero(norms > 0)
        if usable.size == 0:
            raise ValueError("every image embeds to the zero vector: no cosine defined")
        index = LabelIndex([self.paths[i] for i in usable], self.embeddings[usable])
        paths, scores = index.search(vector[None, :], min(k, len(index)))
        return [(str(p), float(s)) for p, s in zip(paths[0], scores[0], strict=True)]
