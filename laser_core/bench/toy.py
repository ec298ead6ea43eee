"""The toy benchmark: LASER and its baselines on held-out scenes of the synthetic world.

On N held-out scenes (one question of every kind each; see `laser_core.toy.scenes`) it measures
what the paper's tables measure, in kind:

- Table 1: accuracy per question kind of vanilla, vicrop, vcd, laser, laser_no_vat and
  laser_static, plus a ceiling: vanilla on the crop of the same size rule centred on the
  ground-truth object ("true crop").
- Table 2: attention aggregation, the share of a map's mass inside the ground-truth box, for
  the raw and relative maps at the static layer and the contrastive map at l* (mean, standard
  error).
- Figure 5: how often each layer is chosen as l*, per question kind.

Questions without a box (existence answered "no") count for accuracy only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from laser_core.clvs import ClvsResult, cells_in_box
from laser_core.config import LaserConfig
from laser_core.crop import Box, box_mass_share, crop_size
from laser_core.files import write_atomic
from laser_core.loading import VLM
from laser_core.methods import METHODS, run_method, run_methods
from laser_core.pipeline import explain
from laser_core.stages import resolve_config
from laser_core.toy import scenes as world

MAPS = ("raw", "relative", "contrastive")  # Table 2 rows
CEILING = "vanilla_true_crop"


def true_crop(box: Box, image_size: tuple[int, int], config: LaserConfig) -> Box:
    """The crop of the method's size rule centred on ``box``, shifted inside the image."""
    width, height = image_size
    crop_w, crop_h = crop_size(width, height, ratio=config.crop_ratio, minimum=config.crop_min)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(round(min(max(cx - crop_w / 2, 0), width - crop_w)))
    y0 = int(round(min(max(cy - crop_h / 2, 0), height - crop_h)))
    return x0, y0, x0 + crop_w, y0 + crop_h


def normalise(answer: str) -> str:
    """Lower case, no surrounding spaces or final full stop."""
    return answer.strip().lower().rstrip(".").strip()


def run_question(
    vlm: VLM, scene: world.Scene, question: world.Question, config: LaserConfig
) -> dict[str, Any]:
    """Every method on one question; the record keeps answers, l*, and map shares."""
    record: dict[str, Any] = {
        "seed": scene.seed,
        "kind": question.kind,
        "question": question.text,
        "truth": question.answer,
        "box": list(question.box) if question.box else None,
        "answers": {},
        "shares": {},
    }
    # `explain` keeps every map (Table 2 reads the relative one, which LASER alone does not
    # need); the methods reuse its captures and its vanilla and LASER answers.
    explained = explain(vlm, scene.image, question.text, config)
    results = run_methods(vlm, scene.image, question.text, METHODS, config, explained=explained)
    for method, result in results.items():
        record["answers"][method] = normalise(result.answer)
    if question.box is not None:
        record["clvs"] = _object_attention(results["clvs"].extras["clvs"], question.box)
    record["layer"], record["static_layer"] = explained.layer, explained.static_layer
    if question.box is not None:
        assert explained.relative_maps is not None  # explain captures the generic prompt
        maps = {
            "raw": explained.raw_maps[explained.static_layer],
            "relative": explained.relative_maps[explained.static_layer],
            "contrastive": explained.contrastive_maps[explained.layer],
        }
        record["shares"] = {
            name: box_mass_share(heat, explained.cell_boxes, question.box)
            for name, heat in maps.items()
        }
    if question.box is not None:
        crop = scene.image.crop(true_crop(question.box, scene.image.size, config))
        record["answers"][CEILING] = normalise(
            run_method(vlm, crop, question.text, "vanilla", config).answer
        )
    return record


def _object_attention(clvs: ClvsResult, box: Box) -> dict[str, Any]:
    """First answer token's attention to the asked object per layer, with and without CLVS."""
    attention = clvs.image_attention(0, cells_in_box(clvs.cell_boxes, box))
    return {
        "with": attention["after"].tolist(),
        "without": attention["baseline"].tolist(),
        "stop_layer": clvs.stop_layer,
    }


def run_toy_bench(
    vlm: VLM,
    *,
    n: int,
    start: int = 0,
    config: LaserConfig | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run the benchmark on held-out scenes ``start .. start + n - 1``.

    Returns:
        ``{"config", "model_id", "n_scenes", "seeds", "records", "summary", "seconds"}``.
    """
    config = resolve_config(vlm, config if config is not None else LaserConfig())
    records: list[dict[str, Any]] = []
    t0 = time.time()
    for i, seed in enumerate(world.heldout_seeds(n, start=start)):
        scene = world.make_scene(seed)
        for question in world.make_questions(scene, np.random.default_rng(seed)):
            records.append(run_question(vlm, scene, question, config))
        if log is not None and ((i + 1) % 25 == 0 or i + 1 == n):
            log(f"[bench toy] {i + 1}/{n} scenes, {time.time() - t0:.0f}s")
    return {
        "config": config.to_dict(),
        "model_id": _short_id(vlm.model_id),
        "n_scenes": n,
        "seeds": [world.HELD_OUT_START + start, world.HELD_OUT_START + start + n - 1],
        "n_layers": vlm.adapter.n_layers,
        "records": records,
        "summary": summarise(records, vlm.adapter.n_layers),
        "seconds": time.time() - t0,
    }


def _short_id(model_id: str) -> str:
    """A local folder inside the working directory is shown relative to it."""
    path = Path(model_id)
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd()))
    return model_id


def _mean_se(values: Sequence[float]) -> dict[str, float]:
    x = np.asarray(values, dtype=np.float64)
    se = float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
    return {"mean": float(x.mean()) if len(x) else float("nan"), "se": se, "n": int(len(x))}


def summarise(records: list[dict[str, Any]], n_layers: int) -> dict[str, Any]:
    """Accuracy per method and kind, map shares (mean, se), and the l* histogram per kind."""
    kinds = [*world.KINDS, "all"]
    pick = {k: [r for r in records if k == "all" or r["kind"] == k] for k in kinds}
    accuracy: dict[str, dict[str, dict[str, float]]] = {}
    for method in [*METHODS, CEILING]:
        accuracy[method] = {}
        for kind in kinds:
            hits = [
                r["answers"][method] == r["truth"] for r in pick[kind] if method in r["answers"]
            ]
            accuracy[method][kind] = _mean_se([float(h) for h in hits])
    shares = {
        name: {
            kind: _mean_se([r["shares"][name] for r in pick[kind] if r["shares"]]) for kind in kinds
        }
        for name in MAPS
    }
    layers = {
        kind: np.bincount([r["layer"] for r in pick[kind]], minlength=n_layers).tolist()
        for kind in kinds
    }
    traces = [r["clvs"] for r in records if r.get("clvs")]
    clvs = {
        name: [_mean_se(column) for column in zip(*(t[name] for t in traces), strict=True)]
        for name in ("without", "with")
    }
    return {"accuracy": accuracy, "shares": shares, "layer_counts": layers, "clvs_object": clvs}


def _pct(cell: dict[str, float]) -> str:
    return "–" if cell["n"] == 0 else f"{100 * cell['mean']:.1f}"


def _share(cell: dict[str, float]) -> str:
    if cell["n"] == 0:
        return "–"
    se = "–" if np.isnan(cell["se"]) else f"{cell['se']:.3f}"
    return f"{cell['mean']:.3f} ± {se}"


def markdown(report: dict[str, Any]) -> str:
    """The three tables as markdown."""
    summary, kinds = report["summary"], [*world.KINDS, "all"]
    static = report["config"]["static_layer"]
    n_q = summary["accuracy"]["vanilla"]["all"]["n"]
    lines = [
        f"# Toy benchmark: {report['n_scenes']} held-out scenes, {n_q} questions",
        "",
        f"Model: `{report['model_id']}`; static layer {static}; {report['seconds']:.0f} s.",
        "",
        "## Table 1: accuracy (%) per question kind",
        "",
        "| method | " + " | ".join(kinds) + " |",
        "|---" * (len(kinds) + 1) + "|",
    ]
    for method, row in summary["accuracy"].items():
        name = "vanilla on the true crop (ceiling)" if method == CEILING else method
        lines.append(f"| {name} | " + " | ".join(_pct(row[k]) for k in kinds) + " |")
    counts = " ".join(f"{k} {summary['accuracy']['vanilla'][k]['n']}" for k in world.KINDS)
    ceiling_n = summary["accuracy"][CEILING]["all"]["n"]
    lines += [
        "",
        f"Questions per kind: {counts}. The ceiling is measured on the {ceiling_n} "
        "questions with a ground-truth box (existence answered 'no' has none).",
        "",
        "## Table 2: attention aggregation (share of map mass in the ground-truth box)",
        "",
        "| map | layer | " + " | ".join(kinds) + " |",
        "|---" * (len(kinds) + 2) + "|",
    ]
    for name in MAPS:
        layer = "l*" if name == "contrastive" else f"static ({static})"
        cells = [summary["shares"][name][k] for k in kinds]
        lines.append(f"| {name} | {layer} | " + " | ".join(_share(c) for c in cells) + " |")
    lines += [
        "",
        "Mean ± standard error over questions with a box.",
        "",
        "## Figure 5: chosen layer l* per question kind (counts)",
        "",
        "| kind | " + " | ".join(str(i) for i in range(report["n_layers"])) + " |",
        "|---" * (report["n_layers"] + 1) + "|",
    ]
    for kind in kinds:
        lines.append(
            f"| {kind} | " + " | ".join(str(c) for c in summary["layer_counts"][kind]) + " |"
        )
    clvs = summary.get("clvs_object", {})
    if clvs.get("with"):
        lines += [
            "",
            "## CLVS Figure 6 in kind: first answer token's attention to the asked object",
            "",
            "| CLVS | " + " | ".join(f"layer {i}" for i in range(len(clvs["with"]))) + " |",
            "|---" * (len(clvs["with"]) + 1) + "|",
        ]
        for name in ("without", "with"):
            lines.append(f"| {name} | " + " | ".join(_share(c) for c in clvs[name]) + " |")
        lines += ["", f"Mean ± standard error over {clvs['with'][0]['n']} questions with a box."]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``toy_bench.json`` and ``toy_bench.md`` into ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "toy_bench.json", folder / "toy_bench.md"
    write_atomic(json_path, json.dumps(report, indent=1) + "\n")
    write_atomic(md_path, markdown(report))
    return json_path, md_path
