"""The installed package end to end: train a tiny DeViSE model with the public API, write
its app bundle as the trainer does, then load it in fresh processes with
`keras.models.load_model` and the `devise-keras predict` console script.

`make test-wheel` runs this against the wheel installed in a fresh venv, so it proves that
what pip installs (modules, the registered Keras classes, the console script) works alone.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from devise_keras import app_bundle
from devise_keras.config import DeviseConfig
from devise_keras.export import export_serving_model
from devise_keras.hub_backbone import HubBackbone
from devise_keras.hub_export import export_hub_feature_vector
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.model import build_devise_model, compile_devise_model, devise_targets
from tests.devise_keras.devise_app_testutil import encode

SIZE = 8
# One axis of the label space per colour: an image's mean colour says its label.
LABELS = ["red", "green", "blue"]
VECTORS = np.eye(3, dtype=np.float32)
COLOURS = np.array([[230, 20, 20], [20, 230, 20], [20, 20, 230]], np.uint8)


def _images(rng, per_class):
    ids = np.repeat(np.arange(3), per_class)
    noise = rng.integers(-20, 21, (len(ids), SIZE, SIZE, 3))
    pixels = np.clip(COLOURS[ids][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return pixels, ids


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    root = tmp_path_factory.mktemp("installed_smoke")
    keras.utils.set_random_seed(0)
    # The backbone: mean colour, exported and reloaded as a TF-Hub feature vector.
    pooling = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), keras.layers.GlobalAveragePooling2D()]
    )
    hub_dir = export_hub_feature_vector(pooling, str(root / "hub"), SIZE)
    config = DeviseConfig.from_dict(
        {
            "pipeline_name": "smoke",
            "model": {"image_size": SIZE, "loss": "rank"},
            "train": {"learning_rate": 0.1, "seed": 0},
        }
    )
    model = compile_devise_model(
        build_devise_model(HubBackbone(hub_dir), VECTORS, image_size=SIZE), config
    )
    pixels, ids = _images(np.random.default_rng(0), 10)
    history = model.fit(pixels / 255.0, devise_targets(ids, VECTORS), epochs=40, verbose=0)
    embeddings = LabelEmbeddings(LABELS, VECTORS, source="colour axes")
    version_dir = root / "serving" / "1"
    export_serving_model(model, LABELS, str(version_dir), image_size=SIZE, top_k=3)
    app_bundle.write_app_bundle(str(version_dir), model, config, embeddings)
    shutil.rmtree(hub_dir)  # the bundle must not need the training machine's files
    images = []
    for name, colour in zip(LABELS, COLOURS, strict=True):
        path = root / f"{name}.png"
        path.write_bytes(encode(np.broadcast_to(colour, (SIZE, SIZE, 3)).copy()))
        images.append(path)
    return {"version_dir": version_dir, "images": images, "history": history.history}


def _run(args, cwd):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_training_learned_the_colours(pushed):
    assert pushed["history"]["scores_hit_at_1"][-1] == 1.0


def test_model_keras_loads_in_a_fresh_process(pushed, tmp_path):
    model_keras = pushed["version_dir"] / app_bundle.APP_DIRNAME / "model.keras"
    solid = (COLOURS[:, None, None, :] * np.ones((1, SIZE, SIZE, 1)) / 255.0).tolist()
    code = (
        "import json, sys, keras, numpy as np\n"
        "import devise_keras\n"
        "model = keras.models.load_model(sys.argv[1])\n"
        "scores = model.predict(np.array(json.loads(sys.argv[2]), 'float32'), verbose=0)\n"
        "print(json.dumps({'argmax': scores['scores'].argmax(1).tolist(),\n"
        "                  'module': devise_keras.__file__}))\n"
    )
    out = json.loads(
        _run([sys.executable, "-c", code, str(model_keras), json.dumps(solid)], tmp_path)
        .strip()
        .splitlines()[-1]
    )
    assert out["argmax"] == [0, 1, 2]  # red, green, blue
    import devise_keras

    assert out["module"] == devise_keras.__file__  # the same installation as this run


def test_the_console_script_predicts_each_colour(pushed, tmp_path):
    script = Path(sys.executable).parent / "devise-keras"
    assert script.is_file(), f"no devise-keras console script next to {sys.executable}"
    images = [str(p) for p in pushed["images"]]
    out = _run(
        [
            str(script),
            "predict",
            *images,
            "-k",
            "3",
            "--json",
            "--model",
            str(pushed["version_dir"]),
        ],
        tmp_path,
    )
    results = json.loads(out)
    assert [r["labels"][0] for r in results] == LABELS
    for result in results:
        assert sorted(result["labels"]) == sorted(LABELS)
        assert result["scores"] == sorted(result["scores"], reverse=True)
