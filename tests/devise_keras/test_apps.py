"""devise_keras.load / DeviseApp on a tiny pushed model built here (backbone dir deleted)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import devise_keras
from devise_keras import app_bundle, apps, features
from devise_keras.app_bundle import find_app_bundle, portable_config, write_app_bundle
from devise_keras.apps import (
    BundleError,
    DeviseApp,
    NoTextEncoderError,
    VocabularyError,
    check_app_bundle,
    load,
    load_vocabulary,
)
from devise_keras.config import DeviseConfig
from devise_keras.hub_backbone import HubBackbone
from devise_keras.label_embeddings import LabelEmbeddings
from tests.devise_keras import devise_app_testutil as tu


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    return tu.make_pushed_model(tmp_path_factory.mktemp("apps"))


@pytest.fixture(scope="module")
def app(pushed):
    return load(pushed["serving_dir"])


@pytest.fixture(scope="module")
def encoder_pushed(tmp_path_factory):
    return tu.make_pushed_model(tmp_path_factory.mktemp("apps_encoder"), text_encoder=True)


@pytest.fixture(scope="module")
def encoder_app(encoder_pushed):
    return load(encoder_pushed["serving_dir"])


@pytest.fixture(scope="module")
def images():
    return [tu.image_bytes(seed) for seed in range(4)]


def _unit_rows(matrix):
    matrix = np.asarray(matrix, np.float64)
    return matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)


def _embeddings(pushed, images):
    decoded = features.decode_images(tf.constant(images), tu.SIZE)
    return pushed["model"].predict(decoded, verbose=0)["embedding"]


def _ranked(query, words, vectors, k, exclude=()):
    cosines = _unit_rows(vectors) @ _unit_rows(query)
    order = [i for i in np.argsort(-cosines, kind="stable") if words[i] not in exclude][:k]
    return [words[i] for i in order], cosines[order]


def test_keras_load_model_works_in_a_fresh_process_elsewhere_after_import_devise_keras(
    pushed, images, tmp_path
):
    expected = pushed["model"].predict(
        features.decode_images(tf.constant(images), tu.SIZE), verbose=0
    )
    script = textwrap.dedent(
        f"""
        import json, sys
        import devise_keras
        assert "tensorflow" not in sys.modules, "import devise_keras must stay light"
        import keras, numpy as np, tensorflow as tf
        from devise_keras import features
        model = keras.models.load_model({str(pushed["model_keras"])!r})
        images = features.decode_images(tf.constant({images!r}), {tu.SIZE})
        out = model.predict(images, verbose=0)
        print(json.dumps({{k: np.asarray(v).tolist() for k, v in out.items()}}))
        """
    )
    other = tmp_path / "elsewhere"
    other.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=other,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(got["scores"], expected["scores"], atol=1e-6)
    np.testing.assert_allclose(got["embedding"], expected["embedding"], atol=1e-6)


def test_keras_registration_names_resolve_to_the_project_classes():
    assert keras.saving.get_registered_object("devise_keras>HubBackbone") is HubBackbone
    for name in ("LabelSimilarity", "HingeRankLoss", "HitAtK", "L2EmbeddingLoss"):
        assert keras.saving.get_registered_object(f"devise_keras>{name}") is not None


def test_every_model_path_form_finds_the_same_bundle(pushed, tmp_path):
    version, keras_file = pushed["version_dir"], pushed["model_keras"]
    for path in (pushed["serving_dir"], version, version / "assets.extra", keras_file):
        assert find_app_bundle(path) == str(keras_file)
    artifact = tmp_path / "artifact"
    shutil.copytree(version, artifact / "Format-Serving")
    assert find_app_bundle(artifact) == str(artifact / "Format-Serving/assets.extra/model.keras")


def test_the_newest_numeric_version_is_chosen_like_tf_serving(tmp_path):
    for version in ("2", "10", "9", "11"):
        (tmp_path / version / "assets.extra").mkdir(parents=True)
        (tmp_path / version / "assets.extra" / "model.keras").write_bytes(b"x")
        if version != "11":  # 11 is still being copied: no saved_model.pb yet
            (tmp_path / version / "saved_model.pb").write_bytes(b"x")
    (tmp_path / "tmp-upload").mkdir()
    (tmp_path / ".push-12-host-1").mkdir()  # a hidden in-progress push
    assert find_app_bundle(tmp_path) == str(tmp_path / "10/assets.extra/model.keras")


def test_missing_models_fail_with_errors_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="model not found: .*nowhere"):
        find_app_bundle(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no DeViSE model in"):
        find_app_bundle(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="SavedModel without an app bundle"):
        find_app_bundle(tmp_path)
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="not a .keras model archive"):
        find_app_bundle(tmp_path / "weights.h5")


def _copied_bundle(pushed, tmp_path):
    bundle = tmp_path / "assets.extra"
    shutil.copytree(pushed["model_keras"].parent, bundle)
    return bundle


def test_a_truncated_or_foreign_model_keras_is_a_bundle_error_naming_it(pushed, tmp_path):
    bundle = _copied_bundle(pushed, tmp_path)
    keras_file = bundle / "model.keras"
    data = keras_file.read_bytes()
    keras_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=f"^{keras_file}: not a readable .keras archive"):
        load(bundle)
    keras_file.write_text("hello")
    with pytest.raises(BundleError, match=f"^{keras_file}: not a readable .keras archive"):
        check_app_bundle(keras_file)


def test_a_garbage_bundle_config_is_a_bundle_error_naming_the_file(pushed, tmp_path):
    bundle = _copied_bundle(pushed, tmp_path)
    (bundle / "config.json").write_text('{"model": {"image_size" 8}}')
    with pytest.raises(BundleError, match=f"^{bundle / 'config.json'}: not a valid model config"):
        load(bundle)
    (bundle / "config.json").write_text('{"model": {"image_size": "big"}}')
    with pytest.raises(BundleError, match="config.json: not a valid model config.*image_size"):
        check_app_bundle(bundle)


def test_empty_batches_and_empty_words_are_clear_errors(app, images):
    with pytest.raises(ValueError, match="no images given"):
        app.predict_labels([])
    with pytest.raises(ValueError, match=r"no images given \(an empty batch of shape"):
        app.embed_images(np.zeros((0, tu.SIZE, tu.SIZE, 3), np.uint8))
    with pytest.raises(ValueError, match="analogy: word_b must be a word or phrase, got ''"):
        app.analogy(images[0], "", "woman")


def test_load_reads_config_labels_and_the_bundled_vocabulary(app, pushed):
    assert isinstance(app, DeviseApp)
    assert isinstance(devise_keras.load(pushed["version_dir"]), DeviseApp)
    assert app.image_size == tu.SIZE and app.dim == tu.DIM
    assert app.config.model.top_k == tu.TOP_K
    assert app.labels.labels == tu.SEEN + tu.UNSEEN
    assert app.seen_labels == tu.SEEN
    assert app.vocabulary.labels.tolist() == tu.VOCABULARY  # assets.extra/open_vocabulary/
    np.testing.assert_allclose(app.vocabulary.vectors, _unit_rows(pushed["vectors"]), atol=1e-6)
    assert app.fingerprint == apps.file_fingerprint(pushed["model_keras"])


def test_paths_bytes_uint8_and_float_arrays_embed_identically(app, images, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(images[0])
    pixels = tf.io.decode_png(images[0]).numpy()
    from_bytes = app.embed_images(images[0])
    for same in (str(path), path, pixels, pixels.astype(np.float32) / 255.0, pixels[None]):
        np.testing.assert_allclose(app.embed_images(same), from_bytes, atol=1e-6)
    assert app.embed_images(images).shape == (len(images), tu.DIM)


def test_predict_labels_over_seen_matches_the_serving_signature(app, pushed, images):
    served = tf.saved_model.load(str(pushed["version_dir"])).signatures["predict"]
    top = served(image_bytes=tf.constant(images))["top_k_labels"].numpy()
    got = app.predict_labels(images, k=tu.TOP_K, over="seen")
    assert [[w for w, _ in row] for row in got] == [[x.decode() for x in r] for r in top]


def test_predict_labels_ranks_all_classes_and_the_whole_vocabulary_by_cosine(app, pushed, images):
    embeddings = _embeddings(pushed, images)
    for over, words, vectors in (
        ("labels", tu.SEEN + tu.UNSEEN, pushed["embeddings"].vectors),
        ("vocabulary", tu.VOCABULARY, pushed["vectors"]),
    ):
        got = app.predict_labels(images, k=4, over=over)
        for row, embedding in zip(got, embeddings, strict=True):
            labels, cosines = _ranked(embedding, words, vectors, 4)
            assert [w for w, _ in row] == labels
            np.testing.assert_allclose([s for _, s in row], cosines, atol=1e-5)


def test_k_is_capped_at_the_label_count_like_the_serving_signature(app, images):
    ranked = app.predict_labels(images[:1], k=50)[0]
    assert sorted(w for w, _ in ranked) == sorted(tu.SEEN + tu.UNSEEN)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        app.predict_labels(images[:1], k=0)


def test_nearest_words_leave_out_the_query_word(app, pushed):
    got = app.nearest_words("king", k=3)
    vectors = pushed["vectors"]
    labels, cosines = _ranked(
        vectors[tu.VOCABULARY.index("king")], tu.VOCABULARY, vectors, 3, exclude={"king"}
    )
    assert [w for w, _ in got] == labels
    np.testing.assert_allclose([s for _, s in got], cosines, atol=1e-5)
    by_vector = app.nearest_words(vectors[tu.VOCABULARY.index("king")], k=1)
    assert by_vector[0][0] == "king" and by_vector[0][1] == pytest.approx(1.0, abs=1e-5)


def test_analogy_is_the_unit_image_minus_b_plus_c(app, pushed, images):
    vectors = _unit_rows(pushed["vectors"])
    image = _unit_rows(_embeddings(pushed, images[:1])[0])
    query = image - vectors[tu.VOCABULARY.index("man")] + vectors[tu.VOCABULARY.index("woman")]
    labels, cosines = _ranked(query, tu.VOCABULARY, vectors, 3, exclude={"man", "woman"})
    got = app.analogy(images[0], "man", "woman", k=3)
    assert [w for w, _ in got] == labels
    np.testing.assert_allclose([s for _, s in got], cosines, atol=1e-5)


def test_word_vectors_of_words_cases_and_phrases(app, pushed):
    vectors = _unit_rows(pushed["vectors"])
    king = vectors[tu.VOCABULARY.index("king")]
    np.testing.assert_allclose(app.word_vector("king"), king, atol=1e-6)
    np.testing.assert_allclose(app.word_vector("KING"), king, atol=1e-6)
    # A phrase is the unit mean of its words' unit vectors.
    mean = vectors[tu.VOCABULARY.index("red")] + vectors[tu.VOCABULARY.index("ship")]
    np.testing.assert_allclose(app.word_vector("red ship"), _unit_rows(mean), atol=1e-6)
    with pytest.raises(VocabularyError, match=r"\['zeppelin'\]"):
        app.word_vector("red zeppelin")


def test_a_missing_vocabulary_is_a_clear_error_and_labels_still_work(pushed, tmp_path, images):
    copy = tmp_path / "model"
    shutil.copytree(pushed["version_dir"], copy)
    shutil.rmtree(copy / "assets.extra/open_vocabulary")
    # Even an existing word-vector file named by the config is not read: only the bundle is.
    config = json.loads((copy / "assets.extra/config.json").read_text())
    config["embeddings"]["vectors_path"] = str(pushed["glove"])
    (copy / "assets.extra/config.json").write_text(json.dumps(config))
    bare = load(copy)
    assert bare.vocabulary is None
    with pytest.raises(VocabularyError, match=r"bundle has no open_vocabulary/ .*--vocabulary"):
        bare.predict_labels(images[:1], over="vocabulary")
    given = load(copy, vocabulary=pushed["glove"])  # an explicit vocabulary answers
    king = pushed["vectors"][tu.VOCABULARY.index("king")]
    nearest, _ = _ranked(king, tu.VOCABULARY, pushed["vectors"], 2, exclude={"king"})
    assert [w for w, _ in given.nearest_words("king", k=2)] == nearest
    assert len(bare.predict_labels(images[:1], k=2)[0]) == 2  # the classes need no vocabulary
    # Without a vocabulary, words come from the class labels.
    assert bare.nearest_words("cat", k=1, over="labels")[0][0] in tu.SEEN + tu.UNSEEN


def test_vocabulary_from_npy_and_label_embeddings_folder_equals_the_text_file(pushed, tmp_path):
    text = load_vocabulary(pushed["glove"])
    np.save(tmp_path / "vectors.npy", pushed["vectors"])
    (tmp_path / "vocab.txt").write_text("".join(w + "\n" for w in tu.VOCABULARY))
    npy = load_vocabulary(tmp_path / "vectors.npy")  # vocab.txt beside it
    LabelEmbeddings(tu.VOCABULARY, pushed["vectors"]).save(tmp_path / "emb")
    folder = load_vocabulary(tmp_path / "emb")
    for other in (npy, folder):
        assert other.labels.tolist() == text.labels.tolist()
        np.testing.assert_allclose(other.vectors, text.vectors, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="vocabulary not found"):
        load_vocabulary(tmp_path / "none.txt")


def test_a_vocabulary_of_another_dimension_is_refused(pushed, tmp_path):
    path = tu.write_glove_text(tmp_path / "g3.txt", ["a", "b"], np.eye(2, 3, dtype=np.float32))
    with pytest.raises(ValueError, match="vocabulary has dim 3 but the model embeds to 5"):
        load(pushed["serving_dir"], vocabulary=path)


def test_bad_images_raise_errors_naming_them(app, tmp_path):
    with pytest.raises(FileNotFoundError, match="image not found: .*nope.png"):
        app.embed_images([str(tmp_path / "nope.png")])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"bad.png: not an image \(no JPEG/PNG/GIF/BMP header\)"):
        app.embed_images([bad])
    with pytest.raises(ValueError, match=r"must be \(H, W, 3\)"):
        app.embed_images(np.zeros((2, 8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match="over must be one of"):
        app.predict_labels([bad], over="everything")


def test_the_bundle_carries_the_text_encoder_and_the_app_loads_it(encoder_app, encoder_pushed, app):
    bundle = encoder_pushed["version_dir"] / "assets.extra" / "text_encoder"
    assert (bundle / "saved_model.pb").is_file()  # the source folder is gone: a copy
    assert os.path.samefile(encoder_app.text_encoder.path, bundle)
    assert encoder_app.text_encoder.dim == tu.DIM
    assert app.text_encoder is None  # word-vector labels: no encoder


def test_embed_texts_are_the_encoders_unit_vectors(encoder_app, encoder_pushed):
    texts = ["red ship", "King", "tree car woman"]
    expected = [tu.text_vector(t, encoder_pushed["vectors"]) for t in texts]
    np.testing.assert_allclose(encoder_app.embed_texts(texts), expected, atol=1e-6)


def test_predict_labels_ranks_request_time_labels_by_cosine(encoder_app, encoder_pushed, images):
    labels = ["red ship", "king", "tree car", "woman", "owl"]  # no trained class among them
    vectors = np.stack([tu.text_vector(t, encoder_pushed["vectors"]) for t in labels])
    got = encoder_app.predict_labels(images, k=3, labels=labels)
    for row, embedding in zip(got, _embeddings(encoder_pushed, images), strict=True):
        expected, cosines = _ranked(embedding, labels, vectors, 3)
        assert [w for w, _ in row] == expected
        np.testing.assert_allclose([s for _, s in row], cosines, atol=1e-5)
    # The same scores as the "rank_labels" serving signature.
    served = tf.saved_model.load(str(encoder_pushed["version_dir"])).signatures["rank_labels"]
    scores = served(image_bytes=tf.constant(images), labels=tf.constant(labels))["top_k_scores"]
    np.testing.assert_allclose([[s for _, s in row] for row in got], scores, atol=1e-5)


def test_request_time_labels_refuse_bad_input_with_clear_errors(encoder_app, app, images):
    with pytest.raises(NoTextEncoderError, match="this model has no text encoder"):
        app.predict_labels(images[:1], labels=["red ship"])
    with pytest.raises(ValueError, match="no texts given"):
        encoder_app.predict_labels(images[:1], labels=[])
    with pytest.raises(ValueError, match=r"non-empty strings; got \[' '\] at index \[1\]"):
        encoder_app.predict_labels(images[:1], labels=["king", " "])
    with pytest.raises(ValueError, match="give labels= or over='seen', not both"):
        encoder_app.predict_labels(images[:1], over="seen", labels=["king"])


# -- a bundled open vocabulary, with a text encoder, copied away and used elsewhere --------
OPEN_WORDS = tu.OPEN_WORDS


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    return tu.make_moved_open_vocabulary_model(tmp_path_factory.mktemp("moved"))


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_copied_bundle_brings_its_open_vocabulary_to_another_directory(moved, elsewhere, images):
    bundled = moved["version_dir"] / "assets.extra" / "open_vocabulary"
    assert json.loads((bundled / "metadata.json").read_text())["num_labels"] == 9
    app = load(moved["version_dir"])
    assert app.config.embeddings.text_encoder == ""  # provenance only
    assert app.vocabulary.labels.tolist() == OPEN_WORDS
    got = app.predict_labels(images, k=3, over="vocabulary")
    for row, embedding in zip(got, _embeddings(moved, images), strict=True):
        labels, cosines = _ranked(embedding, OPEN_WORDS, moved["open_vectors"], 3)
        assert [w for w, _ in row] == labels
        np.testing.assert_allclose([s for _, s in row], cosines, atol=1e-5)


def test_words_go_through_the_text_encoder_and_rank_over_the_open_vocabulary(moved, elsewhere):
    app = load(moved["version_dir"])
    vectors = moved["vectors"]
    # "cat" is not in the open vocabulary, "red ship tree" in no vocabulary: both encoded.
    np.testing.assert_allclose(app.word_vector("cat"), tu.text_vector("cat", vectors), atol=1e-6)
    for word in ("king", "red ship tree"):
        got = app.nearest_words(word, k=3)
        query = tu.text_vector(word, vectors)
        labels, cosines = _ranked(query, OPEN_WORDS, moved["open_vectors"], 3, exclude={word})
        assert [w for w, _ in got] == labels
        np.testing.assert_allclose([s for _, s in got], cosines, atol=1e-5)
    assert "king" not in [w for w, _ in app.nearest_words("king", k=8)]
    assert app.nearest_words(vectors[tu.VOCABULARY.index("queen")], k=1)[0] == (
        "queen",
        pytest.approx(1.0, abs=1e-5),
    )
    # Over the classes: every class name is a word of the encoder.
    classes = tu.SEEN + tu.UNSEEN
    got = app.nearest_words("red ship", k=2, over="labels")
    labels, _ = _ranked(tu.text_vector("red ship", vectors), classes, vectors[:6], 2)
    assert [w for w, _ in got] == labels


def test_analogy_encodes_its_words_and_ranks_the_open_vocabulary(moved, elsewhere, images):
    app = load(moved["version_dir"])
    image = _unit_rows(_embeddings(moved, images[:1])[0])
    query = (
        image
        - tu.text_vector("cat", moved["vectors"])
        + tu.text_vector("red ship", moved["vectors"])
    )
    labels, cosines = _ranked(
        query, OPEN_WORDS, moved["open_vectors"], 3, exclude={"cat", "red ship"}
    )
    got = app.analogy(images[0], "cat", "red ship", k=3)
    assert [w for w, _ in got] == labels
    np.testing.assert_allclose([s for _, s in got], cosines, atol=1e-5)


def test_a_bundle_without_a_vocabulary_predicts_and_names_what_the_words_lack(
    moved, elsewhere, images
):
    bare = elsewhere / "bare"
    shutil.copytree(moved["version_dir"], bare)
    shutil.rmtree(bare / "assets.extra" / "open_vocabulary")
    app = load(bare)
    assert app.vocabulary is None
    assert len(app.predict_labels(images[:1], k=2)[0]) == 2
    assert app.nearest_words("red ship", k=1, over="labels")[0][0] in tu.SEEN + tu.UNSEEN
    with pytest.raises(
        VocabularyError,
        match=r"bundle has no open_vocabulary/ \(train with embeddings.open_vocabulary_size > 0 "
        r"to bundle one, or give a vocabulary: vocabulary= / --vocabulary\)",
    ):
        app.nearest_words("king")
    with pytest.raises(VocabularyError, match="no word vocabulary is loaded"):
        app.analogy(images[0], "man", "woman")


def test_an_open_vocabulary_of_another_dimension_is_refused_before_writing(moved, tmp_path):
    words = LabelEmbeddings(["a", "b"], np.eye(2, 3))
    with pytest.raises(ValueError, match="open vocabulary has dim 3 but the label vectors 5"):
        write_app_bundle(
            str(tmp_path), moved["model"], {}, moved["embeddings"], open_vocabulary=words
        )
    assert not (tmp_path / "assets.extra").exists()


# -- config.json names no path of the training machine --------------------------------------
def _config_without_provenance(version_dir):
    written = json.loads((version_dir / "assets.extra" / "config.json").read_text())
    provenance = written.pop("provenance")
    return json.dumps(written), provenance


def test_the_trainers_bundle_config_names_no_path_of_the_training_machine(pushed):
    text, provenance = _config_without_provenance(pushed["version_dir"])
    assert str(pushed["root"]) not in text and "/tmp" not in text
    assert tu.RELATIVE_ALIASES not in text and '"data/' not in text
    # What the fields held is kept, absolute, for people only.
    recorded = provenance["config"]
    assert set(recorded) == {
        "embeddings.vectors_path",
        "embeddings.aliases_path",
        "model.backbone",
    }
    assert recorded["embeddings.vectors_path"] == str(pushed["glove"])
    assert recorded["model.backbone"] == str(pushed["hub_dir"])
    aliases = recorded["embeddings.aliases_path"]
    assert os.path.isabs(aliases) and aliases.endswith("/" + tu.RELATIVE_ALIASES)
    assert "never reads" in provenance["note"]
    # The written config reads back (provenance ignored), with the paths blank.
    config = DeviseConfig.load(pushed["version_dir"] / "assets.extra" / "config.json")
    assert (config.embeddings.vectors_path, config.model.backbone) == ("", "")
    assert config.model.top_k == tu.TOP_K


def test_a_text_encoder_bundle_moved_away_keeps_only_provenance_of_its_inputs(moved):
    text, provenance = _config_without_provenance(moved["version_dir"])
    built = str(moved["root"])  # the folder it was built in, deleted since
    assert built not in text and tu.RELATIVE_LABEL_TEXTS not in text
    recorded = provenance["config"]
    assert recorded["embeddings.text_encoder"] == str(moved["encoder_dir"])
    assert recorded["embeddings.vocab_path"] == str(moved["glove"])
    assert recorded["embeddings.label_texts"].endswith("/" + tu.RELATIVE_LABEL_TEXTS)
    assert json.loads(text)["embeddings"]["open_vocabulary_size"] == len(OPEN_WORDS)


def test_portable_config_blanks_every_path_field_and_keeps_the_config_valid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = {
        "data": {"manifest": "data/m.csv", "eval_style": "twitter", "split_seed": 3},
        "embeddings": {
            "train_from_corpus": {"corpus_paths": ["corpus/*.txt", "gs://b/c.txt"], "dim": 8},
            "aliases_path": "~/aliases.json",
        },
        "model": {"backbone": "https://tfhub.dev/x/1", "image_size": 8},
        "provenance": {"stale": True},
    }
    out = portable_config(config)
    assert out["data"] == {"manifest": "", "eval_style": "", "split_seed": 3}
    assert out["embeddings"] == {"train_from_corpus": None, "aliases_path": ""}
    assert out["model"] == {"backbone": "", "image_size": 8}
    assert out["provenance"]["config"] == {
        "data.manifest": str(tmp_path / "data/m.csv"),
        "data.eval_style": "twitter",
        "embeddings.aliases_path": os.path.expanduser("~/aliases.json"),
        "embeddings.train_from_corpus": {
            "corpus_paths": [str(tmp_path / "corpus/*.txt"), "gs://b/c.txt"],
            "dim": 8,
        },
        "model.backbone": "https://tfhub.dev/x/1",
    }
    assert config["model"]["backbone"] == "https://tfhub.dev/x/1"  # the input is not changed
    assert DeviseConfig.from_dict(out).data.split_seed == 3
    assert "provenance" not in portable_config({"model": {"image_size": 8}})


def test_the_bundle_layout_names_are_assigned_only_in_app_bundle():
    import ast
    from pathlib import Path

    names = {n for n in dir(app_bundle) if n.endswith(("_DIRNAME", "_FILENAME"))}
    assert {"APP_DIRNAME", "OPEN_VOCABULARY_DIRNAME", "FORMAT_SERVING_DIRNAME"} <= names
    root = Path(devise_keras.__file__).parent
    copies = [
        f"{path.relative_to(root)}:{node.lineno} {target.id}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "app_bundle.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id in names
    ]
    assert copies == []
    assert apps.find_app_bundle is app_bundle.find_app_bundle
