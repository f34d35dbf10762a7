"""The tf.Example contract between ImageExampleGen, the trainers, TFMA and serving.

Records hold the encoded image bytes as they are (JPEG/PNG/GIF/BMP) plus the label;
decoding and resizing happen in the input pipeline (`decode_images`), the same
function the serving signatures use, so training and serving cannot drift apart.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

IMAGE_KEY = "image/encoded"
LABEL_TEXT_KEY = "image/class/text"
# Index into the class vocabulary, which lists the seen classes (sorted) first and the
# unseen classes (sorted) after them: for seen images the id is also the index into the
# trained model's score vector, which TFMA needs for hit@k.
LABEL_ID_KEY = "image/class/label"
FILENAME_KEY = "image/filename"

# Files the ImageExampleGen writes at the root of its Examples artifact URI.
# {"classes": seen + unseen, "seen": [...sorted], "unseen": [...sorted]}
CLASS_SPLIT_FILE = "class_split.json"
SKIP_REPORT_FILE = "skipped_images.csv"  # path,reason
GEN_REPORT_FILE = "report.json"  # counts per split/class and skip counts

SPLITS = ("train", "eval", "unseen")

FEATURE_SPEC = {
    IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    LABEL_TEXT_KEY: tf.io.FixedLenFeature([], tf.string),
    LABEL_ID_KEY: tf.io.FixedLenFeature([], tf.int64),
}


class ClassSplitError(ValueError):
    """An Examples artifact has no valid class_split.json."""


def read_class_split(examples_uri: str, reader: str = "this step") -> dict[str, list[str]]:
    """The class vocabulary of an Examples artifact: {"classes", "seen", "unseen"}.

    `classes` is `seen + unseen` (the label-id order). Raises ClassSplitError naming the
    file and what is wrong; `reader` names who needs it, for the message.
    """
    path = os.path.join(examples_uri, CLASS_SPLIT_FILE)
    if not tf.io.gfile.exists(path):
        raise ClassSplitError(
            f"the Examples artifact at {examples_uri} has no {CLASS_SPLIT_FILE}: {reader} needs "
            "the Examples of ImageExampleGen, which records the class vocabulary and the "
            "seen/unseen split there"
        )
    with tf.io.gfile.GFile(path) as f:
        split = json.loads(f.read())
    classes = split.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ClassSplitError(f"{path}: 'classes' must be a non-empty list of strings")
    seen = list(split.get("seen", classes))
    unseen = list(split.get("unseen", []))
    if not seen or seen + unseen != classes:
        raise ClassSplitError(
            f"{path}: 'classes' must be the (non-empty) 'seen' followed by 'unseen' "
            "(the label-id order)"
        )
    return {"classes": list(classes), "seen": seen, "unseen": unseen}


def split_record_count(examples_uri: str, split: str) -> int | None:
    """Records ImageExampleGen wrote to `split` (from its report.json), or None.

    None when the artifact has no report (Examples from another ExampleGen): the
    caller then counts the records itself.
    """
    path = os.path.join(examples_uri, GEN_REPORT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        splits = json.loads(f.read()).get("splits", {})
    count = splits.get(split)
    return int(count) if isinstance(count, int) else None


def resize_pixels(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """uint8 (H, W, C) -> uint8 (size, size, C): the one resize of training and serving.

    Bilinear with antialiasing (a downscale averages every source pixel, as PIL's
    does), rounded back to uint8. ImageExampleGen stores what this returns (PNG,
    lossless) and `decode_image` applies it to served images, so both reach the
    model with the same pixels.
    """
    resized = tf.image.resize(
        tf.cast(image, tf.float32), [image_size, image_size], method="bilinear", antialias=True
    )
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def decode_image_uint8(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decodes one encoded image to uint8 (size, size, 3), resized by `resize_pixels`."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    # Images already at the model's size (the common case after ImageExampleGen's
    # resize) skip the resize, which costs as much as the decode.
    same_size = tf.reduce_all(tf.equal(tf.shape(image)[:2], [image_size, image_size]))
    image = tf.cond(same_size, lambda: image, lambda: resize_pixels(image, image_size))
    return tf.ensure_shape(image, [image_size, image_size, 3])


def decode_image(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decodes one encoded image to float32 (size, size, 3) in [0, 1].

    Grey images are expanded to 3 channels; any other size is resized by
    `resize_pixels` to `image_size`. Bytes that are not an image raise
    InvalidArgumentError.
    """
    return tf.cast(decode_image_uint8(encoded, image_size), tf.float32) / 255.0


def decode_images(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decodes a batch of encoded images to float32 (batch, size, size, 3) in [0, 1]."""
    return tf.map_fn(
        lambda data: decode_image(data, image_size),
        encoded,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )
