"""Timing script: LASER against its dependency floor and against the anchors' way, side by side.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_latency.py                       # CPU, mid-size
    python bench/bench_latency.py --shape published --device cuda               # a GPU, 7B shapes

On one model and one input it times, in one run: a plain transformers `generate` (vanilla), the
parts LASER's floor is built from (P = a prefill, D = an answer's decode, measured with plain
transformers), every method of `run_method`, `explain`, `run_methods` over every method (the
Compare tab, cold and after an `explain`), and the anchors' way of running LASER's passes (eager
attention + `output_attentions`, one pass after another, as ViCrop's and LVLM-Interpret's code
capture). It prints each time, the floor and every ratio, and the peak memory of the main items,
each in a fresh process (CPU) or from `torch.cuda.max_memory_allocated` (GPU).

    F          = P(I, q) + P(suffix of (I, no q)) + P(I+, I-) batched + D(I+, I-)
    laser      <= 1.15 F         explain <= 1.15 (F + D(I, q) + P(suffix of (I, generic)))

On a CPU, times are the process's CPU time with one thread (robust to other jobs on shared
cores); on a GPU, wall time between synchronisations. Medians of `--repeats`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import latency_anchors as anchors  # noqa: E402
import latency_models as bench_models  # noqa: E402

from laser_core import METHODS, LaserConfig, explain, run_method, run_methods  # noqa: E402
from laser_core.decode import to_device  # noqa: E402
from laser_core.loading import VLM  # noqa: E402
from laser_core.passes import Passes  # noqa: E402
from laser_core.stages import encode_checked, prepare  # noqa: E402

QUESTION = "What colour is the ball on the left?"
MEMORY_ITEMS = ("vanilla", "laser", "explain", "anchors")


class Clock:
    """CPU time of the process (one thread) on a CPU, synchronised wall time on a GPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


def median_time(fn: Callable[[], Any], clock: Clock, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


class Case:
    """One model, image and question, with every input the timed items need."""

    def __init__(self, vlm: VLM, family: str, shape: str, tokens: int) -> None:
        self.vlm, self.family = vlm, family
        self.config = LaserConfig(max_new_tokens=tokens)
        self.image, self.question, self.config = prepare(
            vlm, bench_models.scene(family, shape), QUESTION, self.config
        )
        self.tokens = tokens
        reference = explain(vlm, self.image, self.question, self.config)
        self.crop, self.counterfactual = reference.crop_image, reference.counterfactual_image
        self.image_tokens = int(reference.attn_query.shape[-1])
        passes = Passes(vlm, self.image, self.question, self.config)
        self.text = passes.prompts.query
        self.query, _ = encode_checked(vlm, [passes.prompts.query], [self.image], self.config)
        self.free, _ = encode_checked(vlm, [passes.prompts.free], [self.image], self.config)
        self.generic, _ = encode_checked(vlm, [passes.prompts.generic], [self.image], self.config)
        texts = [passes.prompts.query] * 2
        self.pair, _ = encode_checked(vlm, texts, [self.crop, self.counterfactual], self.config)
        self.shared_prefix = passes.shared_prefix
        self.prefix = passes._prefix_tokens() if passes.shared_prefix else 0

    # --- plain transformers --------------------------------------------------------------
    def prefill(self, inputs: Any) -> Any:
        """A prefill as `generate` runs it: the cache, and the last position's logits only."""
        with torch.inference_mode():
            return self.vlm.model(
                **to_device(inputs, self.vlm.device), use_cache=True, logits_to_keep=1
            )

    def generate(self, inputs: Any) -> Any:
        with torch.inference_mode():
            return self.vlm.model.generate(
                **to_device(inputs, self.vlm.device),
                max_new_tokens=self.tokens,
                do_sample=False,
                pad_token_id=self.vlm.tokenizer.pad_token_id,
            )

    def suffix(self, inputs: Any) -> Callable[[], Any]:
        """A prompt's text after the image, on a cache of the image prefix (prefilled once)."""
        prefix = self.vlm.adapter.prefix_inputs(self.query, self.prefix)
        cache = self.prefill(prefix).past_key_values
        rest = self.vlm.adapter.suffix_inputs(inputs, self.prefix)

        def run() -> None:
            with torch.inference_mode():
                self.vlm.model(
                    **to_device(rest, self.vlm.device),
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
            cache.crop(self.prefix - cache.get_seq_length())

        return run


def time_case(case: Case, eager: VLM, clock: Clock, repeats: int) -> dict[str, float]:
    """Every timed item of one case, in seconds."""
    vlm, image, question, config = case.vlm, case.image, case.question, case.config
    items: dict[str, Callable[[], Any]] = {
        "vanilla": lambda: case.generate(case.query),
        "P(I, q)": lambda: case.prefill(case.query),
        "P(I+, I-)": lambda: case.prefill(case.pair),
        "generate(I+, I-)": lambda: case.generate(case.pair),
    }
    if case.shared_prefix:
        items["P(suffix no q)"] = case.suffix(case.free)
        items["P(suffix generic)"] = case.suffix(case.generic)
    else:  # nothing shared: the floor holds full prefills
        items["P(suffix no q)"] = lambda: case.prefill(case.free)
        items["P(suffix generic)"] = lambda: case.prefill(case.generic)
    for method in METHODS:
        items[f"run_method({method})"] = lambda m=method: run_method(
            vlm, image, question, m, config
        )
    items["explain"] = lambda: explain(vlm, image, question, config)
    items["run_methods(all)"] = lambda: run_methods(vlm, image, question, METHODS, config)
    explained = explain(vlm, image, question, config)
    others = [m for m in METHODS if m != "laser"]
    items["run_methods(all, after explain)"] = lambda: run_methods(
        vlm, image, question, others, config, explained=explained
    )
    items["ours: LASER's passes"] = lambda: anchors.ours(case)
    items["anchors: LASER's passes"] = lambda: anchors.theirs(case, eager)
    return {name: median_time(fn, clock, repeats) for name, fn in items.items()}


def floors(t: dict[str, float]) -> dict[str, float]:
    d_pair = t["generate(I+, I-)"] - t["P(I+, I-)"]
    d_vanilla = t["vanilla"] - t["P(I, q)"]
    f = t["P(I, q)"] + t["P(suffix no q)"] + t["P(I+, I-)"] + d_pair
    return {
        "D(I, q)": d_vanilla,
        "D(I+, I-)": d_pair,
        "F": f,
        "F explain": f + d_vanilla + t["P(suffix generic)"],
    }


def memory_of(item: str, case: Case, eager: VLM) -> dict[str, float]:
    """Peak memory growth of one item (MB): RSS in this fresh process, or CUDA allocations."""
    run = {
        "vanilla": lambda: case.generate(case.query),
        "laser": lambda: run_method(case.vlm, case.image, case.question, "laser", case.config),
        "explain": lambda: explain(case.vlm, case.image, case.question, case.config),
        "anchors": lambda: anchors.theirs(case, eager),
    }[item]
    run()  # warm-up: first-call allocations are not the item's
    if case.vlm.device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run()
        return {"peak_mb": (torch.cuda.max_memory_allocated() - base) / 2**20}
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    base = _status("VmRSS")
    run()
    return {"peak_mb": (_status("VmHWM") - base) / 1024}


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="llava,qwen2_vl", help="llava, qwen2_vl, qwen2_5_vl")
    parser.add_argument("--shape", choices=("mid", "published", "tiny"), default="mid")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on GPU")
    parser.add_argument("--tokens", type=int, default=8, help="answer length, every method")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--out", default="results/latency")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # FAMILY:ITEM
    return parser.parse_args(argv)


def setup(family: str, args: argparse.Namespace) -> tuple[Case, VLM]:
    device = torch.device(args.device)
    default = torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype = getattr(torch, args.dtype) if args.dtype else default
    vlm = bench_models.build(family, args.shape, device, dtype)
    eager = bench_models.build(family, args.shape, device, dtype, eager=True)
    return Case(vlm, family, args.shape, args.tokens), eager


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    bench_models.quiet()
    if args.device == "cpu":
        torch.set_num_threads(1)
    if args.child:
        family, item = args.child.split(":")
        case, eager = setup(family, args)
        print(json.dumps(memory_of(item, case, eager)))
        return 0
    report = {"machine": anchors.machine(args.device), "shape": args.shape, "models": {}}
    for family in args.models.split(","):
        case, eager = setup(family, args)
        clock = Clock(case.vlm.device)
        times = time_case(case, eager, clock, args.repeats)
        entry = {
            "image_tokens": case.image_tokens,
            "prompt_tokens": int(case.query["input_ids"].shape[1]),
            "shared_prefix": case.prefix,
            "times": times,
            "floors": floors(times),
            "captured_mb": anchors.captured_sizes(case, eager),
        }
        if not args.no_memory:
            entry["memory"] = _memories(family, case, eager, argv)
        report["models"][family] = entry
        print(anchors.markdown({family: entry}, report["machine"]), flush=True)
    anchors.write(report, Path(args.out), f"{args.device.split(':')[0]}-{args.shape}")
    return 0


def _memories(family: str, case: Case, eager: VLM, argv: list[str] | None) -> dict[str, Any]:
    if case.vlm.device.type == "cuda":  # one process: CUDA counts allocations exactly
        return {item: memory_of(item, case, eager) for item in MEMORY_ITEMS}
    out = {}
    for item in MEMORY_ITEMS:  # a fresh process each: RSS peaks never come down
        command = [sys.executable, __file__, *(argv or sys.argv[1:]), "--child", f"{family}:{item}"]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        out[item] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


if __name__ == "__main__":
    sys.exit(main())
