"""Benchmarks: the project against LlamaIndex's default pipeline, in the same run, printed as ratios."""
