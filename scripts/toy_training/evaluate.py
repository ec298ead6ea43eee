"""Held-out evaluation through the real processor, and the example scenes the app ships.

Both go through `answer`, the processor + ``generate`` path the library itself uses, not the
training shortcuts of `data`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import LlavaForConditionalGeneration, LlavaProcessor

from laser_core.toy import scenes as W


@torch.no_grad()
def answer(
    model: LlavaForConditionalGeneration, processor: LlavaProcessor, image: Image.Image, text: str
) -> str:
    """Greedy answer through the real processor (the path the library uses)."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.decode(new, skip_special_tokens=True).strip()


def evaluate(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    *,
    n_scenes: int,
    start: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Accuracy per question kind on held-out scenes: full view and the true object's crop.

    Returns:
        ``{"full" | "crop": {kind: {"acc": 0..1, "n": questions}}}``; also printed.
    """
    model.eval()
    hits: dict[str, dict[str, list[int]]] = {"full": {}, "crop": {}}
    for seed in W.heldout_seeds(n_scenes, start=start):
        scene = W.make_scene(seed)
        for q in W.make_questions(scene, np.random.default_rng(seed)):
            text = q.text + W.SUFFIX
            hits["full"].setdefault(q.kind, []).append(
                answer(model, processor, scene.image, text) == q.answer
            )
            if q.box is not None:
                crop = scene.image.crop(W.crop_box(q.box))
                hits["crop"].setdefault(q.kind, []).append(
                    answer(model, processor, crop, text) == q.answer
                )
    result = {
        view: {k: {"acc": float(np.mean(v)), "n": len(v)} for k, v in d.items()}
        for view, d in hits.items()
    }
    line = " | ".join(
        f"{view}: " + " ".join(f"{k} {r['acc']:.2f}" for k, r in d.items())
        for view, d in result.items()
    )
    print(f"[eval {n_scenes} held-out scenes] {line}", flush=True)
    return result


def write_examples(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    out_dir: Path,
    *,
    start: int = 900_000,
) -> None:
    """Save a few held-out example scenes the model handles, plus ``examples.json``.

    Non-mark questions are kept when the full-view answer is right; mark questions when the
    answer from the true object's crop is right (the case LASER's zoom is for).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    # No relation example: the model answers those at chance (see the model card).
    wanted = ["colour", "shape", "exist", "mark", "mark", "shape"]
    examples: list[dict] = []
    for seed in W.heldout_seeds(300, start=start):
        if not wanted:
            break
        scene = W.make_scene(seed)
        if len(scene.objects) < 3:
            continue
        q = W.make_question(scene, np.random.default_rng(seed), wanted[0])
        if q is None:
            continue
        text = q.text + W.SUFFIX
        view = scene.image.crop(W.crop_box(q.box)) if q.kind == "mark" else scene.image
        if answer(model, processor, view, text) != q.answer:
            continue
        full = answer(model, processor, scene.image, text)
        name = f"scene_{seed}.png"
        scene.image.save(out_dir / name)
        examples.append(
            {
                "image": name,
                "question": q.text,
                "answer": q.answer,
                "kind": q.kind,
                "box": list(q.box) if q.box else None,
                "seed": seed,
                "model_full_view_answer": full,
            }
        )
        wanted.pop(0)
    (out_dir / "examples.json").write_text(json.dumps(examples, indent=2) + "\n")
    print(f"wrote {len(examples)} examples to {out_dir}", flush=True)
