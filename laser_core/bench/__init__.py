"""Benchmarks of LASER and its baselines (`python -m laser_core.bench toy --n 500 --out DIR`)."""

from laser_core.bench.toy import markdown, run_toy_bench, summarise, write_report

__all__ = ["markdown", "run_toy_bench", "summarise", "write_report"]
