"""Serving signatures for a trained DeViSE (or softmax) model, for TF Serving.

`export_serving_model` writes a SavedModel with `keras.export.ExportArchive` (a
plain `tf.saved_model.save` of a Keras 3 model is not runnable by the TF1 loader
behind TF Serving and `saved_model_cli`). The label strings are a constant of the
graph, so a pushed model answers with label names and needs no side files.

Signatures (B = batch, L = labels, D = embedding width, k = min(top_k, L)):

- "serving_default": `examples` tf.string (B,) serialized tf.Examples holding the
  encoded image under `features.IMAGE_KEY` (what TFMA and the Evaluator feed).
- "predict": `image_bytes` tf.string (B,) raw JPEG/PNG/GIF/BMP bytes.
- "embed": `image_bytes` as above -> {"embedding": (B, D)} only.

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

"serving_default" and "predict" return {"scores": (B, L) float32, "embedding":
(B, D) float32, "top_k_labels": (B, k) string, "top_k_scores": (B, k) float32}
(a model without an "embedding" output, the softmax baseline, omits it and has no
"embed" signature).

Bad input: a batch element that is not a JPEG/PNG/GIF/BMP image fails the whole
request with an InvalidArgumentError "... is not a JPEG/PNG/GIF/BMP image, at batch
index [[i]]" (a truncated image with a valid header fails in TF's decoder with its
own InvalidArgumentError). The TF2 loader raises it as a Python exception, a TF1
session (the loader TF Serving runs) returns it as the request's status, and TF
Serving answers HTTP 400 `{"error": "..."}`; no process crashes.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from devise_keras import features, storage

SERVING_DEFAULT = "serving_default"
PREDICT = "predict"
EMBED = "embed"
EXAMPLES_INPUT = "examples"
IMAGE_BYTES_INPUT = "image_bytes"
TOP_K_LABELS = "top_k_labels"
TOP_K_SCORES = "top_k_scores"

# Leading bytes of the formats tf.io.decode_image reads.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def _check_encoded(encoded: tf.Tensor) -> tf.Tensor:
    head = tf.strings.substr(encoded, 0, 4)
    valid = tf.zeros_like(encoded, dtype=tf.bool)
    for magic in _MAGIC:
        valid = tf.logical_or(valid, tf.strings.substr(head, 0, len(magic)) == magic)
    check = tf.debugging.Assert(
        tf.reduce_all(valid),
        [
            "image_bytes: an element is not a JPEG/PNG/GIF/BMP image, at batch index",
            tf.where(tf.logical_not(valid)),
        ],
        summarize=10,
    )
    with tf.control_dependencies([check]):
        return tf.identity(encoded)


def export_serving_model(
    model: keras.Model,
    labels: Sequence[str],
    export_dir: str,
    *,
    image_size: int,
    top_k: int = 5,
) -> str:
    """Exports `model` with the "serving_default", "predict" and "embed" signatures.

    Implements the serving side of DeViSE (Frome et al., NIPS 2013): the model ranks
    its label vectors by dot product with the projected image; the signatures return
    the top-k label names with their scores.

    Args:
        model: a model from `build_devise_model` (outputs "scores" and "embedding")
            or `build_softmax_model` (output "scores"), with input float32 images
            (B, image_size, image_size, 3) in [0, 1].
        labels: the L label names, in the order of the "scores" columns.
        export_dir: directory to write the SavedModel to (must not hold one yet).
        image_size: size the images are decoded and resized to (as in training).
        top_k: labels returned per image (capped at L).

    Returns:
        `export_dir`.

    Example:
        >>> export_serving_model(model, ["cat", "dog"], "/tmp/serving/1",  # doctest: +SKIP
        ...                      image_size=32, top_k=5)
        >>> served = tf.saved_model.load("/tmp/serving/1")                  # doctest: +SKIP
        >>> served.signatures["predict"](image_bytes=tf.constant([png]))  # doctest: +SKIP
    """
    labels = [str(label) for label in labels]
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
    if not labels:
        raise ValueError("labels is empty")
    if len(set(labels)) != len(labels):
        raise ValueError("labels has duplicates; each score column needs its own name")
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
    k = min(top_k, len(labels))
    label_array = np.array(labels, dtype=object)

    def predict_images(images):
        outputs = model(images, training=False)
        scores = tf.cast(outputs["scores"], tf.float32)
        top_scores, top_indices = tf.math.top_k(scores, k=k)
        result = {
            "scores": scores,
            TOP_K_LABELS: tf.gather(tf.constant(label_array, tf.string), top_indices),
            TOP_K_SCORES: top_scores,
        }
        if has_embedding:
            result["embedding"] = tf.cast(outputs["embedding"], tf.float32)
        return result

    def decode(encoded):
        return features.decode_images(_check_encoded(encoded), image_size)

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
    bytes_spec = [tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)]
    archive.add_endpoint(PREDICT, predict, input_signature=bytes_spec)
    if has_embedding:
        archive.add_endpoint(EMBED, embed, input_signature=bytes_spec)
    storage.makedirs(export_dir)
    archive.write_out(export_dir, verbose=False)
    return export_dir
