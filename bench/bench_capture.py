"""Last-row capture versus eager `output_attentions`: time and peak memory, as ratios in one run.

    python bench/bench_capture.py [--model PATH_OR_ID] [--size 1400] [--repeats 5]

Without --model it builds a tiny Qwen2-VL (the architecture whose full attention grows fastest
with image size) and a tiny LLaVA. Times are medians of `--repeats` runs on one thread; memory is
the growth of peak RSS (CPU) or of CUDA peak allocation (GPU) during one prefill.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from laser_core import LaserConfig, load_model  # noqa: E402
from laser_core.stages import capture as _capture  # noqa: E402


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(run, device: torch.device, repeats: int) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _peak_rss_mb()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
        memory = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        memory = _peak_rss_mb() - base
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), memory


def bench(model: str, size: int, repeats: int) -> None:
    vlm = load_model(model)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), np.uint8))
    inputs = vlm.adapter.encode(["What is in the picture?"], [image], LaserConfig())
    inputs = inputs.to(vlm.device)
    eager = (
        type(vlm.model)
        .from_pretrained(model, attn_implementation="eager", dtype=vlm.dtype)
        .to(vlm.device)
        .eval()
    )

    def run_eager() -> None:
        with torch.inference_mode():
            eager(**inputs, output_attentions=True, use_cache=False)

    # Memory first for the capture (run in the same process: the eager peak would hide it).
    t_capture, m_capture = _measure(lambda: _capture(vlm, inputs), vlm.device, repeats)
    t_eager, m_eager = _measure(run_eager, vlm.device, repeats)
    tokens = int(inputs["input_ids"].shape[1])
    print(
        f"{vlm.model.config.model_type:>10} {tokens:>6} tokens | capture {t_capture * 1e3:8.1f} ms "
        f"+{m_capture:7.1f} MB | eager {t_eager * 1e3:8.1f} ms +{m_eager:7.1f} MB | "
        f"eager/capture time x{t_eager / t_capture:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--size", type=int, default=1400)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.model:
        bench(args.model, args.size, args.repeats)
        return
    from tiny_models import build_tiny_llava, build_tiny_qwen2_vl

    with tempfile.TemporaryDirectory() as tmp:
        for build in (build_tiny_qwen2_vl, build_tiny_llava):
            bench(str(build(Path(tmp) / build.__name__)), args.size, args.repeats)


if __name__ == "__main__":
    main()
