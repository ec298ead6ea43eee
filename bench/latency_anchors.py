"""Timing script helpers: LASER's passes our way and the anchors' way, and the latency report.

The anchors (ViCrop's and LVLM-Interpret's code) capture attention with eager attention and
`output_attentions=True`, which materialises every layer's full S x S matrix, and run their passes
one after another: (I, q), then (I, no q), then the crop and the masked crop decoded as two
streams, each step of one after the other. `theirs` does that on an eager build of the same
weights; `ours` runs the same passes through `laser_core` (prefix-shared last-row capture, the two
streams as one batch).
"""

from __future__ import annotations

import json
import os
import platform
from functools import partial
from pathlib import Path
from typing import Any

import torch
import transformers

from laser_core.contrast import vat_logits
from laser_core.decode import decode, to_device
from laser_core.loading import VLM
from laser_core.passes import Passes


def ours(case: Any) -> None:
    """a[q], a[none] and the VAT-decoded pair, as `laser_core` runs them."""
    passes = Passes(case.vlm, case.image, case.question, case.config)
    passes.capture("query")
    passes.capture("free")
    text = passes.prompts.query
    inputs, _ = passes.encode([text, text], [case.crop, case.counterfactual])
    decode(case.vlm, inputs, case.config, combine=partial(vat_logits, alpha=case.config.alpha))


def theirs(case: Any, eager: VLM) -> list[torch.Tensor]:
    """The same passes, the anchors' way: eager + output_attentions, one after the other."""
    model, adapter = eager.model, eager.adapter
    rows = []
    with torch.inference_mode():
        for inputs in (case.query, case.free):
            out = model(**to_device(inputs, eager.device), output_attentions=True, use_cache=False)
            visual = adapter.visual_mask(inputs)[0]
            rows.append(torch.stack([a[0, :, -1, visual].float().cpu() for a in out.attentions]))
            del out
        streams = [_single(case, eager, image) for image in (case.crop, case.counterfactual)]
        caches, logits = [], []
        for inputs in streams:  # each stream's prefill on its own
            out = model(**to_device(inputs, eager.device), use_cache=True)
            caches.append(out.past_key_values)
            logits.append(out.logits[:, -1])
        for _ in range(case.tokens):  # then each step of one stream after the other
            _, scores = vat_logits(logits[0].float(), logits[1].float(), case.config.alpha)
            token = scores.argmax(-1, keepdim=True)
            logits = [
                model(input_ids=token, past_key_values=cache, use_cache=True).logits[:, -1]
                for cache in caches
            ]
    return rows


def _single(case: Any, eager: VLM, image: Any) -> Any:
    return eager.adapter.encode([case.text], [image], case.config)


def captured_sizes(case: Any, eager: VLM) -> dict[str, float]:
    """MB held for the captured attention of one prompt: our last rows vs all S x S matrices."""
    adapter = case.vlm.adapter
    n_layers, n_heads = adapter.n_layers, adapter.n_heads
    tokens = int(case.query["input_ids"].shape[1])
    element = torch.finfo(eager.dtype).bits // 8
    ours_mb = n_layers * n_heads * case.image_tokens * 4 / 2**20  # float32 rows, visual keys
    theirs_mb = n_layers * n_heads * tokens * tokens * element / 2**20
    return {"ours": ours_mb, "anchors": theirs_mb, "ratio": theirs_mb / ours_mb}


def machine(device: str) -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(models: dict[str, Any], machine_info: dict[str, Any]) -> str:
    """The report as markdown tables, one per model."""
    lines = [_machine_line(machine_info)]
    for family, entry in models.items():
        t, f = entry["times"], entry["floors"]
        vanilla = t["vanilla"]
        lines += [
            "",
            f"**{family}** ({entry['image_tokens']} image tokens, {entry['prompt_tokens']}-token "
            f"prompt, shared prefix {entry['shared_prefix'] or 'none'})",
            "",
            "| item | seconds | / vanilla | / floor |",
            "|---|---|---|---|",
        ]
        bounds = {"run_method(laser)": f["F"], "explain": f["F explain"]}
        for name, seconds in t.items():
            bound = bounds.get(name)
            against = f"{seconds / bound:.2f}" if bound else ""
            lines.append(f"| {name} | {seconds:.3f} | {seconds / vanilla:.2f} | {against} |")
        for name in ("D(I, q)", "D(I+, I-)", "F", "F explain"):
            lines.append(f"| floor part: {name} | {f[name]:.3f} | {f[name] / vanilla:.2f} | |")
        speedup = t["anchors: LASER's passes"] / t["ours: LASER's passes"]
        captured = entry["captured_mb"]
        lines.append("")
        lines.append(
            f"ours vs the anchors' way: {speedup:.2f}x faster; captured attention "
            f"{captured['ours']:.2f} MB vs {captured['anchors']:.1f} MB ({captured['ratio']:.0f}x "
            "less)"
        )
        if "memory" in entry:
            peaks = ", ".join(f"{k} +{v['peak_mb']:.0f} MB" for k, v in entry["memory"].items())
            lines.append(f"peak memory (fresh process): {peaks}")
    return "\n".join(lines)


def _machine_line(info: dict[str, Any]) -> str:
    where = info.get("gpu") or f"{info['cpu']} ({info['cpu_count']} cores)"
    return (
        f"Measured on {where}, torch {info['torch']}, transformers {info['transformers']}; "
        f"load average {info['load_average']:.1f} at the start."
        if info.get("load_average") is not None
        else f"Measured on {where}, torch {info['torch']}, transformers {info['transformers']}."
    )


def write(report: dict[str, Any], folder: Path, name: str) -> None:
    """`<name>.json` and `<name>.md` into `folder`, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        f"{name}.json": json.dumps(report, indent=1),
        f"{name}.md": markdown(report["models"], report["machine"]) + "\n",
    }
    for filename, text in texts.items():
        staging = folder / f".{filename}.tmp"
        staging.write_text(text)
        os.replace(staging, folder / filename)
    print(f"wrote {folder / name}.json and .md")
