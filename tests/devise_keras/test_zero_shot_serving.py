"""The zero-shot serving signatures: "zero_shot", "embed_text" and "rank_labels".

A tiny pushed model whose label vectors come from a bag-of-words text encoder (its
words carry the GloVe-style test vectors, so every expected cosine is computed by
hand here); the encoder's source folder is deleted before any test runs, so the
SavedModel is proven self-contained. Each signature goes through the TF2 loader, the
TF1 session loader TF Serving runs (`TFServing`, with TF Serving's JSON decoding) and
`saved_model_cli run`.
"""

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from devise_keras import export, features
from devise_keras.apps import load
from devise_keras.text_encoder import load_text_encoder
from tests.devise_keras import devise_app_testutil as tu
from tests.devise_keras.test_serving_contract import TFServing
from tests.text_encoder_testutil import write_bag_of_words_encoder

# None of these is a class the model was trained on (or a class at all, but "owl").
REQUEST_LABELS = ["red ship", "king", "tree car", "woman", "owl"]
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    return tu.make_pushed_model(tmp_path_factory.mktemp("zero_shot"), text_encoder=True)


@pytest.fixture(scope="module")
def served(pushed):
    return tf.saved_model.load(str(pushed["version_dir"]))


@pytest.fixture(scope="module")
def server(pushed):
    return TFServing(str(pushed["version_dir"]))


@pytest.fixture(scope="module")
def images():
    return [tu.image_bytes(0), tu.image_bytes(1, "JPEG", size=13), tu.image_bytes(2)]


def _unit_embeddings(pushed, images):
    decoded = features.decode_images(tf.constant(images), tu.SIZE)
    embedding = pushed["model"].predict(decoded, verbose=0)["embedding"].astype(np.float64)
    return embedding / np.linalg.norm(embedding, axis=1, keepdims=True)


def _hand_cosines(pushed, images, labels):
    label_vectors = np.stack([tu.text_vector(t, pushed["vectors"]) for t in labels])
    return _unit_embeddings(pushed, images) @ label_vectors.T


def _check_ranked(outputs, cosines, labels, k):
    np.testing.assert_allclose(outputs["scores"], cosines, atol=1e-5)
    order = np.argsort(-cosines, axis=1, kind="stable")[:, :k]
    got = [
        [x.decode() if isinstance(x, bytes) else x for x in row] for row in outputs["top_k_labels"]
    ]
    assert got == np.array(labels)[order].tolist()
    np.testing.assert_allclose(
        outputs["top_k_scores"], np.take_along_axis(cosines, order, axis=1), atol=1e-5
    )


def test_text_signatures_are_exported_with_their_inputs(server):
    assert {"zero_shot", "embed_text", "rank_labels"} <= set(server.signatures)
    assert set(server.signatures["rank_labels"].inputs) == {"image_bytes", "labels"}
    assert set(server.signatures["rank_labels"].outputs) == {
        "scores",
        "top_k_labels",
        "top_k_scores",
    }
    assert list(server.signatures["embed_text"].inputs) == ["texts"]
    assert set(server.signatures["embed_text"].outputs) == {"embedding"}
    assert list(server.signatures["zero_shot"].inputs) == ["image_bytes"]
    assert set(server.signatures["zero_shot"].outputs) == {"scores", "top_k_labels", "top_k_scores"}
    for name in ("zero_shot", "embed_text", "rank_labels"):
        assert server.signatures[name].method_name == "tensorflow/serving/predict"


def test_rank_labels_tf2_loader_gives_hand_computed_cosines_of_unseen_labels(
    pushed, served, images
):
    outputs = served.signatures["rank_labels"](
        image_bytes=tf.constant(images), labels=tf.constant(REQUEST_LABELS)
    )
    outputs = {name: value.numpy() for name, value in outputs.items()}
    assert outputs["scores"].shape == (3, 5) and outputs["top_k_labels"].shape == (3, tu.TOP_K)
    _check_ranked(outputs, _hand_cosines(pushed, images, REQUEST_LABELS), REQUEST_LABELS, tu.TOP_K)
    # Fewer labels than top_k: k is capped at L.
    two = served.signatures["rank_labels"](
        image_bytes=tf.constant(images[:1]), labels=tf.constant(["king", "red ship"])
    )
    assert two["top_k_labels"].shape == (1, 2)


def test_rank_labels_columnar_rest_body_through_the_tf1_session_loader(pushed, server, images):
    body = {
        "signature_name": "rank_labels",
        "inputs": {
            "image_bytes": [{"b64": base64.b64encode(i).decode()} for i in images[:2]],
            "labels": REQUEST_LABELS,
        },
    }
    status, response = server.rest(json.dumps(body))
    assert status == 200, response
    _check_ranked(
        response["outputs"],
        _hand_cosines(pushed, images[:2], REQUEST_LABELS),
        REQUEST_LABELS,
        tu.TOP_K,
    )


def test_the_readme_rank_labels_curl_body_is_answered(pushed, server, images):
    text = README.read_text()
    command = re.search(r'-d "(\{\\"signature_name\\": \\"rank_labels\\".*?\})"\n', text, re.S)
    assert command, "the README has no rank_labels curl example"
    image_b64 = base64.b64encode(images[0]).decode()
    body = command.group(1).replace('\\"', '"').replace("$(base64 -w0 apple.png)", image_b64)
    status, response = server.rest(body)
    assert status == 200, response
    labels = json.loads(body)["inputs"]["labels"]
    assert labels == ["red fruit", "a boat"]
    assert response["outputs"]["top_k_labels"][0] in (labels, labels[::-1])


def test_empty_or_blank_labels_give_invalid_argument_and_the_server_keeps_serving(
    server, served, images
):
    def rest(labels):
        body = {
            "signature_name": "rank_labels",
            "inputs": {
                "image_bytes": [{"b64": base64.b64encode(images[0]).decode()}],
                "labels": labels,
            },
        }
        return server.rest(json.dumps(body))

    status, response = rest([])
    assert status == 400 and "labels: the list is empty" in response["error"]
    status, response = rest(["king", "   "])
    assert status == 400
    assert "labels: an empty or whitespace-only string, at index" in response["error"]
    assert "[[1]]" in response["error"]
    status, response = rest(["", "king"])
    assert status == 400 and "[[0]]" in response["error"]
    status, response = rest(["king"])
    assert status == 200 and response["outputs"]["top_k_labels"] == [["king"]]
    # The TF2 loader raises the same errors, then answers the next call.
    rank = served.signatures["rank_labels"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels: the list is empty"):
        rank(image_bytes=tf.constant(images[:1]), labels=tf.constant([], tf.string))
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="whitespace-only string.*\\[\\[1\\]\\]"
    ):
        rank(image_bytes=tf.constant(images[:1]), labels=tf.constant(["king", "\u00a0\t"]))
    assert rank(image_bytes=tf.constant(images[:1]), labels=tf.constant(["king"]))[
        "scores"
    ].shape == (1, 1)


def test_saved_model_cli_runs_rank_labels(pushed, images, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    labels = REQUEST_LABELS[:3]
    result = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            str(pushed["version_dir"]),
            "--tag_set",
            "serve",
            "--signature_def",
            "rank_labels",
            "--input_exprs",
            f"image_bytes={images[:2]!r};labels={labels!r}",
            "--outdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = {
        name: np.load(tmp_path / f"{name}.npy", allow_pickle=True)
        for name in ("scores", "top_k_labels", "top_k_scores")
    }
    _check_ranked(outputs, _hand_cosines(pushed, images[:2], labels), labels, tu.TOP_K)


def test_embed_text_returns_the_encoders_unit_vectors(pushed, served, server):
    texts = ["red ship", "KING", "tree car woman"]
    expected = np.stack([tu.text_vector(t, pushed["vectors"]) for t in texts])
    tf2 = served.signatures["embed_text"](texts=tf.constant(texts))["embedding"].numpy()
    np.testing.assert_allclose(tf2, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(tf2, axis=1), 1.0, atol=1e-6)
    status, response = server.rest(json.dumps({"signature_name": "embed_text", "instances": texts}))
    assert status == 200, response
    np.testing.assert_allclose(response["predictions"], expected, atol=1e-6)
    status, response = server.rest(
        json.dumps({"signature_name": "embed_text", "instances": ["king", ""]})
    )
    assert status == 400 and "texts: an empty or whitespace-only string" in response["error"]


def test_zero_shot_scores_every_class_as_the_app_does(pushed, served, server, images):
    classes = tu.SEEN + tu.UNSEEN
    outputs = served.signatures["zero_shot"](image_bytes=tf.constant(images))
    scores = outputs["scores"].numpy()
    assert scores.shape == (3, len(classes))
    # By hand: each class vector is its (unit) word vector.
    hand = _hand_cosines(pushed, images, classes)
    _check_ranked({k: v.numpy() for k, v in outputs.items()}, hand, classes, tu.TOP_K)
    app = load(pushed["serving_dir"])
    for row, ranked in zip(scores, app.predict_labels(images, k=len(classes)), strict=True):
        by_label = dict(ranked)
        np.testing.assert_allclose([by_label[c] for c in classes], row, atol=1e-5)
    status, response = server.rest(
        json.dumps(
            {
                "signature_name": "zero_shot",
                "instances": [{"b64": base64.b64encode(i).decode()} for i in images],
            }
        )
    )
    assert status == 200, response
    np.testing.assert_allclose([p["scores"] for p in response["predictions"]], hand, atol=1e-5)


def test_predict_top_k_scores_stay_dot_products_of_the_seen_labels(pushed, served, images):
    outputs = served.signatures["predict"](image_bytes=tf.constant(images))
    decoded = features.decode_images(tf.constant(images), tu.SIZE)
    embedding = pushed["model"].predict(decoded, verbose=0)["embedding"]
    seen = pushed["embeddings"].subset(tu.SEEN).vectors
    np.testing.assert_allclose(outputs["scores"], embedding @ seen.T, atol=1e-5)


def test_export_refuses_mismatched_label_inputs(pushed, tmp_path):
    model = pushed["model"]
    with pytest.raises(ValueError, match="all_labels and all_label_vectors together"):
        export.export_serving_model(
            model, tu.SEEN, str(tmp_path / "a"), image_size=tu.SIZE, all_labels=tu.SEEN
        )
    with pytest.raises(ValueError, match="2 all_labels but 4 all_label_vectors rows"):
        export.export_serving_model(
            model,
            tu.SEEN,
            str(tmp_path / "b"),
            image_size=tu.SIZE,
            all_labels=["a", "b"],
            all_label_vectors=pushed["embeddings"].vectors[:4],
        )
    with pytest.raises(ValueError, match="have dim 3, the model embeds to 5"):
        export.export_serving_model(
            model,
            tu.SEEN,
            str(tmp_path / "c"),
            image_size=tu.SIZE,
            all_labels=["a", "b"],
            all_label_vectors=np.eye(2, 3),
        )
    small = write_bag_of_words_encoder(str(tmp_path / "enc3"), {"a": [1.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match="embeds to 3 dimensions, the model to 5"):
        export.export_serving_model(
            model,
            tu.SEEN,
            str(tmp_path / "d"),
            image_size=tu.SIZE,
            text_encoder=load_text_encoder(small),
        )


def test_run_fn_finds_the_label_vectors_text_encoder_in_their_metadata(tmp_path):
    from devise_keras import trainer_module
    from devise_keras.label_embeddings import LabelEmbeddings

    handle = write_bag_of_words_encoder(str(tmp_path / "enc"), {"red": [1.0, 0.0], "sea": [0, 1]})
    with_encoder = LabelEmbeddings(
        ["red"], [[1.0, 0.0]], metadata={"kind": "text_encoder", "text_encoder": handle}
    )
    encoder = trainer_module.label_text_encoder(with_encoder)
    np.testing.assert_allclose(encoder.encode(["red sea"]), [[0.5**0.5, 0.5**0.5]], atol=1e-6)
    assert trainer_module.label_text_encoder(LabelEmbeddings(["red"], [[1.0, 0.0]])) is None
