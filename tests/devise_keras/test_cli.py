"""The library's commands of `devise-keras` (data and the apps), driven as a user would
(subprocess, `python -m devise_keras.cli`: no pipeline code) and in-process, on a tiny
pushed model. The pipeline's commands and the console script: tests/pipeline/test_cli.py."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from devise_keras import cli
from devise_keras.apps import load
from tests.devise_keras import devise_app_testutil as tu

COMMAND = [sys.executable, "-m", "devise_keras.cli"]


def run(*args, cwd=None):
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    return tu.make_pushed_model(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def app(pushed):
    return load(pushed["serving_dir"])


@pytest.fixture(scope="module")
def encoder_pushed(tmp_path_factory):
    return tu.make_pushed_model(tmp_path_factory.mktemp("cli_encoder"), text_encoder=True)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for seed in range(3):
        (root / f"{seed}.png").write_bytes(tu.image_bytes(seed))
    return root


def test_usage_errors_exit_2_with_a_message_naming_the_problem(pushed, tmp_path):
    assert run().returncode == 2  # no command
    result = run("predict", tmp_path / "nope.png", "--model", pushed["serving_dir"])
    assert result.returncode == 2
    assert "devise-keras predict: error: image(s) not found" in result.stderr
    (tmp_path / "a.png").write_bytes(tu.image_bytes(0))
    result = run("predict", tmp_path / "a.png", "--model", tmp_path / "no-model")
    assert result.returncode == 2 and "model not found" in result.stderr
    result = run("predict", tmp_path / "a.png", "-k", "0")
    assert result.returncode == 2 and "expected a positive integer" in result.stderr
    # The library's command line has no pipeline commands.
    result = run("run", "--config", tmp_path / "missing.json")
    assert result.returncode == 2 and "invalid choice: 'run'" in result.stderr


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_damaged_bundle_exits_2_naming_the_file_before_tensorflow_loads(pushed, tmp_path, capsys):
    image = tmp_path / "a.png"
    image.write_bytes(tu.image_bytes(0))
    bundle = tmp_path / "assets.extra"
    shutil.copytree(pushed["model_keras"].parent, bundle)
    keras_file = bundle / "model.keras"
    data = keras_file.read_bytes()
    keras_file.write_bytes(data[: len(data) // 2])
    assert cli.main(["predict", str(image), "--model", str(bundle)]) == 2
    assert _error_line(capsys) == (
        f"devise-keras predict: error: {keras_file}: not a readable .keras archive "
        "(truncated or not a zip file: File is not a zip file)"
    )
    keras_file.write_bytes(data)
    (bundle / "config.json").write_text("{garbage")
    assert cli.main(["analogy", str(image), "man", "woman", "--model", str(bundle)]) == 2
    assert _error_line(capsys).startswith(
        f"devise-keras analogy: error: {bundle / 'config.json'}: not a valid model config ("
    )


def test_empty_words_images_and_folders_exit_2_with_one_line(pushed, tmp_path, capsys):
    image = tmp_path / "a.png"
    image.write_bytes(tu.image_bytes(0))
    model = str(pushed["serving_dir"])
    assert cli.main(["analogy", str(image), "", "woman", "--model", model]) == 2
    assert _error_line(capsys) == (
        "devise-keras analogy: error: MINUS is empty: give a word or phrase"
    )
    assert cli.main(["neighbors", " ", "--model", model]) == 2
    assert _error_line(capsys).endswith("WORD is empty: give a word or phrase")
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no image")
    assert cli.main(["search-images", "ship", "--images", str(empty), "--model", model]) == 2
    assert _error_line(capsys) == (
        f"devise-keras search-images: error: no images in {empty} (looked for "
        ".jpg/.jpeg/.png/.gif/.bmp files, recursively)"
    )
    result = run("predict", "--model", model)  # zero images: argparse's own line
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "devise-keras predict: error: the following arguments are required: IMAGE"
    )


def test_neighbors_from_a_vocabulary_file_needs_no_model(pushed, app):
    result = run("neighbors", "king", "--vocabulary", pushed["glove"], "-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)["neighbors"]
    expected = app.nearest_words("king", k=3)
    assert [n["word"] for n in got] == [w for w, _ in expected]
    assert [n["score"] for n in got] == pytest.approx([s for _, s in expected], abs=1e-5)
    unknown = run("neighbors", "zeppelin", "--vocabulary", pushed["glove"])
    assert unknown.returncode == 2 and "'zeppelin' is not in the vocabulary" in unknown.stderr


def test_predict_prints_the_apps_ranking_as_json_and_as_a_table(pushed, app, image_dir, capsys):
    images = sorted(image_dir.glob("*.png"))
    result = run("predict", *images, "--model", pushed["serving_dir"], "-k", "2", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout)
    expected = app.predict_labels(images, k=2)
    assert [item["image"] for item in got] == [str(p) for p in images]
    assert [item["labels"] for item in got] == [[w for w, _ in row] for row in expected]
    assert [item["scores"] for item in got] == [
        pytest.approx([s for _, s in row], abs=1e-5) for row in expected
    ]
    # The table, in-process (same code path, no second TensorFlow start-up).
    model = str(pushed["version_dir"])
    assert (
        cli.main(["predict", str(images[0]), "--model", model, "--open-vocabulary", "-k", "1"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    word, score = app.predict_labels(images[:1], k=1, over="vocabulary")[0][0]
    assert lines == [str(images[0]), f"   1. {score:+.4f}  {word}"]


def test_search_images_answers_a_phrase_and_caches_the_embeddings(pushed, app, image_dir, tmp_path):
    args = ("search-images", "red ship", "--images", image_dir, "--model", pushed["serving_dir"])
    result = run(*args, "--cache-dir", tmp_path / "cache", "-k", "2", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    got = [item["path"] for item in json.loads(result.stdout)["images"]]
    from devise_keras.image_search import ImageSearch

    search = ImageSearch(app, image_dir, cache_dir=tmp_path / "cache", progress=False).refresh()
    assert search.embedded_count == 0  # the command cached all of them
    assert got == [p for p, _ in search.search("red ship", k=2)]
    missing = run("search-images", "cat", "--images", tmp_path / "none")
    assert missing.returncode == 2 and "image folder not found" in missing.stderr


def test_analogy_command_matches_the_app(pushed, app, image_dir, capsys):
    image = image_dir / "0.png"
    code = cli.main(
        ["analogy", str(image), "man", "woman", "--model", str(pushed["serving_dir"]), "--json"]
    )
    assert code == 0
    got = json.loads(capsys.readouterr().out)["words"]
    assert [w["word"] for w in got] == [w for w, _ in app.analogy(image, "man", "woman")]
    code = cli.main(
        ["analogy", str(image), "man", "zeppelin", "--model", str(pushed["serving_dir"])]
    )
    assert code == 2
    assert "zeppelin" in capsys.readouterr().err


def test_predict_refuses_empty_truncated_and_non_image_files_with_exit_2(pushed, tmp_path, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(good)
    data = good.read_bytes()
    cases = {
        "empty.png": (b"", "empty file (0 bytes)"),
        "cut.png": (data[: len(data) // 2], "truncated or corrupt PNG data"),
        "notes.txt": (b"hello, world", "not an image"),
    }
    model = str(pushed["serving_dir"])
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert cli.main(["predict", str(path), "--model", model]) == 2
        err = capsys.readouterr().err
        assert f"{path}: {reason}" in err
        assert len(err.strip().splitlines()) == 1 and "function_node" not in err


def test_app_names_a_bad_image_without_tensorflow_internals(app):
    from devise_keras.apps import ImageDecodeError

    with pytest.raises(ImageDecodeError, match=r"^image 0: not an image \(no JPEG/PNG/GIF/BMP"):
        app.decode_images([b"hello, world"])


def test_the_default_demo_is_emoji():
    parser = cli.build_parser()
    assert parser.parse_args(["data"]).dataset == "emoji"
    assert parser.parse_args(["data"]).image_size == 128
    assert parser.parse_args(["data", "--dataset", "fashion-mnist"]).dataset == "fashion-mnist"


def test_predict_labels_text_ranks_the_given_labels_as_the_app_does(
    encoder_pushed, image_dir, capsys
):
    images = sorted(image_dir.glob("*.png"))
    model = str(encoder_pushed["serving_dir"])
    labels = ["red ship", "king", "tree car"]
    result = run("predict", *images, "--labels-text", *labels, "--model", model, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout)
    expected = load(model).predict_labels(images, k=5, labels=labels)
    assert [item["labels"] for item in got] == [[w for w, _ in row] for row in expected]
    assert [item["scores"] for item in got] == [
        pytest.approx([s for _, s in row], abs=1e-5) for row in expected
    ]
    # The table prints the same cosines.
    assert cli.main(["predict", str(images[0]), "--model", model, "--labels-text", "king"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        str(images[0]),
        f"   1. {dict(expected[0])['king']:+.4f}  king",
    ]


def test_predict_labels_text_without_an_encoder_or_with_an_empty_label_exits_2(
    pushed, encoder_pushed, image_dir, capsys
):
    image = str(image_dir / "0.png")
    code = cli.main(["predict", image, "--model", str(pushed["serving_dir"]), "--labels-text", "x"])
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "devise-keras predict: error: --labels-text needs a model with a text encoder" in err
    model = str(encoder_pushed["serving_dir"])
    assert cli.main(["predict", image, "--model", model, "--labels-text", "king", " "]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "devise-keras predict: error: --labels-text has an empty label: ' '"
    result = run("predict", image, "--labels-text", "a", "--open-vocabulary", "--model", model)
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


def test_search_images_takes_free_text_through_the_encoder(
    encoder_pushed, image_dir, tmp_path, capsys
):
    model = str(encoder_pushed["serving_dir"])
    query = "a red ship on a tree"  # "a" and "on" have no word vector
    code = cli.main(
        ["search-images", query, "--images", str(image_dir), "--model", model, "--json"]
        + ["--cache-dir", str(tmp_path / "cache"), "--no-progress", "-k", "2"]
    )
    assert code == 0
    got = json.loads(capsys.readouterr().out)["images"]
    app = load(model)
    paths = sorted(image_dir.glob("*.png"))
    embeddings = app.embed_images([str(p) for p in paths])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosines = embeddings @ tu.text_vector("red ship tree", encoder_pushed["vectors"])
    order = np.argsort(-cosines, kind="stable")[:2]
    assert [item["path"] for item in got] == [str(paths[i]) for i in order]
    assert [item["score"] for item in got] == pytest.approx(cosines[order].tolist(), abs=1e-5)


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    return tu.make_moved_open_vocabulary_model(tmp_path_factory.mktemp("cli_moved"))


def test_word_commands_answer_from_the_bundled_open_vocabulary_in_another_directory(
    moved, image_dir, tmp_path
):
    app = load(moved["version_dir"])  # test_apps checks its answers by hand
    model, image = moved["version_dir"], image_dir / "0.png"
    neighbors = run("neighbors", "red ship", "--model", model, "-k", "3", "--json", cwd=tmp_path)
    assert neighbors.returncode == 0, neighbors.stderr[-2000:]
    got = json.loads(neighbors.stdout)["neighbors"]
    expected = app.nearest_words("red ship", k=3)
    assert [n["word"] for n in got] == [w for w, _ in expected]
    assert {n["word"] for n in got} <= set(tu.OPEN_WORDS)
    predict = run(
        "predict", image, "--model", model, "--open-vocabulary", "-k", "2", "--json", cwd=tmp_path
    )
    assert predict.returncode == 0, predict.stderr[-2000:]
    expected = app.predict_labels(image, k=2, over="vocabulary")[0]
    assert json.loads(predict.stdout)[0]["labels"] == [w for w, _ in expected]
    analogy = run("analogy", image, "cat", "red ship", "--model", model, "--json", cwd=tmp_path)
    assert analogy.returncode == 0, analogy.stderr[-2000:]
    expected = app.analogy(image, "cat", "red ship")
    assert [w["word"] for w in json.loads(analogy.stdout)["words"]] == [w for w, _ in expected]


def test_word_commands_on_a_bundle_without_a_vocabulary_exit_2_naming_it(
    moved, image_dir, tmp_path, capsys
):
    bare = tmp_path / "bare"
    shutil.copytree(moved["version_dir"], bare)
    shutil.rmtree(bare / "assets.extra" / "open_vocabulary")
    assert cli.main(["neighbors", "king", "--model", str(bare)]) == 2
    assert "bundle has no open_vocabulary/" in capsys.readouterr().err
    assert cli.main(["predict", str(image_dir / "0.png"), "--model", str(bare), "-k", "1"]) == 0
