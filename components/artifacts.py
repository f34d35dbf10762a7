"""Custom TFX artifact types of devise-keras.

Type names follow `namespace.Title`, which the Kubeflow V2 compiler requires.
"""

from tfx.types.artifact import Artifact, Property, PropertyType


class LabelEmbeddings(Artifact):
    """Labels with unit-norm word vectors (files: see devise_keras.label_embeddings)."""

    TYPE_NAME = "devise.LabelEmbeddings"
    PROPERTIES = {
        "dim": Property(type=PropertyType.INT),
        "num_labels": Property(type=PropertyType.INT),
        "source": Property(type=PropertyType.STRING),
    }


class ZeroShotReport(Artifact):
    """Zero-shot evaluation report (JSON + Markdown) of a trained DeViSE model."""

    TYPE_NAME = "devise.ZeroShotReport"
