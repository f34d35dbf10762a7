"""ZeroShotEvaluator: the executor on hand-built artifacts with exactly known scores.

The "model" maps a solid-colour image to its mean RGB (global average pooling) and
projects it with the identity, so its embedding IS the colour, and every rank below
can be worked out by hand against 3-d label vectors:

    seen:   red [1, 0, 0], green [0, 1, 0]
    unseen: blue [0, 0, 1], purple [0.6, 0, 0.8]

Eval images: 2 red, 2 green. Unseen images: 2 blue (labelled blue) and 2 RED images
labelled purple (the model gets them right among unseen labels only, wrong among all).
"""

from __future__ import annotations

import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tfx.types import standard_artifacts

from components.artifacts import LabelEmbeddings as LabelEmbeddingsArtifact
from components.artifacts import ZeroShotReport
from components.zero_shot_evaluator import executor
from components.zero_shot_evaluator.component import ZeroShotEvaluator
from devise_keras import features
from devise_keras.app_bundle import write_app_bundle
from devise_keras.config import DeviseConfig, ModelConfig
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.model import build_devise_model, build_softmax_model
from tests.devise_keras.test_wordnet import write_wordnet
from tests.devise_keras.test_zero_shot_metrics import COLOUR_WORDNET

SEEN = ["green", "red"]
UNSEEN = ["blue", "purple"]
VECTORS = {
    "green": [0.0, 1.0, 0.0],
    "red": [1.0, 0.0, 0.0],
    "blue": [0.0, 0.0, 1.0],
    "purple": [0.6, 0.0, 0.8],
}
RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
SIZE = 4


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((SIZE, SIZE, 3), colour, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_split(uri, split, images):
    folder = os.path.join(uri, f"Split-{split}")
    os.makedirs(folder)
    classes = SEEN + UNSEEN
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(folder, "data.gz"), options) as writer:
        for colour, label in images:
            feature = {
                features.IMAGE_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[png(RGB[colour])])
                ),
                features.LABEL_TEXT_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[label.encode()])
                ),
                features.LABEL_ID_KEY: tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[classes.index(label)])
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )


def colour_model(labels) -> keras.Model:
    """DeViSE model whose embedding is the mean colour of the image."""
    model = build_devise_model(
        keras.layers.GlobalAveragePooling2D(),
        np.array([VECTORS[label] for label in labels]),
        image_size=SIZE,
    )
    model.get_layer("projection").set_weights([np.eye(3), np.zeros(3)])
    return model


def softmax_model() -> keras.Model:
    """Softmax over the seen labels [green, red]: red images -> red, blue -> 50/50."""
    model = build_softmax_model(keras.layers.GlobalAveragePooling2D(), 2, image_size=SIZE)
    model.get_layer("classifier").set_weights(
        [np.array([[-5.0, 5.0], [5.0, -5.0], [0.0, 0.0]]), np.zeros(2)]
    )
    return model


@pytest.fixture()
def artifacts(tmp_path):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = '["train", "eval", "unseen"]'
    os.makedirs(examples.uri)
    with open(os.path.join(examples.uri, features.CLASS_SPLIT_FILE), "w") as f:
        json.dump({"classes": SEEN + UNSEEN, "seen": SEEN, "unseen": UNSEEN}, f)
    write_split(examples.uri, "eval", [("red", "red")] * 2 + [("green", "green")] * 2)
    write_split(examples.uri, "unseen", [("blue", "blue")] * 2 + [("red", "purple")] * 2)

    embeddings = LabelEmbeddings(SEEN + UNSEEN, [VECTORS[label] for label in SEEN + UNSEEN])
    label_embeddings = LabelEmbeddingsArtifact()
    label_embeddings.uri = str(tmp_path / "label_embeddings")
    embeddings.save(label_embeddings.uri)

    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    config = DeviseConfig(model=ModelConfig(image_size=SIZE))
    write_app_bundle(
        os.path.join(model.uri, "Format-Serving"), colour_model(SEEN), config, embeddings
    )
    base_model = standard_artifacts.Model()
    base_model.uri = str(tmp_path / "base_model")
    os.makedirs(os.path.join(base_model.uri, "softmax"))
    softmax_model().save(os.path.join(base_model.uri, "softmax", "model.keras"))

    report = ZeroShotReport()
    report.uri = str(tmp_path / "report")
    return {
        "examples": examples,
        "model": model,
        "label_embeddings": label_embeddings,
        "base_model": base_model,
        "report": report,
        "tmp_path": tmp_path,
    }


def run(artifacts, base_model=True, wordnet_dir=None, k_values=(1, 2, 5), **properties):
    inputs = {
        "examples": [artifacts["examples"]],
        "model": [artifacts["model"]],
        "label_embeddings": [artifacts["label_embeddings"]],
    }
    if base_model:
        inputs["base_model"] = [artifacts["base_model"]]
    if wordnet_dir is None:
        wordnet_dir = str(artifacts["tmp_path"] / "no_wordnet_here")
    executor.Executor().Do(
        inputs,
        {"report": [artifacts["report"]]},
        {
            "k_values": json.dumps(list(k_values)),
            "conse_top_t": 10,
            "wordnet_dir": wordnet_dir,
            "batch_size": 3,  # several batches per split
            **properties,
        },
    )
    with open(os.path.join(artifacts["report"].uri, "report.json")) as f:
        return json.load(f)


@pytest.fixture()
def no_debian_wordnet(monkeypatch):
    from devise_keras import wordnet

    monkeypatch.setattr(wordnet, "DEFAULT_DIRS", ())
    monkeypatch.setattr(wordnet.subprocess, "run", _no_dpkg)


def _no_dpkg(*args, **kwargs):
    raise OSError("no dpkg")


def test_devise_rows_match_the_hand_computed_ranks(artifacts, no_debian_wordnet):
    report = run(artifacts)
    devise = report["models"]["devise"]
    # Eval: red -> red 1 vs green 0; green -> green 1 vs red 0: all rank 1.
    assert devise["flat_hit_at_k"] == {"1": 1.0, "2": 1.0}
    # -0 among {blue, purple}: blue image: blue 1 > purple 0.8; red image (purple):
    # purple 0.6 > blue 0 -> all rank 1.
    assert devise["zero_shot_hit_at_k"]["-0"] == {"1": 1.0, "2": 1.0}
    # +seen: blue images rank 1; red images labelled purple: red 1 > purple 0.6 -> rank 2.
    assert devise["zero_shot_hit_at_k"]["+seen"] == {"1": 0.5, "2": 1.0, "4": 1.0}
    # GZSL: s = 1 (both seen classes right); u = (blue 1 + purple 0) / 2 = 0.5;
    # H = 2 * 0.5 * 1 / 1.5.
    assert devise["gzsl"] == pytest.approx({"u": 0.5, "s": 1.0, "H": 2 / 3})
    assert report["labels"] == {"seen": SEEN, "unseen": UNSEEN}
    assert report["counts"] == {"eval": 4, "unseen": 4}


def test_softmax_and_conse_rows_from_the_base_model(artifacts, no_debian_wordnet):
    report = run(artifacts)
    softmax, conse = report["models"]["softmax"], report["models"]["conse"]
    # Softmax ranks only seen labels: perfect on eval, never right on unseen images.
    assert softmax["flat_hit_at_k"] == {"1": 1.0, "2": 1.0}
    assert "zero_shot_hit_at_k" not in softmax
    assert softmax["gzsl"] == pytest.approx({"u": 0.0, "s": 1.0, "H": 0.0})
    # ConSE (T capped to 2): blue images get p = 0.5/0.5 -> embedding (red + green) / 2,
    # cosines: red .71, green .71, purple .42, blue 0. Red images -> ~red: purple .6 > blue 0.
    # -0: blue images rank 2 (purple first), purple images rank 1 -> hit@1 0.5.
    assert conse["zero_shot_hit_at_k"]["-0"] == {"1": 0.5, "2": 1.0}
    # +seen: blue images rank 4, purple images rank 2 (only red above) -> hit@2 0.5.
    assert conse["zero_shot_hit_at_k"]["+seen"] == {"1": 0.0, "2": 0.5, "4": 1.0}
    assert report["conse_top_t"] == 2


def test_chance_row_and_the_markdown_summary(artifacts, no_debian_wordnet):
    report = run(artifacts)
    chance = report["models"]["chance"]
    assert chance["flat_hit_at_k"] == {"1": 0.5, "2": 1.0}
    assert chance["zero_shot_hit_at_k"]["+seen"] == {"1": 0.25, "2": 0.5, "4": 1.0}
    assert chance["gzsl"] == {"u": 0.25, "s": 0.25, "H": 0.25}
    assert "skipped" in report["wordnet"]
    assert any("hierarchical precision skipped" in n for n in report["notes"])
    markdown = open(os.path.join(artifacts["report"].uri, "report.md")).read()
    assert "| devise | 100.0 | 100.0 |" in markdown
    assert 'Zero-shot hit@k "-0"' in markdown
    assert artifacts["report"].get_float_custom_property("gzsl_h") == pytest.approx(2 / 3)
    # No gzsl_calibration: no calibrated numbers anywhere.
    assert "gzsl_calibration" not in report
    assert all("gzsl_calibrated" not in m for m in report["models"].values())
    assert "calibrated stacking" not in markdown


def test_calibrated_gzsl_beside_the_raw_numbers(artifacts, no_debian_wordnet):
    report = run(artifacts, gzsl_calibration=0.5)
    models = report["models"]
    assert report["gzsl_calibration"] == 0.5
    # DeViSE, seen scores - 0.5: red images: red 0.5 < purple 0.6, so the red class is
    # lost (s: red 0, green 1 -> 0.5) and the red images labelled purple are won; blue
    # images: blue 1 > purple 0.8 > seen 0.5 -> u = 1, H = 2 * 0.5 / 1.5.
    assert models["devise"]["gzsl_calibrated"] == pytest.approx({"u": 1.0, "s": 0.5, "H": 2 / 3})
    assert models["devise"]["gzsl"] == pytest.approx({"u": 0.5, "s": 1.0, "H": 2 / 3})
    # ConSE cosines (see above) - 0.5 on red/green: blue images red .21 = green .21 <
    # purple .42 (blue lost); red images red .5 < purple .6 (purple won, red lost);
    # green images green .5 > purple ~0 -> s = 0.5, u = 0.5.
    assert models["conse"]["gzsl_calibrated"] == pytest.approx({"u": 0.5, "s": 0.5, "H": 0.5})
    assert "gzsl_calibrated" not in models["softmax"] and "gzsl_calibrated" not in models["chance"]
    markdown = open(os.path.join(artifacts["report"].uri, "report.md")).read()
    assert "calibrated stacking (seen scores minus 0.5)" in markdown
    assert "| devise | 100.0 | 50.0 | 66.7 |" in markdown
    assert artifacts["report"].get_float_custom_property("gzsl_h_calibrated") == pytest.approx(
        2 / 3
    )


def test_hierarchical_precision_uses_the_given_wordnet(artifacts):
    # colour -> chromatic_color: red, green, blue; purple under a different branch.
    wn_dir = artifacts["tmp_path"] / "wordnet"
    write_wordnet(wn_dir, COLOUR_WORDNET)
    report = run(artifacts, wordnet_dir=str(wn_dir))
    devise = report["models"]["devise"]["hierarchical_precision_at_k"]
    # Distances among all labels [green, red, blue, purple]: green-red-blue 2 apart,
    # purple 3 from each. Unseen images, k=2: blue's set (radius 2) = {green, red, blue};
    # its top 2 [blue, purple] -> 1/2. Purple's set (radius 3) = all; top 2 [red, purple]
    # -> 1. Mean 0.75. At k=1 it is hit@1 (0.5).
    assert devise["+seen"] == {"1": 0.5, "2": 0.75, "4": 1.0}
    assert devise["seen"] == {"1": 1.0, "2": 1.0}
    assert report["wordnet"]["without_synset"] == []


def test_without_base_model_there_are_no_softmax_or_conse_rows(artifacts, no_debian_wordnet):
    report = run(artifacts, base_model=False)
    assert set(report["models"]) == {"devise", "chance"}
    assert any("no base_model" in n for n in report["notes"])


def test_examples_without_class_split_raise_a_clear_error(artifacts, no_debian_wordnet):
    os.remove(os.path.join(artifacts["examples"].uri, features.CLASS_SPLIT_FILE))
    with pytest.raises(executor.ZeroShotEvaluatorError, match="class_split.json"):
        run(artifacts)


def test_a_model_without_app_bundle_raises_a_clear_error(artifacts, no_debian_wordnet):
    artifacts["model"].uri = str(artifacts["tmp_path"] / "empty_model")
    with pytest.raises(executor.ZeroShotEvaluatorError, match="config.json is missing"):
        run(artifacts)


def test_component_spec_wires_channels_and_validates_parameters():
    from tfx import types

    channel = types.Channel(type=standard_artifacts.Examples)
    model = types.Channel(type=standard_artifacts.Model)
    emb = types.Channel(type=LabelEmbeddingsArtifact)
    component = ZeroShotEvaluator(examples=channel, model=model, label_embeddings=emb)
    assert component.outputs["report"].type is ZeroShotReport
    assert json.loads(component.exec_properties["k_values"]) == [1, 2, 5, 10, 20]
    assert component.exec_properties["conse_top_t"] == 10
    with pytest.raises(ValueError, match="k_values"):
        ZeroShotEvaluator(examples=channel, model=model, label_embeddings=emb, k_values=[0])
    with pytest.raises(ValueError, match="conse_top_t"):
        ZeroShotEvaluator(examples=channel, model=model, label_embeddings=emb, conse_top_t=0)
    assert component.exec_properties.get("gzsl_calibration") is None
    calibrated = ZeroShotEvaluator(
        examples=channel, model=model, label_embeddings=emb, gzsl_calibration=1
    )
    assert calibrated.exec_properties["gzsl_calibration"] == 1.0
    with pytest.raises(ValueError, match="gzsl_calibration must be a finite number"):
        ZeroShotEvaluator(
            examples=channel, model=model, label_embeddings=emb, gzsl_calibration=float("nan")
        )
