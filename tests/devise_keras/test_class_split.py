"""Tests of the seen/unseen class split (devise_keras.class_split)."""

from __future__ import annotations

import hashlib

import pytest

from devise_keras.class_split import (
    ClassSplitError,
    choose_class_split,
    num_unseen_classes,
    short_name_list,
    stable_hash,
)


def test_stable_hash_is_the_same_value_in_every_run():
    # Golden value: a change here would move images between splits for every user.
    assert stable_hash(0, "split", "cat/0.png") == 0x93E73549F45894D0
    digest = hashlib.blake2b(b"0\x1fsplit\x1fcat/0.png", digest_size=8).digest()
    assert stable_hash(0, "split", "cat/0.png") == int.from_bytes(digest, "big")
    assert stable_hash(1, "split", "cat/0.png") != stable_hash(0, "split", "cat/0.png")
    assert stable_hash(0, "cap", "cat/0.png") != stable_hash(0, "split", "cat/0.png")


def test_unseen_fraction_rounds_and_keeps_one_class():
    assert num_unseen_classes(831, 2, 0.2) == 166  # round(166.2)
    assert num_unseen_classes(10, 2, 0.25) == 2  # round(2.5) to even
    assert num_unseen_classes(10, 2, 0.35) == 4  # round(3.5) to even
    assert num_unseen_classes(3, 2, 0.1) == 1  # round(0.3) = 0, at least one
    assert num_unseen_classes(10, 3, 0.0) == 3  # 0: num_unseen decides
    assert num_unseen_classes(10) == 2  # DataConfig's defaults: num_unseen=2, fraction 0
    with pytest.raises(ClassSplitError, match=r"unseen_fraction must be in \[0, 1\), got 1.0"):
        num_unseen_classes(10, 2, 1.0)


def test_choose_class_split_explicit_list_must_name_known_classes():
    with pytest.raises(ClassSplitError, match=r"unknown class\(es\) \['zebra'\]"):
        choose_class_split(["cat", "dog"], ["zebra", "dog"])
    assert choose_class_split(["fish", "cat", "dog"], ["dog"]) == (["cat", "fish"], ["dog"])
    # Classes a manifest marks unseen join the named ones.
    assert choose_class_split(["fish", "cat", "dog"], ["dog"], marked_unseen={"cat"}) == (
        ["fish"],
        ["cat", "dog"],
    )


def test_choose_class_split_holds_out_the_smallest_hashes():
    # stable_hash(0, "unseen", .): c 1.26e18 < d 7.73e18 < a 1.62e19 < b 1.65e19.
    ranked = sorted("abcd", key=lambda c: stable_hash(0, "unseen", c))
    assert ranked == ["c", "d", "a", "b"]
    assert choose_class_split(["a", "b", "c", "d"], num_unseen=1, split_seed=0) == (
        ["a", "b", "d"],
        ["c"],
    )
    assert choose_class_split(["b", "d", "a", "c"], num_unseen=2, split_seed=0) == (
        ["a", "b"],
        ["c", "d"],
    )
    assert choose_class_split(["a", "b", "c", "d"], num_unseen=0) == (["a", "b", "c", "d"], [])


def test_choose_class_split_num_unseen_is_deterministic_and_order_free():
    classes = [f"class{i}" for i in range(20)]
    seen, unseen = choose_class_split(classes, None, 3, 5)
    assert len(unseen) == 3 and len(seen) == 17 and not set(seen) & set(unseen)
    assert choose_class_split(classes[::-1], None, 3, 5) == (seen, unseen)
    other_seeds = {tuple(choose_class_split(classes, None, 3, s)[1]) for s in range(6)}
    assert len(other_seeds) > 1
    with pytest.raises(ClassSplitError, match="at least one must stay seen"):
        choose_class_split(["a", "b"], None, 2, 0)
    with pytest.raises(ClassSplitError, match=r"num_unseen=-1 must be in \[0, 1\]"):
        choose_class_split(["a", "b"], None, -1, 0)


def test_choose_class_split_rejects_unseen_class_with_train_rows():
    with pytest.raises(ClassSplitError, match=r"\['dog'\] are unseen"):
        choose_class_split(["cat", "dog"], ["dog"], marked_seen={"dog"})
    with pytest.raises(ClassSplitError, match="every class is unseen"):
        choose_class_split(["cat", "dog"], ["cat", "dog"])


def test_class_split_error_is_the_one_features_raises():
    from devise_keras import features

    assert features.ClassSplitError is ClassSplitError
    assert issubclass(ClassSplitError, ValueError)


def test_short_name_list_cuts_long_lists():
    assert short_name_list(["a", "b"]) == "['a', 'b']"
    assert short_name_list(["a", "b", "c"], limit=2) == "['a', 'b'] and 1 more"
