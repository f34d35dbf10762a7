"""Tests of the emoji data step on tiny fake npm tarballs (no network, no npm)."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import os

import numpy as np
import pytest
from PIL import Image

from devise_keras.datasets import emoji as emoji_data
from devise_keras.datasets import npm
from devise_keras.datasets.emoji import (
    EmojiClass,
    EmojiDataError,
    code_point_variants,
    filter_by_vocabulary,
    iconify_svg,
    in_vocabulary,
    label_from_name,
    label_slug,
    label_words,
    object_emoji,
    prepare_emoji,
    rasterize,
    write_style_split_manifest,
)
from tests.devise_keras.emoji_testutil import (
    COLOR,
    KEPT_LABELS,
    STYLES,
    build_fake_packages,
    package_files,
    square_image,
    write_tarball,
)

SIZE = 32


def read_manifest(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    return build_fake_packages(tmp_path_factory.mktemp("npm"))


@pytest.fixture(scope="module")
def prepared(packages, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    info = prepare_emoji(data_dir, image_size=SIZE, tarballs=packages, progress=False)
    return data_dir, info


# -- names, labels and the vocabulary filter ---------------------------------------------
def test_label_is_the_lower_cased_full_name_with_an_ascii_apostrophe():
    assert label_from_name("LEFT-POINTING MAGNIFYING GLASS") == "left-pointing magnifying glass"
    assert label_from_name("RESCUE WORKER\u2019S  HELMET") == "rescue worker's helmet"
    assert label_slug("rescue worker's helmet") == "rescue_worker_s_helmet"
    assert label_slug("jack-o-lantern") == "jack-o-lantern"


def test_label_words_split_at_spaces_and_hyphens():
    assert label_words("earth globe europe-africa") == ["earth", "globe", "europe", "africa"]
    assert label_words("t-rex") == ["t", "rex"]


def test_vocabulary_filter_keeps_labels_whose_every_word_is_known():
    vocabulary = {"jack", "o", "lantern", "clock", "face", "one", "hot", "dog"}
    assert in_vocabulary("jack-o-lantern", vocabulary)
    assert not in_vocabulary("clock face one oclock", vocabulary)
    classes = [
        EmojiClass(label, label.upper(), "", "Objects", "1F600", "1f600.png")
        for label in ("hot dog", "clock face one oclock", "jack-o-lantern")
    ]
    kept, dropped = filter_by_vocabulary(classes, [w.upper() for w in vocabulary])
    assert [e.label for e in kept] == ["hot dog", "jack-o-lantern"]
    assert [e.label for e in dropped] == ["clock face one oclock"]


def test_object_emoji_keeps_base_emoji_of_object_categories_in_sort_order():
    entries = json.loads(package_files("google")["package/emoji.json"])
    labels = [e.label for e in object_emoji(entries)]
    assert labels == KEPT_LABELS + ["brown mushroom"]  # mushroom: image check comes later
    assert "horse racing: light skin tone" not in labels
    assert "waving hand sign" not in labels


def test_object_emoji_refuses_two_emoji_with_one_label():
    entry = {"name": "DOG", "unified": "1F415", "category": "Animals & Nature"}
    with pytest.raises(EmojiDataError, match="label \\['dog'\\]"):
        object_emoji([entry, {**entry, "unified": "1F436"}])


def test_code_point_variants_drop_the_presentation_selector():
    assert code_point_variants("2602-FE0F") == ["2602-fe0f", "2602"]
    assert code_point_variants("1F436") == ["1f436"]


def test_iconify_svg_resolves_aliases_and_flips():
    icons = {
        "width": 32,
        "height": 32,
        "icons": {"left": {"body": "<path/>"}, "tall": {"body": "<g/>", "height": 33}},
        "aliases": {"right": {"parent": "left", "hFlip": True}, "again": {"parent": "right"}},
    }
    assert b'viewBox="0 0 32 33"><g/>' in iconify_svg(icons, "tall")
    flipped = iconify_svg(icons, "again").decode()
    assert '<g transform="matrix(-1 0 0 1 32 0)"><path/></g>' in flipped
    assert iconify_svg(icons, "missing") is None


def test_rasterize_composites_transparency_on_white_for_every_source_format():
    svg = b'<svg viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg"><rect x="18" y="18" width="36" height="36" fill="#c81e28"/></svg>'
    for data, kind in ((square_image(64, "PNG"), "png"), (square_image(256, "WEBP"), "webp")):
        image = np.asarray(rasterize(data, kind, SIZE))
        assert image.shape == (SIZE, SIZE, 3)
        assert image[0, 0].tolist() == [255, 255, 255]
        assert image[SIZE // 2, SIZE // 2].tolist() == list(COLOR)
    image = np.asarray(rasterize(svg, "svg", SIZE))
    assert image[0, 0].tolist() == [255, 255, 255]
    assert image[SIZE // 2, SIZE // 2].tolist() == list(COLOR)
    with pytest.raises(ValueError, match="image does not decode"):
        rasterize(b"\x89PNG\r\n\x1a\nnot really", "png", SIZE)
    with pytest.raises(ValueError, match="SVG does not render"):
        rasterize(b"<svg", "svg", SIZE)


# -- the data step end to end ------------------------------------------------------------
def test_manifest_lists_every_kept_class_in_every_style(prepared):
    data_dir, info = prepared
    rows = read_manifest(info["manifest"])
    assert rows[0] == ["path", "label", "split", "style", "category"]
    assert len(rows) == 1 + len(KEPT_LABELS) * 5
    assert sorted({r[1] for r in rows[1:]}) == sorted(KEPT_LABELS)
    assert {r[3] for r in rows[1:]} == set(STYLES)
    assert {r[2] for r in rows[1:]} == {""}
    by_path = {r[0]: r for r in rows[1:]}
    assert by_path["images/openmoji/hot_dog.png"] == [
        "images/openmoji/hot_dog.png",
        "hot dog",
        "",
        "openmoji",
        "Food & Drink",
    ]
    assert info["num_classes"] == len(KEPT_LABELS) and info["num_images"] == 30
    assert info["per_category"] == {
        "Animals & Nature": 1,
        "Food & Drink": 1,
        "Activities": 2,
        "Travel & Places": 2,
    }
    assert info["per_style"] == dict.fromkeys(STYLES, 6)
    assert info["candidates"] == 7 and info["in_all_styles"] == 6
    assert info["skipped"] == [] and info["dropped_by_vocabulary"] == []


def test_images_are_rgb_squares_on_white(prepared):
    data_dir, info = prepared
    root = data_dir / "emoji"
    for row in read_manifest(info["manifest"])[1:]:
        image = Image.open(root / row[0])
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (SIZE, SIZE)
        pixels = np.asarray(image)
        assert pixels[0, 0].tolist() == [255, 255, 255], row[0]  # transparent in the source
        assert np.abs(pixels[SIZE // 2, SIZE // 2].astype(int) - COLOR).max() <= 2, row[0]


def test_classes_and_licenses_are_written(prepared):
    data_dir, info = prepared
    classes = json.loads((data_dir / "emoji" / "classes.json").read_text())
    umbrella = next(c for c in classes["classes"] if c["label"] == "umbrella")
    assert umbrella == {
        "label": "umbrella",
        "name": "UMBRELLA",
        "short_name": "umbrella",
        "category": "Travel & Places",
        "unified": "2602-FE0F",
        "image": "2602-fe0f.png",
        "slug": "umbrella",
    }
    licenses = (data_dir / "emoji" / "LICENSES.md").read_text()
    for text in ("openmoji@17.0.0", "CC-BY-SA-4.0", "Share-alike", "Attribution required"):
        assert text in licenses
    assert "Twemoji by Twitter, Inc and other contributors, CC-BY 4.0" in licenses
    shipped = sorted(p.name for p in (data_dir / "emoji" / "licenses").iterdir())
    assert shipped == ["google.txt", "openmoji.txt", "twitter.txt"]


def test_second_run_returns_the_record_without_rewriting(prepared, packages):
    data_dir, info = prepared
    manifest = data_dir / "emoji" / "manifest.csv"
    before = manifest.stat().st_mtime_ns
    again = prepare_emoji(data_dir, image_size=SIZE, tarballs=packages, progress=False)
    assert again == info
    assert manifest.stat().st_mtime_ns == before


def test_new_parameters_rebuild_the_folder(packages, tmp_path):
    prepare_emoji(tmp_path, image_size=SIZE, tarballs=packages, progress=False)
    info = prepare_emoji(tmp_path, image_size=16, tarballs=packages, progress=False)
    assert Image.open(tmp_path / "emoji" / "images" / "google" / "dog_face.png").size == (16, 16)
    assert info["image_size"] == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emoji"]  # no leftovers


def test_vocabulary_drops_and_records_labels_with_unknown_words(packages, tmp_path):
    vocab = tmp_path / "vocab.txt"
    words = ["dog", "face", "hot", "jack", "o", "lantern", "umbrella", "clock", "one"]
    vocab.write_text("\n".join(words + ["horse", "racing"]) + "\n")
    info = prepare_emoji(tmp_path, image_size=SIZE, vocabulary=vocab, tarballs=packages)
    assert info["dropped_by_vocabulary"] == ["clock face one oclock"]
    labels = {r[1] for r in read_manifest(info["manifest"])[1:]}
    assert labels == set(KEPT_LABELS) - {"clock face one oclock"}
    classes = json.loads((tmp_path / "emoji" / "classes.json").read_text())
    assert [c["label"] for c in classes["dropped_by_vocabulary"]] == ["clock face one oclock"]


def test_style_split_manifest_holds_out_one_style_for_seen_classes(prepared, tmp_path):
    data_dir, info = prepared
    beside = data_dir / "emoji" / "split_openmoji.csv"
    counts = write_style_split_manifest(
        info["manifest"], beside, held_out_style="openmoji", unseen_labels=["hot dog"]
    )
    assert counts == {"train": 20, "eval": 5, "unseen": 5}
    rows = read_manifest(beside)[1:]
    assert {r[3] for r in rows if r[2] == "eval"} == {"openmoji"}
    assert {r[1] for r in rows if r[2] == "unseen"} == {"hot dog"}
    assert all(not os.path.isabs(r[0]) for r in rows)
    elsewhere = tmp_path / "split.csv"
    write_style_split_manifest(
        info["manifest"], elsewhere, held_out_style="google", unseen_labels=[]
    )
    assert all(os.path.isfile(r[0]) for r in read_manifest(elsewhere)[1:])
    with pytest.raises(ValueError, match="not in"):
        write_style_split_manifest(
            info["manifest"], elsewhere, held_out_style="google", unseen_labels=["cat"]
        )
    with pytest.raises(ValueError, match="held_out_style must be one of"):
        write_style_split_manifest(
            info["manifest"], elsewhere, held_out_style="apple", unseen_labels=[]
        )


# -- bad input -----------------------------------------------------------------------------
def test_missing_tarball_names_the_package(packages, tmp_path):
    broken = {**packages, "openmoji": tmp_path / "nowhere.tgz"}
    with pytest.raises(EmojiDataError, match="openmoji@17.0.0 tarball .*nowhere.tgz.* not exist"):
        prepare_emoji(tmp_path, tarballs=broken, progress=False)
    with pytest.raises(EmojiDataError, match="no package for the style\\(s\\) \\['twitter'\\]"):
        prepare_emoji(tmp_path, tarballs={s: packages[s] for s in STYLES if s != "twitter"})


def test_corrupt_tarballs_give_a_clear_error(packages, tmp_path):
    garbage = tmp_path / "garbage.tgz"
    garbage.write_bytes(b"this is not a tarball at all" * 10)
    truncated = tmp_path / "truncated.tgz"
    data = packages["fluent-3d"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    for style, path in (("google", garbage), ("fluent-3d", truncated)):
        with pytest.raises(EmojiDataError, match=f"{path.name}: not a readable npm tarball"):
            prepare_emoji(tmp_path, tarballs={**packages, style: path}, progress=False)
    assert not (tmp_path / "emoji").exists()


def test_a_package_without_its_index_file_is_named(packages, tmp_path):
    files = package_files("fluent-flat")
    del files["package/chars.json"]
    no_chars = write_tarball(tmp_path / "flat.tgz", files)
    with pytest.raises(EmojiDataError, match="fluent-emoji-flat@1.2.6\\) has no package/chars"):
        prepare_emoji(tmp_path, tarballs={**packages, "fluent-flat": no_chars}, progress=False)
    files = package_files("google")
    del files["package/emoji.json"]
    no_catalog = write_tarball(tmp_path / "google.tgz", files)
    with pytest.raises(EmojiDataError, match="has no package/emoji.json"):
        prepare_emoji(tmp_path, tarballs={**packages, "google": no_catalog}, progress=False)
    wrong = write_tarball(tmp_path / "wrong.tgz", {"package/README.md": b"hello"})
    with pytest.raises(EmojiDataError, match="holds none of the expected images"):
        prepare_emoji(tmp_path, tarballs={**packages, "fluent-3d": wrong}, progress=False)


def test_a_corrupt_image_is_skipped_counted_and_reported(tmp_path):
    files = package_files("twitter")
    files["package/img/twitter/64/1f32d.png"] = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    packages = build_fake_packages(tmp_path / "npm")
    packages["twitter"] = write_tarball(tmp_path / "npm" / "twitter.tgz", files)
    info = prepare_emoji(tmp_path, image_size=SIZE, tarballs=packages, progress=False)
    assert info["num_images"] == 29 and info["num_classes"] == 6
    [(style, label, reason)] = info["skipped"]
    assert (style, label) == ("twitter", "hot dog")
    assert reason.startswith("package/img/twitter/64/1f32d.png: image does not decode")
    assert not (tmp_path / "emoji" / "images" / "twitter" / "hot_dog.png").exists()


# -- npm tarballs: cache, integrity, the registry fallback ---------------------------------
def _pinned(path, name="emoji-datasource-google", version="16.0.0"):
    return npm.NpmPackage(name, version, npm.sha512_integrity(path), "MIT")


def test_tarball_names_follow_npm_pack():
    package = emoji_data.PACKAGES["fluent-flat"]
    assert package.tarball_name == "iconify-json-fluent-emoji-flat-1.2.6.tgz"
    assert package.spec == "@iconify-json/fluent-emoji-flat@1.2.6"


def test_cached_tarball_is_used_when_its_integrity_matches(packages, tmp_path):
    package = _pinned(packages["google"])
    (tmp_path / package.tarball_name).write_bytes(packages["google"].read_bytes())
    found = npm.fetch_npm_tarball(package, tmp_path, use_npm=False, progress=False)
    assert found == tmp_path / package.tarball_name
    found.write_bytes(b"tampered")
    with pytest.raises(npm.NpmFetchError, match="is not the pinned sha512-"):
        npm.fetch_npm_tarball(package, tmp_path, use_npm=False, progress=False)


def test_registry_fallback_downloads_and_checks_the_published_integrity(
    packages, tmp_path, monkeypatch
):
    # The npm registry's layout under a file:// root: <root>/<name>/<version> is the
    # version's metadata, dist.tarball the file.
    registry = tmp_path / "registry"
    (registry / "emoji-datasource-google").mkdir(parents=True)
    package = _pinned(packages["google"])
    metadata = {"dist": {"tarball": packages["google"].as_uri(), "integrity": package.integrity}}
    (registry / "emoji-datasource-google" / "16.0.0").write_text(json.dumps(metadata))
    monkeypatch.setenv("npm_config_registry", registry.as_uri())
    found = npm.fetch_npm_tarball(package, tmp_path / "cache", use_npm=False, progress=False)
    assert found.read_bytes() == packages["google"].read_bytes()

    other = dataclasses.replace(package, integrity="sha512-" + "A" * 86 + "==")
    with pytest.raises(npm.NpmFetchError, match="publishes integrity .* not the pinned"):
        npm.fetch_npm_tarball(other, tmp_path / "cache2", use_npm=False, progress=False)
    missing = dataclasses.replace(package, version="9.9.9")
    with pytest.raises(npm.NpmFetchError, match="cannot read the npm registry's metadata"):
        npm.fetch_npm_tarball(missing, tmp_path / "cache3", use_npm=False, progress=False)


def test_read_tarball_members_reads_only_what_is_asked(packages, tmp_path):
    found = npm.read_tarball_members(packages["fluent-flat"], {"package/chars.json"})
    assert list(found) == ["package/chars.json"]
    gz = tmp_path / "plain.gz"
    gz.write_bytes(gzip.compress(b"not a tar"))
    with pytest.raises(npm.TarballError, match="plain.gz: not a readable npm tarball"):
        npm.read_tarball_members(gz, lambda name: True)


# -- the command line ----------------------------------------------------------------------
def test_cli_data_emoji_prints_the_manifest(packages, tmp_path, monkeypatch, capsys):
    from devise_keras import cli

    # GloVe as an earlier `data` run leaves it (prepare_glove then does not download).
    glove = tmp_path / "data" / "glove_6b_50d"
    glove.mkdir(parents=True)
    (glove / "vocab.txt").write_text("\n".join(["dog", "face", "hot"]) + "\n")
    np.save(glove / "glove.6B.50d.npy", np.zeros((4, 2), np.float32))
    info = {"vectors": str(glove / "glove.6B.50d.npy"), "vocab": str(glove / "vocab.txt")}
    (glove / "prepared.json").write_text(json.dumps(info))
    # The pinned packages, already in the npm cache with their integrity.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "devise-keras" / "npm"
    cache.mkdir(parents=True)
    for style, path in packages.items():
        pinned = dataclasses.replace(
            emoji_data.PACKAGES[style], integrity=npm.sha512_integrity(path)
        )
        monkeypatch.setitem(emoji_data.PACKAGES, style, pinned)
        (cache / pinned.tarball_name).write_bytes(path.read_bytes())

    argv = ["data", "--dataset", "emoji", "--data-dir", str(tmp_path / "data")]
    assert cli.main(argv + ["--image-size", "16"]) == 0
    out, err = capsys.readouterr()
    manifest = tmp_path / "data" / "emoji" / "manifest.csv"
    assert f"manifest: {manifest}" in out
    assert "classes: 2 (Animals & Nature: 1, Food & Drink: 1)" in out
    assert "left out 4 classes with a name word outside GloVe" in err
    assert len(read_manifest(manifest)) == 1 + 2 * 5


def test_an_interrupted_run_leaves_no_partial_folder(packages, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(emoji_data, "rasterize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_emoji(tmp_path, image_size=SIZE, tarballs=packages, progress=False)
    assert list(tmp_path.iterdir()) == []
