"""The whole run, resumable: build, phase 1 (``vision``), phase 2 (``llava``), phase 3
(``relations``, experimental: only with ``--relation-steps``, in one or more stages), then export.

Seeded: torch's global RNG is seeded once before the model is built, and every batch is a
function of its step (`data`), so on the CPU the same arguments give the same weights (on a
GPU they do not: its attention backward is not deterministic). Checkpoints
``vision.pt``, ``llava.pt`` and ``relations-1.pt``, ``relations-2.pt``, ... (one per stage of
phase 3) in the run folder are picked up again by the next invocation:
a finished phase is skipped, an interrupted one continues from its last checkpoint, and the
result equals that of an uninterrupted run with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import LlavaForConditionalGeneration, LlavaProcessor

from laser_core import load_model
from laser_core.loading import pick_device

from .data import Pixels, Prompts, check_fast_path
from .evaluate import evaluate
from .examples import write_examples
from .loop import load_checkpoint, pick_precision
from .model import build_model, build_processor
from .relations import train_relations
from .tune import init_projector, train_llava
from .vision import train_vision


def run_training(args: argparse.Namespace) -> None:
    """Train (or, with ``args.export_only``, just reload), then save, evaluate and summarise.

    Args:
        args: The flags of ``scripts/train_embedded.py`` (see its ``--help``).
    """
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    processor = build_processor()
    model = build_model(
        processor,
        hidden=args.hidden,
        layers=args.layers,
        vision_hidden=args.vision_hidden,
        vision_layers=args.vision_layers,
    )
    device = pick_device(args.device)
    model.to(device)
    args.precision = pick_precision(args.precision, device)
    pixels, prompts = Pixels(processor), Prompts(processor)
    check_fast_path(processor, pixels, prompts)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {n_params / 1e6:.2f}M parameters; vocab {len(processor.tokenizer)}; "
        f"on {device}, forward passes in {args.precision}",
        flush=True,
    )

    stages = _relation_checkpoints(run_dir)
    if args.export_only:
        path = stages[-1] if stages else run_dir / "llava.pt"
        state = load_checkpoint(path)
        if state is None:
            raise SystemExit(f"--export-only: no LLaVA or relations checkpoint in {run_dir}")
        model.load_state_dict(state["model"])
        print(f"exporting the {path.name} checkpoint of step {state['step']}", flush=True)
    else:
        if args.init_from is None:
            _train_phases(model, processor, pixels, prompts, args, run_dir)
        elif not stages:  # a resumed phase 3 has its own weights
            start = LlavaForConditionalGeneration.from_pretrained(args.init_from)
            model.load_state_dict(start.state_dict())
            print(f"phases 1 and 2 skipped: starting from {args.init_from}", flush=True)
        _train_relations(model, pixels, prompts, args, run_dir)
    result = _export(model, processor, args)
    elapsed = time.time() - t_start
    summary = {
        "args": vars(args),
        "eval": result,
        "params": n_params,
        "wall_s_this_invocation": elapsed,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"saved to {Path(args.out)}; this invocation took {elapsed / 60:.1f} min", flush=True)


def _train_phases(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    pixels: Pixels,
    prompts: Prompts,
    args: argparse.Namespace,
    run_dir: Path,
) -> None:
    """Phase 1, then phase 2; a fresh phase 2 starts from phase 1's tower (and heads). Phase 2's
    checkpoint is also phase 3's start."""
    train_vision(
        model,
        pixels,
        run_dir / "vision.pt",
        steps=args.vision_steps,
        batch=args.vision_batch,
        lr=args.vision_lr,
        log_every=args.log_every,
        ckpt_every=args.ckpt_every,
        workers=args.workers,
        precision=args.precision,
    )
    if not (run_dir / "llava.pt").exists():  # fresh LLaVA phase: take the trained tower
        state = load_checkpoint(run_dir / "vision.pt")
        assert state is not None  # train_vision has just saved it
        model.model.vision_tower.load_state_dict(state["tower"])
        if args.projector_init == "heads":
            init_projector(
                model,
                state["heads"],
                processor.tokenizer,
                gain=args.init_gain,
                place_gain=args.place_gain,
            )
    train_llava(
        model,
        pixels,
        prompts,
        run_dir / "llava.pt",
        steps=args.llava_steps,
        batch=args.batch,
        lr=args.lr,
        tower_lr_scale=args.tower_lr_scale,
        full_kinds=tuple(args.full_kinds.split(",")),
        crop_kinds=tuple(args.crop_kinds.split(",")),
        ground_weight=args.ground_weight,
        log_every=args.log_every,
        ckpt_every=args.ckpt_every,
        eval_every=args.eval_every,
        workers=args.workers,
        precision=args.precision,
    )


def _train_relations(
    model: LlavaForConditionalGeneration,
    pixels: Pixels,
    prompts: Prompts,
    args: argparse.Namespace,
    run_dir: Path,
) -> None:
    """Phase 3's stages in turn, from the model as it stands (none when ``--relation-steps`` is
    0). Each stage starts afresh (optimizer, learning-rate schedule, probes) from the weights the
    one before left, so stage 2 equals a run of its own with ``--init-from`` stage 1's model."""
    for i, (steps, share, tower_lr_scale) in enumerate(
        zip(args.relation_steps, args.relation_share, args.relation_tower_lr_scale, strict=True)
    ):
        print(f"[relations] stage {i + 1}/{len(args.relation_steps)}", flush=True)
        train_relations(
            model,
            pixels,
            prompts,
            run_dir / f"relations-{i + 1}.pt",
            steps=steps,
            batch=args.batch,
            lr=args.relation_lr,
            tower_lr_scale=tower_lr_scale,
            share=share,
            full_kinds=tuple(args.relation_full_kinds.split(",")),
            crop_kinds=tuple(args.relation_crop_kinds.split(",")),
            ground_weight=args.ground_weight,
            two_image=args.relation_two_image,
            log_every=args.log_every,
            ckpt_every=args.ckpt_every,
            workers=args.workers,
            precision=args.precision,
        )


def _relation_checkpoints(run_dir: Path) -> list[Path]:
    """The checkpoints of phase 3's stages in ``run_dir``, in stage order."""
    return sorted(run_dir.glob("relations-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def _export(
    model: LlavaForConditionalGeneration, processor: LlavaProcessor, args: argparse.Namespace
) -> dict:
    """Save model + processor to ``args.out`` (from the CPU), evaluate on the training device,
    write the example scenes."""
    device = model.device
    model.eval().to("cpu")
    model.set_attn_implementation("sdpa")  # training's grounding hook is not part of the model
    model.save_pretrained(Path(args.out))
    processor.save_pretrained(Path(args.out))
    result = evaluate(model.to(device), processor, n_scenes=args.eval_scenes, start=args.eval_start)
    if args.example_scenes > 0:  # 0: keep the example rows as they are
        write_examples(
            load_model(Path(args.out), device="cpu"),
            Path(args.examples),
            scenes=args.example_scenes,
        )
    return result
