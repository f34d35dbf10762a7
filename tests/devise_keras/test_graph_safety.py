"""Model files are programs: crafted SavedModels that touch files are refused, ours pass."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras import cli, graph_safety
from devise_keras.apps import load
from devise_keras.backbones.efficientnet_lite_hub import (
    BackboneNotPreparedError,
    require_prepared,
)
from devise_keras.graph_safety import UntrustedModelError, check_saved_model, unsafe_ops
from devise_keras.hub_backbone import HubBackbone
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.model import build_devise_model
from devise_keras.text_encoder import load_text_encoder
from tests.devise_keras import devise_app_testutil as tu

SIZE = tu.SIZE


class _SnoopingFeatureVector(tf.Module):
    """A TF-Hub image feature vector whose __call__ also lists a folder into a file."""

    def __init__(self, folder: str, target: str):
        super().__init__()
        self._pattern = folder + "/*"
        self._target = target
        self.kernel = tf.Variable(np.eye(3, 4, dtype=np.float32), name="kernel")

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32),
            tf.TensorSpec([], tf.bool),
        ]
    )
    def __call__(self, images, training=False):
        listing = tf.strings.reduce_join(tf.io.matching_files(self._pattern), separator="\n")
        with tf.control_dependencies([tf.io.write_file(self._target, listing)]):
            return tf.reduce_mean(images, axis=[1, 2]) @ self.kernel


class _CheckpointingFeatureVector(tf.Module):
    """Calls SaveV2 from __call__ (outside the saver): writes a checkpoint anywhere."""

    def __init__(self, target: str):
        super().__init__()
        self._target = target
        self.kernel = tf.Variable(np.eye(3, 4, dtype=np.float32), name="kernel")

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)])
    def __call__(self, images):
        tf.raw_ops.SaveV2(
            prefix=self._target, tensor_names=["k"], shape_and_slices=[""], tensors=[self.kernel]
        )
        return tf.reduce_mean(images, axis=[1, 2]) @ self.kernel


class _SnoopingTextEncoder(tf.Module):
    def __init__(self, target: str):
        super().__init__()
        self._target = target

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        with tf.control_dependencies([tf.io.write_file(self._target, texts[0])]):
            return tf.ones([tf.shape(texts)[0], 4], tf.float32)


@pytest.fixture()
def crafted(tmp_path):
    """A .keras bundle (model.keras + label_embeddings/) whose HubBackbone snoops."""
    secrets = tmp_path / "home"
    secrets.mkdir()
    (secrets / "id_rsa").write_text("secret")
    target = tmp_path / "listing.txt"
    hub = tmp_path / "hub"
    tf.saved_model.save(_SnoopingFeatureVector(str(secrets), str(target)), str(hub))
    vectors = tu.word_vectors()[: len(tu.SEEN)]
    keras.utils.set_random_seed(0)
    model = build_devise_model(HubBackbone(str(hub), trust_model=True), vectors, image_size=SIZE)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    model.save(bundle / "model.keras")
    LabelEmbeddings(tu.SEEN, vectors).save(str(bundle / "label_embeddings"))
    image = tmp_path / "a.png"
    image.write_bytes(tu.image_bytes(0))
    assert not target.exists()  # building and saving ran nothing
    return {"keras": bundle / "model.keras", "hub": hub, "target": target, "image": image}


def test_every_refused_op_is_an_op_of_this_tensorflow():
    missing = sorted(op for op in graph_safety.REFUSED_OPS if not hasattr(tf.raw_ops, op))
    assert missing == []
    assert {"ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "EagerPyFunc"} <= (
        graph_safety.REFUSED_OPS
    )


def test_a_crafted_backbone_is_refused_naming_the_ops_and_writes_nothing(crafted):
    found = unsafe_ops(str(crafted["hub"]))
    assert sorted(found) == ["MatchingFiles", "WriteFile"]
    assert all(where[0].startswith("function __inference___call__") for where in found.values())
    with pytest.raises(UntrustedModelError, match=r"MatchingFiles.*WriteFile") as error:
        HubBackbone(str(crafted["hub"]))
    assert str(crafted["hub"]) in str(error.value) and "trust_model=True" in str(error.value)

    with pytest.raises(UntrustedModelError) as error:
        load(crafted["keras"])
    message = str(error.value)
    assert message.startswith(f"{crafted['keras']}: refusing to load the backbone")
    assert "WriteFile" in message and "MatchingFiles" in message and "--trust-model" in message
    assert not crafted["target"].exists()


def test_the_cli_refuses_a_crafted_bundle_with_exit_2_and_trusts_it_on_request(crafted, capsys):
    argv = ["predict", str(crafted["image"]), "--model", str(crafted["keras"])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"devise-keras predict: error: {crafted['keras']}: refusing")
    assert "WriteFile" in err and len(err.splitlines()) == 1
    assert not crafted["target"].exists()
    # Trusted, it loads and runs - and the graph really does what the check said.
    assert cli.main([*argv, "--trust-model", "--labels", "seen", "--json"]) == 0
    assert crafted["target"].read_text().endswith("home/id_rsa")


def test_trust_model_loads_a_crafted_bundle_through_keras(crafted):
    app = load(crafted["keras"], trust_model=True)
    embedding = app.embed_images([crafted["image"]])
    assert embedding.shape == (1, tu.DIM)
    assert crafted["target"].is_file()
    # Trust does not leak out of load(): the next load is checked again.
    crafted["target"].unlink()
    with pytest.raises(UntrustedModelError):
        load(crafted["keras"])
    assert not graph_safety.trusting()


def test_trust_is_never_read_from_the_file(crafted):
    config = HubBackbone(str(crafted["hub"]), trust_model=True).get_config()
    assert "trust_model" not in config
    layer = HubBackbone.from_config({**config, "trust_model": True})
    with pytest.raises(UntrustedModelError):
        layer.build((None, SIZE, SIZE, 3))


def test_checkpoint_ops_pass_in_the_saver_and_are_refused_elsewhere(tmp_path):
    plain = tmp_path / "plain"
    module = tf.Module()
    module.kernel = tf.Variable(np.eye(3, 4, dtype=np.float32))
    module.__call__ = tf.function(
        lambda images: tf.reduce_mean(images, axis=[1, 2]) @ module.kernel,
        input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)],
    )
    tf.saved_model.save(module, str(plain))
    graph_safety_ops = graph_safety.CHECKPOINT_OPS
    assert unsafe_ops(str(plain)) == {}  # its saver functions hold SaveV2 / RestoreV2 ...
    try:
        graph_safety.CHECKPOINT_OPS = frozenset()  # ... which the saver exemption lets pass
        assert sorted(unsafe_ops(str(plain))) == ["MergeV2Checkpoints", "RestoreV2", "SaveV2"]
    finally:
        graph_safety.CHECKPOINT_OPS = graph_safety_ops
    sneaky = tmp_path / "sneaky"
    tf.saved_model.save(_CheckpointingFeatureVector(str(tmp_path / "ckpt")), str(sneaky))
    assert list(unsafe_ops(str(sneaky))) == ["SaveV2"]


def test_a_crafted_text_encoder_is_refused_and_loads_when_trusted(tmp_path):
    target = tmp_path / "written.txt"
    path = tmp_path / "encoder"
    tf.saved_model.save(_SnoopingTextEncoder(str(target)), str(path))
    with pytest.raises(UntrustedModelError, match=r"text encoder .*WriteFile"):
        load_text_encoder(str(path))
    assert not target.exists()
    encoder = load_text_encoder(str(path), trust_model=True)
    assert encoder.dim == 4 and target.read_text() == "a probe"


def test_the_projects_own_exports_pass(tmp_path):
    pushed = tu.make_pushed_model(tmp_path, text_encoder=True)
    app_dir = Path(pushed["version_dir"]) / "assets.extra"
    assert unsafe_ops(str(pushed["version_dir"])) == {}  # the serving SavedModel
    assert unsafe_ops(str(app_dir / "text_encoder")) == {}
    app = load(pushed["serving_dir"])  # the bundled HubBackbone and encoder, checked
    assert app.text_encoder.dim == tu.DIM


def test_the_lite0_hub_export_passes():
    try:
        hub = require_prepared("lite0")["hub"]
    except BackboneNotPreparedError as error:
        pytest.fail(str(error))
    assert unsafe_ops(hub) == {}
    check_saved_model(hub, "backbone")  # no error


def test_a_use_multilingual_export_with_sentencepiece_ops_passes():
    hub = Path("~/.cache/devise-keras/text_encoders/use_multilingual_v3/hub").expanduser()
    if not (hub / "saved_model.pb").is_file():
        pytest.skip(f"no USE-multilingual export at {hub}")
    assert unsafe_ops(str(hub)) == {}
