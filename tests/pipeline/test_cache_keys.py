"""TFX's cache notices edited input files and ignores config the components do not read.

One MLMD store, four runs of the tiny pipeline: the first runs everything; a change of
the Evaluator's gate reruns only the Evaluator (and the Pusher that follows its new
blessing); an in-place edit of the vectors file reruns LabelEmbeddingGen and what
depends on it; an in-place edit of one image reruns ImageExampleGen and everything after
it. (An untouched rerun is all cache hits up to the Evaluator: test_local_pipeline_e2e.)
"""

from __future__ import annotations

import dataclasses

import pytest

from pipeline import local_runner
from tests.pipeline import tiny_data
from tests.pipeline.test_local_pipeline_e2e import (
    COMPONENTS,
    Execution,
    executions_by_node,
    png_bytes,
    tiny_config,
)

pytestmark = pytest.mark.slow


def _fast(config):
    """The tiny config with the shortest training that still exports every model."""
    train = dataclasses.replace(
        config.train, backbone_epochs=1, projection_epochs=1, finetune_epochs=0, steps_per_epoch=2
    )
    return config.replace(pipeline_name="devise-cache", train=train)


def _latest_states(paths) -> dict[str, int]:
    return {
        n: e[-1].last_known_state for n, e in executions_by_node(paths["metadata_path"]).items()
    }


def _expect(paths, reran: set[str]) -> None:
    states = _latest_states(paths)
    expected = {n: Execution.COMPLETE if n in reran else Execution.CACHED for n in COMPONENTS}
    assert {n: states[n] for n in COMPONENTS} == expected


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    config = _fast(tiny_config(root))
    paths = local_runner.run(config, root / "out")
    _expect(paths, set(COMPONENTS))
    return config, root, paths


def test_an_evaluator_threshold_change_reruns_only_the_evaluator(run):
    config, root, paths = run
    gate = dataclasses.replace(config.eval, min_hit_at_1=0.01, max_regression=0.5)
    local_runner.run(config.replace(eval=gate), root / "out")
    _expect(paths, {"Evaluator", "Pusher"})


def test_an_in_place_edit_of_the_vectors_file_reruns_label_embedding_gen_and_after(run):
    config, root, paths = run
    vectors = root / "vectors.txt"
    tiny_data.write_glove(vectors, seed=7)  # same path and words, other values
    local_runner.run(config, root / "out")
    _expect(
        paths, {"LabelEmbeddingGen", "DeviseTrainer", "ZeroShotEvaluator", "Evaluator", "Pusher"}
    )


def test_an_in_place_edit_of_one_image_reruns_everything(run):
    config, root, paths = run
    image = root / "images" / "cat" / "cat_000.png"
    image.write_bytes(png_bytes((200, 60, 60)))
    local_runner.run(config, root / "out")
    _expect(paths, set(COMPONENTS))
