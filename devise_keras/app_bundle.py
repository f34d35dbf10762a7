"""The app bundle: what a trained DeViSE model carries for applications, and where.

The DeviseTrainer writes it inside the exported SavedModel (`<model>/assets.extra/`):
TF Serving ignores `assets.extra/` and the Pusher copies it along, so every pushed
version `<serving>/<version>/` is also a complete bundle for `devise_keras.load`:

    assets.extra/
        model.keras          the trained Keras model (backbone included)
        config.json          the config it was trained with, without machine paths
        label_embeddings/    every class (seen + unseen) with its unit vector
        text_encoder/        the label vectors' text encoder, when they have one
        open_vocabulary/     the apps' default word vocabulary, when bundled

This module is the one home of that layout (the trainer writes it, the apps, the
CLI and the ZeroShotEvaluator read it). Finding a bundle imports no TensorFlow.

config.json travels to other machines, so it names no file of the training machine:
every path-valued field (`config.PATH_FIELDS`) is blanked, and what it held is kept,
made absolute, under a top-level "provenance" object that only people read
(`DeviseConfig.from_dict` ignores it; the apps use only the bundled files or a
vocabulary their caller gives).
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from devise_keras import storage
from devise_keras.config import PATH_FIELDS, PROVENANCE_KEY, DeviseConfig

# Inside a SavedModel folder (a pushed version, a Model artifact's Format-Serving/).
APP_DIRNAME = "assets.extra"
MODEL_KERAS_FILENAME = "model.keras"
CONFIG_FILENAME = "config.json"
LABEL_EMBEDDINGS_DIRNAME = "label_embeddings"  # every class, seen and unseen
TEXT_ENCODER_DIRNAME = "text_encoder"  # the label vectors' text encoder, when they have one
OPEN_VOCABULARY_DIRNAME = "open_vocabulary"  # the apps' default word vocabulary, when bundled
SAVED_MODEL_FILENAME = "saved_model.pb"  # written last by a push: a version without it is partial
# Beside it, in a TFX Model artifact URI.
FORMAT_SERVING_DIRNAME = "Format-Serving"  # TFX's SavedModel folder
SOFTMAX_DIRNAME = "softmax"  # the backbone trainer's classifier (the softmax baseline)
METRICS_FILENAME = "metrics.json"

PROVENANCE_NOTE = (
    "Where the training inputs were on the machine that trained this model, for "
    "provenance only: devise-keras never reads these paths."
)


def find_app_bundle(path: str | os.PathLike) -> str:
    """The `model.keras` file for a pushed model path; raises FileNotFoundError naming why.

    Accepts a `.keras` file, an app-bundle folder (`assets.extra/`), a pushed version
    folder or a TFX Model artifact (`<uri>/Format-Serving/`), or the Pusher's base
    folder (its newest complete numeric version is used, as TF Serving does; hidden
    in-progress push folders and versions without saved_model.pb are skipped), on any
    filesystem TensorFlow knows (local, `gs://`, ...).

    Args:
        path: any of the forms above.

    Example:
        >>> find_app_bundle("runs/demo/serving")  # doctest: +SKIP
        'runs/demo/serving/3/assets.extra/model.keras'
    """
    p = os.fspath(path)
    p = os.path.expanduser(p) if storage.is_local(p) else p.rstrip("/")
    if not storage.exists(p):
        raise FileNotFoundError(
            f"model not found: {path} (give a pushed model folder <serving>/<version>, the "
            "Pusher's serving folder, or a model.keras file)"
        )
    if not storage.isdir(p):
        if not p.endswith(".keras"):
            raise FileNotFoundError(f"{path} is a file but not a .keras model archive")
        return p
    for candidate in (
        os.path.join(p, MODEL_KERAS_FILENAME),
        os.path.join(p, APP_DIRNAME, MODEL_KERAS_FILENAME),
        os.path.join(p, FORMAT_SERVING_DIRNAME, APP_DIRNAME, MODEL_KERAS_FILENAME),
    ):
        if storage.isfile(candidate):
            return candidate
    # Only complete versions: a push writes saved_model.pb last (or renames the whole
    # folder into place), so a version without it is still being copied, or was killed.
    versions = sorted(
        (int(name), os.path.join(p, name, APP_DIRNAME, MODEL_KERAS_FILENAME))
        for name in storage.listdir(p)
        if name.isdigit()
        and storage.isfile(os.path.join(p, name, APP_DIRNAME, MODEL_KERAS_FILENAME))
        and storage.isfile(os.path.join(p, name, SAVED_MODEL_FILENAME))
    )
    if versions:
        return versions[-1][1]
    if storage.isfile(os.path.join(p, SAVED_MODEL_FILENAME)):
        raise FileNotFoundError(
            f"{path} is a SavedModel without an app bundle ({APP_DIRNAME}/{MODEL_KERAS_FILENAME}); "
            "serve it with TF Serving, or re-export it with app_bundle.write_app_bundle"
        )
    raise FileNotFoundError(
        f"no DeViSE model in {path}: expected {MODEL_KERAS_FILENAME}, "
        f"{APP_DIRNAME}/{MODEL_KERAS_FILENAME} or numeric version folders holding one"
    )


def portable_config(config: DeviseConfig | dict[str, Any]) -> dict[str, Any]:
    """The config as config.json holds it: no path of this machine, the paths as provenance.

    Every field of `config.PATH_FIELDS` that is set is blanked ("" or []) and its value
    recorded, absolute (a relative local path is resolved against the current
    directory, where the pipeline ran), under `result["provenance"]["config"]` with
    its dotted name. A corpus to train word vectors from (`embeddings.train_from_corpus`)
    is recorded whole and removed, and `data.eval_style` goes with `data.manifest`, so
    the written config stays valid. Sections absent from a sections dict stay absent.

    Args:
        config: a `DeviseConfig`, or the dict of the sections a trainer read.

    Example:
        >>> portable_config({"embeddings": {"vectors_path": "/d/glove.txt"}})["embeddings"]
        {'vectors_path': ''}
        >>> portable_config({"model": {"backbone": "/c/lite0"}})["provenance"]["config"]
        {'model.backbone': '/c/lite0'}
    """
    out = copy.deepcopy(config if isinstance(config, dict) else config.to_dict())
    out.pop(PROVENANCE_KEY, None)
    recorded: dict[str, Any] = {}
    for dotted in PATH_FIELDS:
        *parents, field = dotted.split(".")
        section = out
        for name in parents:
            section = section.get(name) if isinstance(section, dict) else None
        if not isinstance(section, dict) or not section.get(field):
            continue
        value = section[field]
        recorded[dotted] = (
            [_absolute(v) for v in value] if isinstance(value, list) else (_absolute(value))
        )
        section[field] = [] if isinstance(value, list) else ""
    embeddings = out.get("embeddings")
    if isinstance(embeddings, dict) and embeddings.get("train_from_corpus"):
        # A corpus configuration without its corpus does not validate: kept whole.
        recorded["embeddings.train_from_corpus"] = embeddings["train_from_corpus"]
        recorded["embeddings.train_from_corpus"]["corpus_paths"] = recorded.pop(
            "embeddings.train_from_corpus.corpus_paths", []
        )
        embeddings["train_from_corpus"] = None
    data = out.get("data")
    if isinstance(data, dict) and data.get("eval_style") and not data.get("manifest"):
        recorded["data.eval_style"] = data["eval_style"]  # it needs the manifest
        data["eval_style"] = ""
    if recorded:
        out[PROVENANCE_KEY] = {"note": PROVENANCE_NOTE, "config": recorded}
    DeviseConfig.from_dict(out)  # what config.json holds must read back
    return out


def _absolute(value: Any) -> Any:
    if isinstance(value, str) and storage.is_local(value):
        return os.path.abspath(os.path.expanduser(value))
    return value


def write_app_bundle(
    serving_model_dir: str,
    model,
    config: DeviseConfig | dict[str, Any],
    embeddings,
    *,
    text_encoder=None,
    open_vocabulary=None,
) -> str:
    """Writes the app bundle `<serving_model_dir>/assets.extra/` and returns its path.

    It holds model.keras, config.json (`portable_config` of the config: no path of
    this machine), all label vectors (`label_embeddings/`) and, when given, the text
    encoder's SavedModel (`text_encoder/`, so apps embed request-time text offline)
    and the open vocabulary (`open_vocabulary/`, a LabelEmbeddings folder whose
    metadata counts its words in `num_labels`: the apps' default vocabulary).

    Args:
        serving_model_dir: the exported SavedModel folder.
        model: the trained DeViSE Keras model.
        config: a `DeviseConfig`, or the dict of the sections the trainer read.
        embeddings: a `LabelEmbeddings` of every class (seen + unseen).
        text_encoder: the label vectors' `TextEncoder`, or None.
        open_vocabulary: LabelEmbeddingGen's `open_vocabulary` output, or None.

    Example:
        >>> write_app_bundle("model/serving", model, config, embeddings)  # doctest: +SKIP
        'model/serving/assets.extra'
    """
    if open_vocabulary is not None and open_vocabulary.dim != embeddings.dim:
        raise ValueError(
            f"the open vocabulary has dim {open_vocabulary.dim} but the label vectors "
            f"{embeddings.dim}: both must come from the same label space"
        )
    written = portable_config(config)  # a bad config fails before anything is written
    app_dir = os.path.join(serving_model_dir, APP_DIRNAME)
    storage.makedirs(app_dir)
    model.save(os.path.join(app_dir, MODEL_KERAS_FILENAME))
    text = json.dumps(written, indent=2, sort_keys=True) + "\n"
    storage.write_text(os.path.join(app_dir, CONFIG_FILENAME), text)
    embeddings.save(os.path.join(app_dir, LABEL_EMBEDDINGS_DIRNAME))
    if text_encoder is not None:
        from devise_keras.text_encoder import copy_text_encoder

        copy_text_encoder(text_encoder, os.path.join(app_dir, TEXT_ENCODER_DIRNAME))
    if open_vocabulary is not None:
        open_vocabulary.save(os.path.join(app_dir, OPEN_VOCABULARY_DIRNAME))
    return app_dir
