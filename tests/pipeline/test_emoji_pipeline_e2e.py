"""End to end on an emoji-shaped fixture: a hub backbone, one style held out, it learns.

The demo's shape at toy size: a manifest with a style column, 20 % of the classes
unseen, one style held out for the gated flat evaluation, a TF-Hub-format feature
vector as `model.backbone` (exported here from a small seeded CNN, not the real
Lite0), label vectors from a TF-Hub-format TEXT ENCODER with label descriptions (a
bag-of-words model built here, not USE), the demo's projection settings (unit
embedding, softmax cross-entropy over label scores, feature dropout), stage 2 on
cached features and stage 3 fine-tuning. The pushed SavedModel then ranks label
strings given at request time, names nobody trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest

from devise_keras.config import DeviseConfig
from devise_keras.hub_export import export_hub_feature_vector
from devise_keras.model import build_small_cnn
from pipeline import local_runner, results
from tests.pipeline import emoji_like_data

pytestmark = pytest.mark.slow

SIZE = 16
HELD_OUT_STYLE = "ring"


@pytest.fixture(scope="module")
def emoji_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("emoji_e2e")
    manifest = emoji_like_data.write_emoji_like(root / "data", size=SIZE)
    encoder = emoji_like_data.write_colour_text_encoder(root / "encoder")
    texts = root / "label_texts.csv"
    texts.write_text("label,text\nred apple,a sweet fruit\nblue car,a fast machine\n")
    keras.utils.set_random_seed(0)
    hub = export_hub_feature_vector(
        build_small_cnn(SIZE, filters=(8,), feature_dim=16), str(root / "hub"), SIZE
    )
    config = DeviseConfig.from_dict(
        {
            "pipeline_name": "devise-emoji-e2e",
            "data": {
                "manifest": str(manifest),
                "unseen_fraction": 0.2,
                "eval_style": HELD_OUT_STYLE,
            },
            "embeddings": {"text_encoder": encoder, "label_texts": str(texts)},
            "model": {
                "backbone": hub,
                "image_size": SIZE,
                "loss": "cross_entropy",
                "projection_normalize": True,
                "feature_dropout": 0.25,
            },
            "train": {
                "batch_size": 8,
                "projection_epochs": 40,
                "finetune_epochs": 1,
                "finetune_variables": 2,
                "learning_rate": 0.01,
            },
            # Chance is 1/5 for hit@1 over the 5 seen classes.
            "eval": {"k_values": [1, 2, 5], "min_hit_at_1": 0.35},
        }
    )
    paths = local_runner.run(config, root / "out")
    return config, paths


def test_held_out_style_hit_at_1_is_far_above_chance_and_the_model_is_pushed(emoji_run):
    _, paths = emoji_run
    facts = results.collect(paths)
    # The Evaluator scores the held-out style only: 5 seen classes x 3 variants.
    # Twice chance at least (0.2): the held-out "ring" style is outlines only, and the
    # toy backbone is a random CNN; 0.53-0.65 measured over runs.
    assert facts["devise"]["hit_at_1"] >= 0.4
    assert facts["blessed"] is True and facts["pushed"] is True


def test_the_class_split_and_the_style_holdout_are_recorded(emoji_run):
    _, paths = emoji_run
    store = results.open_store(paths["metadata_path"])
    examples = results.latest_artifact(store, "Examples")
    class_split = json.loads((Path(examples.uri) / "class_split.json").read_text())
    assert len(class_split["unseen"]) == 1  # round(0.2 x 6)
    assert class_split["eval_style"] == HELD_OUT_STYLE
    assert class_split["styles"] == sorted(emoji_like_data.STYLES)
    report = json.loads((Path(examples.uri) / "report.json").read_text())
    assert report["splits"] == {"train": 5 * 3 * 3, "eval": 5 * 3, "unseen": 4 * 3}


def test_the_pushed_model_ranks_request_time_labels_it_never_saw(emoji_run):
    import numpy as np
    import tensorflow as tf

    from devise_keras.app_bundle import find_app_bundle

    config, paths = emoji_run
    store = results.open_store(paths["metadata_path"])
    examples = results.latest_artifact(store, "Examples")
    (unseen,) = json.loads((Path(examples.uri) / "class_split.json").read_text())["unseen"]
    thing = unseen.split()[1]
    # The unseen name among three made-up ones: other colours, the same thing (chance 1/4).
    others = [c for c in emoji_like_data.COLOUR_WORDS if c != unseen.split()[0]][:3]
    candidates = [unseen] + [f"{colour} {thing}" for colour in others]
    version = Path(find_app_bundle(paths["serving_dir"])).parents[1]
    served = tf.saved_model.load(str(version))
    manifest = Path(config.data.manifest)
    images = [
        (manifest.parent / row.split(",")[0]).read_bytes()
        for row in manifest.read_text().splitlines()[1:]
        if row.split(",")[1] == unseen
    ]
    out = served.signatures["rank_labels"](
        image_bytes=tf.constant(images), labels=tf.constant(candidates)
    )
    top = out["top_k_labels"].numpy()[:, 0].astype(str)
    assert np.mean(top == unseen) >= 0.5, list(top)  # chance 0.25
    scores = out["scores"].numpy()
    assert scores.shape == (len(images), 4) and np.all(np.abs(scores) <= 1 + 1e-5)  # cosines
