"""The app's example rows, chosen for what they teach, each with a caption that its run bears out.

Every candidate is a held-out scene (seeds from 1 900 000, outside the benchmark's range) run
through `laser_core.explain` exactly as the app runs it. A row is kept for a role only if the
run shows what the role claims; the caption quotes the answers that run gave. In page order:

- win: a fine-mark question the plain model reads wrong at full view and LASER's crop reads right;
- both right: a shape question both answer right;
- crop loses context: a colour question the full view answers right and LASER's crop, which
  leaves out most of the asked object, answers wrong;
- existence: an existence question LASER answers right; relation: a relation question the
  plain model answers right; both labelled with what each method said.

A role with no such scene among those scanned is left out (a barely trained model has few).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from laser_core import VLM, explain
from laser_core.bench.toy import normalise
from laser_core.crop import Box
from laser_core.files import write_atomic
from laser_core.toy import scenes as W

START = 900_000  # offset into the held-out seeds: scenes 1 900 000 and on
SCENES = 200  # held-out scenes scanned for the roles


@dataclass(frozen=True)
class Run:
    """One question's truth and what vanilla and LASER answered."""

    question: W.Question
    vanilla: str
    laser: str
    crop_box: Box

    @property
    def vanilla_right(self) -> bool:
        return self.vanilla == self.question.answer

    @property
    def laser_right(self) -> bool:
        return self.laser == self.question.answer

    @property
    def kept(self) -> float:
        """Share of the asked object's box inside LASER's crop (1.0 when nothing is asked of)."""
        box = self.question.box
        if box is None:
            return 1.0
        x0, y0 = max(box[0], self.crop_box[0]), max(box[1], self.crop_box[1])
        x1, y1 = min(box[2], self.crop_box[2]), min(box[3], self.crop_box[3])
        inside = max(0, x1 - x0) * max(0, y1 - y0)
        return inside / max(1, (box[2] - box[0]) * (box[3] - box[1]))


@dataclass(frozen=True)
class Role:
    name: str
    kind: str
    shows: Callable[[Run], bool]
    caption: Callable[[Run], str]


def _said(run: Run) -> str:
    return f"the plain model says '{run.vanilla}', LASER '{run.laser}'"


ROLES = (
    Role(
        "win",
        "mark",
        lambda r: not r.vanilla_right and r.laser_right,
        lambda r: (
            f"LASER's win: the pattern is too fine for the full view, where the plain model "
            f"reads '{r.vanilla}'; LASER's crop reads it right: '{r.laser}'."
        ),
    ),
    Role(
        "both right",
        "shape",
        lambda r: r.vanilla_right and r.laser_right,
        lambda r: f"Both right: the shape is plain at full view and in LASER's crop ('{r.laser}').",
    ),
    Role(
        "crop loses context",
        "colour",
        lambda r: r.vanilla_right and not r.laser_right and r.kept < 0.5,
        lambda r: (
            f"LASER errs: its crop keeps {r.kept:.0%} of the asked object and answers "
            f"'{r.laser}'; the full view's '{r.vanilla}' is right."
        ),
    ),
    Role(
        "existence",
        "exist",
        lambda r: r.laser_right,
        lambda r: f"Existence (truth: '{r.question.answer}'): {_said(r)}.",
    ),
    Role(
        "relation",
        "relation",
        lambda r: r.vanilla_right,
        lambda r: (
            f"A relation, which needs both objects (truth: '{r.question.answer}'): {_said(r)}."
            + ("" if r.laser_right else f" LASER's crop keeps {r.kept:.0%} of the asked object.")
        ),
    ),
)


def run_question(vlm: VLM, scene: W.Scene, question: W.Question) -> Run:
    """Vanilla's and LASER's answers as the app computes them (one `explain`, default config)."""
    result = explain(vlm, scene.image, question.text)
    return Run(
        question, normalise(result.baseline_answer or ""), normalise(result.answer),
        tuple(int(v) for v in result.crop_box),
    )  # fmt: skip


def pick(vlm: VLM, *, scenes: int = SCENES, start: int = START) -> list[tuple[Role, W.Scene, Run]]:
    """The first scene that shows each role, among ``scenes`` held-out ones, in role order."""
    found: dict[str, tuple[Role, W.Scene, Run]] = {}
    for seed in W.heldout_seeds(scenes, start=start):
        if len(found) == len(ROLES):
            break
        scene = W.make_scene(seed)
        for role in ROLES:
            if role.name in found:
                continue
            question = W.make_question(scene, np.random.default_rng(seed), role.kind)
            if question is None:
                continue
            run = run_question(vlm, scene, question)
            if role.shows(run):
                found[role.name] = (role, scene, run)
                break  # one role per scene: each example shows a different picture
    return [found[role.name] for role in ROLES if role.name in found]


def write_examples(vlm: VLM, out_dir: Path, *, scenes: int = SCENES) -> list[dict]:
    """Pick the rows, then save their scenes and ``examples.json`` in place of the old ones.

    The old files stay until the new rows are known, and the JSON is replaced atomically.
    """
    picked = pick(vlm, scenes=scenes)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for role, scene, run in picked:
        name = f"scene_{scene.seed}.png"
        scene.image.save(out_dir / name)
        rows.append(
            {
                "image": name,
                "question": run.question.text,
                "answer": run.question.answer,
                "kind": run.question.kind,
                "role": role.name,
                "caption": role.caption(run),
                "seed": scene.seed,
                "box": list(run.question.box) if run.question.box else None,
                "vanilla_answer": run.vanilla,
                "laser_answer": run.laser,
                "laser_crop": list(run.crop_box),
            }
        )
    write_atomic(out_dir / "examples.json", json.dumps(rows, indent=2) + "\n")
    kept = {row["image"] for row in rows}
    for old in out_dir.glob("scene_*.png"):
        if old.name not in kept:
            old.unlink()
    print(f"wrote {len(rows)} examples to {out_dir}: {[r['role'] for r in rows]}", flush=True)
    return rows
