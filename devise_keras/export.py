"""Serving signatures for a trained DeViSE (or softmax) model, for TF Serving.

`export_serving_model` writes a SavedModel with `keras.export.ExportArchive` (a
plain `tf.saved_model.save` of a Keras 3 model is not runnable by the TF1 loader
behind TF Serving and `saved_model_cli`). The label strings are a constant of the
graph, so a pushed model answers with label names and needs no side files.

Signatures (B = batch, L = labels, D = embedding width, k = min(top_k, L)):

- "serving_default": `examples` tf.string (B,) serialized tf.Examples holding the
  encoded image under `features.IMAGE_KEY` (what TFMA and the Evaluator feed) -> as
  "predict".
- "predict": `image_bytes` tf.string (B,) raw JPEG/PNG/GIF/BMP bytes -> {"scores":
  (B, L seen), "embedding": (B, D), "top_k_labels": (B, k) string, "top_k_scores":
  (B, k)}. Scores are the model's own: dot products of the (unnormalised) projection
  with the unit SEEN label vectors (the softmax baseline: probabilities, no
  "embedding").
- "embed": `image_bytes` as above -> {"embedding": (B, D)}, the projection (not
  normalised).
- "zero_shot": `image_bytes` -> {"scores": (B, L all), "top_k_labels", "top_k_scores"}:
  cosines of the unit image embedding with the unit vector of EVERY bundled label,
  seen and unseen.
- "embed_text": `texts` tf.string (B,) -> {"embedding": (B, D)}: the text encoder's
  vectors, unit-normalised (label space).
- "rank_labels": `image_bytes` (B,) and `labels` tf.string (L,), label strings given
  per request -> {"scores": (B, L), "top_k_labels": (B, min(top_k, L)),
  "top_k_scores"}: cosines of the unit image embedding with the encoder's unit vector
  of each request label (zero-shot over labels nobody trained on).

"embed" needs a model with an "embedding" output (not the softmax baseline);
"zero_shot" is written when `all_labels`/`all_label_vectors` are given, "embed_text"
and "rank_labels" when a `text_encoder` is: the encoder's SavedModel is tracked by
the export, so the pushed model is self-contained and a TF Serving client ranks
labels nobody trained on. "predict" ranks by the training score (a dot product), the
three new ones by cosine: for one image both give the same order over the same
labels, only the scale differs; the apps (`devise_keras.apps`) print cosines too.

TF Serving REST (checked against its `json_tensor.cc`): a `{"b64": "<base64>"}`
object given for any DT_STRING input is base64-decoded, whatever the input's name, so
with `"signature_name": "predict"` each of these bodies works:
`{"instances": [{"b64": ...}, ...]}` (one named input: the list is that input),
`{"instances": [{"image_bytes": {"b64": ...}}, ...]}` (named),
`{"inputs": [{"b64": ...}, ...]}` or `{"inputs": {"image_bytes": [{"b64": ...}]}}`
(columnar). Row requests are answered `{"predictions": [{"scores": [...],
"embedding": [...], "top_k_labels": ["cat", ...], "top_k_scores": [...]}, ...]}`,
columnar ones `{"outputs": {"scores": [[...]], ...}}`. The "_bytes" suffix of the
input follows the Cloud ML Engine convention; TF Serving uses it only for OUTPUTS (an
output named "*_bytes" is returned base64-encoded), so no output here carries it and
the label strings come back as plain JSON strings. The serialized tf.Examples of
"serving_default" are sent the same way (`{"signature_name": "serving_default",
"instances": [{"b64": <serialized Example>}]}`).

"rank_labels" takes two inputs of different batch sizes, so over REST it needs the
columnar form: `{"signature_name": "rank_labels", "inputs": {"image_bytes": [{"b64":
...}], "labels": ["red fruit", "a boat"]}}`, answered `{"outputs": {"scores": [[...]],
"top_k_labels": [[...]], "top_k_scores": [[...]]}}`.

Bad input: a batch element that is not a JPEG/PNG/GIF/BMP image fails the whole
request with an InvalidArgumentError "... is not a JPEG/PNG/GIF/BMP image, at batch
index [[i]]" (a truncated image with a valid header fails in TF's decoder with its
own InvalidArgumentError), and an empty batch with "image_bytes is empty".
"rank_labels" with no labels, or an empty or whitespace-only string among them (or
among the `texts` of "embed_text"), fails the same way ("labels: ... empty ...").
The TF2 loader raises it as a Python exception, a TF1 session (the loader TF
Serving runs) returns it as the request's status, and TF Serving answers HTTP 400
`{"error": "..."}`; no process crashes.

A SavedModel holding a SentencePiece-based encoder (USE-multilingual) needs
`import tensorflow_text` in the loading process (TF Serving: a build with the
tensorflow-text ops) before it loads, else "Op type not registered 'SentencepieceOp'".
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from devise_keras import features, storage
from devise_keras.config import ServingConfig
from devise_keras.text_encoder import encoder_output

SERVING_DEFAULT = "serving_default"
PREDICT = "predict"
EMBED = "embed"
ZERO_SHOT = "zero_shot"
EMBED_TEXT = "embed_text"
RANK_LABELS = "rank_labels"
EXAMPLES_INPUT = "examples"
IMAGE_BYTES_INPUT = "image_bytes"
TEXTS_INPUT = "texts"
LABELS_INPUT = "labels"
TOP_K_LABELS = "top_k_labels"
TOP_K_SCORES = "top_k_scores"

# Leading bytes of the formats tf.io.decode_image reads.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def _check_encoded(encoded: tf.Tensor) -> tf.Tensor:
    head = tf.strings.substr(encoded, 0, 4)
    valid = tf.zeros_like(encoded, dtype=tf.bool)
    for magic in _MAGIC:
        valid = tf.logical_or(valid, tf.strings.substr(head, 0, len(magic)) == magic)
    # An empty batch is refused here, by name: further on it fails inside the
    # backbone's batch norm with an error about a node.
    nonempty = tf.debugging.Assert(
        tf.size(encoded) > 0, ["image_bytes is empty: send at least one image"]
    )
    check = tf.debugging.Assert(
        tf.reduce_all(valid),
        [
            "image_bytes: an element is not a JPEG/PNG/GIF/BMP image, at batch index",
            tf.where(tf.logical_not(valid)),
        ],
        summarize=10,
    )
    with tf.control_dependencies([nonempty, check]):
        return tf.identity(encoded)


_BLANK = r"[\s\p{Z}]*"  # empty or only whitespace (ASCII and Unicode spaces)


def _check_texts(texts: tf.Tensor, name: str, *, nonempty: bool) -> tf.Tensor:
    """`texts` once it holds no empty/blank string (and, if `nonempty`, >= 1 string)."""
    checks = []
    if nonempty:
        checks.append(
            tf.debugging.Assert(
                tf.size(texts) > 0,
                [f"{name}: the list is empty; send at least one label string"],
            )
        )
    blank = tf.strings.regex_full_match(texts, _BLANK)
    checks.append(
        tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(blank)),
            [f"{name}: an empty or whitespace-only string, at index", tf.where(blank)],
            summarize=10,
        )
    )
    with tf.control_dependencies(checks):
        return tf.identity(texts)


def _unit_rows(vectors: tf.Tensor) -> tf.Tensor:
    # Per row (never the whole batch's norm); a zero row stays zero, its cosines 0.
    return tf.math.l2_normalize(tf.cast(vectors, tf.float32), axis=-1)


def _ranked(scores: tf.Tensor, names: tf.Tensor, k) -> dict:
    top_scores, top_indices = tf.math.top_k(scores, k=k)
    return {
        "scores": scores,
        TOP_K_LABELS: tf.gather(names, top_indices),
        TOP_K_SCORES: top_scores,
    }


def export_serving_model(
    model: keras.Model,
    labels: Sequence[str],
    export_dir: str,
    *,
    image_size: int,
    top_k: int = 5,
    all_labels: Sequence[str] | None = None,
    all_label_vectors=None,
    text_encoder=None,
    max_image_pixels: int = ServingConfig.max_image_pixels,
) -> str:
    """Exports `model` with its serving signatures (see the module docstring).

    Implements the serving side of DeViSE (Frome et al., NIPS 2013): the model ranks
    its label vectors by dot product with the projected image; the signatures return
    the top-k label names with their scores. With every label's vector it also
    answers zero-shot ("zero_shot", cosines over seen + unseen labels), and with a
    text encoder it ranks label strings given at request time ("rank_labels") and
    embeds text ("embed_text").

    A SentencePiece-based encoder (USE-multilingual) puts tensorflow-text ops into
    the SavedModel: `import tensorflow_text` before loading it (the TF2 or TF1
    loader, `saved_model_cli`), and serve it with a TF Serving build that has them.

    Args:
        model: a model from `build_devise_model` (outputs "scores" and "embedding")
            or `build_softmax_model` (output "scores"), with input float32 images
            (B, image_size, image_size, 3) in [0, 1].
        labels: the L label names, in the order of the "scores" columns.
        export_dir: directory to write the SavedModel to (must not hold one yet).
        image_size: size the images are decoded and resized to (as in training).
        top_k: labels returned per image (capped at L).
        max_image_pixels: images over this many pixels (from their header) are refused
            before decoding: InvalidArgumentError naming the limit and batch index.
        all_labels: every label (seen and unseen) for the "zero_shot" signature;
            given with `all_label_vectors`, or neither.
        all_label_vectors: (len(all_labels), D) vectors of `all_labels` (rows are
            unit-normalised here).
        text_encoder: a `devise_keras.text_encoder.TextEncoder` mapping strings into
            the label space (D wide), or None; adds "embed_text" and "rank_labels".

    Returns:
        `export_dir`.

    Example:
        >>> export_serving_model(model, ["cat", "dog"], "/tmp/serving/1",  # doctest: +SKIP
        ...                      image_size=32, top_k=5,
        ...                      all_labels=["cat", "dog", "owl"], all_label_vectors=vectors,
        ...                      text_encoder=load_text_encoder("use_multilingual/hub"))
        >>> served = tf.saved_model.load("/tmp/serving/1")                  # doctest: +SKIP
        >>> served.signatures["rank_labels"](                               # doctest: +SKIP
        ...     image_bytes=tf.constant([png]), labels=tf.constant(["red fruit", "a boat"]))
    """
    from devise_keras.label_embeddings import unit_normalize

    labels = [str(label) for label in labels]
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
    if not labels:
        raise ValueError("labels is empty")
    if len(set(labels)) != len(labels):
        raise ValueError("labels has duplicates; each score column needs its own name")
    if (all_labels is None) != (all_label_vectors is None):
        raise ValueError("give all_labels and all_label_vectors together (or neither)")
    if tf.saved_model.contains_saved_model(export_dir):
        raise FileExistsError(f"{export_dir} already holds a SavedModel; choose a new directory")
    probe = model(np.zeros((1, image_size, image_size, 3), np.float32), training=False)
    if not isinstance(probe, dict) or "scores" not in probe:
        raise ValueError(
            "model must return a dict with a 'scores' output (build_devise_model or "
            f"build_softmax_model); it returns {type(probe).__name__}"
        )
    if probe["scores"].shape[-1] != len(labels):
        raise ValueError(
            f"model scores {probe['scores'].shape[-1]} labels but {len(labels)} label names "
            "were given"
        )
    has_embedding = "embedding" in probe
    dim = int(probe["embedding"].shape[-1]) if has_embedding else None
    if not has_embedding and (all_labels is not None or text_encoder is not None):
        raise ValueError(
            "zero_shot, embed_text and rank_labels need a model with an 'embedding' output "
            "(build_devise_model), not a softmax baseline"
        )
    if all_labels is not None:
        all_labels = [str(label) for label in all_labels]
        all_vectors = unit_normalize(all_label_vectors, "all_label_vectors")
        if not all_labels or len(all_labels) != all_vectors.shape[0]:
            raise ValueError(
                f"{len(all_labels)} all_labels but {all_vectors.shape[0]} all_label_vectors rows"
            )
        if all_vectors.shape[1] != dim:
            raise ValueError(
                f"all_label_vectors have dim {all_vectors.shape[1]}, the model embeds to {dim}"
            )
    if text_encoder is not None and int(text_encoder.dim) != dim:
        raise ValueError(
            f"the text encoder {getattr(text_encoder, 'handle', '')!r} embeds to "
            f"{text_encoder.dim} dimensions, the model to {dim}: use the encoder the label "
            "vectors came from"
        )
    k = min(top_k, len(labels))
    label_array = np.array(labels, dtype=object)

    def predict_images(images):
        outputs = model(images, training=False)
        scores = tf.cast(outputs["scores"], tf.float32)
        result = _ranked(scores, tf.constant(label_array, tf.string), k)
        if has_embedding:
            result["embedding"] = tf.cast(outputs["embedding"], tf.float32)
        return result

    def decode(encoded):
        return features.decode_images(
            _check_encoded(encoded), image_size, max_pixels=max_image_pixels
        )

    def unit_image_embedding(image_bytes):
        return _unit_rows(model(decode(image_bytes), training=False)["embedding"])

    def serve_examples(examples):
        parsed = tf.io.parse_example(
            examples, {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}
        )
        return predict_images(decode(parsed[features.IMAGE_KEY]))

    def predict(image_bytes):
        return predict_images(decode(image_bytes))

    def embed(image_bytes):
        outputs = model(decode(image_bytes), training=False)
        return {"embedding": tf.cast(outputs["embedding"], tf.float32)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVING_DEFAULT,
        serve_examples,
        input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)],
    )
    bytes_spec = tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)
    archive.add_endpoint(PREDICT, predict, input_signature=[bytes_spec])
    if has_embedding:
        archive.add_endpoint(EMBED, embed, input_signature=[bytes_spec])
    if all_labels is not None:
        all_names = np.array(all_labels, dtype=object)
        zero_shot_k = min(top_k, len(all_labels))

        def zero_shot(image_bytes):
            cosines = tf.matmul(unit_image_embedding(image_bytes), all_vectors, transpose_b=True)
            return _ranked(cosines, tf.constant(all_names, tf.string), zero_shot_k)

        archive.add_endpoint(ZERO_SHOT, zero_shot, input_signature=[bytes_spec])
    if text_encoder is not None:
        encoder = text_encoder.module
        # Its variables and lookup tables go into this SavedModel: self-contained.
        archive.track(encoder)

        def encode(texts, name, *, nonempty):
            return _unit_rows(encoder_output(encoder(_check_texts(texts, name, nonempty=nonempty))))

        def embed_text(texts):
            return {"embedding": encode(texts, TEXTS_INPUT, nonempty=False)}

        def rank_labels(image_bytes, labels):
            label_vectors = encode(labels, LABELS_INPUT, nonempty=True)
            cosines = tf.matmul(unit_image_embedding(image_bytes), label_vectors, transpose_b=True)
            return _ranked(cosines, labels, tf.minimum(top_k, tf.size(labels)))

        archive.add_endpoint(
            EMBED_TEXT,
            embed_text,
            input_signature=[tf.TensorSpec([None], tf.string, name=TEXTS_INPUT)],
        )
        archive.add_endpoint(
            RANK_LABELS,
            rank_labels,
            input_signature=[bytes_spec, tf.TensorSpec([None], tf.string, name=LABELS_INPUT)],
        )
    storage.makedirs(export_dir)
    archive.write_out(export_dir, verbose=False)
    return export_dir
