"""Held-out evaluation through the real processor.

It goes through `answer`, the processor + ``generate`` path the library itself uses, not the
training shortcuts of `data`. The app's example rows are picked by `examples`.
"""

from __future__ import annotations

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
    inputs = processor(images=image, text=prompt, return_tensors="pt").to(model.device)
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
