"""Train the embedded toy LLaVA (``assets/models/laser-toy``) on the synthetic world.

A tiny model of the real LLaVA architecture (CLIP vision tower + Llama text model) is built from
scratch and trained in two phases, on CPU:

1. ``vision``: the CLIP tower alone learns per-patch colour / shape / mark labels (a stand-in
   for CLIP pre-training; end-to-end training from random weights stayed at chance).
2. ``llava``: tower frozen; the projector starts as "vision heads -> word embeddings" (see
   ``init_projector``) and, with the language model, learns to answer questions, with a
   curriculum from 1-2 to 1-4 objects, full views and zoomed crops around objects (the crop
   the LASER method takes), plus query-free and generic prompts so those are in distribution.

Seeded and resumable: checkpoints go to ``.train/`` (git-ignored); re-running the same command
continues from the last one. Usage::

    OMP_WAIT_POLICY=PASSIVE python scripts/train_embedded.py --vision-steps 1000 --llava-steps 2200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
from transformers.models.clip import CLIPImageProcessorPil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from laser_core.toy import scenes as W  # noqa: E402
from laser_core.toy.tokenizer import build_word_tokenizer  # noqa: E402

VIEW = 64  # model input side, px
PATCH = 8  # vision patch side, px -> 8 x 8 = 64 visual tokens
IMAGE_TOKEN = "<image>"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}user : "
    "{% if message['content'] is string %}{{ message['content'] }} {% else %}"
    # The question goes BEFORE the image tokens, so image tokens can attend to it.
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }} {% endif %}"
    "{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image> {% endif %}"
    "{% endfor %}{% endif %}"
    "{% else %}assistant : "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}</s> "
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)
CROP_SIDES = (192, 224, 224, 224, 256)  # crop sides (px on the 448 canvas) seen in training
MARK_LEGIBLE_SIDE = 256  # views wider than this carry no mark label in the vision phase
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- model building
def build_processor() -> LlavaProcessor:
    tokenizer = build_word_tokenizer(
        W.vocabulary(), special_tokens=[IMAGE_TOKEN], chat_template=CHAT_TEMPLATE
    )
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": VIEW}, crop_size={"height": VIEW, "width": VIEW}
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )


def build_model(
    processor: LlavaProcessor, args: argparse.Namespace
) -> LlavaForConditionalGeneration:
    tok = processor.tokenizer
    config = LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": args.vision_hidden,
            "intermediate_size": 4 * args.vision_hidden,
            "num_hidden_layers": args.vision_layers,
            "num_attention_heads": 4,
            "image_size": VIEW,
            "patch_size": PATCH,
        },
        text_config={
            "model_type": "llama",
            "hidden_size": args.hidden,
            "intermediate_size": 3 * args.hidden,
            "num_hidden_layers": args.layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "vocab_size": len(tok),
            "max_position_embeddings": 256,
            "tie_word_embeddings": False,
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.eos_token_id,
            "eos_token_id": tok.eos_token_id,
        },
        image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    model = LlavaForConditionalGeneration(config)
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = tok.eos_token_id, tok.pad_token_id, None
    gc.max_new_tokens, gc.do_sample = 8, False
    return model


# ----------------------------------------------------------------------------- data
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


def vision_batch(step: int, size: int, pixels: Pixels) -> tuple[torch.Tensor, torch.Tensor]:
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


FULL_KINDS = ("exist", "colour", "shape", "relation", "mark")  # full-view question mix
CROP_KINDS = ("mark", "mark", "mark", "colour", "shape", "exist")  # zoomed-view question mix
# The mixes of the shipped run: more of the kinds that were slow to learn.
FULL_KINDS_V2 = ("exist", "exist", "colour", "shape", "shape", "relation", "relation", "mark")
CROP_KINDS_V2 = ("mark", "mark", "colour", "shape", "shape", "exist")


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


def llava_batch(step: int, size: int, pixels: Pixels, prompts: Prompts, args):
    rng = np.random.default_rng([2, step])
    xs, seqs, labels = [], [], []
    for _ in range(size):
        image, text, answer = llava_example(
            rng,
            step,
            args.llava_steps,
            full_kinds=tuple(args.full_kinds.split(",")),
            crop_kinds=tuple(args.crop_kinds.split(",")),
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


# ----------------------------------------------------------------------------- training
def _lr(step: int, total: int, peak: float, warmup: int = 50) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _save(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_vision(model, args, pixels: Pixels, ckpt: Path) -> None:
    tower = model.model.vision_tower
    hidden = model.config.vision_config.hidden_size
    heads = torch.nn.ModuleList(
        [
            torch.nn.Linear(hidden, n)
            for n in (len(W.COLOURS) + 1, len(W.SHAPES) + 1, len(W.MARKS) + 1)
        ]
    )
    params = list(tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=args.vision_lr, weight_decay=0.01)
    start = 0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        tower.load_state_dict(state["tower"]), heads.load_state_dict(state["heads"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
    tower.train()
    t0, acc = time.time(), []
    for step in range(start, args.vision_steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, args.vision_steps, args.vision_lr)
        x, y = vision_batch(step, args.vision_batch, pixels)
        feats = tower(pixel_values=x).last_hidden_state[:, 1:]  # [batch, patch, hidden]
        loss = torch.zeros(())
        for h, head in enumerate(heads):
            logits = head(feats)
            loss = loss + F.cross_entropy(
                logits.flatten(0, 1), y[:, h].flatten(), ignore_index=-100
            )
            ok = y[:, h] > 0
            acc.append(((logits.argmax(-1) == y[:, h]) & ok).sum().item() / max(1, ok.sum().item()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % args.log_every == 0 or step + 1 == args.vision_steps:
            a = np.array(acc[-3 * args.log_every :]).reshape(-1, 3).mean(0)
            print(
                f"[vision] step {step + 1}/{args.vision_steps} loss {loss.item():.3f} "
                f"obj-patch acc colour {a[0]:.2f} shape {a[1]:.2f} mark(zoomed) {a[2]:.2f} "
                f"({(time.time() - t0) / (step + 1 - start):.2f}s/step)",
                flush=True,
            )
        if (step + 1) % args.ckpt_every == 0 or step + 1 == args.vision_steps:
            _save(
                ckpt,
                tower=tower.state_dict(),
                heads=heads.state_dict(),
                opt=opt.state_dict(),
                step=step + 1,
            )


def init_projector(model, heads: dict, tokenizer, *, gain: float) -> None:
    """Start the projector as "vision-phase heads, then word embeddings".

    The first linear layer's first rows become the colour / shape / mark heads of the vision
    phase (their logits), and the second layer maps each class's logit to the LM's input
    embedding of that class's word (background classes to nothing). An image token then enters
    the LM as roughly "red + circle + stripes", so answering is close to copying a word, which a
    small LM learns far faster than reading raw features. Every weight stays trainable.
    """
    proj = model.model.multi_modal_projector
    emb = model.get_input_embeddings().weight  # [vocab, hidden]
    classes = [None, *W.COLOURS, None, *W.SHAPES, None, *W.MARKS]  # heads' class order
    weight = torch.cat([heads[f"{i}.weight"] for i in range(3)])  # [classes, vision_hidden]
    bias = torch.cat([heads[f"{i}.bias"] for i in range(3)])
    n = len(classes)
    with torch.no_grad():
        proj.linear_1.weight[:n] = weight
        proj.linear_1.bias[:n] = bias
        proj.linear_2.weight[:, :n] = 0.0
        for k, word in enumerate(classes):
            if word is not None:
                proj.linear_2.weight[:, k] = gain * emb[tokenizer.convert_tokens_to_ids(word)]


def train_llava(model, args, pixels: Pixels, prompts: Prompts, ckpt: Path) -> None:
    tower = model.model.vision_tower
    tower.requires_grad_(args.tower_lr_scale > 0)
    tower_ids = {id(p) for p in tower.parameters()}
    rest = [p for p in model.parameters() if id(p) not in tower_ids]
    groups = [{"params": rest, "scale": 1.0}]
    if args.tower_lr_scale > 0:  # fine-tune the pre-trained tower gently
        groups.append({"params": list(tower.parameters()), "scale": args.tower_lr_scale})
    params = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.01)
    start = 0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
    model.train()
    t0, losses = time.time(), []
    for step in range(start, args.llava_steps):
        for g in opt.param_groups:
            g["lr"] = g["scale"] * _lr(step, args.llava_steps, args.lr, warmup=100)
        x, ids, mask, lab = llava_batch(step, args.batch, pixels, prompts, args)
        out = model(input_ids=ids, attention_mask=mask, pixel_values=x, labels=lab)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(out.loss.item())
        if (step + 1) % args.log_every == 0 or step + 1 == args.llava_steps:
            print(
                f"[llava] step {step + 1}/{args.llava_steps} loss "
                f"{np.mean(losses[-args.log_every :]):.3f} "
                f"({(time.time() - t0) / (step + 1 - start):.2f}s/step, "
                f"{time.strftime('%H:%M:%S')})",
                flush=True,
            )
        if (step + 1) % args.ckpt_every == 0 or step + 1 == args.llava_steps:
            _save(ckpt, model=model.state_dict(), opt=opt.state_dict(), step=step + 1)
        if args.eval_every and (step + 1) % args.eval_every == 0:
            evaluate(model, prompts.processor, n_scenes=40)
            model.train()


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def answer(model, processor: LlavaProcessor, image: Image.Image, text: str) -> str:
    """Greedy answer through the real processor (the path the library uses)."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.decode(new, skip_special_tokens=True).strip()


def evaluate(model, processor: LlavaProcessor, *, n_scenes: int, start: int = 0) -> dict:
    """Accuracy per question kind on held-out scenes: full view and the true object's crop."""
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
    model, processor: LlavaProcessor, out_dir: Path, *, start: int = 900_000
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


def _check_fast_path(processor: LlavaProcessor, pixels: Pixels, prompts: Prompts) -> None:
    """The training shortcuts must equal the processor's output."""
    scene = W.make_scene(12345)
    text = "What color is the circle?" + W.SUFFIX
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    ref = processor(images=scene.image, text=prompt, return_tensors="pt")
    diff = (ref["pixel_values"][0] - torch.from_numpy(pixels(scene.image))).abs().max().item()
    assert diff < 1e-4, f"pixel fast path differs from the processor by {diff}"
    assert ref["input_ids"][0].tolist() == prompts(text), "prompt ids differ from the processor"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--vision-steps", type=int, default=1000)
    ap.add_argument("--vision-batch", type=int, default=32)
    ap.add_argument("--vision-lr", type=float, default=2e-3)
    ap.add_argument("--llava-steps", type=int, default=2200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument(
        "--tower-lr-scale",
        type=float,
        default=0.0,
        help="LLaVA phase: tower learning rate / --lr (0 = frozen tower)",
    )
    ap.add_argument("--full-kinds", default=",".join(FULL_KINDS_V2), help="full-view question mix")
    ap.add_argument(
        "--crop-kinds", default=",".join(CROP_KINDS_V2), help="zoomed-view question mix"
    )
    ap.add_argument(
        "--projector-init",
        choices=["random", "heads"],
        default="heads",
        help="LLaVA phase: projector from random, or from the vision heads + word embeddings",
    )
    ap.add_argument("--init-gain", type=float, default=0.2, help="see init_projector")
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--vision-hidden", type=int, default=128)
    ap.add_argument("--vision-layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--eval-scenes", type=int, default=200)
    ap.add_argument(
        "--export-only",
        action="store_true",
        help="skip training: save and evaluate the latest LLaVA checkpoint",
    )
    ap.add_argument(
        "--examples",
        default=str(ROOT / "assets" / "examples"),
        help="where example scenes + examples.json are written after training",
    )
    ap.add_argument("--run-dir", default=str(ROOT / ".train" / "run"))
    ap.add_argument("--out", default=str(ROOT / "assets" / "models" / "laser-toy"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    processor = build_processor()
    model = build_model(processor, args)
    pixels, prompts = Pixels(processor), Prompts(processor)
    _check_fast_path(processor, pixels, prompts)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters; vocab {len(processor.tokenizer)}", flush=True)

    if args.export_only:
        state = torch.load(run / "llava.pt", weights_only=False)
        model.load_state_dict(state["model"])
        print(f"exporting the LLaVA checkpoint of step {state['step']}", flush=True)
    else:
        train_vision(model, args, pixels, run / "vision.pt")
        if not (run / "llava.pt").exists():  # fresh LLaVA phase: take the trained tower
            state = torch.load(run / "vision.pt", weights_only=False)
            model.model.vision_tower.load_state_dict(state["tower"])
            if args.projector_init == "heads":
                init_projector(model, state["heads"], processor.tokenizer, gain=args.init_gain)
        train_llava(model, args, pixels, prompts, run / "llava.pt")

    model.eval()
    out = Path(args.out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    result = evaluate(model, processor, n_scenes=args.eval_scenes)
    write_examples(model, processor, Path(args.examples))
    elapsed = time.time() - t_start
    (run / "summary.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "eval": result,
                "params": n_params,
                "wall_s_this_invocation": elapsed,
            },
            indent=2,
        )
    )
    print(f"saved to {out}; this invocation took {elapsed / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
