"""The tables of a benchmark run: `summarise` (records -> JSON summary) and `markdown` (-> paper).

The summary's `metrics`, `errors`, `layers` and `vat` depend only on the records, so a run split
over several processes summarises exactly as one process does; `timings` are this machine's.
Layout follows the LASER paper: Table 1 (rows: decoding method; POPE: accuracy and F1 per split;
TextVQA and A-OKVQA: accuracy), Table 2 (attention aggregation of raw, relative and contrastive
maps, mean ± standard error, in %), Figure 5 (how often each layer is l*).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from laser_core.bench.datasets import POPE_SPLITS, Query
from laser_core.bench.metrics import layer_counts, mean_se, pope_metrics

TITLES = {"textvqa": "TextVQA", "pope": "POPE", "aokvqa": "A-OKVQA", "refcoco": "RefCOCO"}
ROW_NAMES = {
    "vcd": "VCD",
    "vicrop": "ViCrop",
    "laser": "LASER",
    "laser_no_vat": "LASER w/o VAT",
    "laser_static": "LASER w/o VAQ/VAT",
    "clvs": "CLVS",
}
MAP_NAMES = {"raw": "Raw Att", "relative": "Rel Att", "contrastive": "Contra Att"}
DATASET_NAMES = {"refcoco": "RefCOCO", "refcoco+": "RefCOCO+", "refcocog": "RefCOCOg"}
LSTAR_METHODS = ("laser", "laser_no_vat")  # methods whose layer is VAQ's choice


def summarise(
    benchmark: str,
    queries: Sequence[Query],
    records: Sequence[dict[str, Any]],
    methods: Sequence[str],
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Metrics per method (and POPE split / grounding data set), l* counts, VAT use, timings.

    Records with an `error` are counted, not scored; the tables say how many there were.
    """
    by_qid = {q.qid: q for q in queries}
    results = {m: [r for r in records if r["method"] == m and not r.get("error")] for m in methods}
    errors = {m: [r for r in records if r["method"] == m and r.get("error")] for m in methods}
    summary: dict[str, Any] = {
        "benchmark": benchmark,
        "model": manifest["model"],
        "config": manifest["config"],
        "methods": list(methods),
        "n_questions": len(queries),
        "metrics": _metrics(benchmark, results, by_qid),
        "errors": {m: len(rows) for m, rows in errors.items()},
        "error_examples": {
            m: [f"{r['qid']}: {r['error']}" for r in rows[:3]] for m, rows in errors.items() if rows
        },
        "layers": {m: _layers(results[m]) for m in methods if m in LSTAR_METHODS and results[m]},
        "timings": {m: _timings(results[m]) for m in methods if results[m]},
    }
    if results.get("laser"):
        applied = sum(bool(r["vat_applied"]) for r in results["laser"])
        n = len(results["laser"])
        summary["vat"] = {"applied": applied, "n": n, "rate": applied / n}
    return summary


def _metrics(
    benchmark: str, results: dict[str, list[dict[str, Any]]], by_qid: dict[str, Query]
) -> dict[str, Any]:
    if benchmark in ("textvqa", "aokvqa"):
        return {m: {"accuracy": mean_se(r["score"] for r in rows)} for m, rows in results.items()}
    if benchmark == "pope":
        out: dict[str, Any] = {}
        for method, rows in results.items():
            groups = sorted({r["group"] for r in rows}, key=_group_order)
            out[method] = {
                g: pope_metrics(
                    [r["parsed"] for r in rows if r["group"] == g],
                    [str(by_qid[r["qid"]].label) for r in rows if r["group"] == g],
                )
                for g in groups
            }
        return out
    rows = results.get("laser", [])
    return {
        group: {
            name: {
                "share": mean_se(r["shares"][name] for r in rows if r["group"] == group),
                "pointing": mean_se(
                    float(r["pointing"][name]) for r in rows if r["group"] == group
                ),
            }
            for name in MAP_NAMES
        }
        for group in sorted({r["group"] for r in rows})
    }


def _group_order(group: str) -> tuple[str, int, str]:
    source, _, split = group.rpartition("/")
    rank = POPE_SPLITS.index(split) if split in POPE_SPLITS else len(POPE_SPLITS)
    return source, rank, split


def _layers(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n_layers, static = int(rows[0]["n_layers"]), int(rows[0]["static_layer"])
    counts = layer_counts((r["layer"] for r in rows), n_layers)
    return {"counts": counts, "static_layer": static, "at_static": counts[static] / len(rows)}


def _timings(rows: list[dict[str, Any]]) -> dict[str, Any]:
    stages = sorted({s for r in rows for s in r["timings"]})
    return {
        "seconds": mean_se(r["seconds"] for r in rows)["mean"],
        "wall_per_question": mean_se(r["wall"] for r in rows)["mean"],
        "stages": {s: float(np.mean([r["timings"].get(s, 0.0) for r in rows])) for s in stages},
    }


# --- markdown -------------------------------------------------------------------------------
def markdown(summary: dict[str, Any]) -> str:
    """The paper's table for this benchmark, Figure 5's counts, VAT use, errors and timings."""
    benchmark = summary["benchmark"]
    model = "laser-toy (embedded)" if summary["model"] == "embedded" else summary["model"]
    model = Path(str(model)).name if Path(str(model)).is_absolute() else model
    static = _static_layer(summary)
    lines = [
        f"# {_title(summary)}: {summary['n_questions']} questions, model `{model}`",
        "",
        f"Decoding: {summary['config']['decoding']}"
        + (f" (temperature {summary['config']['temperature']})" if _sampled(summary) else "")
        + (f"; static layer {static}." if static is not None else "."),
        "",
    ]
    if benchmark == "refcoco":
        lines += _refcoco_tables(summary, model)
    elif benchmark == "pope":
        lines += _pope_tables(summary, model)
    else:
        lines += _accuracy_table(summary, model)
    lines += _figure5(summary) + _vat(summary) + _errors(summary) + _timing_table(summary)
    return "\n".join(lines) + "\n"


def _title(summary: dict[str, Any]) -> str:
    if summary["benchmark"] != "refcoco":
        return TITLES[summary["benchmark"]]
    names = [DATASET_NAMES.get(d.lower(), d) for d in summary["metrics"]] or ["grounding"]
    return "Attention aggregation on " + ", ".join(names)


def _sampled(summary: dict[str, Any]) -> bool:
    return bool(summary["config"]["decoding"] == "sample")


def _static_layer(summary: dict[str, Any]) -> int | None:
    for layers in summary["layers"].values():
        return int(layers["static_layer"])
    return None


def _row_name(summary: dict[str, Any], method: str) -> str:
    if method == "vanilla":
        return "Sample" if _sampled(summary) else "Greedy"
    return ROW_NAMES.get(method, method)


def _pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _pct_se(cell: dict[str, float]) -> str:
    if cell["n"] == 0:
        return "–"
    se = "–" if math.isnan(cell["se"]) else f"{100 * cell['se']:.2f}"
    return f"{100 * cell['mean']:.2f} ± {se}"


def _accuracy_table(summary: dict[str, Any], model: str) -> list[str]:
    title = TITLES[summary["benchmark"]]
    setting = " (Direct Answer)" if summary["benchmark"] == "aokvqa" else ""
    lines = [
        f"## Table 1: {title}{setting} accuracy (%)",
        "",
        f"| Model | Decoding | {title} Acc. | questions |",
        "|---|---|---|---|",
    ]
    for i, (method, cell) in enumerate(summary["metrics"].items()):
        accuracy = cell["accuracy"]
        name = _row_name(summary, method)
        lines.append(
            f"| {model if i == 0 else ''} | {name} | {_pct(accuracy['mean'])} | {accuracy['n']} |"
        )
    return lines + [""]


def _pope_tables(summary: dict[str, Any], model: str) -> list[str]:
    metrics = summary["metrics"]
    groups = sorted({g for per in metrics.values() for g in per}, key=_group_order)
    lines: list[str] = []
    for source in dict.fromkeys(g.rpartition("/")[0] for g in groups):
        mine = [g for g in groups if g.rpartition("/")[0] == source]
        heads = [g.rpartition("/")[2].capitalize() for g in mine]
        lines += [
            f"## Table 1: POPE ({source or 'all'}), accuracy and F1 (%)",
            "",
            "| Model | Decoding | " + " | ".join(f"{h} Acc. | {h} F1" for h in heads) + " |",
            "|---|---|" + "---|---|" * len(mine),
        ]
        for i, (method, per) in enumerate(metrics.items()):
            cells = [
                f"{_pct(per[g]['accuracy'])} | {_pct(per[g]['f1'])}" if g in per else "– | –"
                for g in mine
            ]
            name = _row_name(summary, method)
            lines.append(f"| {model if i == 0 else ''} | {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "### Every POPE measure (%)",
        "",
        "| Decoding | split | questions | Acc. | Precision | Recall | F1 | Yes ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, per in metrics.items():
        for group, m in per.items():
            values = " | ".join(
                _pct(m[k]) for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")
            )
            lines.append(f"| {_row_name(summary, method)} | {group} | {m['n']} | {values} |")
    return lines + [""]


def _refcoco_tables(summary: dict[str, Any], model: str) -> list[str]:
    metrics = summary["metrics"]
    datasets = list(metrics)
    heads = " | ".join(DATASET_NAMES.get(d.lower(), d) for d in datasets)
    lines: list[str] = []
    for key, title in (
        ("share", "Table 2: attention aggregation (%), mean ± standard error"),
        ("pointing", "Pointing rate (%): the map's peak inside the box, mean ± standard error"),
    ):
        lines += [
            f"## {title}",
            "",
            f"| Model | Method | {heads} |",
            "|---|---|" + "---|" * len(datasets),
        ]
        for i, (name, label) in enumerate(MAP_NAMES.items()):
            cells = " | ".join(_pct_se(metrics[d][name][key]) for d in datasets)
            lines.append(f"| {model if i == 0 else ''} | {label} | {cells} |")
        lines.append("")
    counts = ", ".join(f"{d} {metrics[d]['raw']['share']['n']}" for d in datasets)
    static = _static_layer(summary)
    return lines + [
        f"Queries (sentences): {counts}. Raw and relative maps at the static layer ({static}), "
        "contrastive map at l*.",
        "",
    ]


def _figure5(summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for method, layers in summary["layers"].items():
        counts, static = layers["counts"], layers["static_layer"]
        total = sum(counts)
        lines += [
            f"## Figure 5: layer l* chosen by VAQ ({_row_name(summary, method)}, {total} "
            "questions)",
            "",
            "| l* | questions | share (%) |",
            "|---|---|---|",
        ]
        for layer, count in enumerate(counts):
            mark = " (static)" if layer == static else ""
            lines.append(f"| {layer}{mark} | {count} | {_pct(count / total)} |")
        lines += ["", f"l* is the static layer for {_pct(layers['at_static'])} % of questions.", ""]
    return lines


def _vat(summary: dict[str, Any]) -> list[str]:
    vat = summary.get("vat")
    if not vat or summary["benchmark"] == "refcoco":  # its answers are not scored
        return []
    mode = summary["config"]["vat_mode"]
    return [
        f"VAT decided LASER's tokens for {vat['applied']} of {vat['n']} questions "
        f"({_pct(vat['rate'])} %; vat_mode {mode}).",
        "",
    ]


def _errors(summary: dict[str, Any]) -> list[str]:
    total = sum(summary["errors"].values())
    if not total:
        return []
    lines = ["## Errors (not scored)", ""]
    for method, count in summary["errors"].items():
        if count:
            examples = "; ".join(summary["error_examples"].get(method, []))
            lines.append(f"- {_row_name(summary, method)}: {count} ({examples})")
    return lines + [""]


def _timing_table(summary: dict[str, Any]) -> list[str]:
    lines = [
        "## Timings (this machine; seconds per question)",
        "",
        "| method | own stages | run_methods call (all methods) | stages |",
        "|---|---|---|---|",
    ]
    for method, t in summary["timings"].items():
        stages = ", ".join(f"{s} {v:.3f}" for s, v in t["stages"].items())
        lines.append(
            f"| {_row_name(summary, method)} | {t['seconds']:.3f} | "
            f"{t['wall_per_question']:.3f} | {stages} |"
        )
    return lines + [""]
