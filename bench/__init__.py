"""Runnable benchmarks; results in bench/results/<name>.json, summarised in bench/BENCHMARKS.md."""
