"""Builds a tiny pushed DeViSE model (TF Serving layout + app bundle) for the app tests.

`<root>/serving/1/` holds what the Pusher pushes: the SavedModel with the serving
signatures and `assets.extra/` (model.keras, config.json, label_embeddings/). The
backbone's hub directory is deleted afterwards, so every test proves the backbone is
bundled. The word vocabulary is a small GloVe-style text file; `with_vocabulary` bundles
all its words as `assets.extra/open_vocabulary/` (the apps never read the file the config
names). The config is written as the trainer writes it: the sections it reads, with the
paths of this machine (absolute, and relative ones under `data/`) that the bundle must
leave out of its config.json.
With `text_encoder=True` the label vectors come from a bag-of-words text encoder over
the same word vectors (the LabelEmbeddings metadata names it, as LabelEmbeddingGen
writes it), exported into the SavedModel and the bundle; its source folder is deleted
too, so the tests prove both are self-contained. `open_vocabulary=[words]` bundles those
words with their vectors as `assets.extra/open_vocabulary/`, as LabelEmbeddingGen's
`open_vocabulary` output reaches `write_app_bundle`.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from devise_keras import app_bundle, trainer_module
from devise_keras.config import DeviseConfig, ModelConfig
from devise_keras.export import export_serving_model
from devise_keras.hub_backbone import HubBackbone
from devise_keras.hub_export import export_hub_feature_vector
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.model import build_devise_model, build_small_cnn, compile_devise_model
from tests.text_encoder_testutil import write_bag_of_words_encoder

SIZE = 8
DIM = 5
SEEN = ["cat", "dog", "eel", "fox"]
UNSEEN = ["owl", "yak"]
# The vocabulary: every class plus words that are not classes.
EXTRA_WORDS = ["king", "queen", "man", "woman", "tree", "car", "red", "ship"]
VOCABULARY = SEEN + UNSEEN + EXTRA_WORDS
TOP_K = 3
# A bundled open vocabulary without "cat": a class whose vector then comes from the encoder.
OPEN_WORDS = [*EXTRA_WORDS, "owl"]
# Relative config paths, as a user's config names files under the directory they run in.
RELATIVE_ALIASES = "data/aliases.json"
RELATIVE_LABEL_TEXTS = "data/label_texts.csv"


def word_vectors() -> np.ndarray:
    """(len(VOCABULARY), DIM) float32, fixed: row i belongs to VOCABULARY[i]."""
    return np.random.default_rng(7).normal(size=(len(VOCABULARY), DIM)).astype(np.float32)


def encode(pixels: np.ndarray, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def image_bytes(seed: int, image_format: str = "PNG", size: int = SIZE) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encode(pixels, image_format)


def write_glove_text(path: Path, words=VOCABULARY, vectors=None) -> Path:
    vectors = word_vectors() if vectors is None else vectors
    lines = [
        f"{w} " + " ".join(f"{v:.6f}" for v in row) for w, row in zip(words, vectors, strict=False)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def text_vector(text: str, vectors: np.ndarray) -> np.ndarray:
    """The bag-of-words encoder's unit vector of `text` (mean of its words' rows), by hand."""
    rows = [VOCABULARY.index(word) for word in text.lower().split()]
    mean = np.asarray(vectors, np.float64)[rows].mean(axis=0)
    return mean / np.linalg.norm(mean)


def make_pushed_model(
    root: Path,
    *,
    with_vocabulary: bool = True,
    text_encoder: bool = False,
    open_vocabulary: list[str] | None = None,
) -> dict:
    """Trains nothing, builds the real artifacts: returns their paths and the Keras model.

    As `trainer_module.run_fn` does, the export gets every class (seen + unseen) for
    "zero_shot" and, with `text_encoder`, the label vectors' encoder.
    """
    root = Path(root)
    keras.utils.set_random_seed(0)
    cnn = build_small_cnn(SIZE, filters=(4,), feature_dim=8)
    hub_dir = export_hub_feature_vector(cnn, str(root / "hub"), SIZE)
    vectors = word_vectors()
    # Parsed back from text, as any reader would see them.
    glove = write_glove_text(root / "glove.txt")
    vectors = np.array(
        [[float(x) for x in line.split()[1:]] for line in glove.read_text().splitlines()],
        np.float32,
    )
    classes = SEEN + UNSEEN
    metadata = {}
    encoder_dir = root / "text_encoder_source"
    if text_encoder:
        write_bag_of_words_encoder(
            str(encoder_dir), {w: v.tolist() for w, v in zip(VOCABULARY, vectors, strict=True)}
        )
        metadata = {"kind": "text_encoder", "text_encoder": str(encoder_dir)}
    embeddings = LabelEmbeddings(
        classes, vectors[: len(classes)], source=str(glove), metadata=metadata
    )
    seen = embeddings.subset(SEEN)
    model = compile_devise_model(
        build_devise_model(HubBackbone(hub_dir), seen.vectors, image_size=SIZE),
        DeviseConfig(model=ModelConfig(image_size=SIZE)),
    )
    if with_vocabulary and open_vocabulary is None:
        open_vocabulary = VOCABULARY
    embeddings_config = {"vectors_path": str(glove), "aliases_path": RELATIVE_ALIASES}
    if text_encoder:
        embeddings_config = {
            "text_encoder": str(encoder_dir),
            "label_texts": RELATIVE_LABEL_TEXTS,
            "vocab_path": str(glove),
            "open_vocabulary_size": len(open_vocabulary or []),
        }
    config = DeviseConfig.from_dict(
        {
            "pipeline_name": "tiny",
            "embeddings": embeddings_config,
            "model": {
                "backbone": str(hub_dir),
                "image_size": SIZE,
                "cnn_filters": [4],
                "feature_dim": 8,
                "top_k": TOP_K,
            },
        }
    )
    # What the DeviseTrainer gets as custom_config["config"] (pipeline.DEVISE_CONFIG_SECTIONS).
    trainer_config = config.sections("embeddings", "model", "train", "eval.k_values", "serving")
    version_dir = root / "serving" / "1"
    encoder = trainer_module.label_text_encoder(embeddings)
    words = None
    if open_vocabulary is not None:
        rows = [VOCABULARY.index(word) for word in open_vocabulary]
        meta = {"kind": "open_vocabulary", "requested": len(open_vocabulary)}
        words = LabelEmbeddings(open_vocabulary, vectors[rows], source=str(glove), metadata=meta)
    export_serving_model(
        model,
        SEEN,
        str(version_dir),
        image_size=SIZE,
        top_k=TOP_K,
        all_labels=embeddings.labels,
        all_label_vectors=embeddings.vectors,
        text_encoder=encoder,
    )
    app_bundle.write_app_bundle(
        str(version_dir),
        model,
        trainer_config,
        embeddings,
        text_encoder=encoder,
        open_vocabulary=words,
    )
    shutil.rmtree(hub_dir)
    if text_encoder:
        shutil.rmtree(encoder_dir)
    return {
        "root": root,
        "serving_dir": root / "serving",
        "version_dir": version_dir,
        "model_keras": version_dir / app_bundle.APP_DIRNAME / app_bundle.MODEL_KERAS_FILENAME,
        "hub_dir": Path(hub_dir),
        "encoder_dir": encoder_dir,
        "glove": glove,
        "vectors": vectors,
        "embeddings": embeddings,
        "model": model,
    }


def make_moved_open_vocabulary_model(root: Path) -> dict:
    """A text-encoder model with `OPEN_WORDS` bundled, copied to
    `<root>/copied/model`; the folder it was built in (word vectors, encoder) is deleted,
    so only the copied bundle can answer. `version_dir` is the copy, `open_vectors` the
    rows of `OPEN_WORDS`."""
    root = Path(root)
    (root / "built").mkdir(parents=True, exist_ok=True)
    built = make_pushed_model(
        root / "built", with_vocabulary=False, text_encoder=True, open_vocabulary=OPEN_WORDS
    )
    copy = root / "copied" / "model"
    shutil.copytree(built["version_dir"], copy)
    shutil.rmtree(built["root"])
    rows = [VOCABULARY.index(w) for w in OPEN_WORDS]
    return {**built, "version_dir": copy, "open_vectors": built["vectors"][rows]}
