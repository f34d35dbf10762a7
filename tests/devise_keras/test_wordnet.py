"""WordNet noun hierarchy: a toy index.noun/data.noun built here, and the real Debian files."""

from __future__ import annotations

import numpy as np
import pytest

from devise_keras import wordnet
from devise_keras.wordnet import WordNet, WordNetNotFoundError, find_wordnet_dir, lemma_forms

LICENCE = "  1 This software and database is being provided to you, the LICENSEE\n"

# Toy hierarchy (offsets are assigned when the file is written):
#   entity
#   ├── animal
#   │   ├── dog          (lemmas: dog, domestic_dog)
#   │   └── cat
#   │       └── Tom      (instance of cat: '@i')
#   └── garment
#       ├── shirt
#       │   └── t-shirt  (lemmas: t-shirt, tee_shirt)
#       └── boot
# "dog" also has a second, unrelated sense: "frump" under entity.
TOY = [
    ("entity", ["entity"], []),
    ("animal", ["animal"], [("@", "entity")]),
    ("garment", ["garment"], [("@", "entity")]),
    ("dog", ["dog", "domestic_dog"], [("@", "animal")]),
    ("cat", ["cat"], [("@", "animal")]),
    ("tom", ["Tom"], [("@i", "cat")]),
    ("shirt", ["shirt"], [("@", "garment")]),
    ("tshirt", ["t-shirt", "tee_shirt"], [("@", "shirt")]),
    ("boot", ["boot"], [("@", "garment")]),
    ("frump", ["frump", "dog"], [("@", "entity")]),
]


def write_wordnet(directory, synsets=TOY):
    """Writes index.noun + data.noun in the wndb(5) format; returns {key: offset}.

    Offsets are byte positions in data.noun, so they are computed from line lengths
    (a fixed 8-digit width keeps every line's length independent of the offsets).
    """
    directory.mkdir(parents=True, exist_ok=True)

    def line(key, words, pointers, offsets):
        word_part = " ".join(f"{w} 0" for w in words)
        ptr_part = " ".join(f"{s} {offsets[t]:08d} n 0000" for s, t in pointers)
        return (
            f"{offsets[key]:08d} 03 n {len(words):02x} {word_part} {len(pointers):03d}"
            + (f" {ptr_part}" if ptr_part else "")
            + f" | the {key}\n"
        )

    offsets = {key: 0 for key, _, _ in synsets}
    position = len(LICENCE)
    for key, words, pointers in synsets:
        offsets[key] = position
        position += len(line(key, words, pointers, offsets).encode())
    data = LICENCE + "".join(line(*s, offsets) for s in synsets)
    (directory / "data.noun").write_text(data)

    senses: dict[str, list[int]] = {}
    for key, words, _ in synsets:
        for word in words:
            senses.setdefault(word.lower(), []).append(offsets[key])
    index = LICENCE + "".join(
        f"{lemma} n {len(offs)} 1 @ {len(offs)} 0 " + " ".join(f"{o:08d}" for o in offs) + "  \n"
        for lemma, offs in sorted(senses.items())
    )
    (directory / "index.noun").write_text(index)
    return offsets


@pytest.fixture()
def toy(tmp_path):
    offsets = write_wordnet(tmp_path / "wn")
    return WordNet(
        tmp_path / "wn", aliases={"T-shirt/top": "t-shirt", "Ankle boot": "boot"}
    ), offsets


def test_labels_map_to_first_noun_sense_after_aliases(toy):
    wn, offsets = toy
    assert wn.synset("dog") == offsets["dog"]  # first sense, not "frump"
    assert wn.synset("dog", sense=2) == offsets["frump"]
    assert wn.synset("Domestic dog") == offsets["dog"]  # case and spaces folded
    assert wn.synset("T-shirt/top") == offsets["tshirt"]  # alias
    assert wn.synset("Ankle boot") == offsets["boot"]
    assert wn.synset("tee-shirt") == offsets["tshirt"]  # hyphen read as underscore
    assert wn.synset("unicorn") is None
    assert wn.words(offsets["tshirt"]) == ["t-shirt", "tee_shirt"]
    with pytest.raises(ValueError, match="2 noun senses, asked for 3"):
        wn.synset("dog", sense=3)


def test_hop_distance_goes_through_the_nearest_common_hypernym(toy):
    wn, o = toy
    assert wn.distance(o["dog"], o["dog"]) == 0
    assert wn.distance(o["dog"], o["cat"]) == 2  # dog -> animal <- cat
    assert wn.distance(o["tom"], o["dog"]) == 3  # instance pointer '@i' followed
    assert wn.distance(o["tshirt"], o["boot"]) == 3  # t-shirt -> shirt -> garment <- boot
    assert wn.distance(o["dog"], o["tshirt"]) == 5  # through entity
    assert wn.ancestors(o["tshirt"]) == {
        o["tshirt"]: 0,
        o["shirt"]: 1,
        o["garment"]: 2,
        o["entity"]: 3,
    }


def test_label_distances_counts_labels_without_a_synset(toy):
    wn, o = toy
    matrix, report = wn.label_distances(["dog", "cat", "unicorn"])
    np.testing.assert_array_equal(matrix, [[0, 2, np.inf], [2, 0, np.inf], [np.inf, np.inf, 0]])
    assert [r["synset"] for r in report] == [o["dog"], o["cat"], None]
    assert report[0]["words"] == ["dog", "domestic_dog"]


def test_a_folder_without_wordnet_files_names_the_packages(tmp_path):
    with pytest.raises(WordNetNotFoundError, match="index.noun is missing.*wordnet-base"):
        WordNet(tmp_path)
    with pytest.raises(ValueError, match="no synset at offset 5"):
        wn_dir = tmp_path / "wn"
        write_wordnet(wn_dir)
        WordNet(wn_dir)._record(5)


def test_find_wordnet_dir_prefers_the_given_folder_and_explains_a_miss(tmp_path, monkeypatch):
    write_wordnet(tmp_path / "wn")
    assert find_wordnet_dir([tmp_path / "wn"]) == tmp_path / "wn"
    monkeypatch.setattr(wordnet, "DEFAULT_DIRS", (str(tmp_path / "nowhere"),))
    monkeypatch.setattr(wordnet.subprocess, "run", _no_dpkg)
    with pytest.raises(
        WordNetNotFoundError, match="apt-get install wordnet-base wordnet-sense-index"
    ):
        find_wordnet_dir([tmp_path / "empty"])


def _no_dpkg(*args, **kwargs):
    raise OSError("dpkg not found")


def test_lemma_forms_fold_case_spaces_and_hyphens():
    assert lemma_forms("Ankle boot") == ["ankle_boot"]
    assert lemma_forms("T-shirt_top") == ["t-shirt_top", "t_shirt_top"]
    assert lemma_forms("T-shirt/top") == ["t-shirt_top", "t_shirt_top"]


def _real_wordnet():
    try:
        return WordNet(find_wordnet_dir())
    except WordNetNotFoundError as e:
        pytest.skip(f"Debian wordnet-base is not installed: {e}")


def test_real_wordnet_dog_is_close_to_cat_and_far_from_car():
    wn = _real_wordnet()
    dog, cat, car = wn.synset("dog"), wn.synset("cat"), wn.synset("car")
    assert wn.words(dog)[:2] == ["dog", "domestic_dog"]
    assert wn.distance(dog, cat) == 4  # dog -> canine -> carnivore <- feline <- cat
    assert wn.distance(dog, car) > 8


def test_real_wordnet_maps_every_fashion_mnist_class_as_documented():
    from devise_keras.datasets.fashion_mnist import CLASS_NAMES

    wn = _real_wordnet()
    matrix, report = wn.label_distances(list(CLASS_NAMES))
    # Offsets and lemmas as in the table of devise_keras/wordnet.py's docstring.
    assert {r["label"]: (r["lemma"], r["synset"]) for r in report} == {
        "T-shirt/top": ("t-shirt", 3595614),
        "Trouser": ("trouser", 4489008),
        "Pullover": ("pullover", 4021028),
        "Dress": ("dress", 3236735),
        "Coat": ("coat", 3057021),
        "Sandal": ("sandal", 4133789),
        "Shirt": ("shirt", 4197391),
        "Sneaker": ("sneaker", 3472535),
        "Bag": ("bag", 2773037),
        "Ankle boot": ("boot", 2872752),
    }
    assert np.isfinite(matrix).all()
    names = list(CLASS_NAMES)
    # A T-shirt is a shirt (1 hop); sandals and sneakers are both shoes (2 hops).
    assert matrix[names.index("T-shirt/top"), names.index("Shirt")] == 1
    assert matrix[names.index("Sandal"), names.index("Sneaker")] == 2
    assert matrix[names.index("Sandal"), names.index("Bag")] > 5


def test_noun_synset_texts_give_every_synset_its_first_lemma_and_gloss(tmp_path, monkeypatch):
    offsets = write_wordnet(tmp_path / "wn")
    ids, texts = wordnet.noun_synset_texts(tmp_path / "wn")
    assert ids == [offsets[key] for key, _, _ in TOY]  # file order = ascending offsets
    assert ids == sorted(ids)
    assert texts == [
        "entity: the entity",
        "animal: the animal",
        "garment: the garment",
        "dog: the dog",
        "cat: the cat",
        "Tom: the tom",
        "shirt: the shirt",
        "t-shirt: the tshirt",
        "boot: the boot",
        "frump: the frump",
    ]
    assert wordnet.synset_text(["golden_retriever"], "a dog") == "golden retriever: a dog"
    assert WordNet(tmp_path / "wn").text(offsets["tshirt"]) == "t-shirt: the tshirt"
    monkeypatch.setattr(wordnet, "DEFAULT_DIRS", ())
    monkeypatch.setattr(wordnet.subprocess, "run", _no_dpkg)
    with pytest.raises(WordNetNotFoundError, match="wordnet-base"):
        wordnet.noun_synset_texts(tmp_path / "nowhere")


def test_a_broken_data_noun_line_is_named_with_its_line_number(tmp_path):
    write_wordnet(tmp_path / "wn")
    with open(tmp_path / "wn" / "data.noun", "a") as f:
        f.write("00001234 03 n zz broken | gloss\n")
    with pytest.raises(ValueError, match="data.noun:12: not a data.noun synset line"):
        wordnet.noun_synset_texts(tmp_path / "wn")


def test_hyponyms_are_the_reversed_hypernym_pointers(toy):
    wn, o = toy
    assert wn.hyponyms(o["entity"]) == [o["animal"], o["garment"], o["frump"]]
    assert wn.hyponyms(o["cat"]) == [o["tom"]]  # instance pointer '@i' too
    assert wn.hyponyms(o["boot"]) == []


def test_synsets_within_hops_on_the_toy_tree(toy):
    wn, o = toy

    def named(found):
        return {key: hops for key, offset in o.items() for f, hops in found.items() if f == offset}

    assert named(wn.synsets_within_hops(o["dog"], 0)) == {"dog": 0}
    assert named(wn.synsets_within_hops(o["dog"], 2)) == {
        "dog": 0,
        "animal": 1,
        "cat": 2,
        "entity": 2,
    }
    # 3 hops: Tom below cat, and garment and frump below entity; not shirt (4).
    assert named(wn.synsets_within_hops(o["dog"], 3)) == {
        "dog": 0,
        "animal": 1,
        "cat": 2,
        "entity": 2,
        "tom": 3,
        "garment": 3,
        "frump": 3,
    }
    assert named(wn.synsets_within_hops(o["shirt"], 2)) == {
        "shirt": 0,
        "tshirt": 1,
        "garment": 1,
        "boot": 2,
        "entity": 2,
    }
    with pytest.raises(ValueError, match="max_hops must be an int >= 0"):
        wn.synsets_within_hops(o["dog"], -1)


def test_synsets_within_hops_agree_with_distance_for_every_pair(toy):
    wn, o = toy
    for a in o.values():
        for h in (0, 1, 2, 3, 5):
            expected = {b: wn.distance(a, b) for b in o.values() if wn.distance(a, b) <= h}
            assert wn.synsets_within_hops(a, h) == expected


def test_dataset_labels_join_the_open_set_as_their_synset_or_themselves(toy):
    wn, o = toy
    assert wn.open_set_id("Ankle boot") == o["boot"]  # alias
    assert wn.open_set_id("Domestic dog") == o["dog"]  # a whole lemma, first sense
    assert wn.open_set_id("unicorn") == "unicorn"
    assert wn.neighbourhood("unicorn", 3) == {"unicorn": 0}
    assert wn.neighbourhood(o["boot"], 1) == {o["boot"]: 0, o["garment"]: 1}


def test_real_wordnet_has_82115_noun_synsets_with_texts():
    import time

    _real_wordnet()
    start = time.perf_counter()
    ids, texts = wordnet.noun_synset_texts()
    seconds = time.perf_counter() - start
    assert len(ids) == len(set(ids)) == len(texts) == 82_115
    assert texts[ids.index(2084071)].startswith("dog: a member of the genus Canis")
    print(f"read {len(ids)} noun synsets in {seconds:.2f} s")


def test_real_wordnet_dog_neighbourhood():
    wn = _real_wordnet()
    dog = wn.synset("dog")
    near = wn.synsets_within_hops(dog, 2)
    # "canid" (first sense of "canine" is the tooth), wolf and puppy.
    canine, wolf, puppy = wn.synset("canid"), wn.synset("wolf"), wn.synset("puppy")
    assert (near[dog], near[canine], near[wolf], near[puppy]) == (0, 1, 2, 1)
    assert wn.synset("cat") not in near  # 4 hops
    assert wn.synsets_within_hops(dog, 4)[wn.synset("cat")] == 4


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(wordnet)
    assert result.attempted >= 1 and result.failed == 0
