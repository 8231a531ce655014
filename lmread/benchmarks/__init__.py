"""Benchmark modules run by ``lmread bench``."""
