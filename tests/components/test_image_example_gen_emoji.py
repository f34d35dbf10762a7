"""ImageExampleGen reads the emoji data step's manifest, with one style held out for eval."""

from __future__ import annotations

import json
import os

import pytest
from tfx.types import standard_artifacts

from components.image_example_gen import executor
from devise_keras import features
from devise_keras.datasets.emoji import prepare_emoji, write_style_split_manifest
from tests.components.image_example_gen_testutil import read_split
from tests.devise_keras.emoji_testutil import KEPT_LABELS, build_fake_packages


@pytest.mark.slow
def test_emoji_manifest_with_a_held_out_style_gives_train_eval_unseen(tmp_path):
    packages = build_fake_packages(tmp_path / "npm")
    info = prepare_emoji(tmp_path / "data", image_size=16, tarballs=packages, progress=False)
    split_manifest = tmp_path / "data" / "emoji" / "held_out_openmoji.csv"
    write_style_split_manifest(
        info["manifest"], split_manifest, held_out_style="openmoji", unseen_labels=["hot dog"]
    )
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "out")
    executor.Executor().Do(
        {},
        {"examples": [examples]},
        {"manifest": str(split_manifest), "eval_fraction": 0.2, "num_unseen": 1, "split_seed": 0},
    )
    class_split = json.loads(open(os.path.join(examples.uri, features.CLASS_SPLIT_FILE)).read())
    assert class_split["unseen"] == ["hot dog"]
    assert sorted(class_split["seen"]) == sorted(set(KEPT_LABELS) - {"hot dog"})
    train, evaluation = read_split(examples.uri, "train"), read_split(examples.uri, "eval")
    unseen = read_split(examples.uri, "unseen")
    assert {r["path"].split("/")[1] for r in evaluation} == {"openmoji"}
    assert sorted(r["label"] for r in evaluation) == sorted(set(KEPT_LABELS) - {"hot dog"})
    assert len(train) == 4 * 5 and "openmoji" not in {r["path"].split("/")[1] for r in train}
    assert [r["label"] for r in unseen] == ["hot dog"] * 5
