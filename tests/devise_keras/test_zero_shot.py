"""Golden values for the zero-shot metrics on tiny hand-made score matrices."""

from __future__ import annotations

import numpy as np
import pytest

from devise_keras import zero_shot
from devise_keras.true_label_rank import MISS_RANK

# 4 images over 5 labels; labels 0-2 seen, 3-4 unseen.
SCORES = np.array(
    [
        [0.9, 0.1, 0.0, 0.5, 0.2],  # true 3: -0 rank 1 (0.5 > 0.2); +seen rank 2 (0.9 > 0.5)
        [0.1, 0.2, 0.3, 0.4, 0.4],  # true 4: tie with 3 -> -0 rank 2; +seen rank 2
        [0.8, 0.7, 0.6, 0.1, 0.5],  # true 4: -0 rank 1; +seen rank 4 (0.8, 0.7, 0.6 above)
        [0.0, 0.0, 0.0, 0.3, 0.9],  # true 3: -0 rank 2; +seen rank 2
    ]
)
Y = np.array([3, 4, 4, 3])
UNSEEN = [3, 4]


def test_ranks_count_ties_against_the_true_label():
    # Row 1: labels 3 and 4 tie at 0.4, so the true label 4 ranks 2, not 1.
    assert zero_shot.true_label_ranks(SCORES, Y).tolist() == [2, 2, 4, 2]
    assert zero_shot.true_label_ranks([[1.0, 1.0, 1.0]], [0]).tolist() == [3]


def test_hit_at_k_matches_hand_count_and_caps_k_by_the_label_count():
    # ranks [2, 2, 4, 2]: hit@1 0/4, hit@2 3/4, hit@5 (capped to 5 labels) 4/4
    assert zero_shot.hit_at_k(SCORES, Y, [1, 2, 20]) == {1: 0.0, 2: 0.75, 5: 1.0}


def test_zero_shot_minus_zero_ranks_among_unseen_labels_only():
    # -0 ranks: [1, 2 (tie), 1, 2] -> hit@1 2/4, hit@2 (= label count) 4/4; k=5 caps to 2.
    got = zero_shot.zero_shot_hit_at_k(SCORES, Y, UNSEEN, [1, 2, 5], "-0")
    assert got == {1: 0.5, 2: 1.0}


def test_zero_shot_plus_seen_ranks_among_all_labels():
    # +seen ranks: [2, 2, 4, 2] -> hit@1 0, hit@2 3/4, hit@5 1.
    got = zero_shot.zero_shot_hit_at_k(SCORES, Y, UNSEEN, [1, 2, 5], "+seen")
    assert got == {1: 0.0, 2: 0.75, 5: 1.0}


def test_zero_shot_rejects_seen_images_and_bad_protocols():
    with pytest.raises(ValueError, match="seen label ids \\[0\\]"):
        zero_shot.zero_shot_hit_at_k(SCORES, [0, 4, 4, 3], UNSEEN, [1], "-0")
    with pytest.raises(ValueError, match="protocol"):
        zero_shot.zero_shot_hit_at_k(SCORES, Y, UNSEEN, [1], "+1K")
    with pytest.raises(ValueError, match="repeated"):
        zero_shot.zero_shot_hit_at_k(SCORES, Y, [3, 3], [1], "-0")


def test_metrics_reject_bad_shapes_ids_and_k():
    with pytest.raises(ValueError, match="\\(num_images, num_labels\\)"):
        zero_shot.hit_at_k([0.1, 0.2], [0], [1])
    with pytest.raises(ValueError, match="label ids must be in \\[0, 5\\)"):
        zero_shot.hit_at_k(SCORES, [0, 1, 2, 5], [1])
    with pytest.raises(ValueError, match="4 labels for 3 rows"):
        zero_shot.hit_at_k(SCORES[:3], Y, [1])
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        zero_shot.hit_at_k(SCORES, Y, [0])


def test_per_class_accuracy_weighs_each_class_equally():
    scores = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]]
    # class 0: 3 of 3 right -> 1.0; class 1: 0 of 1 right -> 0.0; mean 0.5
    # (plain accuracy would be 3/4).
    assert zero_shot.per_class_accuracy(scores, [0, 0, 0, 1]) == 0.5
    # A tie is a miss: the row [0.5, 0.5] counts as wrong for class 0.
    assert zero_shot.per_class_accuracy([[0.5, 0.5], [0.9, 0.1]], [0, 0]) == 0.5
    with pytest.raises(ValueError, match="class 1 has no images"):
        zero_shot.per_class_accuracy(scores, [0, 0, 0, 0], classes=[0, 1])


def test_generalized_zero_shot_u_s_and_harmonic_mean():
    # Seen images (labels 0, 1) over all 3 labels: class 0 1/1, class 1 1/2 -> s = 0.75.
    seen = [[0.9, 0.1, 0.0], [0.1, 0.8, 0.2], [0.1, 0.3, 0.6]]
    # Unseen images (label 2): 1 of 2 ranked first -> u = 0.5.
    unseen = [[0.1, 0.2, 0.7], [0.6, 0.1, 0.3]]
    got = zero_shot.generalized_zero_shot(seen, [0, 1, 1], unseen, [2, 2])
    # H = 2 * 0.5 * 0.75 / 1.25 = 0.6
    assert got == pytest.approx({"u": 0.5, "s": 0.75, "H": 0.6})
    assert zero_shot.harmonic_mean(0.0, 0.0) == 0.0


def test_conse_embedding_is_the_probability_weighted_mean_of_top_t_vectors():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    probs = np.array([[0.1, 0.5, 0.3, 0.1], [0.25, 0.25, 0.25, 0.25]])
    got = zero_shot.conse_embedding(probs, vectors, top_t=2)
    # Row 0: top 2 are labels 1 (0.5) and 2 (0.3): (0.5*[0,1] + 0.3*[-1,0]) / 0.8.
    # Row 1: all tie; label order breaks it -> labels 0 and 1: (0.25*[1,0] + 0.25*[0,1]) / 0.5.
    np.testing.assert_allclose(got, [[-0.375, 0.625], [0.5, 0.5]])
    # T above the label count is capped at 4: (0.1*[1,0] + 0.5*[0,1] + 0.3*[-1,0] + 0.1*[0,-1]) / 1.
    np.testing.assert_allclose(zero_shot.conse_embedding(probs[:1], vectors, 10), [[-0.2, 0.4]])


def test_conse_scores_rank_an_unseen_label_by_cosine():
    seen = np.array([[1.0, 0.0], [0.0, 1.0]])
    labels = np.vstack([seen, [[0.6, 0.8]], [[-0.6, 0.8]]])
    scores = zero_shot.conse_scores([[0.5, 0.5]], seen, labels, top_t=2)
    # Embedding [0.5, 0.5] -> unit [0.7071, 0.7071]; cosines 0.7071, 0.7071, 0.9899, 0.1414.
    np.testing.assert_allclose(scores, [[0.70710678, 0.70710678, 0.98994949, 0.14142136]])


def test_conse_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="3 probability columns but 2"):
        zero_shot.conse_embedding([[0.2, 0.3, 0.5]], np.eye(2), 2)
    with pytest.raises(ValueError, match="finite and >= 0"):
        zero_shot.conse_embedding([[-0.1, 1.1]], np.eye(2), 2)


# Toy hierarchy over 4 labels: 0 and 1 are siblings (2 hops), 2 is 4 hops from both,
# 3 has no synset (inf).
INF = np.inf
DIST = np.array(
    [
        [0, 2, 4, INF],
        [2, 0, 4, INF],
        [4, 4, 0, INF],
        [INF, INF, INF, 0],
    ]
)


def test_ground_truth_set_grows_hop_by_hop_until_it_holds_k_labels():
    assert zero_shot.ground_truth_set(DIST, 0, 1).tolist() == [0]
    assert zero_shot.ground_truth_set(DIST, 0, 2).tolist() == [0, 1]
    assert zero_shot.ground_truth_set(DIST, 2, 2).tolist() == [0, 1, 2]  # radius 4 adds both
    assert zero_shot.ground_truth_set(DIST, 0, 4).tolist() == [0, 1, 2]  # 3 is unreachable


def test_hierarchical_precision_at_k_on_a_toy_hierarchy():
    scores = np.array(
        [
            [0.1, 0.9, 0.5, 0.0],  # true 0: top1 [1] miss; top2 [1, 2] vs {0,1}: 1/2
            [0.2, 0.9, 0.5, 0.0],  # true 1: top1 hit; top2 [1, 2] vs {0,1}: 1/2
            [0.3, 0.1, 0.0, 0.9],  # true 2: top1 [3] miss; top2 [3, 0] vs {0,1,2}: 1/2
            [0.0, 0.0, 0.0, 1.0],  # true 3: no synset -> skipped
        ]
    )
    got = zero_shot.hierarchical_precision_at_k(scores, [0, 1, 2, 3], DIST, [1, 2])
    assert got["precision"] == pytest.approx({1: 1 / 3, 2: 0.5})
    assert got["num_images"] == 3 and got["num_skipped"] == 1


def test_hierarchical_precision_counts_score_ties_against_the_model():
    # All scores equal: the set of true label 1 at k=2 is {0, 1}; the pessimistic top 2
    # are the outsiders 2 and 3, so precision 0 (a constant scorer earns nothing).
    got = zero_shot.hierarchical_precision_at_k([[0.5, 0.5, 0.5, 0.5]], [1], DIST, [1, 2])
    assert got["precision"] == {1: 0.0, 2: 0.0}
    # One tie only: label 1 (in the set) at 0.9 is first, then 0 (in) ties 2 (out) at
    # 0.5 -> the outsider 2 takes the second place: 1/2.
    got = zero_shot.hierarchical_precision_at_k([[0.5, 0.9, 0.5, 0.1]], [1], DIST, [2])
    assert got["precision"] == {2: 0.5}


def test_hierarchical_precision_ranks_nan_first_outside_the_set_and_last_inside():
    nan = np.nan
    # NaN on label 3 (outside {0, 1}) takes a top place; NaN on label 0 (inside) none.
    got = zero_shot.hierarchical_precision_at_k([[nan, 0.9, 0.2, nan]], [1], DIST, [2])
    assert got["precision"] == {2: 0.5}


def test_non_finite_scores_count_against_the_model():
    nan, inf = np.nan, np.inf
    scores = [
        [nan, 0.2, 0.1],  # true 0 is NaN: a miss at every k (rank MISS_RANK)
        [0.9, inf, 0.1],  # true 1 is +inf: non-finite, a miss too
        [nan, 0.2, 0.1],  # true 1 is 0.2, but the NaN competitor ranks above it: 2
        [0.3, 0.2, -inf],  # true 0 finite, -inf competitor below it: 1
    ]
    miss = MISS_RANK
    assert zero_shot.true_label_ranks(scores, [0, 1, 1, 0]).tolist() == [miss, miss, 2, 1]
    assert zero_shot.hit_at_k(scores, [0, 1, 1, 0], [1, 2, 3]) == {1: 0.25, 2: 0.5, 3: 0.5}
    # A NaN model is never better than chance in the zero-shot protocols either.
    got = zero_shot.zero_shot_hit_at_k([[nan, nan, nan]], [2], [1, 2], [1, 2], "-0")
    assert got == {1: 0.0, 2: 0.0}


def test_hierarchical_precision_rejects_a_distance_matrix_of_the_wrong_size():
    with pytest.raises(ValueError, match="distances must be \\(4, 4\\)"):
        zero_shot.hierarchical_precision_at_k(np.zeros((1, 4)), [0], np.zeros((3, 3)), [1])


def test_chance_hit_at_k_is_k_over_the_label_count():
    assert zero_shot.chance_hit_at_k(4, [1, 2, 10]) == {1: 0.25, 2: 0.5, 4: 1.0}


def test_cosine_scores_reject_zero_rows_and_dim_mismatch():
    with pytest.raises(ValueError, match="all-zero"):
        zero_shot.cosine_scores([[0.0, 0.0]], np.eye(2))
    with pytest.raises(ValueError, match="dim 3"):
        zero_shot.cosine_scores([[1.0, 0.0, 0.0]], np.eye(2))


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(zero_shot)
    assert result.attempted >= 8 and result.failed == 0


# Labels 0, 1 seen; 2 is 2 hops from seen label 0, 3 is 3 hops from label 0 (4 and 5
# from label 1), 4 has no WordNet synset (inf everywhere), 5 is 1 hop from label 1.
INF = float("inf")
HOP_DISTANCES = np.array(
    [
        [0, 6, 2, 3, INF, 7],
        [6, 0, 4, 5, INF, 1],
        [2, 4, 0, 5, INF, 6],
        [3, 5, 5, 0, INF, 6],
        [INF, INF, INF, INF, 0, INF],
        [7, 1, 6, 6, INF, 0],
    ]
)


def test_hop_buckets_group_unseen_labels_by_their_nearest_seen_label():
    buckets = zero_shot.hop_buckets(HOP_DISTANCES, 2, hops=(1, 2, 3))
    assert {name: ids.tolist() for name, ids in buckets.items()} == {
        "<=1": [5],
        "<=2": [2, 5],
        "<=3": [2, 3, 5],
        "mapped": [2, 3, 5],
    }
    with pytest.raises(ValueError, match="num_seen must be in"):
        zero_shot.hop_buckets(HOP_DISTANCES, 6)


def test_zero_shot_hit_at_k_by_hops_ranks_within_each_bucket():
    # Columns: 0 1 | 2 3 4 5. One image per unseen label, in order 2, 3, 4, 5.
    scores = np.array(
        [
            [0.9, 0.9, 0.5, 0.6, 0.0, 0.4],  # label 2: 2nd among {2,3,5}, 1st among {2,5}
            [0.0, 0.0, 0.1, 0.3, 0.9, 0.2],  # label 3: 1st among {2,3,5}
            [0.0, 0.0, 0.1, 0.1, 0.8, 0.1],  # label 4: in no bucket
            [0.0, 0.0, 0.5, 0.5, 0.0, 0.5],  # label 5: ties count against it: 3rd of 3
        ]
    )
    out = zero_shot.zero_shot_hit_at_k_by_hops(
        scores, [2, 3, 4, 5], HOP_DISTANCES, 2, [1, 2], hops=(1, 2, 3)
    )
    assert out["<=1"] == {"labels": 1, "images": 1}  # one label: nothing to rank
    # <= 2 hops: labels {2, 5}; image of 2 ranks 1st (0.5 > 0.4); image of 5 ties 2nd.
    assert out["<=2"] == {"labels": 2, "images": 2, "hit_at_k": {1: 0.5, 2: 1.0}}
    # <= 3 hops: labels {2, 3, 5}; ranks 2, 1, 3.
    assert out["<=3"] == {"labels": 3, "images": 3, "hit_at_k": {1: 1 / 3, 2: 2 / 3}}
    assert out["mapped"] == out["<=3"]


# Calibrated stacking: labels 0-2 seen, 3-5 unseen. Each comment gives the row's top-score
# gap max(seen) - max(unseen): a right-able seen row stays right while gamma < gap, a
# right-able unseen row becomes right once gamma > gap.
CAL_SEEN = np.array(
    [
        [0.9, 0.2, 0.1, 0.5, 0.0, 0.3],  # label 0, gap 0.4
        [0.6, 0.1, 0.0, 0.4, 0.5, 0.0],  # label 0, gap 0.1
        [0.3, 0.8, 0.2, 0.0, 0.1, 0.6],  # label 1, gap 0.2
        [0.7, 0.1, 0.4, 0.2, 0.3, 0.1],  # label 2, never right (seen label 0 above it)
    ]
)
CAL_SEEN_Y = [0, 0, 1, 2]
CAL_UNSEEN = np.array(
    [
        [0.5, 0.2, 0.1, 0.7, 0.3, 0.0],  # label 3, gap -0.2
        [0.8, 0.1, 0.0, 0.6, 0.2, 0.1],  # label 3, gap 0.2
        [0.2, 0.5, 0.1, 0.0, 0.4, 0.3],  # label 4, gap 0.1
        [0.1, 0.2, 0.3, 0.1, 0.6, 0.2],  # label 5, never right (unseen label 4 above it)
    ]
)
CAL_UNSEEN_Y = [3, 3, 4, 5]
# gamma -> (u, s) by hand, per-class means over classes {3, 4, 5} and {0, 1, 2}:
CAL_EXPECTED = {
    -0.3: (0.0, 2 / 3),  # u: row 0 has 0.8 > 0.7 -> no unseen row right
    0.0: (1 / 6, 2 / 3),  # u: class 3 1/2; s: classes 0 and 1 right, class 2 never
    0.15: (1 / 2, 1 / 2),  # u: class 3 1/2, class 4 1; s: class 0 1/2, class 1 1
    0.3: (2 / 3, 1 / 6),  # u: classes 3 and 4 right; s: class 0 1/2 (0.6 > 0.5)
    0.6: (2 / 3, 0.0),  # s: row 0 0.3 < 0.5 -> no seen row right
}


def test_calibrated_stacking_lowers_only_the_seen_columns():
    got = zero_shot.calibrated_stacking(CAL_SEEN[:1], 3, 0.25)
    np.testing.assert_allclose(got, [[0.65, -0.05, -0.15, 0.5, 0.0, 0.3]])
    assert CAL_SEEN[0, 0] == 0.9  # a copy
    with pytest.raises(ValueError, match="num_seen must be in \\[1, 5\\]"):
        zero_shot.calibrated_stacking(CAL_SEEN, 6, 0.1)
    with pytest.raises(ValueError, match="finite number"):
        zero_shot.calibrated_stacking(CAL_SEEN, 3, float("nan"))


@pytest.mark.parametrize("gamma", sorted(CAL_EXPECTED))
def test_calibrated_gzsl_matches_hand_computed_u_s_h(gamma):
    u, s = CAL_EXPECTED[gamma]
    got = zero_shot.calibrated_generalized_zero_shot(
        CAL_SEEN, CAL_SEEN_Y, CAL_UNSEEN, CAL_UNSEEN_Y, 3, gamma
    )
    assert got == pytest.approx({"u": u, "s": s, "H": zero_shot.harmonic_mean(u, s)})
    # The same numbers as plain GZSL on explicitly calibrated matrices.
    plain = zero_shot.generalized_zero_shot(
        zero_shot.calibrated_stacking(CAL_SEEN, 3, gamma),
        CAL_SEEN_Y,
        zero_shot.calibrated_stacking(CAL_UNSEEN, 3, gamma),
        CAL_UNSEEN_Y,
    )
    assert got == pytest.approx(plain)


def test_calibrated_gzsl_at_zero_is_the_raw_gzsl_and_nan_stays_a_miss():
    raw = zero_shot.generalized_zero_shot(CAL_SEEN, CAL_SEEN_Y, CAL_UNSEEN, CAL_UNSEEN_Y)
    assert raw == pytest.approx({"u": 1 / 6, "s": 2 / 3, "H": 4 / 15})
    assert zero_shot.calibrated_generalized_zero_shot(
        CAL_SEEN, CAL_SEEN_Y, CAL_UNSEEN, CAL_UNSEEN_Y, 3, 0.0
    ) == pytest.approx(raw)
    seen = CAL_SEEN.copy()
    seen[2, 4] = np.nan  # a NaN competitor ranks above label 1 at every gamma
    got = zero_shot.calibrated_generalized_zero_shot(
        seen, CAL_SEEN_Y, CAL_UNSEEN, CAL_UNSEEN_Y, 3, -5.0
    )
    assert got["s"] == pytest.approx(1 / 3)  # class 0 right, class 1 now never


def test_choose_calibration_picks_the_best_h_on_given_gammas():
    gamma, table = zero_shot.choose_calibration(
        CAL_SEEN, CAL_SEEN_Y, CAL_UNSEEN, CAL_UNSEEN_Y, 3, [0.6, -0.3, 0.15, 0.0, 0.3]
    )
    assert gamma == 0.15  # H 0.5 against 4/15 at gamma 0
    assert [row["gamma"] for row in table] == [-0.3, 0.0, 0.15, 0.3, 0.6]
    for row in table:
        u, s = CAL_EXPECTED[row["gamma"]]
        assert (row["u"], row["s"]) == pytest.approx((u, s))
    assert [row["H"] for row in table] == pytest.approx([0.0, 4 / 15, 0.5, 4 / 15, 0.0])


def test_choose_calibration_breaks_h_ties_towards_zero():
    args = (CAL_SEEN, CAL_SEEN_Y, CAL_UNSEEN, CAL_UNSEEN_Y, 3)
    # -0.05 and 0 both give H 4/15; -0.3 and 0.6 both give H 0.
    assert zero_shot.choose_calibration(*args, [-0.05, 0.0])[0] == 0.0
    assert zero_shot.choose_calibration(*args, [0.6, -0.3])[0] == -0.3


def test_default_calibration_grid_holds_the_midpoints_of_the_top_score_gaps():
    # Gaps -0.3, -0.2, 0.1, 0.2, 0.4 (spread 0.7, pad 0.35), plus 0. In floating point
    # 0.9 - 0.5 and 0.7 - 0.3 differ in the last bit, so a midpoint ~0.4 between the two
    # is a candidate too (there row 0 ties 0.5 = 0.5: a miss, s = 0).
    grid = zero_shot.calibration_grid(CAL_SEEN, CAL_UNSEEN, 3)
    np.testing.assert_allclose(grid, [-0.65, -0.25, -0.05, 0.0, 0.15, 0.3, 0.4, 0.75])
    gamma, table = zero_shot.choose_calibration(CAL_SEEN, CAL_SEEN_Y, CAL_UNSEEN, CAL_UNSEEN_Y, 3)
    assert gamma == pytest.approx(0.15)
    assert [row["H"] for row in table] == pytest.approx(
        [0.0, 0.0, 4 / 15, 4 / 15, 0.5, 4 / 15, 0.0, 0.0]
    )
    # Capped at 3 points: the 0, 50 and 100% quantiles of the 8 rows' gaps (-0.3, -0.2,
    # 0.1, 0.1, 0.2, 0.2, 0.4, 0.4) are -0.3, 0.15, 0.4.
    capped = zero_shot.calibration_grid(CAL_SEEN, CAL_UNSEEN, 3, max_points=3)
    np.testing.assert_allclose(capped, [-0.65, -0.075, 0.0, 0.275, 0.75])


def test_calibration_rejects_mixed_up_images_and_label_spaces():
    args = (CAL_SEEN, CAL_SEEN_Y, CAL_UNSEEN, CAL_UNSEEN_Y)
    with pytest.raises(ValueError, match="seen images must have seen label ids.*\\[3\\]"):
        zero_shot.calibrated_generalized_zero_shot(CAL_SEEN, [0, 0, 3, 2], *args[2:], 3, 0.1)
    with pytest.raises(ValueError, match="unseen images must have unseen label ids.*\\[1\\]"):
        zero_shot.choose_calibration(*args[:3], [3, 1, 4, 5], 3)
    with pytest.raises(ValueError, match="over 6 labels, unseen images over 5"):
        zero_shot.calibrated_generalized_zero_shot(
            CAL_SEEN, CAL_SEEN_Y, CAL_UNSEEN[:, :5], [3, 3, 4, 4], 3, 0.1
        )
    with pytest.raises(ValueError, match="finite number"):
        zero_shot.choose_calibration(*args, 3, [0.0, float("inf")])


# Open-set ("+WordNet") hit@k: synset 10 has 11 at 1 hop, 12 at 2, 13 at 3; "zebu" is a
# dataset label without a synset (hit only exactly).
NEAR = {10: {10: 0, 11: 1, 12: 2, 13: 3}, "zebu": {"zebu": 0}}
OPEN_TOP = [
    [12, 10, 99, 98],  # exact at rank 2, <=2 at rank 1
    [13, 99, 13, 11],  # distinct [13, 99, 11]: <=3 at rank 1, <=2 at rank 3, no exact
    ["cow", "zebu", 10, 11],  # exact at rank 2 (10 and 11 are no kin of zebu)
    [99, 98, 97, 96],  # nothing
]
OPEN_TRUE = [10, 10, "zebu", 10]


def test_open_set_hit_at_k_counts_exact_and_within_h_hop_hits():
    got = zero_shot.open_set_hit_at_k(OPEN_TOP, OPEN_TRUE, NEAR, k_values=[1, 2, 3])
    assert got == {
        "exact": {1: 0.0, 2: 0.5, 3: 0.5},
        "<=2": {1: 0.25, 2: 0.5, 3: 0.75},
        "<=3": {1: 0.5, 2: 0.75, 3: 0.75},
    }
    # A numpy id matrix, and other radii: 10 (exact) and 11 (1 hop) both at rank 2.
    ints = np.array([[12, 10, 99], [13, 11, 99]])
    assert zero_shot.open_set_hit_at_k(ints, np.array([10, 10]), NEAR, [1, 2], (1, 0)) == {
        "exact": {1: 0.0, 2: 0.5},
        "<=1": {1: 0.0, 2: 1.0},
    }


def test_open_set_hit_at_k_rejects_what_it_cannot_count():
    with pytest.raises(ValueError, match="row 1 has 3 distinct ids among its 4 candidates"):
        zero_shot.open_set_hit_at_k(OPEN_TOP, OPEN_TRUE, NEAR, k_values=[4])
    with pytest.raises(ValueError, match="no neighbourhood for true id\\(s\\) \\['11'\\]"):
        zero_shot.open_set_hit_at_k(OPEN_TOP[:1], [11], NEAR, [1])
    with pytest.raises(ValueError, match="3 true ids for 4 rows"):
        zero_shot.open_set_hit_at_k(OPEN_TOP, OPEN_TRUE[:3], NEAR, [1])
    with pytest.raises(ValueError, match="hops must be ints >= 0"):
        zero_shot.open_set_hit_at_k(OPEN_TOP, OPEN_TRUE, NEAR, [1], hops=(0, -2))


def test_open_set_search_over_a_toy_wordnet_with_the_label_index(tmp_path):
    from devise_keras.label_index import LabelIndex
    from devise_keras.wordnet import WordNet, noun_synset_texts
    from tests.devise_keras.test_wordnet import write_wordnet

    offsets = write_wordnet(tmp_path / "wn")
    wn = WordNet(tmp_path / "wn", aliases={"Ankle boot": "boot"})
    synset_ids, _ = noun_synset_texts(tmp_path / "wn")
    labels = ["Ankle boot", "unicorn"]  # the dataset's own labels join the candidates
    ids = synset_ids + [wn.open_set_id(label) for label in labels]
    assert ids[-2:] == [offsets["boot"], "unicorn"]
    index = LabelIndex([str(i) for i in ids], np.eye(len(ids)))  # one axis per candidate
    position = {key: synset_ids.index(offset) for key, offset in offsets.items()}
    queries = np.zeros((2, len(ids)))
    # Image of "Ankle boot": its label vector first, then the boot synset (the same id),
    # then garment (1 hop). Image of "unicorn": shirt, then the unicorn label.
    queries[0, [len(ids) - 2, position["boot"], position["garment"]]] = [3, 2, 1]
    queries[1, [position["shirt"], len(ids) - 1]] = [2, 1]
    top, _ = index.search_positions(queries, k=4)
    top_ids = [[ids[p] for p in row] for row in top]
    true_ids = [wn.open_set_id(label) for label in labels]
    near = {t: wn.neighbourhood(t, 3) for t in true_ids}
    got = zero_shot.open_set_hit_at_k(top_ids, true_ids, near, k_values=[1, 2], hops=(0, 1))
    # Row 0 de-duplicated: [boot, garment, ...]: exact at 1. Row 1: exact at 2.
    assert got == {"exact": {1: 0.5, 2: 1.0}, "<=1": {1: 0.5, 2: 1.0}}
