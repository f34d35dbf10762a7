"""Serving signatures of a tiny DeViSE model over a hub-exported backbone built here."""

import io
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from devise_keras import features
from devise_keras.export import export_serving_model
from devise_keras.hub_backbone import HubBackbone
from devise_keras.hub_export import export_hub_feature_vector
from devise_keras.model import (
    build_devise_model,
    build_small_cnn,
    build_softmax_model,
    compile_devise_model,
    devise_targets,
)

SIZE = 8
LABELS = ["cat", "dog", "eel", "fox"]


def _png(seed, size=SIZE):
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _example(encoded):
    feature = {features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A DeViSE model over a HubBackbone, trained one epoch so its weights differ from
    the hub SavedModel's (the export must serve the trained ones)."""
    root = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(0)
    cnn = build_small_cnn(SIZE, filters=(4,), feature_dim=8)
    hub_dir = export_hub_feature_vector(cnn, str(root / "hub"), SIZE)
    hub_values = [np.array(v) for v in cnn.weights]
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(len(LABELS), 5)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    model = compile_devise_model(
        build_devise_model(HubBackbone(hub_dir, trainable=True), vectors, image_size=SIZE),
        learning_rate=0.05,
    )
    images = rng.random((8, SIZE, SIZE, 3), dtype=np.float32)
    ids = rng.integers(0, len(LABELS), size=8)
    model.fit(images, devise_targets(ids, vectors), epochs=1, verbose=0)
    serving_dir = export_serving_model(
        model, LABELS, str(root / "serving" / "1"), image_size=SIZE, top_k=3
    )
    return {
        "root": root,
        "hub_dir": hub_dir,
        "hub_values": hub_values,
        "model": model,
        "serving_dir": serving_dir,
    }


@pytest.fixture(scope="module")
def served(trained):
    return tf.saved_model.load(trained["serving_dir"])


@pytest.fixture(scope="module")
def pngs():
    return [_png(seed) for seed in range(5)]


def _keras_scores(model, encoded):
    images = features.decode_images(tf.constant(encoded), SIZE)
    return model.predict(images, verbose=0)


def _check_outputs(outputs, expected, k=3):
    batch = expected["scores"].shape[0]
    assert outputs["scores"].shape == (batch, len(LABELS)) and outputs["scores"].dtype == tf.float32
    assert outputs["embedding"].shape == (batch, 5) and outputs["embedding"].dtype == tf.float32
    assert (
        outputs["top_k_labels"].shape == (batch, k) and outputs["top_k_labels"].dtype == tf.string
    )
    assert outputs["top_k_scores"].shape == (batch, k)
    np.testing.assert_allclose(outputs["scores"], expected["scores"], atol=1e-5)
    np.testing.assert_allclose(outputs["embedding"], expected["embedding"], atol=1e-5)
    order = np.argsort(-expected["scores"], axis=1)[:, :k]
    labels = [[s.decode() for s in row] for row in outputs["top_k_labels"].numpy()]
    assert labels == np.array(LABELS)[order].tolist()
    np.testing.assert_allclose(
        outputs["top_k_scores"], np.take_along_axis(expected["scores"], order, 1), atol=1e-5
    )


def test_signature_names_and_inputs(served):
    assert set(served.signatures) == {"serving_default", "predict", "embed"}
    for name, input_name in [
        ("serving_default", "examples"),
        ("predict", "image_bytes"),
        ("embed", "image_bytes"),
    ]:
        _, inputs = served.signatures[name].structured_input_signature
        assert list(inputs) == [input_name]
        assert inputs[input_name].dtype == tf.string and inputs[input_name].shape.as_list() == [
            None
        ]
    # TF Serving REST decodes {"b64": ...} for any string input (json_tensor.cc); the
    # "_bytes" suffix follows Cloud ML Engine and, in TF Serving, only base64-encodes outputs.
    assert (
        served.signatures["predict"]
        .structured_input_signature[1]["image_bytes"]
        .name.endswith("_bytes")
    )
    assert set(served.signatures["embed"].structured_outputs) == {"embedding"}


def test_predict_serves_the_trained_model_on_png_and_jpeg_bytes(trained, served, pngs):
    encoded = pngs + [_jpeg(9)]
    outputs = served.signatures["predict"](image_bytes=tf.constant(encoded))
    _check_outputs(outputs, _keras_scores(trained["model"], encoded))


def test_serving_default_parses_tf_examples(trained, served, pngs):
    examples = tf.constant([_example(p) for p in pngs])
    outputs = served.signatures["serving_default"](examples=examples)
    _check_outputs(outputs, _keras_scores(trained["model"], pngs))


def test_embed_returns_only_the_embedding(trained, served, pngs):
    outputs = served.signatures["embed"](image_bytes=tf.constant(pngs[:2]))
    expected = _keras_scores(trained["model"], pngs[:2])["embedding"]
    np.testing.assert_allclose(outputs["embedding"], expected, atol=1e-5)


def test_export_holds_trained_backbone_weights_not_the_hub_originals(trained):
    # HubBackbone keeps its restored SavedModel out of tracking: the export must not
    # carry the untrained hub variables beside the trained ones.
    checkpoint = os.path.join(trained["serving_dir"], "variables", "variables")
    saved = [
        tf.train.load_variable(checkpoint, name)
        for name, _ in tf.train.list_variables(checkpoint)
        if name.endswith("VARIABLE_VALUE")
    ]
    for original in trained["hub_values"]:
        assert not any(
            value.shape == original.shape and np.allclose(value, original) for value in saved
        )
    backbone = next(x for x in trained["model"].layers if isinstance(x, HubBackbone))
    for variable in backbone.weights:
        assert any(
            value.shape == variable.shape and np.array_equal(value, variable) for value in saved
        )


def test_malformed_image_fails_with_a_clear_error(served, pngs):
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="not a JPEG/PNG/GIF/BMP image.*\\[1\\]"
    ):
        served.signatures["predict"](image_bytes=tf.constant([pngs[0], b"not an image"]))
    # The process survives and serves the next request.
    assert served.signatures["predict"](image_bytes=tf.constant(pngs[:1]))["scores"].shape == (1, 4)


def test_an_empty_batch_fails_with_a_clear_error_through_the_tf2_loader(served, pngs):
    for name in ("predict", "embed"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="image_bytes is empty"):
            served.signatures[name](image_bytes=tf.constant([], tf.string))
    assert served.signatures["predict"](image_bytes=tf.constant(pngs[:2]))["scores"].shape == (2, 4)


def test_saved_model_cli_runs_the_predict_signature(trained, pngs):
    expected = _keras_scores(trained["model"], pngs[:1])["scores"][0]
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            trained["serving_dir"],
            "--tag_set",
            "serve",
            "--signature_def",
            "predict",
            "--input_exprs",
            f"image_bytes=[{pngs[0]!r}]",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    top = LABELS[int(np.argmax(expected))]
    assert "Result for output key top_k_labels" in result.stdout
    labels_block = result.stdout.split("Result for output key top_k_labels:")[1]
    assert labels_block.split()[0] == f"[[b'{top}'"


def test_keras_archive_of_the_devise_model_outlives_the_backbone_dir(trained, pngs):
    model = trained["model"]
    images = features.decode_images(tf.constant(pngs), SIZE)
    expected = model.predict(images, verbose=0)
    path = str(trained["root"] / "devise.keras")
    model.save(path)
    shutil.rmtree(trained["hub_dir"])
    reloaded = keras.models.load_model(path)
    actual = reloaded.predict(images, verbose=0)
    for key in ("scores", "embedding"):
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-6, atol=1e-7)
    # A reloaded model (backbone from the archive's bundled copy) exports too.
    again = export_serving_model(
        reloaded, LABELS, str(trained["root"] / "serving" / "2"), image_size=SIZE, top_k=3
    )
    outputs = tf.saved_model.load(again).signatures["predict"](image_bytes=tf.constant(pngs))
    np.testing.assert_allclose(outputs["scores"], expected["scores"], atol=1e-5)


def test_top_k_is_capped_at_the_label_count_and_softmax_models_export(tmp_path, pngs):
    keras.utils.set_random_seed(1)
    model = build_softmax_model(
        build_small_cnn(SIZE, filters=(4,), feature_dim=8), 2, image_size=SIZE
    )
    export_serving_model(model, ["a", "b"], str(tmp_path / "s"), image_size=SIZE, top_k=5)
    served = tf.saved_model.load(str(tmp_path / "s"))
    assert set(served.signatures) == {"serving_default", "predict"}
    outputs = served.signatures["predict"](image_bytes=tf.constant(pngs[:2]))
    assert set(outputs) == {"scores", "top_k_labels", "top_k_scores"}
    assert outputs["top_k_labels"].shape == (2, 2)


def test_label_count_must_match_the_scores(trained, tmp_path):
    with pytest.raises(ValueError, match="scores 4 labels but 3 label names"):
        export_serving_model(trained["model"], LABELS[:3], str(tmp_path / "x"), image_size=SIZE)
    with pytest.raises(ValueError, match="duplicates"):
        export_serving_model(
            trained["model"], ["a", "a", "b", "c"], str(tmp_path / "y"), image_size=SIZE
        )
    with pytest.raises(FileExistsError):
        export_serving_model(trained["model"], LABELS, trained["serving_dir"], image_size=SIZE)
