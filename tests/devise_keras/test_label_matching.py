"""Label text -> vector matching: rule order, aliases, OOV policies, one-pass planning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from devise_keras.datasets.glove import DEFAULT_ALIASES
from devise_keras.label_matching import (
    OOVError,
    embed_labels,
    load_aliases,
    match_labels,
    plan_lookups,
)

# A tiny vocabulary with unit-free, hand-checkable vectors (dim 2).
VOCAB = {
    "cat": [1.0, 0.0],
    "Cat": [0.0, 1.0],
    "Dog": [3.0, 4.0],
    "DOG": [4.0, 3.0],
    "golden_retriever": [0.0, 2.0],
    "ankle": [1.0, 0.0],
    "boot": [0.0, 3.0],
    "t-shirt": [5.0, 0.0],
    "shirt": [0.0, 7.0],
    "t": [1.0, 1.0],
    "sea": [2.0, 0.0],
}
VECTORS = {w: np.array(v, np.float32) for w, v in VOCAB.items()}
RANKS = {w: i for i, w in enumerate(VOCAB)}


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def match(labels, aliases=None, **kwargs):
    plan = plan_lookups(labels, aliases or {})
    return match_labels(plan, VECTORS, 2, ranks=RANKS, **kwargs)


def methods(emb):
    return {r["label"]: r["method"] for r in emb.match_report}


def test_exact_beats_casefold_for_the_same_letters():
    emb = match(["Cat", "cat"])
    assert methods(emb) == {"Cat": "exact", "cat": "exact"}
    np.testing.assert_allclose(emb.vectors, [[0.0, 1.0], [1.0, 0.0]])


def test_casefold_picks_the_most_frequent_case_variant():
    emb = match(["dog"])  # "Dog" (rank 2) and "DOG" (rank 3) exist, not "dog"
    assert emb.match_report[0] == {
        "label": "dog",
        "method": "casefold",
        "words": ["Dog"],
        "missing": [],
    }
    np.testing.assert_allclose(emb.vectors[0], [0.6, 0.8], rtol=1e-6)  # (3, 4) / 5


def test_casefold_follows_ranks_not_dictionary_order():
    plan = plan_lookups(["dog"])
    emb = match_labels(plan, VECTORS, 2, ranks={**RANKS, "DOG": -1})
    assert emb.match_report[0]["words"] == ["DOG"]
    np.testing.assert_allclose(emb.vectors[0], [0.8, 0.6], rtol=1e-6)


def test_phrase_joins_words_with_underscores_before_token_mean():
    emb = match(["Golden Retriever", "golden-retriever"])
    assert methods(emb) == {"Golden Retriever": "phrase", "golden-retriever": "phrase"}
    assert emb.match_report[0]["words"] == ["golden_retriever"]
    np.testing.assert_allclose(emb.vectors, [[0.0, 1.0], [0.0, 1.0]])


def test_token_mean_averages_raw_token_vectors_of_a_folder_name():
    emb = match(["Ankle_boot", "ankle boot"])
    # mean((1, 0), (0, 3)) = (0.5, 1.5); unit: (1, 3) / sqrt(10)
    expected = unit([0.5, 1.5])
    for record in emb.match_report:
        assert record["method"] == "token_mean"
        assert record["words"] == ["ankle", "boot"]
    np.testing.assert_allclose(emb.vectors, [expected, expected], rtol=1e-6)


def test_token_mean_drops_and_records_tokens_without_a_vector():
    emb = match(["sea zyzzyva"])
    assert emb.match_report[0]["method"] == "token_mean"
    assert emb.match_report[0]["words"] == ["sea"]
    assert emb.match_report[0]["missing"] == ["zyzzyva"]
    np.testing.assert_allclose(emb.vectors[0], [1.0, 0.0])


def test_token_without_a_vector_falls_back_to_its_script_subtokens():
    vectors = {w: v for w, v in VECTORS.items() if w != "t-shirt"}
    emb = match_labels(plan_lookups(["T-shirt/top"], {}), vectors, 2, oov_policy="skip")
    record = emb.match_report[0]
    # "t-shirt" -> "t" + "shirt"; "top" has no vector.
    assert record["method"] == "token_mean"
    assert record["words"] == ["t", "shirt"]
    assert record["missing"] == ["top"]
    np.testing.assert_allclose(emb.vectors[0], unit([0.5, 4.0]), rtol=1e-6)


def test_alias_is_tried_first_and_recorded():
    emb = match(["T-shirt_top"], {"T-shirt_top": "t-shirt"})
    assert emb.match_report[0] == {
        "label": "T-shirt_top",
        "method": "alias:exact",
        "words": ["t-shirt"],
        "missing": [],
        "alias": "t-shirt",
    }
    np.testing.assert_allclose(emb.vectors[0], [1.0, 0.0])


def test_alias_keys_match_case_insensitively_and_targets_use_all_rules():
    emb = match(["MY BOOT"], {"my boot": "Ankle Boot"})
    assert emb.match_report[0]["method"] == "alias:token_mean"
    np.testing.assert_allclose(emb.vectors[0], unit([0.5, 1.5]), rtol=1e-6)


def test_label_itself_is_tried_when_its_alias_has_no_vector():
    emb = match(["cat"], {"cat": "zyzzyva"})
    assert emb.match_report[0]["method"] == "exact"


def test_alias_file_json_and_tsv(tmp_path):
    json_path = tmp_path / "aliases.json"
    json_path.write_text(json.dumps({"Sea_Thing": "sea", "T-shirt_top": "shirt"}))
    tsv_path = tmp_path / "aliases.tsv"
    tsv_path.write_text("# label\tword\nSea_Thing\tsea\n\nmy cat\tcat\n")
    from_json = load_aliases(json_path)
    assert from_json["Sea_Thing"] == "sea"
    assert from_json["T-shirt_top"] == "shirt"  # the file overrides the built-in default
    assert from_json["T-shirt/top"] == DEFAULT_ALIASES["T-shirt/top"]
    assert load_aliases(tsv_path, defaults=False) == {"Sea_Thing": "sea", "my cat": "cat"}


def test_bad_alias_file_lines_are_named(tmp_path):
    path = tmp_path / "aliases.tsv"
    path.write_text("ok\tcat\nbroken line\n")
    with pytest.raises(ValueError, match=r"line 2: expected 'label<TAB>word'"):
        load_aliases(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        load_aliases(tmp_path / "missing.json")


def test_oov_error_lists_every_oov_label_with_forms_tried():
    with pytest.raises(OOVError) as info:
        match(["cat", "zyzzyva", "Purple Kumquat"])
    message = str(info.value)
    assert "2 of 3 labels have no vector" in message
    assert "'zyzzyva': tried zyzzyva, casefold:zyzzyva, tokens:zyzzyva" in message
    assert (
        "'Purple Kumquat': tried Purple Kumquat, casefold:purple kumquat, Purple_Kumquat, "
        "Purple-Kumquat, tokens:purple kumquat" in message
    )
    assert "aliases_path" in message and "oov_policy" in message


def test_skip_policy_drops_and_reports_the_label():
    emb = match(["cat", "zyzzyva", "boot"], oov_policy="skip")
    assert emb.labels == ["cat", "boot"]
    assert methods(emb)["zyzzyva"] == "skipped"
    assert emb.metadata["skipped_labels"] == ["zyzzyva"]
    assert emb.match_report[1]["tried"][0] == "zyzzyva"


def test_random_policy_gives_seeded_unit_vectors_per_label():
    a = match(["cat", "zyzzyva"], oov_policy="random", seed=3)
    b = match(["zyzzyva", "boot"], oov_policy="random", seed=3)
    c = match(["cat", "zyzzyva"], oov_policy="random", seed=4)
    assert methods(a)["zyzzyva"] == "random"
    assert a.metadata["random_labels"] == ["zyzzyva"]
    np.testing.assert_allclose(np.linalg.norm(a.vectors[1]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a.vectors[1], b.vectors[0])  # same label, same seed
    assert not np.allclose(a.vectors[1], c.vectors[1])


@pytest.mark.parametrize("policy", ["error", "skip", "random"])
def test_all_labels_oov_is_an_error_under_every_policy(policy):
    with pytest.raises(OOVError, match=r"none of the 2 labels has a vector in src\.txt"):
        match(["zyzzyva", "quux"], oov_policy=policy, source="src.txt")


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match=r"oov_policy must be one of"):
        match(["cat"], oov_policy="ignore")


def test_plan_lists_every_form_so_one_pass_suffices():
    plan = plan_lookups(["Ankle_boot", "T-shirt/top"], DEFAULT_ALIASES)
    for word in ["Ankle_boot", "Ankle-boot", "ankle", "boot", "t-shirt", "T-shirt/top", "t"]:
        assert plan.wants(word), word
    assert plan.wants("ANKLE") and plan.wants("Boot")
    assert not plan.wants("dress")
    assert "ankle_boot" in plan.wanted_words


def test_embed_labels_reads_the_file_once_and_matches(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("".join(f"{w} {v[0]} {v[1]}\n" for w, v in VOCAB.items()))
    emb = embed_labels(["Ankle_boot", "T-shirt_top", "DOG", "golden retriever"], path)
    assert emb.labels == ["Ankle_boot", "T-shirt_top", "DOG", "golden retriever"]
    assert methods(emb) == {
        "Ankle_boot": "token_mean",
        "T-shirt_top": "alias:exact",
        "DOG": "exact",
        "golden retriever": "phrase",
    }
    np.testing.assert_allclose(
        emb.vectors, [unit([0.5, 1.5]), [1, 0], [0.8, 0.6], [0, 1]], rtol=1e-6
    )
    assert emb.metadata["format"] == "glove_text"
    assert emb.source == str(path)
