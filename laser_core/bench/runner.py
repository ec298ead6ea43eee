"""The benchmark runner: every method on the same questions, resumable, on one process or many.

run_benchmark(spec, queries)
  1. every process reads the journal of the output folder: `shards/rank-*.jsonl`, one JSON line
     per (question id, method); rows that say `error` are tried again
  2. the questions still to do are split between the launched processes (Hugging Face
     Accelerate's `PartialState`: `accelerate launch` on GPUs, `torchrun` for CPU processes);
     each loads one model on its own device and appends to its own shard
  3. per question, ONE `run_methods` call with every method still missing, so the passes methods
     share (the vanilla answer, the attention captures) are shared there, not here
  4. the main process merges the shards into `records.jsonl` (dataset order) and writes
     `summary.json` and `table.md` (`tables.py`); the merge is the same whatever the number of
     processes was, and a rerun skips what is written

A question's records are appended in one write and flushed to disk, so an interruption loses at
most the question in flight; a line cut short by a crash is dropped when the shard is next opened.
Merged files are written to a temporary sibling and renamed over the old one.

Decoding is greedy by default. Each question gets its own seed, `crc32("<config seed>/<qid>")`,
used by every method on it (sampling with `--decoding sample`, VCD's noise): the seed depends on
nothing but the ids, so shards and resumed runs give what one process gives, and methods that
share a pass share its sample too.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from laser_core.bench import tables
from laser_core.bench.datasets import DataError, Query
from laser_core.bench.metrics import aokvqa_accuracy, pointing_hit, pope_parse, vqa_accuracy
from laser_core.config import LaserConfig
from laser_core.crop import box_mass_share
from laser_core.files import write_atomic
from laser_core.loading import VLM, load_model
from laser_core.methods import run_methods
from laser_core.pipeline import explain
from laser_core.result import MethodResult

BENCHMARKS = ("textvqa", "pope", "aokvqa", "refcoco")
DEFAULT_METHODS = ("vanilla", "vicrop", "vcd", "laser")  # the rows of the paper's Table 1
MAPS = ("raw", "relative", "contrastive")  # Table 2: raw, relative at the static layer; con. at l*
BARRIER_TIMEOUT = timedelta(hours=12)  # processes wait this long for the slowest one at the end


@dataclass(frozen=True)
class RunSpec:
    """What to run and where the results go."""

    benchmark: str  # one of BENCHMARKS
    out: Path  # output folder (created)
    methods: tuple[str, ...] = DEFAULT_METHODS  # refcoco: always ("laser",), its maps
    config: LaserConfig = LaserConfig()
    model: str | None = None  # hub id or folder; None = the embedded model
    device: str | None = None  # None: each process's own accelerator, else the CPU
    progress: bool = True  # a progress bar per process on stderr

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; choose from {BENCHMARKS}")
        if not self.methods:
            raise ValueError("no method to run")


def question_seed(config: LaserConfig, qid: str, method: str) -> int:
    """The seed of `method` on question `qid`: a function of the ids alone."""
    return zlib.crc32(f"{config.seed}/{qid}/{method}".encode())


def run_benchmark(spec: RunSpec, queries: Sequence[Query]) -> dict[str, Any] | None:
    """Run (or resume) `spec` on `queries`; on the main process, merge and write the tables.

    Returns:
        The summary (see `tables.summarise`) on the main process, None on the others.

    Raises:
        ValueError: the output folder holds a run with other settings, or a shard is corrupt.
    """
    methods = ("laser",) if spec.benchmark == "refcoco" else spec.methods
    state = process_state(spec.device)
    journal = Journal(spec.out, state.process_index)
    journal.claim(_manifest(spec), write=state.is_main_process)
    done = journal.done()
    state.wait_for_everyone()  # everyone has read the journal before anyone appends to it
    journal.repair()
    pending = [q for q in queries if any((q.qid, m) not in done for m in methods)]
    with state.split_between_processes(pending) as mine:
        if mine:
            device = str(state.device) if state.num_processes > 1 else spec.device
            vlm = load_model(spec.model, device=device)
            _run_share(vlm, spec, list(mine), methods, done, journal, state)
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    records = journal.merged(queries, methods)
    summary = tables.summarise(spec.benchmark, queries, records, methods, _manifest(spec))
    write_atomic(spec.out / "records.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    write_atomic(spec.out / "summary.json", json.dumps(summary, indent=1) + "\n")
    write_atomic(spec.out / "table.md", tables.markdown(summary))
    return summary


def _run_share(
    vlm: VLM,
    spec: RunSpec,
    queries: list[Query],
    methods: Sequence[str],
    done: set[tuple[str, str]],
    journal: Journal,
    state: Any,
) -> None:
    from tqdm.auto import tqdm  # a dependency of transformers

    label = f"{spec.benchmark} [{state.process_index + 1}/{state.num_processes}]"
    bar = tqdm(
        queries, desc=label, disable=not spec.progress, position=state.process_index, leave=True
    )
    for query in bar:
        todo = [m for m in methods if (query.qid, m) not in done]
        journal.append(answer_query(vlm, spec.benchmark, query, todo, spec.config, bar))
    bar.close()


def answer_query(
    vlm: VLM,
    benchmark: str,
    query: Query,
    methods: Sequence[str],
    config: LaserConfig,
    bar: Any = None,
) -> list[dict[str, Any]]:
    """The records of `methods` on one query: one `run_methods` call, or error rows."""
    seeds = {m: question_seed(config, query.qid, m) for m in methods}
    base = {"qid": query.qid, "group": query.group}
    if not query.image.is_file():
        return [
            {**base, "method": m, "seed": seeds[m], "error": f"image not found: {query.image}"}
            for m in methods
        ]
    on_method = (lambda name: bar.set_postfix_str(name)) if bar is not None else None
    start = time.perf_counter()
    try:
        image = str(query.image)
        if benchmark == "refcoco":  # every map, which `explain` keeps (LASER alone skips some)
            laser_config = replace(config, seed=seeds["laser"])
            explained = explain(vlm, image, query.question, laser_config)
            results = run_methods(
                vlm, image, query.question, methods, laser_config, explained=explained
            )
        else:
            results = run_methods(
                vlm, image, query.question, methods, config, seeds=seeds, on_method=on_method
            )
    except ValueError as error:  # the library's word for unusable input (image, question)
        return [{**base, "method": m, "seed": seeds[m], "error": str(error)} for m in methods]
    wall = time.perf_counter() - start
    return [
        {
            **base,
            "method": name,
            "seed": seeds[name],
            **_scored(benchmark, query, result, vlm),
            "wall": wall,
        }
        for name, result in results.items()
    ]


def _scored(benchmark: str, query: Query, result: MethodResult, vlm: VLM) -> dict[str, Any]:
    """What one method's result contributes to its benchmark's tables."""
    record: dict[str, Any] = {
        "answer": result.answer,
        "layer": result.layer,
        "static_layer": result.config.get("static_layer"),
        "n_layers": vlm.adapter.n_layers,
        "box": list(result.box) if result.box is not None else None,
        "vat_applied": result.details.vat_applied if result.details is not None else None,
        "timings": dict(result.timings),
        "seconds": float(sum(result.timings.values())),
        "error": None,
    }
    if benchmark == "textvqa":
        record["score"] = vqa_accuracy(result.answer, query.answers)
    elif benchmark == "aokvqa":
        record["score"] = aokvqa_accuracy(result.answer, query.answers)
    elif benchmark == "pope":
        record["parsed"] = pope_parse(result.answer)
        record["score"] = float(record["parsed"] == query.label)
    elif benchmark == "refcoco":
        record.update(_aggregation(result, query))
    return record


def _aggregation(result: MethodResult, query: Query) -> dict[str, Any]:
    """Table 2: raw and relative maps at the static layer, contrastive at l* (METHOD.md)."""
    details = result.details
    if details is None or query.box is None:
        raise ValueError("attention aggregation needs LASER's maps and a box")
    maps = {
        "raw": details.raw_maps[details.static_layer],
        "relative": details.relative_maps[details.static_layer],
        "contrastive": details.contrastive_maps[details.layer],
    }
    return {
        "shares": {k: box_mass_share(v, details.cell_boxes, query.box) for k, v in maps.items()},
        "pointing": {k: pointing_hit(v, details.cell_boxes, query.box) for k, v in maps.items()},
        "truth_box": list(query.box),
    }


def _manifest(spec: RunSpec) -> dict[str, Any]:
    return {
        "benchmark": spec.benchmark,
        "model": spec.model or "embedded",
        "config": spec.config.to_dict(),
    }


# --- processes ------------------------------------------------------------------------------
class _OneProcess:
    """Stands in for Accelerate's `PartialState` when nothing was launched."""

    process_index, num_processes, is_main_process, device = 0, 1, True, None

    def wait_for_everyone(self) -> None:
        return None

    @contextmanager
    def split_between_processes(self, items: list[Query]) -> Iterator[list[Query]]:
        yield items


def process_state(device: str | None) -> Any:
    """This process's rank, count and device, from the launcher (Accelerate's `PartialState`).

    Under `accelerate launch` on GPUs every process gets its own device; under `torchrun` on a
    machine without GPUs (or with `device="cpu"`), the processes are CPU ranks of one gloo group.
    Without a launcher this is one process, and Accelerate is not even imported.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _OneProcess()
    import torch
    from accelerate import PartialState  # only the runner imports Accelerate

    cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    return PartialState(cpu=cpu, timeout=BARRIER_TIMEOUT)


def end_processes() -> None:
    """Tear down the process group a launcher set up: once, when the command is done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# --- the journal -----------------------------------------------------------------------------
class Journal:
    """The records of one output folder: every process's shard, read and merged by key."""

    def __init__(self, out: Path, rank: int) -> None:
        self.out = Path(out)
        self.shards = self.out / "shards"
        self.path = self.shards / f"rank-{rank}.jsonl"

    def claim(self, manifest: dict[str, Any], *, write: bool) -> None:
        """Refuse a folder that holds a run with other settings; record ours in `run.json`."""
        path = self.out / "run.json"
        if path.is_file():
            old = json.loads(path.read_text())
            changed = sorted(k for k in manifest if old.get(k) != manifest[k])
            if "config" in changed:
                fields = manifest["config"]
                diff = [k for k in fields if old.get("config", {}).get(k) != fields[k]]
                changed = [c for c in changed if c != "config"] + [f"config.{k}" for k in diff]
            if changed:
                raise ValueError(
                    f"{self.out} holds a run with other settings ({', '.join(changed)} differ); "
                    "choose another --out, or delete that folder to start over"
                )
        elif write:
            self.shards.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(manifest, indent=1) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every record of every shard, in file order; a line cut short at a file's end is
        skipped (a crash mid-write), any other unreadable line is an error naming it."""
        records = []
        for shard in sorted(self.shards.glob("rank-*.jsonl")):
            lines = shard.read_bytes().split(b"\n")
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    if number == len(lines):  # the unterminated last line: torn by a crash
                        continue
                    raise DataError(f"{shard}: line {number}: not a record ({error})") from error
        return records

    def done(self) -> set[tuple[str, str]]:
        """The (question id, method) pairs with a result (error rows are tried again)."""
        return {(r["qid"], r["method"]) for r in self.read() if not r.get("error")}

    def repair(self) -> None:
        """Cut this process's shard back to its last complete line (after a crash mid-write)."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        try:  # cut exactly before its newline: the record is whole, `read` counted it
            json.loads(data[keep:])
        except json.JSONDecodeError:
            with self.path.open("r+b") as stream:
                stream.truncate(keep)
            return
        with self.path.open("ab") as stream:
            stream.write(b"\n")

    def append(self, records: list[dict[str, Any]]) -> None:
        """One question's records in one write, flushed to disk before the next question."""
        self.shards.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
        with self.path.open("ab") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())

    def merged(self, queries: Sequence[Query], methods: Sequence[str]) -> list[dict[str, Any]]:
        """One record per (query, method), in dataset then method order; a result beats an
        error row, and the first result written wins (reruns never recompute a written one)."""
        best: dict[tuple[str, str], dict[str, Any]] = {}
        for record in self.read():
            key = (record["qid"], record["method"])
            if key not in best or (best[key].get("error") and not record.get("error")):
                best[key] = record
        return [best[(q.qid, m)] for q in queries for m in methods if (q.qid, m) in best]
