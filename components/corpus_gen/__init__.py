"""CorpusGen: text files -> skip-gram (center, context) pairs and vocabulary (Beam)."""
