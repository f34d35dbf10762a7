"""The devise-keras TFX pipeline and its runners."""

import devise_keras  # noqa: F401  (sets TF_USE_LEGACY_KERAS=0 before TensorFlow loads)
