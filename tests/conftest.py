"""Shared test set-up: Keras 3 mode before TensorFlow loads, quiet logs, fixed seeds.

Also marks the `core` tests: the library tests (tests/devise_keras/) that need only the
core install, `pip install "devise-keras[text]" pytest`, and no tfx, Beam, TFMA,
`components` or `pipeline`. `make test-wheel` runs `pytest -m core` against the installed
wheel, with DEVISE_KERAS_TEST_INSTALLED=1 so the run fails if it imported the source tree.
"""

import os
import sys
import sysconfig
from pathlib import Path

import pytest

os.environ["TF_USE_LEGACY_KERAS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import devise_keras  # noqa: E402

_CORE_DIR = "devise_keras"
# Library test modules that are not core, and why (paths relative to tests/).
_NOT_CORE = {
    "devise_keras/test_cli.py": "runs TFX pipelines (pipeline, ml_metadata)",
    "devise_keras/test_true_label_rank.py": "compares with components' TFMA metric",
    "devise_keras/test_serving_contract.py": "TF Serving's gRPC API (tensorflow-serving-api)",
    "devise_keras/test_glove.py": "the demo's GloVe wheel holds parquet (pyarrow)",
    "devise_keras/test_emoji.py": "the demo's emoji SVGs are rasterised with cairosvg",
    "devise_keras/backbones/test_efficientnet_lite.py": "reads bench/ goldens (not installed)",
    "devise_keras/test_zero_shot_serving.py": "TF Serving's gRPC API (tensorflow-serving-api)",
}


def _is_core(relative: str) -> bool:
    return relative.startswith(_CORE_DIR + "/") and relative not in _NOT_CORE


def pytest_ignore_collect(collection_path, config):
    # `-m core` on the core install: the other modules cannot even be imported there.
    if config.option.markexpr != "core" or collection_path.suffix != ".py":
        return None
    relative = collection_path.relative_to(Path(__file__).parent).as_posix()
    if relative.startswith("test_") or "/test_" in relative:
        return True if not _is_core(relative) else None
    return None


def pytest_collection_modifyitems(config, items):
    tests_dir = Path(__file__).parent
    for item in items:
        if _is_core(Path(item.path).relative_to(tests_dir).as_posix()):
            item.add_marker(pytest.mark.core)


def pytest_sessionstart(session):
    if os.environ.get("DEVISE_KERAS_TEST_INSTALLED") != "1":
        return
    package = Path(devise_keras.__file__).resolve()
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    if site_packages not in package.parents:
        pytest.exit(
            f"DEVISE_KERAS_TEST_INSTALLED=1 but devise_keras was imported from {package}, "
            f"not from {site_packages} ({sys.executable})",
            returncode=3,
        )
