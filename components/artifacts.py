"""Custom TFX artifact types of devise-keras.

Type names follow `namespace.Title`, which the Kubeflow V2 compiler requires. Facts about
an artifact (dimension, label count, source) are custom properties: the Kubeflow V2
compiler rejects declared PROPERTIES that its artifact schema does not list.
"""

from tfx.types.artifact import Artifact


class LabelEmbeddings(Artifact):
    """Labels with unit-norm word vectors (files: see devise_keras.label_embeddings).

    Custom properties: `dim`, `num_labels` (int) and `source` (string).
    """

    TYPE_NAME = "devise.LabelEmbeddings"


class ZeroShotReport(Artifact):
    """Zero-shot evaluation report (JSON + Markdown) of a trained DeViSE model."""

    TYPE_NAME = "devise.ZeroShotReport"


class SkipGramCorpus(Artifact):
    """Skip-gram training data from a text corpus (files: see devise_keras.skipgram_corpus):
    ``vocab.tsv``, ``unigram_table.npy``, ``corpus_stats.json`` and ``pairs/pairs-*``
    TFRecords of (center, context) ids.

    Custom properties: `vocabulary_size`, `tokens` and `pairs` (int).
    """

    TYPE_NAME = "devise.SkipGramCorpus"


class WordVectors(Artifact):
    """Word vectors in word2vec text format (``vectors.txt``), frequency-ordered.

    Custom properties: `dim`, `vocabulary_size` (int) and `format` (string).
    """

    TYPE_NAME = "devise.WordVectors"
