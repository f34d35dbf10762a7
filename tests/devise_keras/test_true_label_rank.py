"""One rank rule for every hit@k: ties and non-finite scores count against the model."""

from __future__ import annotations

import doctest

import keras
import numpy as np
import pytest

from components.evaluator.hit_at_k_metric import rank_of_true_label
from devise_keras import true_label_rank as module
from devise_keras import zero_shot
from devise_keras.hit_at_k import HitAtK, hit_at_k
from devise_keras.true_label_rank import MISS_RANK, true_label_rank, true_label_rank_numpy

NAN, INF = np.nan, np.inf
# Hand-ranked rows over 4 labels.
SCORES = np.array(
    [
        [0.9, 0.5, 0.5, 0.1],  # y=1: 0.9 and the tied 0.5 at least as high -> 3
        [NAN, 0.7, 0.1, 0.3],  # y=1: the NaN competitor ranks above -> 2
        [0.2, NAN, 0.1, 0.3],  # y=1: NaN true score -> miss at every k
        [0.2, INF, 0.1, 0.3],  # y=1: +inf true score -> miss
        [-INF, 0.2, 0.1, 0.3],  # y=0: -inf true score -> miss
        [0.2, -INF, 0.1, 0.3],  # y=0: -inf competitor is below -> 2 (0.3 above)
        [NAN, NAN, NAN, NAN],  # y=2: diverged model -> miss
    ],
    np.float32,
)
Y = np.array([1, 1, 1, 1, 0, 0, 2])
M = MISS_RANK
RANKS = [3, 2, M, M, M, 2, M]


def test_ranks_match_the_hand_count():
    assert true_label_rank_numpy(Y, SCORES).tolist() == RANKS
    assert np.asarray(true_label_rank(Y[:, None].astype(np.float32), SCORES)).tolist() == RANKS


def test_keras_tfma_and_zero_shot_callers_agree_with_the_rule():
    assert [rank_of_true_label(int(y), s) for y, s in zip(Y, SCORES, strict=True)] == RANKS
    assert zero_shot.true_label_ranks(SCORES, Y).tolist() == RANKS
    for k in (1, 2, 3, 4, 100):
        expected = (np.array(RANKS) <= k).astype(np.float32)
        np.testing.assert_array_equal(hit_at_k(Y, SCORES, k), expected)


def test_a_nan_model_scores_zero_even_when_k_covers_every_label():
    scores = np.full((3, 4), np.nan, np.float32)
    metric = HitAtK(k=10)
    metric.update_state(np.array([0, 1, 2]), scores)
    assert float(metric.result()) == 0.0


def test_rank_works_inside_a_compiled_keras_metric():
    # The rule runs in graph mode (model.evaluate) as well as eagerly.
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(loss=lambda y, s: keras.ops.zeros(()), metrics=[HitAtK(1), HitAtK(2)])
    result = model.evaluate(SCORES, Y.astype(np.float32), return_dict=True, verbose=0)
    assert result["hit_at_1"] == pytest.approx(0.0)
    assert result["hit_at_2"] == pytest.approx(2 / 7)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="scores must have shape \\(batch, labels\\)"):
        true_label_rank([0], [0.1, 0.2])
    with pytest.raises(ValueError, match="y_true must be \\(batch,\\) or \\(batch, 1\\)"):
        true_label_rank(np.zeros((2, 2)), np.zeros((2, 3)))


def test_docstring_examples_run():
    assert doctest.testmod(module).failed == 0


def test_a_fresh_process_may_import_the_rank_rule_first():
    """Importing it first imports Keras, which registers HitAtK while this module is
    half-initialised: that must not be a circular ImportError."""
    import subprocess
    import sys

    code = (
        "import devise_keras.true_label_rank as r, numpy as np\n"
        "from devise_keras.hit_at_k import HitAtK\n"
        "print(int(r.true_label_rank_numpy(np.array([1]), np.array([[0.5, 0.2]]))[0]), "
        "float(HitAtK(1)(np.array([0]), np.array([[0.9, 0.1]]))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["2", "1.0"]
