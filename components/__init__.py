"""Custom TFX components of devise-keras (ImageExampleGen, LabelEmbeddingGen, DeviseTrainer)."""

import devise_keras  # noqa: F401  (sets TF_USE_LEGACY_KERAS=0 before TensorFlow loads)
