"""A trained DeViSE model for applications: labels, open vocabulary, analogies.

`load(path)` opens what the pipeline pushes (`<serving>/<version>/assets.extra/`, the
layout of `devise_keras.app_bundle`: model.keras, config.json, label_embeddings/, and
open_vocabulary/ when the pipeline ran with `embeddings.open_vocabulary_size > 0`) and
returns a `DeviseApp`. It reads only the bundled files (or a vocabulary the caller
gives), never a path the training config named, so a copied model works anywhere. The same
embedding space holds images and words (Frome et al., NIPS 2013), so one object
answers "which labels fit this image" over the trained classes, every class
including the unseen ones (zero-shot), or a whole word-vector vocabulary (400k GloVe
words: open-vocabulary prediction), finds a word's neighbours, and does the seed
notes' "visual king - man + woman" arithmetic. When the label vectors came from a text
encoder, the bundle carries it (`text_encoder/`), and any label strings given at request
time are ranked through it (`predict_labels(images, labels=["red fruit", "a boat"])`);
the words of `word_vector`, `nearest_words` and `analogy` are then encoded too (any
phrase has a vector) and ranked over the bundled open vocabulary.

Scores are cosines between the projected image and the unit label vectors on every
path, as in the "zero_shot" and "rank_labels" serving signatures. For one image they
rank labels exactly as the model's "scores" output (a dot product with unit label
vectors) does; only the scale differs.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from devise_keras import graph_safety, storage
from devise_keras.app_bundle import (
    APP_DIRNAME,
    CONFIG_FILENAME,
    LABEL_EMBEDDINGS_DIRNAME,
    OPEN_VOCABULARY_DIRNAME,
    TEXT_ENCODER_DIRNAME,
    find_app_bundle,
)
from devise_keras.config import ServingConfig
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.label_index import LabelIndex

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
LABEL_SETS = ("labels", "seen", "vocabulary")

_TOKEN_SPLIT = re.compile(r"[\s_/\-]+")


class VocabularyError(LookupError):
    """No word vocabulary is loaded, or a word or phrase has no vector in it."""


class NoTextEncoderError(VocabularyError):
    """The model's bundle has no text encoder, so free text has no vector."""


class BundleError(ValueError):
    """A file of a model's app bundle is damaged or tampered with; the message names it."""


def check_app_bundle(path: str | os.PathLike) -> str:
    """The `model.keras` of a model path once its bundle files read; `BundleError` otherwise.

    Without TensorFlow, so a command line refuses a damaged model before loading it:
    model.keras must be a complete zip archive (a truncated copy is not) holding
    Keras' config.json, and the bundle's config.json, when present, a valid
    `DeviseConfig`. The error names the file and what is wrong with it.

    Example:
        >>> check_app_bundle("runs/demo/serving")  # doctest: +SKIP
        'runs/demo/serving/1/assets.extra/model.keras'
    """
    import zipfile

    keras_file = find_app_bundle(path)
    try:
        with storage.open_file(keras_file, "rb") as f:
            with zipfile.ZipFile(f) as archive:
                damaged = archive.testzip()
                names = set(archive.namelist())
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise BundleError(
            f"{keras_file}: not a readable .keras archive (truncated or not a zip file: "
            f"{error})"
        ) from None
    if damaged is not None:
        raise BundleError(f"{keras_file}: the archive member {damaged} is damaged (bad CRC)")
    if "config.json" not in names:
        raise BundleError(f"{keras_file}: not a Keras model archive (it has no config.json)")
    _read_bundle_config(os.path.dirname(keras_file))
    return keras_file


def _read_bundle_config(bundle: str):
    """The bundle's `DeviseConfig`, None without one; `BundleError` naming a bad file."""
    from devise_keras.config import DeviseConfig

    config_path = os.path.join(bundle, CONFIG_FILENAME)
    if not storage.isfile(config_path):
        return None
    try:
        return DeviseConfig.load(config_path)
    except (ValueError, TypeError, AttributeError) as error:  # JSON syntax, ConfigError
        raise BundleError(f"{config_path}: not a valid model config ({error})") from None


def load_vocabulary(
    path: str | os.PathLike, vocab_path: str = "", vectors_format: str = "auto"
) -> LabelIndex:
    """A `LabelIndex` over every word of a word-vector source.

    Args:
        path: a LabelEmbeddings folder (labels.txt + vectors.npy), or a word-vector
            file that `devise_keras.word_vectors` reads (word2vec .bin, .vec/.txt,
            GloVe .txt, or a .npy matrix with its vocabulary).
        vocab_path: the vocabulary of a .npy matrix (default: `vocab.txt` beside it).
        vectors_format: "auto" or a `word_vectors.FORMATS` name.
    """
    from devise_keras import word_vectors

    p = os.fspath(path)
    p = os.path.expanduser(p) if storage.is_local(p) else p
    if storage.isdir(p):
        embeddings = LabelEmbeddings.load(p)
        return LabelIndex(embeddings.labels, embeddings.vectors)
    if not storage.isfile(p):
        raise FileNotFoundError(f"vocabulary not found: {path}")
    is_npy = vectors_format == "npy" or (vectors_format == "auto" and p.endswith(".npy"))
    beside = os.path.join(os.path.dirname(p), "vocab.txt")
    if is_npy and not vocab_path and storage.isfile(beside):
        vocab_path = beside
    header = word_vectors.read_header(p, vectors_format, vocab_path)
    if header.format == "npy":
        # The words alone (no per-row vector copies), then the matrix in one read:
        # 400k GloVe words load in ~0.4 s instead of ~4 s.
        words: list[str] = []

        def collect(word: str) -> bool:
            words.append(word)
            return False

        for _ in word_vectors.scan_rows(header, collect):
            pass
        vectors = storage.load_npy(header.path).astype(np.float32, copy=False)
    else:
        words, rows = [], []
        for _, word, vector in word_vectors.iter_vectors(p, header.format):
            words.append(word)
            rows.append(vector)
        vectors = np.stack(rows) if rows else np.zeros((0, header.dim), np.float32)
    return LabelIndex(words, vectors)


def file_fingerprint(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (identifies a trained model for caches)."""
    digest = hashlib.sha256()
    with storage.open_file(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unit(vector: np.ndarray, what: str) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"{what} has no direction (zero or non-finite norm)")
    return vector / norm


class DeviseApp:
    """A trained DeViSE model with its label sets, ready for applications.

    Implements DeViSE inference (Frome et al., "DeViSE: A Deep Visual-Semantic
    Embedding Model", NIPS 2013): an image is projected into the word-vector space
    and labels are ranked by cosine with their unit vectors - over the trained labels,
    every class seen or unseen (zero-shot), or a whole vocabulary (open vocabulary).

    Images may be file paths, encoded bytes (JPEG/PNG/GIF/BMP), or arrays (H, W, 3)
    / (N, H, W, 3), uint8 in [0, 255] or float in [0, 1]; they are decoded and
    resized exactly as in training and serving (`features.decode_image`).

    Args:
        model: a Keras model from `build_devise_model` (outputs "scores", "embedding").
        labels: every class with its vector (seen + unseen), or None.
        vocabulary: a `LabelIndex` over a word vocabulary, or None.
        config: the `DeviseConfig` the model was trained with, or None.
        fingerprint: identifies the model (sha256 of model.keras); keys caches.
        vocabulary_hint: said in the error when a vocabulary is needed but missing.
        text_encoder: the text encoder of the label space (a `TextEncoder`, or the
            path of its SavedModel, loaded on first use), or None.
        trust_model: load that text encoder even when its graph touches files or
            runs Python (see `graph_safety`); default False.

    Example:
        >>> app = devise_keras.load("runs/demo/serving")            # doctest: +SKIP
        >>> app.predict_labels(["shoe.png"], k=3)                   # doctest: +SKIP
        [[('Sneaker', 0.71), ('Sandal', 0.64), ('Ankle boot', 0.52)]]
        >>> app.predict_labels(["shoe.png"], k=3, over="vocabulary")  # doctest: +SKIP
        >>> app.predict_labels(["shoe.png"], labels=["red fruit", "a boat"])  # doctest: +SKIP
        >>> app.nearest_words("boot", k=5)                          # doctest: +SKIP
        >>> app.analogy("king.png", "man", "woman")                 # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        *,
        labels: LabelEmbeddings | None = None,
        vocabulary: LabelIndex | None = None,
        config=None,
        fingerprint: str = "",
        vocabulary_hint: str = "",
        text_encoder=None,
        trust_model: bool = False,
    ):
        from devise_keras.label_similarity import LabelSimilarity

        outputs = model.output if isinstance(model.output, dict) else {}
        if "embedding" not in outputs:
            raise ValueError(
                "not a DeViSE model: it has no 'embedding' output (a softmax baseline cannot "
                "rank word vectors)"
            )
        self.model = model
        self.config = config
        # The limit the model was exported with (its config's), as the serving graph.
        self.max_image_pixels = (
            config.serving.max_image_pixels if config is not None else None
        ) or ServingConfig.max_image_pixels
        self.fingerprint = fingerprint
        self.vocabulary = vocabulary
        self.vocabulary_hint = vocabulary_hint
        self.image_size = int(model.inputs[0].shape[1])
        self.dim = int(outputs["embedding"].shape[-1])
        self.labels = labels
        if labels is not None and labels.dim != self.dim:
            raise ValueError(f"label vectors have dim {labels.dim}, the model embeds to {self.dim}")
        if vocabulary is not None and vocabulary.dim != self.dim:
            raise ValueError(
                f"the vocabulary has dim {vocabulary.dim} but the model embeds to {self.dim}: "
                "use the word vectors the model was trained with"
            )
        similarity = [layer for layer in model.layers if isinstance(layer, LabelSimilarity)]
        self._seen_vectors = (
            np.asarray(similarity[0].label_vectors, np.float32) if similarity else None
        )
        if getattr(text_encoder, "dim", self.dim) != self.dim:
            raise ValueError(
                f"the text encoder embeds to {text_encoder.dim} dimensions, the model to {self.dim}"
            )
        self._text_encoder = text_encoder
        self._trust_model = bool(trust_model)
        self._decoder = None
        self._indexes: dict[str, LabelIndex] = {}
        self._rows: dict[LabelIndex, dict[str, int]] = {}
        self._folded: dict[LabelIndex, dict[str, int]] = {}

    # -- label sets ------------------------------------------------------------------
    @property
    def seen_labels(self) -> list[str]:
        """The labels of the model's score head (the trained classes), in score order."""
        if self.labels is None or self._seen_vectors is None:
            raise VocabularyError("this model has no label names (no label_embeddings bundle)")
        # The score head holds the seen vectors; find their names among all classes.
        names = []
        for vector in self._seen_vectors:
            match = np.flatnonzero(np.abs(self.labels.vectors - vector).max(axis=1) < 1e-5)
            if match.size == 0:
                raise VocabularyError("the model's label vectors are not in its label bundle")
            names.append(self.labels.labels[int(match[0])])
        return names

    def index(self, over: str = "labels") -> LabelIndex:
        """The `LabelIndex` of a label set: "labels" (all classes), "seen", "vocabulary"."""
        if over not in LABEL_SETS:
            raise ValueError(f"over must be one of {LABEL_SETS}, got {over!r}")
        if over == "vocabulary":
            return self._require_vocabulary()
        if over not in self._indexes:
            if self.labels is None:
                raise VocabularyError(
                    "this model has no label names: load it from a pushed model folder "
                    f"(with {APP_DIRNAME}/{LABEL_EMBEDDINGS_DIRNAME}) or use over='vocabulary'"
                )
            if over == "labels":
                self._indexes[over] = LabelIndex(self.labels.labels, self.labels.vectors)
            else:
                self._indexes[over] = LabelIndex(self.seen_labels, self._seen_vectors)
        return self._indexes[over]

    # -- free text (a text-encoder label space) ---------------------------------------
    @property
    def text_encoder(self):
        """The bundled `TextEncoder` (loaded on first use), or None when there is none."""
        if isinstance(self._text_encoder, str | os.PathLike):
            from devise_keras.text_encoder import load_text_encoder

            encoder = load_text_encoder(
                os.fspath(self._text_encoder), trust_model=self._trust_model
            )
            if encoder.dim != self.dim:
                raise ValueError(
                    f"the bundled text encoder embeds to {encoder.dim} dimensions but the "
                    f"model to {self.dim}"
                )
            self._text_encoder = encoder
        return self._text_encoder

    def embed_texts(self, texts) -> np.ndarray:
        """(N, D) float32 unit label-space vectors of free texts, through the text encoder.

        Raises `NoTextEncoderError` when the model has none, ValueError for an empty
        list or an empty / whitespace-only text (the "rank_labels" signature refuses
        them too).
        """
        encoder = self.text_encoder
        if encoder is None:
            raise NoTextEncoderError(
                "this model has no text encoder (its label vectors are word vectors): "
                "free-text labels need a model trained with text-encoder label vectors"
            )
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("no texts given: pass at least one label string")
        blank = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if blank:
            raise ValueError(
                f"texts must be non-empty strings; got {[texts[i] for i in blank[:5]]!r} at "
                f"index {blank[:5]}"
            )
        return encoder.encode(texts)

    def _require_vocabulary(self) -> LabelIndex:
        if self.vocabulary is None:
            raise VocabularyError(
                "no word vocabulary is loaded: pass vocabulary= (a word-vector file or a "
                "label_embeddings folder) to devise_keras.load"
                + (f"; {self.vocabulary_hint}" if self.vocabulary_hint else "")
            )
        return self.vocabulary

    # -- images ----------------------------------------------------------------------
    def decode_images(self, images) -> np.ndarray:
        """float32 (N, S, S, 3) in [0, 1] from paths, encoded bytes or arrays."""
        import tensorflow as tf

        items = _as_items(images)
        out = np.empty((len(items), self.image_size, self.image_size, 3), np.float32)
        encoded: dict[int, tuple[str, bytes]] = {}
        for i, item in enumerate(items):
            name = f"image {i}"
            if isinstance(item, str | os.PathLike):
                name = str(item)
                if not storage.isfile(item):
                    raise FileNotFoundError(f"image not found: {item}")
                item = storage.read_bytes(item)
            if isinstance(item, bytes):
                encoded[i] = (name, item)
                continue
            array = np.asarray(item)
            if array.ndim == 2:
                array = np.repeat(array[:, :, None], 3, axis=2)
            if array.ndim != 3 or array.shape[2] != 3:
                raise ValueError(f"{name}: an image array must be (H, W, 3), got {array.shape}")
            pixels = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array
            out[i] = tf.image.resize(tf.cast(pixels, tf.float32), [self.image_size] * 2).numpy()
        if encoded:
            rows = list(encoded)
            data = tf.constant([encoded[i][1] for i in rows])
            try:
                out[rows] = self._decode_batch(data).numpy()
            except tf.errors.InvalidArgumentError:
                # Decode one by one to name the culprit.
                for i in rows:
                    name, item = encoded[i]
                    try:
                        out[i] = self._decode_batch(tf.constant([item])).numpy()[0]
                    except tf.errors.InvalidArgumentError as error:
                        reason = image_problem(item, self.max_image_pixels) or (
                            f"not decodable ({_tf_reason(error)})"
                        )
                        raise ImageDecodeError(f"{name}: {reason}") from None
        return out

    def _decode_batch(self, encoded):
        # One traced function, as in the serving graph: eager tf.map_fn costs ~7 ms/image.
        if self._decoder is None:
            import tensorflow as tf

            from devise_keras import features

            size, limit = self.image_size, self.max_image_pixels
            self._decoder = tf.function(
                lambda data: features.decode_images(data, size, max_pixels=limit),
                input_signature=[tf.TensorSpec([None], tf.string)],
            )
        return self._decoder(encoded)

    def embed_images(self, images, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """The projected embeddings (N, D) float32 of the images (not normalized)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        items = _as_items(images)
        chunks = range(0, len(items), batch_size)
        if progress:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc="embedding images", unit="batch", leave=False)
        out = [np.zeros((0, self.dim), np.float32)]
        for start in chunks:
            batch = self.decode_images(items[start : start + batch_size])
            outputs = self.model.predict_on_batch(batch)
            out.append(np.asarray(outputs["embedding"], np.float32))
        return np.concatenate(out)

    def predict_labels(
        self,
        images,
        k: int = 5,
        *,
        over: str = "labels",
        labels=None,
        progress: bool = False,
    ) -> list[list[tuple[str, float]]]:
        """Top-k (label, cosine) per image over a label set.

        Args:
            images: see the class docstring.
            k: labels per image.
            over: "labels" (every class, seen and unseen: zero-shot), "seen" (the
                trained classes) or "vocabulary" (every word: open vocabulary).
            labels: label strings given now (e.g. ["red fruit", "a boat"]), ranked
                through the bundled text encoder instead of a label set (as the
                "rank_labels" signature does); `over` must then stay "labels".
            progress: show a progress bar while embedding.

        k is capped at the size of the label set, as in the serving signatures.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        if labels is not None:
            if over != "labels":
                raise ValueError(f"give labels= or over={over!r}, not both")
            names = [labels] if isinstance(labels, str) else list(labels)
            index = LabelIndex(names, self.embed_texts(names))
        else:
            index = self.index(over)
        embeddings = self.embed_images(images, progress=progress)
        return _pairs(*index.search(embeddings, min(k, len(index))))

    # -- words -----------------------------------------------------------------------
    def word_vector(self, text: str) -> np.ndarray:
        """The unit vector of a word or phrase.

        With a text encoder (the label space's), the text is encoded: any phrase has a
        vector. Otherwise it is looked up in the vocabulary (or, without one, the class
        labels): as is, then case-folded, then as the mean of its words' unit vectors (a
        phrase); `VocabularyError` names the words that have no vector.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"expected a word or phrase, got {text!r}")
        if self.text_encoder is not None:
            return self.embed_texts([text])[0]
        index = self.vocabulary if self.vocabulary is not None else self.index("labels")
        row = self._row(index, text)
        if row is not None:
            return index.vectors[row]
        tokens = [t for t in _TOKEN_SPLIT.split(text.strip()) if t]
        rows = [self._row(index, t) for t in tokens]
        missing = [t for t, r in zip(tokens, rows, strict=True) if r is None]
        if missing or not rows:
            where = "the vocabulary" if self.vocabulary is not None else "the class labels"
            raise VocabularyError(
                f"no vector for {missing or [text]} in {where} ({len(index)} words)"
                + ("" if self.vocabulary is not None else "; load a vocabulary for any word")
            )
        return _unit(index.vectors[rows].mean(axis=0), f"the phrase {text!r}")

    def _row(self, index: LabelIndex, word: str) -> int | None:
        key = index
        if key not in self._rows:
            rows: dict[str, int] = {}
            folded: dict[str, int] = {}
            for i, label in enumerate(index.labels.tolist()):
                rows.setdefault(label, i)
                folded.setdefault(label.casefold(), i)
            self._rows[key], self._folded[key] = rows, folded
        row = self._rows[key].get(word)
        return row if row is not None else self._folded[key].get(word.casefold())

    def nearest_words(
        self, vector_or_word, k: int = 10, *, over: str = "vocabulary"
    ) -> list[tuple[str, float]]:
        """The k words nearest (cosine) to a vector or to a word (itself excluded).

        `over` is a label set of `index` ("vocabulary": the open vocabulary); a word is
        turned into a vector by `word_vector`.
        """
        index = self.index(over)
        exclude: set[str] = set()
        if isinstance(vector_or_word, str):
            vector = self.word_vector(vector_or_word)
            exclude = {vector_or_word, vector_or_word.casefold()}
        else:
            vector = np.asarray(vector_or_word, np.float32).reshape(-1)
            if vector.shape[0] != index.dim:
                raise ValueError(f"vector has dim {vector.shape[0]}, the words {index.dim}")
        return _search_excluding(index, vector, k, exclude)

    def analogy(
        self, image_a, word_b: str, word_c: str, k: int = 5, *, over: str = "vocabulary"
    ) -> list[tuple[str, float]]:
        """Words nearest to image_a - word_b + word_c ("visual king - man + woman").

        The image embedding is unit-normalized first, so it weighs as much as the unit
        word vectors (`word_vector`: encoded when the model has a text encoder);
        `word_b` and `word_c` themselves are left out of the answer.
        """
        for name, word in (("word_b", word_b), ("word_c", word_c)):
            if not isinstance(word, str) or not word.strip():
                raise ValueError(f"analogy: {name} must be a word or phrase, got {word!r}")
        index = self.index(over)
        embeddings = self.embed_images(image_a)
        if len(embeddings) != 1:
            raise ValueError(f"analogy takes one image, got {len(embeddings)}")
        image = _unit(embeddings[0], "the image embedding")
        query = image - self.word_vector(word_b) + self.word_vector(word_c)
        exclude = {word_b, word_c, word_b.casefold(), word_c.casefold()}
        return _search_excluding(index, _unit(query, "the analogy vector"), k, exclude)


class ImageDecodeError(ValueError):
    """An input image is empty, not an image, or truncated; the message names it."""


def bundle_max_image_pixels(path: str | os.PathLike) -> int:
    """The image-size limit of the model at `path` (its config.json), without TensorFlow."""
    import json

    config_path = os.path.join(os.path.dirname(find_app_bundle(path)), CONFIG_FILENAME)
    try:
        serving = json.loads(storage.read_text(config_path)).get("serving") or {}
        return int(serving.get("max_image_pixels") or ServingConfig.max_image_pixels)
    except (OSError, ValueError, TypeError, AttributeError):
        return ServingConfig.max_image_pixels


_PIL_LIMIT_LOCK = threading.Lock()


def image_problem(data: bytes, max_pixels: int | None = None) -> str | None:
    """Why `data` is not a usable JPEG/PNG/GIF/BMP image, or None when it decodes.

    Checked with PIL, without TensorFlow, so a command line can refuse bad files
    before it loads a model. The size comes from the header: an image over
    `max_pixels` (default `ServingConfig.max_image_pixels`) is refused before PIL
    decodes it.
    """
    from PIL import Image

    limit = ServingConfig.max_image_pixels if max_pixels is None else max_pixels

    if not data:
        return "empty file (0 bytes)"
    magic = {b"\x89PNG": "PNG", b"\xff\xd8": "JPEG", b"GIF8": "GIF", b"BM": "BMP"}
    claimed = next((name for head, name in magic.items() if data.startswith(head)), None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        image_format = image.format
    except Image.DecompressionBombError:
        # PIL refuses above 2x its own limit while reading the header; read the size
        # without that check (nothing is decoded) to name it against ours.
        with _PIL_LIMIT_LOCK:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                image = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = saved
        image_format = image.format
    except Exception:
        if claimed:
            return f"truncated or corrupt {claimed} data"
        return "not an image (no JPEG/PNG/GIF/BMP header)"
    if image_format not in ("JPEG", "PNG", "GIF", "BMP"):
        return f"a {image_format} image; JPEG/PNG/GIF/BMP are supported"
    width, height = image.size
    if width * height > limit:
        return (
            f"too large: {width} x {height} = {width * height} pixels, over the limit of "
            f"{limit} (serving.max_image_pixels)"
        )
    try:
        Image.open(io.BytesIO(data)).load()
    except Exception:
        return f"truncated or corrupt {image_format} data"
    return None


def _tf_reason(error) -> str:
    # "{{function_node ...}} Unknown image file format. ... [Op:DecodeImage] name: " -> the middle.
    message = str(getattr(error, "message", error))
    message = re.sub(r"^\{\{[^}]*\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", message, flags=re.S).strip()


def _search_excluding(index: LabelIndex, vector: np.ndarray, k: int, exclude: set[str]):
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    want = min(k + len(exclude), len(index))
    labels, scores = index.search(vector[None, :], want)
    pairs = [(str(w), float(s)) for w, s in zip(labels[0], scores[0], strict=True)]
    return [p for p in pairs if p[0] not in exclude and p[0].casefold() not in exclude][:k]


def _pairs(labels: np.ndarray, scores: np.ndarray) -> list[list[tuple[str, float]]]:
    return [
        [(str(w), float(s)) for w, s in zip(row_l, row_s, strict=True)]
        for row_l, row_s in zip(labels, scores, strict=True)
    ]


def _as_items(images) -> list:
    if isinstance(images, str | bytes | os.PathLike):
        return [images]
    if isinstance(images, np.ndarray):
        if images.ndim in (2, 3):
            return [images]
        if images.ndim == 4:
            if images.shape[0] == 0:
                raise ValueError(f"no images given (an empty batch of shape {images.shape})")
            return list(images)
        raise ValueError(f"an image array must be (H, W, 3) or (N, H, W, 3), got {images.shape}")
    if isinstance(images, Iterable):
        items = list(images)
        if not items:
            raise ValueError("no images given")
        return items
    raise TypeError(f"images must be paths, bytes or arrays, got {type(images).__name__}")


def load(
    path: str | os.PathLike,
    vocabulary: str | os.PathLike | LabelIndex | None = None,
    *,
    vocab_path: str = "",
    trust_model: bool = False,
) -> DeviseApp:
    """Opens a trained DeViSE model for applications.

    The model is a program (its bundled backbone and text encoder are SavedModels):
    one whose graph touches files or runs Python is refused with
    `graph_safety.UntrustedModelError` naming the ops and the file, unless
    `trust_model=True`. A damaged bundle file raises `BundleError` naming it.

    Args:
        path: a pushed model (`<serving>/<version>/`), the Pusher's serving folder
            (newest version), a TFX Model artifact, an `assets.extra/` folder, or a
            `model.keras` file (label names come from a `label_embeddings/` beside it,
            the text encoder, if any, from `text_encoder/`, loaded on first use).
        vocabulary: the words for open-vocabulary prediction, `nearest_words` and
            `analogy`: a word-vector file, a label_embeddings folder, or a `LabelIndex`.
            Default: the bundle's `open_vocabulary/`; without one the model still
            predicts labels, and the word features name what is missing.
        vocab_path: the vocabulary of a `.npy` matrix given as `vocabulary`.
        trust_model: load the model's SavedModels without refusing file-system and
            Python ops (only for models from a source you trust).

    Returns:
        A `DeviseApp`.

    Example:
        >>> app = devise_keras.load("runs/demo/serving", vocabulary="glove.6B.50d.npy")  # doctest: +SKIP
    """
    import keras

    import devise_keras

    devise_keras.register_keras_objects()

    keras_file = check_app_bundle(path)
    bundle = os.path.dirname(keras_file)
    config = _read_bundle_config(bundle)
    # Keras builds the HubBackbone itself: trust reaches it through this scope, and a
    # refusal comes back through the recorder (Keras rewraps errors of assets).
    with (
        graph_safety.trusted_models(trust_model),
        graph_safety.recorded_refusals() as refused,
    ):
        try:
            model = keras.models.load_model(keras_file, compile=False)
        except Exception as error:  # Keras raises many types for a bad archive
            if refused:
                raise graph_safety.UntrustedModelError(f"{keras_file}: {refused[0]}") from None
            raise BundleError(f"cannot load the model {keras_file}: {error}") from error
    labels = None
    labels_dir = os.path.join(bundle, LABEL_EMBEDDINGS_DIRNAME)
    if storage.isdir(labels_dir):
        try:
            labels = LabelEmbeddings.load(labels_dir)
        except (ValueError, OSError) as error:  # bad JSON, a damaged .npy, a missing file
            raise BundleError(f"{labels_dir}: not valid label embeddings ({error})") from None
    encoder_dir = os.path.join(bundle, TEXT_ENCODER_DIRNAME)
    text_encoder = encoder_dir if storage.isdir(encoder_dir) else None
    hint = ""
    if isinstance(vocabulary, LabelIndex):
        index = vocabulary
    elif vocabulary is not None:
        index = load_vocabulary(vocabulary, vocab_path)
    else:
        index, hint = _default_vocabulary(bundle)
    return DeviseApp(
        model,
        labels=labels,
        vocabulary=index,
        config=config,
        fingerprint=file_fingerprint(keras_file),
        vocabulary_hint=hint,
        text_encoder=text_encoder,
        trust_model=trust_model,
    )


def _default_vocabulary(bundle: str) -> tuple[LabelIndex | None, str]:
    """The vocabulary `load` uses when none is given, or None and why there is none.

    Only the bundle's `open_vocabulary/`: it travels with the model. The training
    config's word-vector paths named files of the training machine; config.json keeps
    them as provenance only, so a moved model answers the same from any directory.

    Args:
        bundle: an app-bundle folder (`<version>/assets.extra/`).

    Returns:
        (index, "") or (None, a sentence naming what is missing).

    Example:
        >>> index, why = _default_vocabulary("serving/1/assets.extra")  # doctest: +SKIP
    """
    bundled = os.path.join(bundle, OPEN_VOCABULARY_DIRNAME)
    if storage.isdir(bundled):
        return load_vocabulary(bundled), ""
    return None, (
        f"the model's bundle has no {OPEN_VOCABULARY_DIRNAME}/ (train with "
        "embeddings.open_vocabulary_size > 0 to bundle one, or give a vocabulary: "
        "vocabulary= / --vocabulary)"
    )


def image_files(directory: str | os.PathLike) -> list[Path]:
    """Image files (by extension) under `directory`, recursively, in sorted order."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {directory}")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )
