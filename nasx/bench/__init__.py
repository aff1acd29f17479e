"""Benchmarks against published ground truth: NAS-Bench-201's table (`nb201_table`), proxy
correlations and simulated searches on it (`nb201`), and the resumable score log (`score_log`)."""
