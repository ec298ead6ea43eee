"""Training data: seeded scenes, views, per-patch labels, prompts and batches of both phases.

Every batch is a pure function of its step: step ``s`` of the vision phase draws from
``np.random.default_rng([1, s])``, of the LLaVA phase from ``default_rng([2, s])``, so a
resumed run sees exactly the batches an uninterrupted one would. Training scenes use seeds
below ``HELD_OUT_START``. Images reach the model through `Pixels` and `Prompts`, fast
equivalents of the processor that `check_fast_path` compares with the real one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from transformers import LlavaProcessor

from laser_core.toy import scenes as W

from .model import GRID, IMAGE_TOKEN, VIEW

CROP_SIDES = (192, 224, 224, 224, 256)  # crop sides (px on the 448 canvas) seen in training
VICROP_SIDES = (64, 224)  # range of the second image's side in two-image (ViCrop) turns
TWO_IMAGE_EVERY = 8  # every 8th LLaVA batch is ViCrop's turn: the full view, then a crop
MARK_LEGIBLE_SIDE = 256  # views wider than this carry no mark label in the vision phase
FULL_KINDS = ("exist", "colour", "shape", "relation", "mark")  # full-view question mix
CROP_KINDS = ("mark", "mark", "mark", "colour", "shape", "exist")  # zoomed-view question mix
# The mixes of the shipped run: more of the kinds that were slow to learn (at 16 x 16, full-view
# colour stayed near 50 % with one share in eight, so it has two in nine).
FULL_KINDS_V2 = ("exist", "colour", "shape", "relation") * 2 + ("mark",)
CROP_KINDS_V2 = ("mark", "mark", "colour", "shape", "shape", "exist")
# Phase 3's mixes for its non-relation turns: shape twice as often at full view (4 in 11) and
# more often on crops (3 in 7); why, in `relations`' docstring.
RELATION_FULL_KINDS = ("exist", "colour", "shape", "shape", "relation") * 2 + ("mark",)
RELATION_CROP_KINDS = ("mark", "mark", "colour", "shape", "shape", "shape", "exist")


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
        self.n_image = GRID**2
        self.cache: dict[tuple[str, int], list[int]] = {}

    def __call__(self, text: str, *, images: int = 1) -> list[int]:
        """The ids of a user turn with ``text`` and ``images`` images, then "assistant :"."""
        if (text, images) not in self.cache:
            content = [{"type": "image"}] * images + [{"type": "text", "text": text}]
            messages = [{"role": "user", "content": content}]
            prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
            prompt = prompt.replace(IMAGE_TOKEN, IMAGE_TOKEN * self.n_image)
            self.cache[(text, images)] = self.tok(prompt, add_special_tokens=False)["input_ids"]
        return self.cache[(text, images)]

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
    if hi_x < lo_x or hi_y < lo_y:  # a window smaller than the object: centre it on the object
        return W.crop_box(obj.box, side=side)
    x = int(np.clip(cx + rng.integers(-jitter, jitter + 1), lo_x, hi_x))
    y = int(np.clip(cy + rng.integers(-jitter, jitter + 1), lo_y, hi_y))
    return (x, y, x + side, y + side)


def _max_objects(step: int, total: int) -> int:
    """Curriculum: 2 objects at most for the first 20% of steps, then up to 4."""
    return 2 if step < 0.2 * total else W.MAX_OBJECTS


def _share(scene: W.Scene, box: W.Box, index: int) -> np.ndarray:
    """[GRID * GRID] share of each patch of the view covered by object ``index`` (-1: the
    background)."""
    x0, y0, x1, _ = box
    cell = (x1 - x0) // GRID
    inside = scene.labels[y0 : y0 + GRID * cell, x0 : x0 + GRID * cell] == index
    return inside.reshape(GRID, cell, GRID, cell).mean((1, 3)).ravel()


def _patch_labels(scene: W.Scene, box: W.Box) -> np.ndarray:
    """[3, GRID * GRID] int64 (colour, shape, mark) class per patch of the view; -100 = ignore."""
    shares = np.stack([_share(scene, box, i) for i in range(len(scene.objects))], 1)
    owner = shares.argmax(1)
    out = np.full((3, GRID * GRID), -100, np.int64)
    out[0, _share(scene, box, -1) >= 0.8] = 0  # shape and mark: object patches only
    legible = box[2] - box[0] <= MARK_LEGIBLE_SIDE
    for p in np.nonzero(shares.max(1) >= 0.3)[0]:
        o = scene.objects[owner[p]]
        out[0, p] = list(W.COLOURS).index(o.colour) + 1
        out[1, p] = W.SHAPES.index(o.shape) + 1
        out[2, p] = W.MARKS.index(o.mark) + 1 if legible else -100
    return out


def object_patches(scene: W.Scene, box: W.Box, index: int) -> np.ndarray:
    """[GRID * GRID] bool: the patches of the view mostly on object ``index`` (at least its
    best-covered patch when it shows at all)."""
    share = _share(scene, box, index)
    mask = share >= 0.3
    if not mask.any() and share.max() > 0:
        mask[share.argmax()] = True
    return mask


def _crop_side(rng: np.random.Generator) -> int:
    """A training crop's side: mostly LASER's (192-256 px), a quarter ViCrop's (64-224 px)."""
    if rng.random() < 0.25:
        return int(rng.integers(VICROP_SIDES[0], VICROP_SIDES[1] + 1))
    return int(rng.choice(CROP_SIDES))


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
            box: W.Box = FULL
        else:
            obj = scene.objects[int(rng.integers(len(scene.objects)))]
            box = _view_box(obj, _crop_side(rng), rng)
        xs.append(pixels(scene.image.crop(box)))
        ys.append(_patch_labels(scene, box))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


FULL: W.Box = (0, 0, W.CANVAS, W.CANVAS)


@dataclass(frozen=True)
class Example:
    """One training turn: the views of a scene it shows, the user text and the answer.

    ``look`` names the objects (indices into ``scene.objects``) the two grounding heads should
    attend to when answering: the asked object twice, or a relation's subject and reference;
    None when no single object is asked about (query-free, generic, an absent object).
    """

    scene: W.Scene
    views: tuple[W.Box, ...]
    text: str
    answer: str
    look: tuple[int, int] | None

    def images(self) -> list[Image.Image]:
        return [self.scene.image.crop(v) for v in self.views]


def _look(scene: W.Scene, q: W.Question) -> tuple[int, int] | None:
    """The (subject, reference) objects of ``q``; the reference of a relation is named last."""
    if q.box is None:
        return None
    subject = next(i for i, o in enumerate(scene.objects) if o.box == q.box)
    if q.kind != "relation":
        return subject, subject
    match = re.search(r"the (\w+) object\?$", q.text)
    assert match is not None, q.text
    reference = next(i for i, o in enumerate(scene.objects) if o.colour == match.group(1))
    return subject, reference


def _full_question(scene: W.Scene, rng: np.random.Generator, kinds: tuple[str, ...]) -> W.Question:
    """A question of one of ``kinds`` (relation only when the scene has two objects or more)."""
    usable = [k for k in kinds if k != "relation" or len(scene.objects) > 1]
    kind: W.QuestionKind = usable[int(rng.integers(len(usable)))]  # type: ignore[assignment]
    q = W.make_question(scene, rng, kind)
    if q is None:
        q = W.make_question(scene, rng, "colour")
    assert q is not None
    return q


def llava_example(
    rng: np.random.Generator,
    step: int,
    total: int,
    *,
    full_kinds: tuple[str, ...] = FULL_KINDS,
    crop_kinds: tuple[str, ...] = CROP_KINDS,
) -> Example:
    """One single-image training turn; a kind listed twice is twice as likely."""
    n = int(rng.integers(1, _max_objects(step, total) + 1))
    scene = W.make_scene(int(rng.integers(W.HELD_OUT_START)), n_objects=n)
    u = rng.random()
    if u < 0.07:  # query-free prompt: the most salient colour
        return Example(scene, (FULL,), W.SUFFIX.strip(), W.salient_colour(scene), None)
    if u < 0.14:  # generic prompt: a short description
        return Example(scene, (FULL,), W.GENERIC_QUESTION + W.SUFFIX, W.describe(scene), None)
    if u < 0.55:  # full view, any kind
        q = _full_question(scene, rng, full_kinds)
        return Example(scene, (FULL,), q.text + W.SUFFIX, q.answer, _look(scene, q))
    # Zoomed view around a target object, question about that object.
    target = scene.objects[int(rng.integers(n))]
    box = _view_box(target, _crop_side(rng), rng)
    q = W.make_question(scene, rng, rng.choice(list(crop_kinds)), target=target)
    assert q is not None
    if q.kind == "exist" and q.answer == "yes" and q.box is None:
        raise AssertionError("exist-yes must have a box")
    return Example(scene, (box,), q.text + W.SUFFIX, q.answer, _look(scene, q))


def relation_example(rng: np.random.Generator) -> Example:
    """A relation question at full view on a scene of 2-4 objects (phase 3, `relations`)."""
    while True:
        n = int(rng.integers(2, W.MAX_OBJECTS + 1))
        scene = W.make_scene(int(rng.integers(W.HELD_OUT_START)), n_objects=n)
        q = W.make_question(scene, rng, "relation")
        if q is not None:  # None when no pair is clearly apart on either axis
            return Example(scene, (FULL,), q.text + W.SUFFIX, q.answer, _look(scene, q))


def two_image_example(
    rng: np.random.Generator, step: int, total: int, *, full_kinds: tuple[str, ...]
) -> Example:
    """ViCrop's turn: the full view and a 64-224 px crop around one object, then a question."""
    n = int(rng.integers(1, _max_objects(step, total) + 1))
    scene = W.make_scene(int(rng.integers(W.HELD_OUT_START)), n_objects=n)
    target = int(rng.integers(n))
    side = int(rng.integers(VICROP_SIDES[0], VICROP_SIDES[1] + 1))
    box = _view_box(scene.objects[target], side, rng)
    kinds = tuple(k for k in full_kinds if k != "relation")  # the crop is about one object
    kind: W.QuestionKind = kinds[int(rng.integers(len(kinds)))]  # type: ignore[assignment]
    q = W.make_question(scene, rng, kind, target=scene.objects[target])
    assert q is not None
    return Example(scene, (FULL, box), q.text + W.SUFFIX, q.answer, _look(scene, q))


def _grounding_targets(ex: Example, n_seq: int, image_positions: list[int]) -> np.ndarray:
    """[2, n_seq] bool: the image-token positions the two grounding heads should attend to."""
    out = np.zeros((2, n_seq), bool)
    if ex.look is None:
        return out
    masks = [np.concatenate([object_patches(ex.scene, v, i) for v in ex.views]) for i in ex.look]
    for head, mask in enumerate(masks):
        out[head, np.asarray(image_positions)[mask]] = True
    return out


def two_image_step(step: int) -> bool:
    """Whether batch ``step`` is ViCrop's two-image turns (every ``TWO_IMAGE_EVERY``-th)."""
    return step % TWO_IMAGE_EVERY == TWO_IMAGE_EVERY - 1


def llava_batch(
    step: int,
    size: int,
    pixels: Pixels,
    prompts: Prompts,
    *,
    total: int,
    full_kinds: tuple[str, ...],
    crop_kinds: tuple[str, ...],
) -> tuple[torch.Tensor, ...]:
    """LLaVA-phase batch of ``step`` (of ``total``, for the curriculum), right-padded; every
    ``TWO_IMAGE_EVERY``-th batch is made of two-image turns.

    Returns:
        pixel values [batch x images, 3, VIEW, VIEW]; input ids, attention mask and labels, each
        [batch, seq] int64 (labels -100 on the prompt and the padding: only answers are learnt);
        the last prompt position [batch] int64 (where the first answer word is predicted); the
        grounding targets [batch, 2, seq] bool (see `Example.look`).
    """
    rng = np.random.default_rng([2, step])
    if two_image_step(step):
        examples = [two_image_example(rng, step, total, full_kinds=full_kinds) for _ in range(size)]
    else:
        examples = [
            llava_example(rng, step, total, full_kinds=full_kinds, crop_kinds=crop_kinds)
            for _ in range(size)
        ]
    return collate(examples, pixels, prompts)


def collate(examples: list[Example], pixels: Pixels, prompts: Prompts) -> tuple[torch.Tensor, ...]:
    """The tensors of a batch of ``examples`` (see `llava_batch`)."""
    size = len(examples)
    xs, seqs, labels = [], [], []
    for ex in examples:
        xs.extend(pixels(image) for image in ex.images())
        p, a = prompts(ex.text, images=len(ex.views)), prompts.answer(ex.answer)
        seqs.append(p + a)
        labels.append([-100] * len(p) + a)
    width = max(len(s) for s in seqs)
    pad = prompts.tok.pad_token_id
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    lab = torch.tensor([s + [-100] * (width - len(s)) for s in labels])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    last = torch.tensor([lab[b].ne(-100).nonzero()[0, 0].item() - 1 for b in range(size)])
    image_id = prompts.tok.convert_tokens_to_ids(IMAGE_TOKEN)
    targets = np.stack(
        [
            _grounding_targets(ex, width, (ids[b] == image_id).nonzero()[:, 0].tolist())
            for b, ex in enumerate(examples)
        ]
    )
    return torch.from_numpy(np.stack(xs)), ids, mask, lab, last, torch.from_numpy(targets)
