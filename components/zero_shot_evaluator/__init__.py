"""ZeroShotEvaluator: hit@k "-0"/"+seen", GZSL, ConSE and WordNet precision of a DeViSE model."""
