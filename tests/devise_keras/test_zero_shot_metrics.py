"""Tests of the zero-shot report's rows (devise_keras.zero_shot_metrics), hand-computed.

Labels (columns): green, red (seen), blue, purple (unseen), with the label vectors
green (0,1,0), red (1,0,0), blue (0,0,1), purple (.6,0,.8). Eval images: 2 red, 2 green,
embedded as their colour; unseen images: 2 blue (label blue), 2 red (label purple).
"""

from __future__ import annotations

import numpy as np
import pytest

from devise_keras import zero_shot_metrics
from devise_keras.zero_shot_metrics import (
    chance_metrics,
    check_k_values,
    model_metrics,
    padded_softmax_scores,
    render_markdown,
    report_models,
    wordnet_distances,
)
from tests.devise_keras.test_wordnet import write_wordnet

VECTORS = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [0.6, 0, 0.8]], np.float64)
RED, GREEN, BLUE = [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]
SEEN_EMB = np.array([RED, RED, GREEN, GREEN])
SEEN_Y = np.array([1, 1, 0, 0])
UNSEEN_EMB = np.array([BLUE, BLUE, RED, RED])
UNSEEN_Y = np.array([2, 2, 3, 3])
# Softmax over [green, red]: red -> red, green -> green, blue -> 50/50.
SEEN_PROB = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
UNSEEN_PROB = np.array([[0.5, 0.5], [0.5, 0.5], [0.0, 1.0], [0.0, 1.0]])
# green-red-blue 2 hops apart (under chromatic_color), purple 3 from each.
DISTANCES = np.array([[0, 2, 2, 3], [2, 0, 2, 3], [2, 2, 0, 3], [3, 3, 3, 0]], np.float64)
K = [1, 2, 5]
# A toy WordNet giving DISTANCES: red, green, blue under chromatic_color, purple apart.
COLOUR_WORDNET = [
    ("entity", ["entity"], []),
    ("chromatic", ["chromatic_color"], [("@", "entity")]),
    ("red", ["red"], [("@", "chromatic")]),
    ("green", ["green"], [("@", "chromatic")]),
    ("blue", ["blue"], [("@", "chromatic")]),
    ("purple", ["purple"], [("@", "entity")]),
]


def devise_scores():
    return SEEN_EMB @ VECTORS.T, UNSEEN_EMB @ VECTORS.T


def test_model_metrics_of_devise_match_the_hand_computed_ranks():
    seen_s, unseen_s = devise_scores()
    m = model_metrics(seen_s, SEEN_Y, unseen_s, UNSEEN_Y, 2, K, None)
    # Eval: red -> red 1 vs green 0; green -> green 1 vs red 0: all rank 1.
    assert m["flat_hit_at_k"] == {"1": 1.0, "2": 1.0}
    # -0 among {blue, purple}: blue image blue 1 > purple .8; red image purple .6 > blue 0.
    assert m["zero_shot_hit_at_k"]["-0"] == {"1": 1.0, "2": 1.0}
    # +seen: red images labelled purple: red 1 > purple .6 -> rank 2.
    assert m["zero_shot_hit_at_k"]["+seen"] == {"1": 0.5, "2": 1.0, "4": 1.0}
    # s = 1; u = (blue 1 + purple 0) / 2; H = 2 * .5 * 1 / 1.5.
    assert m["gzsl"] == pytest.approx({"u": 0.5, "s": 1.0, "H": 2 / 3})
    assert "gzsl_calibrated" not in m and "hierarchical_precision_at_k" not in m


def test_model_metrics_calibrated_gzsl_subtracts_gamma_from_seen_scores():
    seen_s, unseen_s = devise_scores()
    m = model_metrics(seen_s, SEEN_Y, unseen_s, UNSEEN_Y, 2, K, None, calibration=0.5)
    # Red images: red .5 < purple .6 (class red lost, s = .5; purple images won);
    # blue images: blue 1 > purple .8 > .5 -> u = 1; H = 2 * .5 / 1.5.
    assert m["gzsl_calibrated"] == pytest.approx({"u": 1.0, "s": 0.5, "H": 2 / 3})
    assert m["gzsl"] == pytest.approx({"u": 0.5, "s": 1.0, "H": 2 / 3})


def test_model_metrics_with_wordnet_distances_and_hop_buckets():
    seen_s, unseen_s = devise_scores()
    m = model_metrics(seen_s, SEEN_Y, unseen_s, UNSEEN_Y, 2, K, DISTANCES)
    # Unseen images, k=2: blue's set (radius 2) = {green, red, blue}, its top 2 [blue,
    # purple] -> 1/2; purple's set (radius 3) = all, top 2 [red, purple] -> 1. Mean .75.
    assert m["hierarchical_precision_at_k"] == {
        "seen": {"1": 1.0, "2": 1.0},
        "+seen": {"1": 0.5, "2": 0.75, "4": 1.0},
    }
    # Nearest seen label: blue 2 hops, purple 3: "<=2" holds blue alone (counts only).
    assert m["zero_shot_by_hops"] == {
        "<=2": {"labels": 1, "images": 2, "hit_at_k": {}},
        "<=3": {"labels": 2, "images": 4, "hit_at_k": {"1": 1.0, "2": 1.0}},
        "mapped": {"labels": 2, "images": 4, "hit_at_k": {"1": 1.0, "2": 1.0}},
    }


def test_model_metrics_without_zero_shot_scores_only_the_flat_row_and_gzsl():
    scores = padded_softmax_scores(SEEN_PROB, 4), padded_softmax_scores(UNSEEN_PROB, 4)
    m = model_metrics(scores[0], SEEN_Y, scores[1], UNSEEN_Y, 2, K, DISTANCES, False, 0.5)
    assert m["flat_hit_at_k"] == {"1": 1.0, "2": 1.0}
    assert m["gzsl"] == pytest.approx({"u": 0.0, "s": 1.0, "H": 0.0})
    assert set(m) == {"flat_hit_at_k", "gzsl", "hierarchical_precision_at_k"}
    assert set(m["hierarchical_precision_at_k"]) == {"seen"}
    no_unseen = model_metrics(devise_scores()[0], SEEN_Y, None, None, 2, K, None)
    assert set(no_unseen) == {"flat_hit_at_k"}


def test_chance_metrics_are_k_over_the_label_count():
    m = chance_metrics(SEEN_Y, UNSEEN_Y, 2, 4, K, DISTANCES)
    assert m["flat_hit_at_k"] == {"1": 0.5, "2": 1.0}
    assert m["zero_shot_hit_at_k"] == {
        "-0": {"1": 0.5, "2": 1.0},
        "+seen": {"1": 0.25, "2": 0.5, "4": 1.0},
    }
    assert m["gzsl"] == {"u": 0.25, "s": 0.25, "H": 0.25}
    # +seen, k=2: blue's set has 3 of 4 labels, purple's all 4: (.75 + 1) / 2.
    assert m["hierarchical_precision_at_k"] == {
        "seen": {"1": 0.5, "2": 1.0},
        "+seen": {"1": 0.25, "2": 0.875, "4": 1.0},
    }
    assert m["zero_shot_by_hops"]["<=2"] == {"labels": 1, "images": 2, "hit_at_k": {}}
    assert m["zero_shot_by_hops"]["<=3"] == {
        "labels": 2,
        "images": 4,
        "hit_at_k": {"1": 0.5, "2": 1.0},
    }
    assert set(chance_metrics(SEEN_Y, None, 2, 4, K, None)) == {"flat_hit_at_k"}


def test_padded_softmax_scores_put_unseen_labels_last():
    assert padded_softmax_scores([[0.25, 0.75]], 4).tolist() == [[0.25, 0.75, -1.0, -1.0]]
    with pytest.raises(ValueError, match="num_labels=1 is below the 2 softmax classes"):
        padded_softmax_scores([[0.25, 0.75]], 1)


def test_report_models_gives_every_row_with_softmax_and_conse():
    rows = report_models(
        VECTORS,
        2,
        K,
        SEEN_Y,
        SEEN_EMB,
        UNSEEN_Y,
        UNSEEN_EMB,
        SEEN_PROB,
        UNSEEN_PROB,
        conse_top_t=10,
        calibration=0.5,
    )
    assert list(rows) == ["devise", "softmax", "conse", "chance"]
    assert rows["devise"]["zero_shot_hit_at_k"]["+seen"] == {"1": 0.5, "2": 1.0, "4": 1.0}
    assert "zero_shot_hit_at_k" not in rows["softmax"] and "gzsl_calibrated" not in rows["softmax"]
    # ConSE: blue images -> (red + green) / 2: cosines red .71 = green .71 > purple .42 >
    # blue 0, so "-0" rank 2 and "+seen" rank 4; red images -> red: purple .6 > blue 0.
    assert rows["conse"]["zero_shot_hit_at_k"]["-0"] == {"1": 0.5, "2": 1.0}
    assert rows["conse"]["zero_shot_hit_at_k"]["+seen"] == {"1": 0.0, "2": 0.5, "4": 1.0}
    assert rows["conse"]["gzsl_calibrated"] == pytest.approx({"u": 0.5, "s": 0.5, "H": 0.5})
    assert rows["chance"]["gzsl"] == {"u": 0.25, "s": 0.25, "H": 0.25}
    without_softmax = report_models(VECTORS, 2, K, SEEN_Y, SEEN_EMB, UNSEEN_Y, UNSEEN_EMB)
    assert list(without_softmax) == ["devise", "chance"]


def test_wordnet_distances_from_a_toy_wordnet_and_without_one(tmp_path):
    write_wordnet(tmp_path / "wordnet", COLOUR_WORDNET)
    distances, info = wordnet_distances(
        ["green", "red", "blue", "purple", "zorg"], str(tmp_path / "wordnet")
    )
    assert distances[:4, :4].tolist() == DISTANCES.tolist()
    assert np.isinf(distances[4, :4]).all() and distances[4, 4] == 0
    assert info["without_synset"] == ["zorg"]
    assert [m["label"] for m in info["labels"]] == ["green", "red", "blue", "purple", "zorg"]


def test_wordnet_distances_without_a_wordnet_say_why(tmp_path, monkeypatch):
    from devise_keras import wordnet

    monkeypatch.setattr(wordnet, "DEFAULT_DIRS", ())  # no system WordNet either
    monkeypatch.setattr(wordnet.subprocess, "run", _no_dpkg)
    missing, info = wordnet_distances(["red"], str(tmp_path / "no_wordnet_here"))
    assert missing is None and "no_wordnet_here" in info["skipped"]


def _no_dpkg(*args, **kwargs):
    raise OSError("no dpkg")


def test_check_k_values_sorts_and_rejects_bad_cut_offs():
    assert check_k_values([5, 1, 2, 1]) == [1, 2, 5]
    for bad in ([], [0], [True], [1.5]):
        with pytest.raises(ValueError, match="k_values must be a non-empty list of ints >= 1"):
            check_k_values(bad)


def test_render_markdown_tables_in_percent():
    rows = report_models(VECTORS, 2, K, SEEN_Y, SEEN_EMB, UNSEEN_Y, UNSEEN_EMB, calibration=0.5)
    report = {
        "labels": {"seen": ["green", "red"], "unseen": ["blue", "purple"]},
        "counts": {"eval": 4, "unseen": 4},
        "models": rows,
        "gzsl_calibration": 0.5,
        "notes": ["no base_model"],
    }
    markdown = render_markdown(report)
    assert "2 seen labels (green, red); 2 unseen labels (blue, purple)" in markdown
    assert "| devise | 100.0 | 100.0 |" in markdown  # flat hit@1, hit@2
    assert "| devise | 50.0 | 100.0 | 100.0 |" in markdown  # +seen hit@1, 2, 4
    assert "| devise | 100.0 | 50.0 | 66.7 |" in markdown  # calibrated u, s, H
    assert "calibrated stacking (seen scores minus 0.5)" in markdown
    assert "- no base_model" in markdown
    assert zero_shot_metrics.MODEL_NAMES == ("devise", "softmax", "conse", "chance")
