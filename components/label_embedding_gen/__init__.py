"""LabelEmbeddingGen: class names -> unit word vectors (a Beam TFX component)."""
