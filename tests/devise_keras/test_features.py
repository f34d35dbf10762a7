"""The one image decode of serving and apps: header sizes, the pixel limit, palette BMPs."""

import io
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from devise_keras import features


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def picture():
    pixels = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("fmt, bits", [("PNG", 0), ("GIF", 0), ("BMP", 24), ("JPEG", 0)])
def test_header_info_reads_height_and_width_of_every_format(picture, fmt, bits):
    info = features.image_header_info(tf.constant(_encode(picture, fmt))).numpy()
    assert info.tolist() == [37, 53, bits]


def _with_jpeg_size(data: bytes, height: int, width: int) -> bytes:
    """A real JPEG whose SOF0 marker is patched to claim another size (a header bomb)."""
    at = data.index(b"\xff\xc0")
    patched = bytearray(data)
    patched[at + 5 : at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(patched)


def _png_header(height: int, width: int) -> bytes:
    # Signature + IHDR claiming the size; no pixel data follows.
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x01\x00\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + ihdr + b"\0" * 4


def _gif_header(height: int, width: int) -> bytes:
    return b"GIF89a" + width.to_bytes(2, "little") + height.to_bytes(2, "little") + b"\0" * 3


def _bmp_header(height: int, width: int) -> bytes:
    dib = (40).to_bytes(4, "little") + width.to_bytes(4, "little", signed=True)
    dib += height.to_bytes(4, "little", signed=True) + (1).to_bytes(2, "little")
    dib += (24).to_bytes(2, "little") + b"\0" * 24
    return b"BM" + b"\0" * 8 + (54).to_bytes(4, "little") + dib


def test_bomb_headers_are_refused_with_the_limit_and_batch_index(picture):
    ok = _encode(picture, "PNG")
    bombs = [
        _png_header(20_000, 20_000),
        _gif_header(60_000, 60_000),
        _bmp_header(-30_000, 30_000),  # top-down BMP: a negative height
        _with_jpeg_size(_encode(picture, "JPEG"), 30_000, 30_000),
    ]
    for bomb in bombs:
        assert len(bomb) < 4096
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            features.decode_images(tf.constant([ok, bomb]), 16, max_pixels=1_000_000)
        message = error.value.message
        assert "more than the limit of 1000000 pixels" in message
        # "[[1]]" in a graph (as served), "1" eagerly.
        assert re.search(r"at batch index'?\s+\[*1\]*\s", message), message
    # Below the limit the same call decodes.
    out = features.decode_images(tf.constant([ok]), 16, max_pixels=37 * 53).numpy()
    assert out.shape == (1, 16, 16, 3)


@pytest.mark.parametrize("top_down", [False, True])
def test_an_8_bit_palette_bmp_decodes_to_its_true_colours(picture, top_down):
    palette = picture.convert("P", palette=Image.ADAPTIVE, colors=200)
    data = bytearray(_encode(palette, "BMP"))
    want = np.asarray(palette.convert("RGB"))
    if top_down:  # rewrite as a top-down BMP: negative height, rows first to last
        stride = (53 + 3) // 4 * 4
        offset = int.from_bytes(data[10:14], "little")
        rows = np.frombuffer(bytes(data[offset:]), np.uint8).reshape(37, stride)[::-1]
        data[offset:] = rows.tobytes()
        data[22:26] = (-37).to_bytes(4, "little", signed=True)
    data = bytes(data)
    assert features.image_header_info(tf.constant(data)).numpy()[2] == 8
    # At the model's size the pixels are exactly the palette colours; tf.io.decode_image
    # alone returns the palette indices as grey (mean error ~95 of 255 here).
    square = palette.crop((0, 0, 37, 37))
    got = features.decode_image_uint8(tf.constant(_encode(square, "BMP")), 37).numpy()
    np.testing.assert_array_equal(got, np.asarray(square.convert("RGB")))
    full = features._decode_palette_bmp(tf.constant(data), tf.constant(8, tf.int64)).numpy()
    np.testing.assert_array_equal(full, want)
    assert np.abs(tf.io.decode_image(data, channels=3).numpy().astype(int) - want).mean() > 50


def test_a_4_bit_or_compressed_palette_bmp_is_refused_by_name(picture):
    data = bytearray(_encode(picture.convert("P", palette=Image.ADAPTIVE, colors=16), "BMP"))
    four_bit = data[:28] + (4).to_bytes(2, "little") + data[30:]
    rle = data[:30] + (1).to_bytes(4, "little") + data[34:]
    for bad, why in ((four_bit, r"bits per pixel\W+4"), (rle, r"compression\W+1")):
        with pytest.raises(tf.errors.InvalidArgumentError, match="uncompressed 8-bit") as error:
            features.decode_image_uint8(tf.constant(bytes(bad)), 16)
        assert re.search(why, error.value.message), error.value.message


def test_six_real_bombs_are_refused_under_a_memory_limit(tmp_path):
    # Six real 20000 x 20000 1-bit PNGs (48 KB each) decode to 1.2 GB of pixels apiece
    # (and 4.8 GB more as floats in the resize). Under a 4 GiB address-space limit the
    # request must be refused from the headers, never attempted.
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")
    assert bomb.stat().st_size < 100_000
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        import tensorflow as tf
        from devise_keras import features
        data = open({str(bomb)!r}, "rb").read()
        try:
            features.decode_images(tf.constant([data] * 6), 128, max_pixels=16_000_000)
        except tf.errors.InvalidArgumentError as error:
            print("refused" if "limit of 16000000 pixels" in error.message else error.message)
            sys.exit(0)
        print("decoded")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.stdout.strip().splitlines()[-1:] == ["refused"], result.stderr[-2000:]


def test_the_app_check_names_the_size_and_the_limit_before_decoding(tmp_path):
    from devise_keras.apps import image_problem

    # 25 MP: over our 16 MP default, under PIL's own bomb limit.
    medium = tmp_path / "medium.png"
    Image.new("1", (5_000, 5_000)).save(medium, "PNG")
    assert image_problem(medium.read_bytes()) == (
        "too large: 5000 x 5000 = 25000000 pixels, over the limit of 16000000 "
        "(serving.max_image_pixels)"
    )
    assert image_problem(medium.read_bytes(), max_pixels=25_000_000) is None
    # 400 MP: PIL itself refuses to open it; the message is still ours, not "corrupt".
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")
    assert image_problem(bomb.read_bytes()).startswith("too large: 20000 x 20000 = 400000000")
