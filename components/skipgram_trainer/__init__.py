"""SkipGramTrainer: skip-gram pairs -> word vectors in word2vec text format (Keras)."""
