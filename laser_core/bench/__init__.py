"""Accuracy benchmarks of LASER and its baselines (`python -m laser_core.bench toy --out DIR`).

This is the method's own runner (answers, layers, crops, scores), importable as a library. The
top-level `bench/` folder is something else: timing and memory scripts of the code itself.
"""

from laser_core.bench.toy import markdown, run_toy_bench, summarise, write_report

__all__ = ["markdown", "run_toy_bench", "summarise", "write_report"]
