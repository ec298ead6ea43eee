"""Training data: seeded scenes, views, per-patch labels, prompts and batches of both phases.

Every batch is a pure function of its step: step ``s`` of the vision phase draws from
``np.random.default_rng([1, s])``, of the LLaVA phase from ``default_rng([2, s])``, so a
resumed run sees exactly the batches an uninterrupted one would. Training scenes use seeds
below ``HELD_OUT_START``. Images reach the model through `Pixels` and `Prompts`, fast
equivalents of the processor that `check_fast_path` compares with the real one.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import LlavaProcessor

from laser_core.toy import scenes as W

from .model import IMAGE_TOKEN, PATCH, VIEW

CROP_SIDES = (192, 224, 224, 224, 256)  # crop sides (px on the 448 canvas) seen in training
MARK_LEGIBLE_SIDE = 256  # views wider than this carry no mark label in the vision phase
FULL_KINDS = ("exist", "colour", "shape", "relation", "mark")  # full-view question mix
CROP_KINDS = ("mark", "mark", "mark", "colour", "shape", "exist")  # zoomed-view question mix
# The mixes of the shipped run: more of the kinds that were slow to learn.
FULL_KINDS_V2 = ("exist", "exist", "colour", "shape", "shape", "relation", "relation", "mark")
CROP_KINDS_V2 = ("mark", "mark", "colour", "shape", "shape", "exist")


# ----------------------------------------------------------------------------- processor path
class Pixels:
    """Fast equivalent of the processor's image path for square images (checked at start)."""

    def __init__(self, processor: LlavaProcessor):
        ip = processor.image_processor
        self.mean = np.array(ip.image_mean, np.float32)
        self.std = np.array(ip.image_std, np.float32)

    def __call__(self, image: Image.Image) -> np.ndarray:
        x = np.asarray(image.resize((VIEW, VIEW), Image.BICUBIC), np.float32) / 255.0
        return ((x - self.mean) / self.std).transpose(2, 0, 1)  # [3, VIEW, VIEW]


class Prompts:
    """Prompt token ids (image already expanded), cached per user text."""

    def __init__(self, processor: LlavaProcessor):
        self.processor = processor
        self.tok = processor.tokenizer
        self.n_image = (VIEW // PATCH) ** 2
        self.cache: dict[str, list[int]] = {}

    def __call__(self, text: str) -> list[int]:
        if text not in self.cache:
            messages = [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
            ]
            prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
            prompt = prompt.replace(IMAGE_TOKEN, IMAGE_TOKEN * self.n_image)
            self.cache[text] = self.tok(prompt, add_special_tokens=False)["input_ids"]
        return self.cache[text]

    def answer(self, text: str) -> list[int]:
        return self.tok(" " + text, add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]


def check_fast_path(processor: LlavaProcessor, pixels: Pixels, prompts: Prompts) -> None:
    """The training shortcuts must equal the processor's output."""
    scene = W.make_scene(12345)
    text = "What color is the circle?" + W.SUFFIX
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    ref = processor(images=scene.image, text=prompt, return_tensors="pt")
    diff = (ref["pixel_values"][0] - torch.from_numpy(pixels(scene.image))).abs().max().item()
    assert diff < 1e-4, f"pixel fast path differs from the processor by {diff}"
    assert ref["input_ids"][0].tolist() == prompts(text), "prompt ids differ from the processor"


# ----------------------------------------------------------------------------- views and labels
def _view_box(obj: W.ToyObject, side: int, rng: np.random.Generator) -> W.Box:
    """A ``side`` window holding ``obj`` whole, at a random offset (inside the canvas)."""
    x0, y0, x1, y1 = obj.box
    lo_x, hi_x = max(0, x1 - side), min(x0, W.CANVAS - side)
    lo_y, hi_y = max(0, y1 - side), min(y0, W.CANVAS - side)
    # Mostly near-centred (the LASER crop is centred on attention), sometimes anywhere.
    cx, cy = W.crop_box(obj.box, side=side)[:2]
    jitter = side // 6 if rng.random() < 0.7 else side
    x = int(np.clip(cx + rng.integers(-jitter, jitter + 1), lo_x, max(lo_x, hi_x)))
    y = int(np.clip(cy + rng.integers(-jitter, jitter + 1), lo_y, max(lo_y, hi_y)))
    return (x, y, x + side, y + side)


def _max_objects(step: int, total: int) -> int:
    """Curriculum: 2 objects at most for the first 20% of steps, then up to 4."""
    return 2 if step < 0.2 * total else W.MAX_OBJECTS


def _patch_labels(scene: W.Scene, box: W.Box) -> np.ndarray:
    """[3, 64] int64 (colour, shape, mark) class per patch of the view; -100 = ignore."""
    x0, y0, x1, y1 = box
    side = x1 - x0
    ids = scene.labels[y0:y1, x0:x1].astype(np.int64) + 1  # 0 = background
    cell = side // (VIEW // PATCH)
    g = VIEW // PATCH
    onehot = np.eye(W.MAX_OBJECTS + 1, dtype=np.float32)[ids[: g * cell, : g * cell]]
    frac = onehot.reshape(g, cell, g, cell, -1).mean((1, 3)).reshape(g * g, -1)  # [64, 5]
    owner = frac[:, 1:].argmax(1)
    out = np.full((3, g * g), -100, np.int64)
    is_obj = frac[np.arange(g * g), owner + 1] >= 0.3
    is_bg = frac[:, 0] >= 0.8
    out[0, is_bg] = 0  # shape and mark are learnt on object patches only (bg would swamp them)
    for p in np.nonzero(is_obj)[0]:
        o = scene.objects[owner[p]]
        out[0, p] = list(W.COLOURS).index(o.colour) + 1
        out[1, p] = W.SHAPES.index(o.shape) + 1
        out[2, p] = W.MARKS.index(o.mark) + 1 if side <= MARK_LEGIBLE_SIDE else -100
    return out


# ----------------------------------------------------------------------------- batches
def vision_batch(step: int, size: int, pixels: Pixels) -> tuple[torch.Tensor, torch.Tensor]:
    """Vision-phase batch of ``step``: 40% full views, 60% crops around one object.

    Returns:
        pixel values [batch, 3, VIEW, VIEW] float32 and labels [batch, 3, patch] int64
        (colour, shape, mark class per patch; -100 = ignore).
    """
    rng = np.random.default_rng([1, step])
    xs, ys = [], []
    for _ in range(size):
        scene = W.make_scene(int(rng.integers(W.HELD_OUT_START)))
        if rng.random() < 0.4:
            box: W.Box = (0, 0, W.CANVAS, W.CANVAS)
        else:
            obj = scene.objects[int(rng.integers(len(scene.objects)))]
            box = _view_box(obj, int(rng.choice(CROP_SIDES)), rng)
        xs.append(pixels(scene.image.crop(box)))
        ys.append(_patch_labels(scene, box))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def llava_example(
    rng: np.random.Generator,
    step: int,
    total: int,
    *,
    full_kinds: tuple[str, ...] = FULL_KINDS,
    crop_kinds: tuple[str, ...] = CROP_KINDS,
) -> tuple[Image.Image, str, str]:
    """One (view image, user text, answer) training example; a kind listed twice is twice as
    likely."""
    n = int(rng.integers(1, _max_objects(step, total) + 1))
    scene = W.make_scene(int(rng.integers(W.HELD_OUT_START)), n_objects=n)
    u = rng.random()
    if u < 0.07:  # query-free prompt: the most salient colour
        return scene.image, W.SUFFIX.strip(), W.salient_colour(scene)
    if u < 0.14:  # generic prompt: a short description
        return scene.image, W.GENERIC_QUESTION + W.SUFFIX, W.describe(scene)
    if u < 0.55:  # full view, any kind
        kinds = [k for k in full_kinds if k != "relation" or n > 1]
        q = W.make_question(scene, rng, kinds[int(rng.integers(len(kinds)))])
        if q is None:
            q = W.make_question(scene, rng, "colour")
        assert q is not None
        return scene.image, q.text + W.SUFFIX, q.answer
    # Zoomed view around a target object, question about that object.
    target = scene.objects[int(rng.integers(n))]
    box = _view_box(target, int(rng.choice(CROP_SIDES)), rng)
    kind = rng.choice(list(crop_kinds))
    q = W.make_question(scene, rng, kind, target=target)
    assert q is not None
    if q.kind == "exist" and q.answer == "yes" and q.box is None:
        raise AssertionError("exist-yes must have a box")
    return scene.image.crop(box), q.text + W.SUFFIX, q.answer


def llava_batch(
    step: int,
    size: int,
    pixels: Pixels,
    prompts: Prompts,
    *,
    total: int,
    full_kinds: tuple[str, ...],
    crop_kinds: tuple[str, ...],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """LLaVA-phase batch of ``step`` (of ``total``, for the curriculum), right-padded.

    Returns:
        pixel values [batch, 3, VIEW, VIEW]; input ids, attention mask and labels, each
        [batch, seq] int64 (labels -100 on the prompt and the padding: only answers are learnt).
    """
    rng = np.random.default_rng([2, step])
    xs, seqs, labels = [], [], []
    for _ in range(size):
        image, text, answer = llava_example(
            rng, step, total, full_kinds=full_kinds, crop_kinds=crop_kinds
        )
        xs.append(pixels(image))
        p, a = prompts(text), prompts.answer(answer)
        seqs.append(p + a)
        labels.append([-100] * len(p) + a)
    width = max(len(s) for s in seqs)
    pad = prompts.tok.pad_token_id
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    lab = torch.tensor([s + [-100] * (width - len(s)) for s in labels])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    return torch.from_numpy(np.stack(xs)), ids, mask, lab
