"""Emoji keyword texts: matching classes to emojilib and emojibase, the CSV, the licenses."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from devise_keras.datasets.emoji_keywords import (
    LICENSES_HEADING,
    EmojiKeywordsError,
    keyword_text,
    match_keywords,
    prepare_emoji_keywords,
)
from devise_keras.label_texts import read_label_texts

CLASSES = [
    {"label": "red apple", "unified": "1F34E"},
    # classes.json keeps U+FE0F; emojibase drops it, emojilib keeps it.
    {"label": "umbrella", "unified": "2602-FE0F"},
    # ZWJ sequence; emojilib's key has FE0F, emojibase's hexcode has none.
    {"label": "polar bear", "unified": "1F43B-200D-2744-FE0F"},
    {"label": "dodo", "unified": "1F9A4"},  # in neither package
]
EMOJILIB = {
    "\U0001f34e": ["red_apple", "fruit", "mac", "school", "fruit"],
    "\u2602\ufe0f": ["umbrella", "rain_cloud", "weather"],
    "\U0001f43b\u200d\u2744\ufe0f": ["polar_bear", "arctic"],
    "\U0001f600": ["grinning_face", "smile"],
}
EMOJIBASE = [
    {"label": "red apple", "hexcode": "1F34E", "tags": ["apple", "Fruit", "red"]},
    {"label": "umbrella", "hexcode": "2602", "tags": ["clothing", "rain"]},
    {"label": "polar bear", "hexcode": "1F43B-200D-2744", "tags": ["arctic", "bear", "white"]},
]
EXPECTED = {
    "red apple": "fruit, mac, school, apple, red",
    "umbrella": "rain cloud, weather, clothing, rain",
    "polar bear": "arctic, bear, white",
}


def test_keyword_text_drops_the_name_and_repeats_in_order():
    assert keyword_text(["red_apple", "fruit", "mac"], ["Mac", "apple"]) == "fruit, mac, apple"
    assert keyword_text(["only_name"], []) == ""


def test_match_keywords_finds_classes_by_code_points_without_fe0f():
    match = match_keywords(CLASSES, EMOJILIB, EMOJIBASE)
    assert match.texts == EXPECTED
    assert match.missing_emojilib == ["dodo"]
    assert match.missing_emojibase == ["dodo"]


def _tarball(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


def _fixture(tmp_path):
    emoji = tmp_path / "data" / "emoji"
    emoji.mkdir(parents=True)
    (emoji / "classes.json").write_text(json.dumps({"classes": CLASSES}))
    (emoji / "LICENSES.md").write_text("# Licenses of the emoji images\n")
    tarballs = {
        "emojilib": _tarball(
            tmp_path / "lib.tgz",
            {
                "package/dist/emoji-en-US.json": json.dumps(EMOJILIB).encode(),
                "package/LICENSE": b"MIT License\nCopyright (c) Mu-An Chiou\n",
            },
        ),
        "emojibase": _tarball(
            tmp_path / "base.tgz",
            {
                "package/en/data.json": json.dumps(EMOJIBASE).encode(),
                "package/LICENSE": b"MIT License\nCopyright (c) Miles Johnson\n",
            },
        ),
    }
    return tmp_path / "data", tarballs


def test_prepare_writes_label_texts_csv_and_appends_licenses_once(tmp_path):
    data_dir, tarballs = _fixture(tmp_path)
    info = prepare_emoji_keywords(data_dir, tarballs=tarballs, progress=False)
    assert (info["num_classes"], info["num_with_text"]) == (4, 3)
    assert info["missing_emojilib"] == ["dodo"]
    csv_path = data_dir / "emoji" / "label_texts.csv"
    assert info["label_texts"] == str(csv_path)
    assert csv_path.read_text().splitlines() == [
        "label,text",
        'red apple,"fruit, mac, school, apple, red"',
        'umbrella,"rain cloud, weather, clothing, rain"',
        'polar bear,"arctic, bear, white"',
    ]
    # The CSV is what LabelEmbeddingGen's label_texts reads.
    assert read_label_texts(str(csv_path), [c["label"] for c in CLASSES]) == EXPECTED
    prepare_emoji_keywords(data_dir, tarballs=tarballs, progress=False)
    licenses = (data_dir / "emoji" / "LICENSES.md").read_text()
    assert licenses.startswith("# Licenses of the emoji images\n")
    assert licenses.count(LICENSES_HEADING) == 1
    assert "### emojilib@4.0.3 (MIT)" in licenses and "Copyright (c) Mu-An Chiou" in licenses
    assert "### emojibase-data@17.0.0 (MIT)" in licenses and "Miles Johnson" in licenses


def test_prepare_names_a_tarball_without_the_keyword_file(tmp_path):
    data_dir, tarballs = _fixture(tmp_path)
    tarballs["emojibase"] = _tarball(tmp_path / "empty.tgz", {"package/README.md": b"hi"})
    with pytest.raises(EmojiKeywordsError, match=r"emojibase-data@17\.0\.0\) has no package/en"):
        prepare_emoji_keywords(data_dir, tarballs=tarballs, progress=False)


def test_prepare_without_the_emoji_data_says_what_to_run(tmp_path):
    with pytest.raises(EmojiKeywordsError, match=r"classes\.json does not exist; prepare"):
        prepare_emoji_keywords(tmp_path, tarballs={}, progress=False)
