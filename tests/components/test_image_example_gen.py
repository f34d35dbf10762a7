"""Tests of ImageExampleGen: pure functions, Beam transforms, the executor and the component."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import zlib

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image
from tfx.types import artifact_utils, standard_artifacts

from components.image_example_gen import executor, transforms
from components.image_example_gen.component import ImageExampleGen
from components.image_example_gen.transforms import ImageRef
from devise_keras import features
from devise_keras.class_split import stable_hash
from devise_keras.config import DataConfig
from tests.components.image_example_gen_testutil import (
    BAD_FILES,
    GOOD_IMAGES,
    encode,
    make_image_tree,
    read_split,
)

UNSEEN = ["bird"]
VOCABULARY = ["cat", "dog", "fish", "bird"]  # sorted seen classes, then sorted unseen


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return root, make_image_tree(root)


def run_executor(out_dir, **exec_properties):
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    properties = {"eval_fraction": 0.3, "num_unseen": 1, "split_seed": 0}
    properties.update(exec_properties)
    executor.Executor().Do({}, {"examples": [examples]}, properties)
    return examples


def expected_split(path, label, seed=0, eval_fraction=0.3, unseen=UNSEEN):
    return transforms.choose_split(ImageRef(path, label), frozenset(unseen), eval_fraction, seed)


@pytest.fixture(scope="module")
def generated(image_tree, tmp_path_factory):
    root, _ = image_tree
    out = tmp_path_factory.mktemp("examples")
    artifact = run_executor(out, image_dir=str(root), unseen_classes=json.dumps(UNSEEN))
    return artifact, str(out)


# ---------------------------------------------------------------- pure functions


def test_choose_split_unseen_class_wins_and_explicit_split_overrides_hash():
    unseen = frozenset({"bird"})
    assert transforms.choose_split(ImageRef("bird/1.jpg", "bird", "train"), unseen, 0.5, 0) == (
        "unseen"
    )
    assert transforms.choose_split(ImageRef("cat/1.png", "cat", "eval"), unseen, 0.01, 0) == "eval"
    assert transforms.choose_split(ImageRef("cat/1.png", "cat", "train"), unseen, 0.99, 0) == (
        "train"
    )


def test_choose_split_golden_splits_and_independent_of_the_cap_hash():
    refs = [ImageRef(f"cat/{i}.png", "cat") for i in range(10)]
    splits = [transforms.choose_split(r, frozenset(), 0.5, 0) for r in refs]
    golden = "train eval train eval eval eval eval train eval eval".split()
    assert splits == golden
    # Were the split drawn from the cap's hash, a cap of N would keep eval images first.
    by_cap_hash = sorted(refs, key=lambda r: stable_hash(0, "cap", r.path))
    kept = [transforms.choose_split(r, frozenset(), 0.5, 0) for r in by_cap_hash[:5]]
    assert kept.count("train") >= 1


def test_choose_split_eval_share_follows_eval_fraction():
    refs = [ImageRef(f"c/{i}.png", "c") for i in range(4000)]
    splits = [transforms.choose_split(r, frozenset(), 0.25, 7) for r in refs]
    assert 0.22 < splits.count("eval") / len(splits) < 0.28
    assert set(splits) == {"train", "eval"}


def test_parse_manifest_line_reads_rows_and_skips_header_and_blank_lines():
    assert transforms.parse_manifest_line("path,label,split") is None
    assert transforms.parse_manifest_line("  \n") is None
    assert transforms.parse_manifest_line("a/b.png,cat\n") == ImageRef("a/b.png", "cat", "")
    assert transforms.parse_manifest_line('"x,y.png", dog , Eval') == ImageRef(
        "x,y.png", "dog", "eval"
    )


def test_parse_manifest_line_ignores_metadata_columns_after_the_split():
    assert transforms.parse_manifest_line("path,label,split,style,category") is None
    row = "images/openmoji/hot_dog.png,hot dog,,openmoji,Food & Drink"
    assert transforms.parse_manifest_line(row) == ImageRef(
        "images/openmoji/hot_dog.png", "hot dog", ""
    )
    assert transforms.parse_manifest_line("a.png,cat,unseen,google,Animals") == ImageRef(
        "a.png", "cat", "unseen"
    )


def test_a_header_names_the_columns_in_any_order():
    columns = transforms.manifest_columns("label, Style ,path,category,split")
    assert columns == ("label", "style", "path", "category", "split")
    row = "hot dog,openmoji,images/openmoji/hot_dog.png,Food & Drink,"
    assert transforms.parse_manifest_line(row, 2, columns) == ImageRef(
        "images/openmoji/hot_dog.png", "hot dog", "", "openmoji"
    )
    emoji = transforms.manifest_columns("path,label,split,style,category")
    assert transforms.parse_manifest_line("a.png,cat,Eval,twitter,Animals", 3, emoji) == (
        ImageRef("a.png", "cat", "eval", "twitter")
    )
    # No header: path,label[,split]; a first data line is not a header.
    assert transforms.manifest_columns("a.png,cat,train") == transforms.POSITIONAL_COLUMNS
    assert transforms.manifest_columns(None) == ("path", "label", "split")


def test_a_header_without_a_style_column_gives_no_style_and_bad_rows_are_named():
    columns = transforms.manifest_columns("path,label")
    assert transforms.parse_manifest_line("a.png,cat", 2, columns) == ImageRef("a.png", "cat")
    styled = transforms.manifest_columns("label,style,path")
    with pytest.raises(ValueError, match="manifest line 4: expected 'label,style,path'"):
        transforms.parse_manifest_line("cat,google", 4, styled)
    with pytest.raises(ValueError, match=r"column\(s\) \['style'\] more than once"):
        transforms.manifest_columns("path,label,style,style")


def test_read_manifest_columns_from_the_first_non_blank_line(tmp_path):
    with_header = tmp_path / "a.csv"
    with_header.write_text("\npath,label,split,style,category\nx.png,cat,,google,Animals\n")
    assert transforms.read_manifest_columns(str(with_header))[3] == "style"
    plain = tmp_path / "b.csv"
    plain.write_text("x.png,cat\n")
    assert transforms.read_manifest_columns(str(plain)) == transforms.POSITIONAL_COLUMNS


def test_choose_split_routes_by_style_when_eval_style_is_set():
    refs = [ImageRef(f"{style}/cat.png", "cat", "", style) for style in ("google", "twitter")]
    assert [transforms.choose_split(r, frozenset(), 0.5, 0, "twitter") for r in refs] == [
        "train",
        "eval",
    ]
    # Unseen classes and explicit splits still win over the style.
    assert transforms.choose_split(refs[1], frozenset({"cat"}), 0.5, 0, "twitter") == "unseen"
    forced = ImageRef("twitter/dog.png", "dog", "train", "twitter")
    assert transforms.choose_split(forced, frozenset(), 0.5, 0, "twitter") == "train"


def test_eval_style_must_be_a_style_of_the_manifest():
    executor.check_eval_style("", set(), "m.csv")  # not set: nothing to check
    executor.check_eval_style("twitter", {"google", "twitter"}, "m.csv")
    with pytest.raises(executor.ImageExampleGenError, match="needs a manifest with a header"):
        executor.check_eval_style("twitter", set(), "m.csv")
    with pytest.raises(
        executor.ImageExampleGenError, match=r"its styles: \['google', 'openmoji'\]"
    ):
        executor.check_eval_style("twitter", {"google", "openmoji"}, "m.csv")
    with pytest.raises(executor.ImageExampleGenError, match="nothing is left to train on"):
        executor.check_eval_style("twitter", {"twitter"}, "m.csv")


@pytest.mark.parametrize(
    "line, message",
    [
        ("only-a-path.png", "expected 'path,label"),
        ("a.png,,train", "expected 'path,label"),
        ("a.png,cat,test", "split must be one of train/eval/unseen"),
    ],
)
def test_parse_manifest_line_names_the_bad_line(line, message):
    with pytest.raises(ValueError, match=f"manifest line 7: {message}"):
        transforms.parse_manifest_line(line, 7)


def test_check_image_keeps_png_and_jpeg_bytes_and_names_each_bad_input():
    png = encode(np.arange(12, dtype=np.uint8).reshape(2, 2, 3), "PNG")
    jpeg = encode(np.zeros((8, 8, 3), np.uint8), "JPEG")
    assert transforms.check_image(png) == (png, None, False)
    assert transforms.check_image(jpeg) == (jpeg, None, False)
    assert transforms.check_image(b"") == (None, "empty_file", False)
    assert transforms.check_image(b"hello, world") == (None, "unknown_format", False)
    big = encode(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8), "PNG")
    assert transforms.check_image(big[: len(big) // 2]) == (None, "undecodable", False)


def test_check_image_reencodes_cmyk_jpeg_and_resizes_to_png():
    buffer = io.BytesIO()
    Image.new("CMYK", (4, 3), (0, 255, 0, 0)).save(buffer, format="JPEG")
    data, reason, reencoded = transforms.check_image(buffer.getvalue())
    assert reason is None and reencoded
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (4, 3))
    grey = encode(np.full((10, 6), 200, np.uint8), "PNG")
    data, _, reencoded = transforms.check_image(grey, image_size=4)
    image = Image.open(io.BytesIO(data))
    # Stored as TensorFlow decodes it for the model: 3 channels.
    assert (image.format, image.mode, image.size, reencoded) == ("PNG", "RGB", (4, 4), True)
    assert np.asarray(image).tolist() == [[[200] * 3] * 4] * 4


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and whose pixel data is empty."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def test_check_image_refuses_huge_and_tiny_images_before_decoding():
    # 10,000 x 10,000 px would take 300 MB decoded: refused from the header alone
    # (the file has no pixel data at all, so a decode would fail differently).
    huge = _png_header_only(10_000, 10_000)
    limits = transforms.ImageLimits(max_pixels=40_000_000, min_side=8)
    assert transforms.check_image(huge, 32, limits) == (None, "too_large", False)
    one_pixel = encode(np.zeros((1, 1, 3), np.uint8), "PNG")
    assert transforms.check_image(one_pixel, 32, limits) == (None, "too_small", False)
    # At the limits exactly, images are kept.
    edge = encode(np.zeros((8, 8, 3), np.uint8), "PNG")
    assert transforms.check_image(edge, None, transforms.ImageLimits(64, 8)).reason is None
    assert transforms.check_image(edge, None, transforms.ImageLimits(63, 8)).reason == "too_large"


def test_a_served_image_reaches_the_model_with_the_training_pixels():
    # ImageExampleGen resizes (image_size=16) and stores; training decodes the stored
    # bytes; serving decodes and resizes the original upload. Same pixels, exactly.
    rng = np.random.default_rng(3)
    for shape, fmt in (((37, 23, 3), "PNG"), ((50, 40, 3), "JPEG"), ((9, 30), "PNG")):
        original = encode(rng.integers(0, 255, shape, np.uint8), fmt)
        stored, reason, _ = transforms.check_image(original, image_size=16)
        assert reason is None
        training = features.decode_images(tf.constant([stored]), 16).numpy()
        served = features.decode_images(tf.constant([original]), 16).numpy()
        np.testing.assert_array_equal(training, served)


def test_make_example_parses_with_the_feature_spec():
    example = transforms.make_example("cat/0.png", "cat", 3, b"\x89PNG")
    parsed = tf.io.parse_single_example(example.SerializeToString(), features.FEATURE_SPEC)
    assert parsed[features.IMAGE_KEY].numpy() == b"\x89PNG"
    assert parsed[features.LABEL_TEXT_KEY].numpy() == b"cat"
    assert parsed[features.LABEL_ID_KEY].numpy() == 3


# ---------------------------------------------------------------- component


def test_component_requires_exactly_one_source():
    with pytest.raises(ValueError, match="needs image_dir or manifest; both are empty"):
        ImageExampleGen()
    with pytest.raises(ValueError, match="not both"):
        ImageExampleGen(image_dir="/a", manifest="/b.csv")


def test_component_spec_carries_the_data_config_fields():
    config = DataConfig(image_dir="/data/images", unseen_classes=["dog", "cat"], image_size=32)
    component = ImageExampleGen.from_data_config(config)
    props = component.exec_properties
    assert props["image_dir"] == "/data/images"
    assert json.loads(props["unseen_classes"]) == ["dog", "cat"]
    assert (props["eval_fraction"], props["num_unseen"], props["image_size"]) == (0.2, 2, 32)
    assert props["manifest"] is None and props["max_images_per_class"] is None
    assert props["unseen_fraction"] is None and props["eval_style"] is None
    assert component.outputs["examples"].type_name == "Examples"
    styled = DataConfig(manifest="/m.csv", unseen_fraction=0.2, eval_style="twitter")
    props = ImageExampleGen.from_data_config(styled).exec_properties
    assert (props["unseen_fraction"], props["eval_style"]) == (0.2, "twitter")
    with pytest.raises(ValueError, match="eval_style needs a manifest"):
        ImageExampleGen(image_dir="/a", eval_style="twitter")


def test_executor_names_a_missing_image_dir(tmp_path):
    with pytest.raises(executor.ImageExampleGenError, match="image_dir '/no/such/dir' does not"):
        run_executor(tmp_path / "out", image_dir="/no/such/dir")
    with pytest.raises(executor.ImageExampleGenError, match="manifest '/no/such.csv' does not"):
        run_executor(tmp_path / "out", manifest="/no/such.csv")


def test_executor_names_an_unknown_unseen_class_before_reading_images(image_tree, tmp_path):
    root, _ = image_tree
    with pytest.raises(executor.ImageExampleGenError, match=r"unknown class\(es\) \['zebra'\]"):
        run_executor(tmp_path, image_dir=str(root), unseen_classes='["zebra"]')


# ---------------------------------------------------------------- Beam transforms


@pytest.mark.slow
def test_list_image_dir_lists_every_non_hidden_file_per_class(image_tree):
    root, good = image_tree
    expected = [ImageRef(path, label) for path, label in good.items()]
    expected += [ImageRef(path, path.split("/")[0]) for path in BAD_FILES]
    with test_pipeline.TestPipeline() as p:
        refs = p | transforms.ListImageDir(str(root), sorted(GOOD_IMAGES))
        assert_that(refs, equal_to(expected))


@pytest.mark.slow
def test_cap_per_class_keeps_the_smallest_hashes():
    refs = [ImageRef(f"{label}/{i}.png", label) for label in ("a", "b") for i in range(10)]
    refs.append(ImageRef("c/only.png", "c"))

    def smallest(label, n):
        mine = [r for r in refs if r.label == label]
        return sorted(mine, key=lambda r: stable_hash(4, "cap", r.path))[:n]

    with test_pipeline.TestPipeline() as p:
        kept = p | beam.Create(refs) | transforms.CapPerClass(3, seed=4)
        assert_that(kept, equal_to(smallest("a", 3) + smallest("b", 3) + refs[-1:]))


@pytest.mark.slow
def test_generate_examples_gives_golden_records_skips_and_counts(image_tree):
    root, good = image_tree
    label_ids = {label: i for i, label in enumerate(VOCABULARY)}
    expected_records = [
        (expected_split(path, label), label, path, label_ids[label], (root / path).read_bytes())
        for path, label in good.items()
    ]
    expected_skipped = [(path, reason, path.split("/")[0]) for path, reason in BAD_FILES.items()]
    expected_counts = [(("listed", label, ""), n + 1) for label, n in GOOD_IMAGES.items()]
    expected_counts[0] = (("listed", "bird", ""), 5)  # the only class without a bad file
    expected_counts += [(("skipped", p.split("/")[0], r), 1) for p, r in BAD_FILES.items()]
    split_counts = {}
    for split, label, *_ in expected_records:
        split_counts[(split, label)] = split_counts.get((split, label), 0) + 1
    expected_counts += [
        (("written", label, split), n) for (split, label), n in split_counts.items()
    ]

    def parse(element):
        split, label, record = element
        feature = tf.train.Example.FromString(record).features.feature
        return (
            split,
            label,
            feature[features.FILENAME_KEY].bytes_list.value[0].decode(),
            feature[features.LABEL_ID_KEY].int64_list.value[0],
            feature[features.IMAGE_KEY].bytes_list.value[0],
        )

    with test_pipeline.TestPipeline() as p:
        refs = p | transforms.ListImageDir(str(root), sorted(GOOD_IMAGES))
        out = refs | transforms.GenerateExamples(
            str(root), seen=["cat", "dog", "fish"], unseen=UNSEEN, eval_fraction=0.3, seed=0
        )
        assert_that(out["examples"] | beam.Map(parse), equal_to(expected_records), "records")
        assert_that(out["skipped"], equal_to(expected_skipped), label="skipped")
        assert_that(out["counts"], equal_to(expected_counts), label="counts")


# ---------------------------------------------------------------- executor


@pytest.mark.slow
def test_executor_writes_three_splits_with_the_expected_counts(image_tree, generated):
    _, good = image_tree
    artifact, uri = generated
    assert artifact_utils.decode_split_names(artifact.split_names) == ["train", "eval", "unseen"]
    for split in features.SPLITS:
        assert os.listdir(os.path.join(uri, f"Split-{split}"))[0].startswith("data_tfrecord-")
        expected = sorted(p for p, label in good.items() if expected_split(p, label) == split)
        assert [r["path"] for r in read_split(uri, split)] == expected
    assert len(read_split(uri, "train")) > len(read_split(uri, "eval")) > 0
    assert artifact.get_int_custom_property("num_examples") == sum(GOOD_IMAGES.values())
    assert artifact.get_int_custom_property("num_skipped") == 3
    assert artifact.get_int_custom_property("num_classes") == 4
    assert artifact.get_string_custom_property("file_format") == "tfrecords_gzip"


@pytest.mark.slow
def test_executor_unseen_split_holds_exactly_the_unseen_classes(generated):
    _, uri = generated
    assert {r["label"] for r in read_split(uri, "unseen")} == set(UNSEEN)
    seen_labels = {r["label"] for s in ("train", "eval") for r in read_split(uri, s)}
    assert seen_labels == {"cat", "dog", "fish"}
    class_split = json.loads(open(os.path.join(uri, features.CLASS_SPLIT_FILE)).read())
    assert class_split == {
        "classes": VOCABULARY,
        "seen": VOCABULARY[:3],
        "unseen": UNSEEN,
        "eval_style": "",
        "styles": [],
        "split_seed": 0,
    }


@pytest.mark.slow
def test_executor_label_ids_follow_the_vocabulary_and_bytes_round_trip(image_tree, generated):
    root, _ = image_tree
    _, uri = generated
    records = [r for split in features.SPLITS for r in read_split(uri, split)]
    assert len(records) == 23
    for record in records:
        assert record["label_id"] == VOCABULARY.index(record["label"])
        assert record["label"] == record["path"].split("/")[0]
        assert record["image"] == (root / record["path"]).read_bytes()
    decoded = features.decode_images(tf.constant([records[0]["image"]]), 4)
    assert decoded.shape == (1, 4, 4, 3)


@pytest.mark.slow
def test_executor_skip_report_lists_the_three_bad_files_with_reasons(generated):
    _, uri = generated
    with open(os.path.join(uri, features.SKIP_REPORT_FILE)) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "reason"]
    assert sorted(map(tuple, rows[1:])) == sorted(BAD_FILES.items())
    report = json.loads(open(os.path.join(uri, features.GEN_REPORT_FILE)).read())
    assert report["skipped"]["by_reason"] == {
        "empty_file": 1,
        "too_large": 0,
        "too_small": 0,
        "undecodable": 1,
        "unknown_format": 1,
        "unreadable": 0,
    }
    assert (report["listed"], report["written"], report["capped"]) == (26, 23, 0)
    cat = report["classes"]["cat"]
    assert (cat["label_id"], cat["listed"], cat["skipped"], cat["role"]) == (0, 7, 1, "seen")
    assert cat["train"] + cat["eval"] == 6 and cat["unseen"] == 0
    assert report["splits"]["unseen"] == 5
    assert not os.path.exists(os.path.join(uri, "_counts.json"))


@pytest.mark.slow
def test_executor_rerun_gives_identical_records(image_tree, generated, tmp_path):
    root, _ = image_tree
    _, first_uri = generated
    run_executor(tmp_path, image_dir=str(root), unseen_classes=json.dumps(UNSEEN))
    for split in features.SPLITS:
        assert read_split(str(tmp_path), split) == read_split(first_uri, split)


@pytest.mark.slow
def test_executor_reads_a_manifest_with_relative_paths_and_split_overrides(image_tree, tmp_path):
    root, good = image_tree
    # The CSV sits one folder above the class folders; one path is absolute.
    manifest = root.parent / "manifest.csv"
    rel = os.path.relpath(root, root.parent)
    rows = [["path", "label", "split"]]
    rows += [[f"{rel}/{p}", label, ""] for p, label in sorted(good.items()) if label != "fish"]
    rows += [[str(root / "cat/0.png"), "kitty", "train"], [f"{rel}/fish/notes.txt", "fish", ""]]
    rows += [[f"{rel}/fish/0.png", "fish", "unseen"], [f"{rel}/cat/missing.png", "cat", ""]]
    forced = next(r for r in rows if r[0] == f"{rel}/cat/1.png")
    forced[2] = "eval"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows(rows)

    artifact = run_executor(tmp_path / "out", manifest=str(manifest), unseen_classes='["bird"]')
    uri = str(tmp_path / "out")
    class_split = json.loads(open(os.path.join(uri, features.CLASS_SPLIT_FILE)).read())
    # "fish" is unseen because a row marks it so, "bird" because it is listed.
    assert class_split == {
        "classes": ["cat", "dog", "kitty", "bird", "fish"],
        "seen": ["cat", "dog", "kitty"],
        "unseen": ["bird", "fish"],
        "eval_style": "",
        "styles": [],
        "split_seed": 0,
    }
    eval_paths = [r["path"] for r in read_split(uri, "eval")]
    assert f"{rel}/cat/1.png" in eval_paths
    kitty = [r for r in read_split(uri, "train") if r["label"] == "kitty"]
    assert [(r["path"], r["label_id"]) for r in kitty] == [(str(root / "cat/0.png"), 2)]
    assert kitty[0]["image"] == (root / "cat/0.png").read_bytes()
    unseen = read_split(uri, "unseen")
    assert sorted(r["label"] for r in unseen) == ["bird"] * 5 + ["fish"]
    assert artifact.get_int_custom_property("num_skipped") == 2
    skipped = open(os.path.join(uri, features.SKIP_REPORT_FILE)).read().splitlines()
    assert skipped[0] == "path,reason"
    assert sorted(skipped[1:]) == [
        f"{rel}/cat/missing.png,unreadable",
        f"{rel}/fish/notes.txt,unknown_format",
    ]


@pytest.mark.slow
def test_executor_holds_out_a_style_for_eval_and_a_fraction_of_classes(tmp_path):
    styles = ("google", "twitter", "openmoji")
    labels = ["ant", "bee", "cat", "dog", "eel"]
    rows = [["path", "label", "split", "style", "category"]]
    for i, label in enumerate(labels):
        for j, style in enumerate(styles):
            pixels = np.full((4, 4, 3), 40 * i + j, np.uint8)
            (tmp_path / style).mkdir(exist_ok=True)
            (tmp_path / style / f"{label}.png").write_bytes(encode(pixels, "PNG"))
            rows.append([f"{style}/{label}.png", label, "", style, "Animals"])
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows(rows)

    uri = str(tmp_path / "out")
    run_executor(uri, manifest=str(manifest), unseen_fraction=0.4, eval_style="twitter")
    class_split = json.loads(open(os.path.join(uri, features.CLASS_SPLIT_FILE)).read())
    assert len(class_split["unseen"]) == 2  # round(0.4 x 5)
    assert (class_split["eval_style"], class_split["styles"]) == ("twitter", sorted(styles))
    seen = class_split["seen"]
    evaluation, train = read_split(uri, "eval"), read_split(uri, "train")
    assert sorted(r["path"] for r in evaluation) == [f"twitter/{c}.png" for c in seen]
    assert sorted(r["path"] for r in train) == sorted(
        f"{s}/{c}.png" for s in ("google", "openmoji") for c in seen
    )
    assert len(read_split(uri, "unseen")) == 2 * 3  # every style of the unseen classes
    report = json.loads(open(os.path.join(uri, features.GEN_REPORT_FILE)).read())
    assert report["parameters"]["eval_style"] == "twitter"
    assert report["splits"] == {"train": 6, "eval": 3, "unseen": 6}
    with pytest.raises(executor.ImageExampleGenError, match="is not a style of"):
        run_executor(tmp_path / "bad", manifest=str(manifest), eval_style="apple")


@pytest.mark.slow
def test_executor_caps_images_per_class_and_resizes(image_tree, tmp_path):
    root, _ = image_tree
    run_executor(
        tmp_path,
        image_dir=str(root),
        unseen_classes='["bird"]',
        max_images_per_class=3,
        image_size=5,
        eval_fraction=0.01,
    )
    records = [r for split in features.SPLITS for r in read_split(str(tmp_path), split)]
    per_class = {label: sum(r["label"] == label for r in records) for label in VOCABULARY}
    report = json.loads((tmp_path / features.GEN_REPORT_FILE).read_text())
    # A bad file the cap kept still counts against the cap: kept = 3 - skipped.
    skipped = {c: report["classes"][c]["skipped"] for c in VOCABULARY}
    assert per_class == {c: 3 - skipped[c] for c in VOCABULARY}
    assert report["capped"] == 26 - 12
    for record in records:
        image = Image.open(io.BytesIO(record["image"]))
        assert (image.format, image.size) == ("PNG", (5, 5))


@pytest.mark.slow
def test_executor_fails_naming_a_seen_class_without_images(image_tree, tmp_path):
    root, _ = image_tree
    tree = tmp_path / "tree"
    for label in ("cat", "dog"):
        (tree / label).mkdir(parents=True)
        for name in os.listdir(root / label):
            (tree / label / name).write_bytes((root / label / name).read_bytes())
    (tree / "ghost").mkdir()
    (tree / "zombie").mkdir()
    (tree / "zombie" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(executor.ImageExampleGenError) as error:
        run_executor(tmp_path / "out", image_dir=str(tree), unseen_classes='["dog"]')
    message = str(error.value)
    assert "seen class(es) without a train image: 'ghost' (0 files" in message
    assert "'zombie' (1 files, 1 skipped" in message
    assert "add images to them" in message and "cat" not in message
    assert (tmp_path / "out" / features.GEN_REPORT_FILE).exists()


@pytest.mark.slow
def test_executor_fails_when_every_image_is_bad(tmp_path):
    tree = tmp_path / "tree"
    for label in ("a", "b"):
        (tree / label).mkdir(parents=True)
        (tree / label / "x.jpg").write_bytes(b"")
        (tree / label / "y.txt").write_text("text")
    with pytest.raises(
        executor.ImageExampleGenError,
        match=r"no usable image: all 4 files were skipped \(2 empty_file, 2 unknown_format\)",
    ):
        run_executor(tmp_path / "out", image_dir=str(tree), num_unseen=1)


@pytest.mark.slow
def test_mix_order_interleaves_class_sorted_records():
    import itertools

    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that

    from components.image_example_gen.transforms import MixOrder

    # 3 classes x 30 records, arriving class by class as the listing produces them.
    records = [f"{label}-{i:03d}".encode() for label in "abc" for i in range(30)]

    def check(mixed):
        assert sorted(mixed) == sorted(records)  # nothing lost, nothing duplicated
        runs = [len(list(g)) for _, g in itertools.groupby(r[:1] for r in mixed)]
        assert len(runs) > 30, runs  # the class-sorted input has 3 runs

    with TestPipeline() as p:
        assert_that(p | beam.Create(records) | MixOrder(buckets=4), lambda got: check(list(got)))
