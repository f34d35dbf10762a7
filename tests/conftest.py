"""Shared test set-up: Keras 3 mode before TensorFlow loads, quiet logs, fixed seeds."""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import devise_keras  # noqa: E402,F401
