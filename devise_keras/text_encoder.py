"""A TF-Hub text-embedding model (or local SavedModel) as a label-vector source.

DeViSE (Frome et al., NIPS 2013) embeds label names with word vectors; a sentence
encoder (the Universal Sentence Encoder, its multilingual version, NNLM) embeds a
label's name *and* its description as one vector, and any string a user types at
request time lands in the same space. The contract is TF-Hub's text embedding: the
SavedModel's root object is callable on a tf.string tensor of shape (B,) and returns
float32 (B, D) (`hub.load(handle)(["a sentence"])`).

`tensorflow_text` is imported before loading when it is installed: USE-multilingual
and other SentencePiece models need its ops registered, else loading fails with "Op
type not registered 'SentencepieceOp'".
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from devise_keras import graph_safety, hub_handles, storage

_OUTPUT_KEYS = {"outputs", "default"}


def encoder_output(outputs):
    """The (B, D) tensor of a text encoder's call: TF-Hub models may return a dict
    ({"outputs": ...} or {"default": ...}, or a single entry)."""
    if isinstance(outputs, dict):
        keys = [k for k in ("outputs", "default") if k in outputs]
        return outputs[keys[0]] if keys else next(iter(outputs.values()))
    return outputs


class TextEncoderError(ValueError):
    """A text-encoder handle cannot be resolved, loaded, or does not map strings to vectors."""


def _import_text_ops() -> None:
    try:
        import tensorflow_text  # noqa: F401  (registers SentencePiece and other text ops)
    except ImportError:
        pass


def resolve_text_encoder(handle: str) -> str:
    """A SavedModel directory for a TF-Hub handle or path; TextEncoderError naming it."""
    try:
        return hub_handles.resolve(handle)
    except hub_handles.HubHandleError as error:
        raise TextEncoderError(f"text encoder {handle!r}: {error}") from None


class TextEncoder:
    """Strings -> unit-norm vectors through a TF-Hub text-embedding SavedModel.

    Loaded once and probed on two strings, so a handle that is missing, not a
    SavedModel, or returns the wrong rank or dtype fails here, naming the handle,
    before any pipeline work.

    Args:
        handle: a TF-Hub handle (`hub_handles.resolve`: downloaded once into
            TFHUB_CACHE_DIR) or a local / object-store SavedModel directory.
        trust_model: load it even when its graph touches files or runs Python
            (default False: `graph_safety.UntrustedModelError`; the encoder is a
            program, see `graph_safety`).

    Example:
        >>> encoder = TextEncoder("~/.cache/devise-keras/text_encoders/use_multilingual_v3/hub")  # doctest: +SKIP
        >>> encoder.encode(["red fruit", "rote Frucht"]).shape                                   # doctest: +SKIP
        (2, 512)
    """

    def __init__(self, handle: str, trust_model: bool = False):
        self.handle = handle
        self.path = resolve_text_encoder(os.path.expanduser(handle))
        graph_safety.check_saved_model(self.path, f"text encoder {handle!r}", trust_model)
        _import_text_ops()
        try:
            self.module = tf.saved_model.load(self.path)
        except Exception as error:  # unregistered ops, corrupt files, ...
            raise TextEncoderError(
                f"text encoder {handle!r}: cannot load the SavedModel at {self.path} "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
            ) from None
        if not callable(self.module):
            raise TextEncoderError(
                f"text encoder {handle!r}: the SavedModel at {self.path} is not callable; a "
                "text embedding maps a tf.string (B,) tensor to float (B, D) "
                "(TF-Hub's text-embedding format)"
            )
        probe = self._raw(["a probe", "another probe"])
        self.dim = int(probe.shape[1])

    def _raw(self, texts: Sequence[str]) -> np.ndarray:
        try:
            out = self.module(tf.constant(list(texts), tf.string))
        except Exception as error:
            raise TextEncoderError(
                f"text encoder {self.handle!r} failed on a batch of {len(texts)} strings "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
            ) from None
        if isinstance(out, dict) and len(out) != 1 and not _OUTPUT_KEYS & set(out):
            raise TextEncoderError(
                f"text encoder {self.handle!r} returns a dict with keys {sorted(out)}; "
                "expected one tensor (B, D)"
            )
        out = encoder_output(out)
        if not isinstance(out, tf.Tensor) or not out.dtype.is_floating:
            raise TextEncoderError(
                f"text encoder {self.handle!r} returns {getattr(out, 'dtype', type(out).__name__)}"
                ", expected a float tensor (B, D)"
            )
        if out.shape.rank != 2 or out.shape[0] != len(texts):
            raise TextEncoderError(
                f"text encoder {self.handle!r} maps {len(texts)} strings to shape "
                f"{tuple(out.shape)}, expected ({len(texts)}, D)"
            )
        return out.numpy().astype(np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """(N, D) float32 unit rows for `texts`, encoded `batch_size` at a time."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        chunks = [self._raw(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        vectors = np.concatenate(chunks)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        bad = np.flatnonzero(~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0))
        if bad.size:
            raise TextEncoderError(
                f"text encoder {self.handle!r} gave a zero or non-finite vector for "
                f"{[texts[i][:60] for i in bad[:5]]}"
            )
        return vectors / norms


def load_text_encoder(handle: str, trust_model: bool = False) -> TextEncoder:
    """Loads and checks a text encoder (see `TextEncoder`; `trust_model` as there)."""
    if not isinstance(handle, str) or not handle.strip():
        raise TextEncoderError(f"text encoder handle must be a non-empty string, got {handle!r}")
    return TextEncoder(handle, trust_model=trust_model)


def copy_text_encoder(encoder: TextEncoder, target_dir: str) -> str:
    """Copies the encoder's SavedModel directory to `target_dir` (for app bundles)."""
    storage.copy_tree(encoder.path, target_dir)
    return target_dir
