"""The `devise.*` artifact types under their schema titles, for TFX's Kubeflow V2 container.

TFX's Kubeflow V2 compiler writes a custom artifact type's TYPE_NAME as its schema title
(`devise.LabelEmbeddings`; it only accepts `namespace.Title`), and TFX's container
entrypoint imports that title as a class path to rebuild the artifact. So the titles
must be importable: this package maps them to the classes in `components.artifacts`.
`tests/pipeline/test_kubeflow_runner.py` checks every title of the compiled spec.
"""

from components.artifacts import LabelEmbeddings, SkipGramCorpus, WordVectors, ZeroShotReport

__all__ = ["LabelEmbeddings", "SkipGramCorpus", "WordVectors", "ZeroShotReport"]
