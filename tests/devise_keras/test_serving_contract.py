"""The TF Serving contract of a pushed model, tested without a TF Serving binary.

TF Serving turns a REST body into a PredictRequest (its `json_tensor.cc`: a
`{"b64": ...}` object is base64-decoded for a DT_STRING input; with one named input,
`instances` is that input's list), loads the SavedModel with the TF1 loader, runs the
SignatureDef's tensors in a session, and writes the outputs back as JSON (an output
whose name ends in "_bytes" is base64-encoded, other strings are plain). `TFServing`
below does exactly those steps with the real protos; the same request also goes
through the TF2 loader and `saved_model_cli run`.
"""

import base64
import json
import os
import subprocess
import sys
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from devise_keras import features
from tests.devise_keras import devise_app_testutil as tu

B64 = "b64"


def _b64(data: bytes) -> dict:
    return {B64: base64.b64encode(data).decode("ascii")}


def _is_b64(value) -> bool:
    return isinstance(value, dict) and list(value) == [B64] and isinstance(value[B64], str)


def _leaves(value, dtype):
    """A JSON value -> nested Python values of the tensor (json_tensor FillTensorProto)."""
    if isinstance(value, list):
        return [_leaves(v, dtype) for v in value]
    if isinstance(value, dict):
        if dtype != tf.string.as_datatype_enum or not _is_b64(value):
            raise ValueError(f"JSON Value: {value} not formatted correctly for base64 data")
        return base64.b64decode(value[B64], validate=True)
    if dtype == tf.string.as_datatype_enum:
        return value.encode()
    return value


def _tensor_proto(values, dtype):
    array = np.array(values, dtype=object if dtype == tf.string.as_datatype_enum else None)
    return tf.make_tensor_proto(array, dtype=tf.dtypes.as_dtype(dtype))


def _json_value(value, as_bytes: bool):
    if isinstance(value, np.ndarray):
        return [_json_value(v, as_bytes) for v in value]
    if isinstance(value, bytes):
        return _b64(value) if as_bytes else value.decode()
    return value.item() if hasattr(value, "item") else value


class TFServing:
    """TF Serving's Predict path: JSON/gRPC request -> TF1 session on the SignatureDefs."""

    def __init__(self, export_dir: str):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.session = tf.compat.v1.Session(graph=self.graph)
            meta = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], export_dir)
        self.signatures = meta.signature_def

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        signature = self.signatures[request.model_spec.signature_name or "serving_default"]
        feed = {
            signature.inputs[name].name: tf.make_ndarray(tensor)
            for name, tensor in request.inputs.items()
        }
        fetch = {name: info.name for name, info in signature.outputs.items()}
        values = self.session.run(fetch, feed)
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in values.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    def grpc(self, wire: bytes) -> bytes:
        request = predict_pb2.PredictRequest.FromString(wire)
        return self.predict(request).SerializeToString()

    def rest(self, body: str) -> tuple[int, dict]:
        """POST /v1/models/devise:predict -> (HTTP status, JSON response)."""
        try:
            doc = json.loads(body)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "devise"
            request.model_spec.signature_name = doc.get("signature_name", "")
            inputs = self.signatures[request.model_spec.signature_name or "serving_default"].inputs
            row = "instances" in doc
            if row:
                items = doc["instances"]
                named = isinstance(items[0], dict) and not _is_b64(items[0])
                if not named and len(inputs) != 1:
                    raise ValueError("instances is a plain list, but expecting list of objects")
                columns = {
                    name: [item[name] if named else item for item in items] for name in inputs
                }
            else:
                value = doc["inputs"]
                plain = not isinstance(value, dict) or _is_b64(value)
                columns = {name: value if plain else value[name] for name in inputs}
            for name, values in columns.items():
                dtype = inputs[name].dtype
                request.inputs[name].CopyFrom(_tensor_proto(_leaves(values, dtype), dtype))
            response = self.predict(request)
        except (tf.errors.InvalidArgumentError, ValueError, KeyError) as error:
            return 400, {"error": getattr(error, "message", str(error))}
        outputs = {name: tf.make_ndarray(t) for name, t in response.outputs.items()}
        as_bytes = {name: name.endswith("_bytes") for name in outputs}
        if row:
            batch = len(next(iter(outputs.values())))
            rows = [
                {name: _json_value(v[i], as_bytes[name]) for name, v in outputs.items()}
                for i in range(batch)
            ]
            if len(outputs) == 1:  # one output: its name is omitted
                rows = [next(iter(r.values())) for r in rows]
            return 200, {"predictions": rows}
        cols = {name: _json_value(v, as_bytes[name]) for name, v in outputs.items()}
        return 200, {"outputs": next(iter(cols.values())) if len(cols) == 1 else cols}


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    return tu.make_pushed_model(tmp_path_factory.mktemp("contract"))


@pytest.fixture(scope="module")
def server(pushed):
    return TFServing(str(pushed["version_dir"]))


@pytest.fixture(scope="module")
def images():
    return [tu.image_bytes(0), tu.image_bytes(1, "JPEG", size=13), tu.image_bytes(2)]


def _expected(pushed, images):
    decoded = features.decode_images(tf.constant(images), tu.SIZE)
    outputs = pushed["model"].predict(decoded, verbose=0)
    order = np.argsort(-outputs["scores"], axis=1)[:, : tu.TOP_K]
    return {
        "scores": outputs["scores"],
        "embedding": outputs["embedding"],
        "top_k_labels": np.array(tu.SEEN)[order].tolist(),
        "top_k_scores": np.take_along_axis(outputs["scores"], order, axis=1),
    }


def _check_predictions(predictions, expected):
    assert len(predictions) == len(expected["scores"])
    for i, item in enumerate(predictions):
        assert set(item) == {"scores", "embedding", "top_k_labels", "top_k_scores"}
        assert item["top_k_labels"] == expected["top_k_labels"][i]
        assert all(isinstance(label, str) for label in item["top_k_labels"])
        np.testing.assert_allclose(item["top_k_scores"], expected["top_k_scores"][i], atol=1e-5)
        np.testing.assert_allclose(item["scores"], expected["scores"][i], atol=1e-5)
        np.testing.assert_allclose(item["embedding"], expected["embedding"][i], atol=1e-5)


def test_signature_defs_follow_tf_serving_conventions(server):
    assert {"serving_default", "predict", "embed"} <= set(server.signatures)
    for name, input_name in [
        ("serving_default", "examples"),
        ("predict", "image_bytes"),
        ("embed", "image_bytes"),
    ]:
        signature = server.signatures[name]
        assert signature.method_name == "tensorflow/serving/predict"
        assert list(signature.inputs) == [input_name]
        tensor = signature.inputs[input_name]
        assert tensor.dtype == tf.string.as_datatype_enum
        assert [d.size for d in tensor.tensor_shape.dim] == [-1]
    assert set(server.signatures["predict"].outputs) == {
        "scores",
        "embedding",
        "top_k_labels",
        "top_k_scores",
    }
    assert set(server.signatures["embed"].outputs) == {"embedding"}
    # An output named "*_bytes" would come back base64-encoded instead of as label text.
    for signature in server.signatures.values():
        assert not any(name.endswith("_bytes") for name in signature.outputs)


def test_rest_instances_of_b64_objects_return_top_k_labels_scores_and_embedding(
    pushed, server, images
):
    body = json.dumps({"signature_name": "predict", "instances": [_b64(i) for i in images]})
    status, response = server.rest(body)
    assert status == 200, response
    _check_predictions(response["predictions"], _expected(pushed, images))


def test_named_instances_and_columnar_inputs_give_the_same_answer(pushed, server, images):
    expected = _expected(pushed, images)
    named = {"signature_name": "predict", "instances": [{"image_bytes": _b64(i)} for i in images]}
    status, response = server.rest(json.dumps(named))
    assert status == 200, response
    _check_predictions(response["predictions"], expected)
    for inputs in ([_b64(i) for i in images], {"image_bytes": [_b64(i) for i in images]}):
        status, response = server.rest(json.dumps({"signature_name": "predict", "inputs": inputs}))
        assert status == 200, response
        outputs = response["outputs"]
        assert outputs["top_k_labels"] == expected["top_k_labels"]
        np.testing.assert_allclose(outputs["scores"], expected["scores"], atol=1e-5)


def test_embed_signature_answers_bare_embedding_rows(pushed, server, images):
    status, response = server.rest(
        json.dumps({"signature_name": "embed", "instances": [_b64(i) for i in images[:2]]})
    )
    assert status == 200, response
    # A single output: TF Serving leaves its name out of each prediction.
    np.testing.assert_allclose(
        response["predictions"], _expected(pushed, images[:2])["embedding"], atol=1e-5
    )


def test_serving_default_takes_serialized_tf_examples(pushed, server, images):
    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[i]))
                }
            )
        ).SerializeToString()
        for i in images
    ]
    status, response = server.rest(json.dumps({"instances": [_b64(e) for e in examples]}))
    assert status == 200, response
    _check_predictions(response["predictions"], _expected(pushed, images))


def test_grpc_predict_request_with_tensorflow_serving_api(pushed, server, images):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "devise"
    request.model_spec.signature_name = "predict"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string))
    response = predict_pb2.PredictResponse.FromString(server.grpc(request.SerializeToString()))
    expected = _expected(pushed, images)
    labels = tf.make_ndarray(response.outputs["top_k_labels"])
    assert [[x.decode() for x in row] for row in labels] == expected["top_k_labels"]
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["top_k_scores"]), expected["top_k_scores"], atol=1e-5
    )
    assert tf.make_ndarray(response.outputs["embedding"]).shape == (len(images), tu.DIM)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, server: TFServing):
        self.server = server

    def Predict(self, request, context):  # noqa: N802 (the gRPC method name)
        try:
            return self.server.predict(request)
        except tf.errors.InvalidArgumentError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message)


def test_the_readme_grpc_client_talks_to_a_prediction_service_on_loopback(pushed, server, images):
    service = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _PredictionService(server), service
    )
    port = service.add_insecure_port("127.0.0.1:0")
    service.start()
    try:
        # The README's client, as written there.
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "devise"
        request.model_spec.signature_name = "predict"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string))
        response = stub.Predict(request, timeout=30.0)
        labels = tf.make_ndarray(response.outputs["top_k_labels"])
        assert [[x.decode() for x in row] for row in labels] == _expected(pushed, images)[
            "top_k_labels"
        ]
        request.inputs["image_bytes"].CopyFrom(
            tf.make_tensor_proto([b"not an image"], dtype=tf.string)
        )
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=30.0)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a JPEG/PNG/GIF/BMP image" in error.value.details()
        channel.close()
    finally:
        service.stop(grace=None)


def test_tf2_loader_answers_the_decoded_rest_body_identically(pushed, server, images):
    body = json.dumps({"signature_name": "predict", "instances": [_b64(i) for i in images]})
    decoded = [base64.b64decode(item[B64]) for item in json.loads(body)["instances"]]
    assert decoded == images
    outputs = tf.saved_model.load(str(pushed["version_dir"])).signatures["predict"](
        image_bytes=tf.constant(decoded)
    )
    _, rest = server.rest(body)
    for i, item in enumerate(rest["predictions"]):
        assert [x.decode() for x in outputs["top_k_labels"].numpy()[i]] == item["top_k_labels"]
        np.testing.assert_allclose(outputs["scores"].numpy()[i], item["scores"], atol=1e-6)


def test_saved_model_cli_runs_the_decoded_rest_body(pushed, images, tmp_path):
    body = json.dumps({"signature_name": "predict", "instances": [_b64(i) for i in images[:2]]})
    decoded = [base64.b64decode(item[B64]) for item in json.loads(body)["instances"]]
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            str(pushed["version_dir"]),
            "--tag_set",
            "serve",
            "--signature_def",
            "predict",
            "--input_exprs",
            f"image_bytes={decoded!r}",
            "--outdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected = _expected(pushed, images[:2])
    labels = np.load(tmp_path / "top_k_labels.npy", allow_pickle=True)
    assert [[x.decode() for x in row] for row in labels] == expected["top_k_labels"]
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), expected["scores"], atol=1e-5)
    np.testing.assert_allclose(
        np.load(tmp_path / "embedding.npy"), expected["embedding"], atol=1e-5
    )


def test_a_malformed_image_gives_http_400_naming_the_item_and_the_server_keeps_serving(
    server, images
):
    bad = [_b64(images[0]), _b64(b"this is not an image")]
    status, response = server.rest(json.dumps({"signature_name": "predict", "instances": bad}))
    assert status == 400
    assert "not a JPEG/PNG/GIF/BMP image" in response["error"]
    assert "batch index" in response["error"] and "[[1]]" in response["error"]
    # A PNG header with its data cut off reaches the decoder, which refuses it too.
    truncated = [_b64(images[0][:40])]
    status, response = server.rest(
        json.dumps({"signature_name": "predict", "instances": truncated})
    )
    assert status == 400 and response["error"]
    # Same process, same session: the next request is answered.
    status, response = server.rest(
        json.dumps({"signature_name": "predict", "instances": [_b64(images[2])]})
    )
    assert status == 200 and len(response["predictions"]) == 1


def test_bad_b64_and_wrong_input_names_are_rejected_not_crashed(server, images):
    status, response = server.rest(
        json.dumps({"signature_name": "predict", "instances": [{B64: "%%% not base64"}]})
    )
    assert status == 400 and response["error"]
    status, response = server.rest(
        json.dumps({"signature_name": "predict", "instances": [{"image": _b64(images[0])}]})
    )
    assert status == 400


def test_the_pushed_version_also_holds_the_app_bundle(pushed):
    bundle = pushed["version_dir"] / "assets.extra"
    assert (bundle / "model.keras").is_file()
    assert (bundle / "config.json").is_file()
    labels = (bundle / "label_embeddings" / "labels.txt").read_text().split()
    assert labels == tu.SEEN + tu.UNSEEN
