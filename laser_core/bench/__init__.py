"""Accuracy benchmarks of LASER and its baselines (`python -m laser_core.bench {toy,textvqa,...}`).

`toy` runs the synthetic world's benchmark; `textvqa`, `pope`, `aokvqa` and `refcoco` run the
paper's benchmarks from their official files (`datasets`), score them as their reference
evaluations do (`metrics`), resumably and on one or many processes (`runner`), and lay the
results out as the paper's tables (`tables`). This is the method's own runner (answers, layers,
crops, scores), importable as a library. The top-level `bench/` folder is something else: timing
and memory scripts of the code itself.
"""

from laser_core.bench.datasets import DataError, Query
from laser_core.bench.runner import RunSpec, run_benchmark
from laser_core.bench.toy import markdown, run_toy_bench, summarise, write_report

__all__ = [
    "DataError",
    "Query",
    "RunSpec",
    "markdown",
    "run_benchmark",
    "run_toy_bench",
    "summarise",
    "write_report",
]
