"""The tf.Example contract between ImageExampleGen, the trainers, TFMA and serving.

Records hold the encoded image bytes as they are (JPEG/PNG/GIF/BMP) plus the label;
decoding and resizing happen in the input pipeline (`decode_images`), the same
function the serving signatures use, so training and serving cannot drift apart.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

# Raised by read_class_split; the class split has its one home in class_split.py.
from devise_keras.class_split import ClassSplitError  # noqa: F401

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


# Bytes of the header that `image_header_info` reads (PNG IHDR, GIF screen, BMP DIB).
_HEADER_BYTES = 54


def _le(raw: tf.Tensor, start: int, size: int) -> tf.Tensor:
    """Little-endian unsigned int of raw[start:start+size] (raw: uint8 bytes as int64)."""
    return tf.add_n([raw[start + i] * (256**i) for i in range(size)])


def _be(raw: tf.Tensor, start: int, size: int) -> tf.Tensor:
    return tf.add_n([raw[start + i] * (256 ** (size - 1 - i)) for i in range(size)])


def _header_bytes(encoded: tf.Tensor) -> tf.Tensor:
    # Padded, so a truncated header reads as zeros instead of failing here.
    head = tf.strings.substr(encoded, 0, _HEADER_BYTES) + b"\0" * _HEADER_BYTES
    raw = tf.io.decode_raw(tf.strings.substr(head, 0, _HEADER_BYTES), tf.uint8)
    return tf.cast(raw, tf.int64)


def image_header_info(encoded: tf.Tensor) -> tf.Tensor:
    """int64 [height, width, bmp_bits_per_pixel] of ONE encoded image, from its header only.

    Read before anything is decoded, so a small file that claims a huge picture (a
    decompression bomb) is refused without allocating it: PNG's IHDR, GIF's logical
    screen, the BMP info header, and JPEG's SOF marker (`tf.image.extract_jpeg_shape`).
    bits per pixel is 0 for formats other than BMP; unknown formats give [0, 0, 0]
    (their decode fails anyway).
    """
    raw = _header_bytes(encoded)
    magic = tf.strings.substr(encoded, 0, 4)

    def png():
        return tf.stack([_be(raw, 20, 4), _be(raw, 16, 4), tf.constant(0, tf.int64)])

    def gif():
        return tf.stack([_le(raw, 8, 2), _le(raw, 6, 2), tf.constant(0, tf.int64)])

    def bmp():
        height = _le(raw, 22, 4)
        height = tf.where(height >= 2**31, 2**32 - height, height)  # top-down: negative
        return tf.stack([height, _le(raw, 18, 4), _le(raw, 28, 2)])

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64)
        return tf.stack([shape[0], shape[1], tf.constant(0, tf.int64)])

    return tf.case(
        [
            (tf.equal(tf.strings.substr(magic, 0, 4), b"\x89PNG"), png),
            (tf.equal(tf.strings.substr(magic, 0, 3), b"GIF"), gif),
            (tf.equal(tf.strings.substr(magic, 0, 2), b"BM"), bmp),
            (tf.equal(tf.strings.substr(magic, 0, 3), b"\xff\xd8\xff"), jpeg),
        ],
        default=lambda: tf.zeros([3], tf.int64),
        exclusive=True,
    )


def check_image_pixels(encoded: tf.Tensor, max_pixels: int, what: str = "image_bytes"):
    """`encoded` (B,) unchanged, after asserting every image has <= `max_pixels` pixels.

    Raises InvalidArgumentError naming the limit and the batch index of each image
    over it (in a served request: HTTP 400, the server keeps serving).
    """
    info = tf.map_fn(image_header_info, encoded, fn_output_signature=tf.TensorSpec([3], tf.int64))
    pixels = info[:, 0] * info[:, 1]
    too_large = pixels > max_pixels
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(too_large)),
        [
            f"{what}: an image has more than the limit of {max_pixels} pixels "
            "(width x height, read from its header), at batch index",
            tf.where(too_large),
            "pixels",
            tf.boolean_mask(pixels, too_large),
        ],
        summarize=10,
    )
    with tf.control_dependencies([check]):
        return tf.identity(encoded)


def _decode_palette_bmp(encoded: tf.Tensor, bits: tf.Tensor) -> tf.Tensor:
    """uint8 (H, W, 3) of an uncompressed 8-bit palette BMP (tf.io.decode_bmp ignores
    the palette and returns the indices as grey, so the colours were wrong).

    1/2/4-bit and RLE-compressed palette BMPs are refused with InvalidArgumentError.
    """
    raw = _header_bytes(encoded)
    offset, dib = _le(raw, 10, 4), _le(raw, 14, 4)
    width, height_field = _le(raw, 18, 4), _le(raw, 22, 4)
    compression, colors = _le(raw, 30, 4), _le(raw, 46, 4)
    supported = tf.logical_and(
        tf.equal(bits, 8), tf.logical_and(tf.equal(compression, 0), dib >= 40)
    )
    check = tf.debugging.Assert(
        supported,
        [
            "a palette BMP must be uncompressed 8-bit to be decoded; got bits per pixel",
            bits,
            "compression",
            compression,
            "- send PNG instead",
        ],
    )
    with tf.control_dependencies([check]):
        colors = tf.where(tf.equal(colors, 0), tf.constant(256, tf.int64), colors)
        top_down = height_field >= 2**31
        height = tf.where(top_down, 2**32 - height_field, height_field)
        palette = tf.io.decode_raw(tf.strings.substr(encoded, 14 + dib, colors * 4), tf.uint8)
        palette = tf.reshape(palette, [-1, 4])[:, 2::-1]  # BGR0 -> RGB
        stride = (width * 8 + 31) // 32 * 4
        rows = tf.io.decode_raw(tf.strings.substr(encoded, offset, stride * height), tf.uint8)
        indices = tf.reshape(rows, tf.stack([height, stride]))[:, :width]
        indices = tf.minimum(
            tf.cast(indices, tf.int64), tf.cast(tf.shape(palette)[0] - 1, tf.int64)
        )
        image = tf.gather(palette, indices)
        return tf.cond(top_down, lambda: image, lambda: tf.reverse(image, axis=[0]))


def decode_image_uint8(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decodes one encoded image to uint8 (size, size, 3), resized by `resize_pixels`.

    8-bit palette BMPs are decoded through their palette (as ImageExampleGen's
    re-encoding does for training); see `_decode_palette_bmp`.
    """
    bits = image_header_info(encoded)[2]
    image = tf.cond(
        tf.logical_and(bits > 0, bits <= 8),
        lambda: _decode_palette_bmp(encoded, bits),
        lambda: tf.ensure_shape(
            tf.io.decode_image(encoded, channels=3, expand_animations=False), [None, None, 3]
        ),
    )
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


def decode_images(encoded: tf.Tensor, image_size: int, max_pixels: int | None = None) -> tf.Tensor:
    """Decodes a batch of encoded images to float32 (batch, size, size, 3) in [0, 1].

    With `max_pixels`, every image's header is checked first (`check_image_pixels`)
    and the batch is refused before any image is decoded if one is larger: the one
    decode of the serving signatures and the apps.
    """
    if max_pixels is not None:
        encoded = check_image_pixels(encoded, max_pixels)
    return tf.map_fn(
        lambda data: decode_image(data, image_size),
        encoded,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )
