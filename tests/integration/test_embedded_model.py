"""The shipped embedded model loads offline and answers toy scenes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from laser_core.toy import scenes as W

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "assets" / "models" / "laser-toy"
EXAMPLES = ROOT / "assets" / "examples" / "examples.json"
ANSWERS = {"yes", "no", *W.COLOURS, *W.SHAPES, *W.MARKS}
N_SCENES = 20
# Measured on the first 20 questions of each kind from held-out scene 1000500 on, with the
# shipped weights (see the model card); chance is 10/20 for yes/no, 5/20 for shape and mark,
# 4/20 for colour:
MIN_EXIST_CORRECT = 15  # existence at full view: 19/20 right
MIN_SHAPE_CORRECT = 14  # shape at full view: 16/20 right
MIN_COLOUR_CORRECT = 15  # colour at full view: 18/20 right
MIN_RELATION_CORRECT = 17  # relation at full view: 20/20 right
MIN_MARK_CROP_CORRECT = 17  # fine mark from the true object's 224-px crop: 20/20 right


@pytest.fixture(scope="module")
def toy():
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    model = LlavaForConditionalGeneration.from_pretrained(MODEL_DIR).eval()
    processor = LlavaProcessor.from_pretrained(MODEL_DIR)
    return model, processor


def _answer(model, processor, image, text: str) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.decode(new, skip_special_tokens=True).strip()


def test_model_is_a_small_llava(toy) -> None:
    model, processor = toy
    assert model.config.model_type == "llava"
    assert sum(p.numel() for p in model.parameters()) < 8_000_000
    size = sum(f.stat().st_size for f in MODEL_DIR.iterdir())
    assert size < 30 * 2**20


def test_answers_come_from_the_answer_vocabulary(toy) -> None:
    model, processor = toy
    scene = W.make_scene(W.HELD_OUT_START)
    for q in W.make_questions(scene, np.random.default_rng(0)):
        answer = _answer(model, processor, scene.image, q.text + W.SUFFIX)
        assert answer in ANSWERS, (q.text, answer)


def _correct(model, processor, kind: str, *, crop: bool) -> int:
    """Right answers to the first ``N_SCENES`` held-out scenes from 1000500 that have a
    question of ``kind`` (a relation needs two objects)."""
    correct = asked = 0
    for seed in W.heldout_seeds(3 * N_SCENES, start=500):
        scene = W.make_scene(seed)
        q = W.make_question(scene, np.random.default_rng(seed), kind)
        if q is None:
            continue
        assert q.box is not None or not crop  # an existence question answered "no" has none
        image = scene.image.crop(W.crop_box(q.box)) if crop else scene.image
        correct += _answer(model, processor, image, q.text + W.SUFFIX) == q.answer
        asked += 1
        if asked == N_SCENES:
            return correct
    raise AssertionError(f"fewer than {N_SCENES} {kind} questions in {3 * N_SCENES} scenes")


def test_existence_questions_mostly_right_at_full_view(toy) -> None:
    assert _correct(*toy, "exist", crop=False) >= MIN_EXIST_CORRECT


def test_shape_questions_mostly_right_at_full_view(toy) -> None:
    assert _correct(*toy, "shape", crop=False) >= MIN_SHAPE_CORRECT


def test_colour_questions_mostly_right_at_full_view(toy) -> None:
    assert _correct(*toy, "colour", crop=False) >= MIN_COLOUR_CORRECT


def test_relation_questions_mostly_right_at_full_view(toy) -> None:
    assert _correct(*toy, "relation", crop=False) >= MIN_RELATION_CORRECT


def test_fine_mark_readable_from_the_true_crop(toy) -> None:
    assert _correct(*toy, "mark", crop=True) >= MIN_MARK_CROP_CORRECT


def test_examples_exist_and_load(toy) -> None:
    from PIL import Image

    examples = json.loads(EXAMPLES.read_text())
    assert len(examples) >= 3
    for ex in examples:
        image = Image.open(EXAMPLES.parent / ex["image"]).convert("RGB")
        assert image.size == (W.CANVAS, W.CANVAS)
        assert ex["answer"] in ANSWERS and ex["question"].endswith("?")


def test_example_captions_hold_for_the_shipped_model() -> None:
    """Each row's recorded answers are what `explain` gives now; the first row is LASER's win."""
    from PIL import Image

    from laser_core import explain, load_model
    from laser_core.bench.toy import normalise

    examples = json.loads(EXAMPLES.read_text())
    assert [ex["role"] for ex in examples][:1] == ["win"]
    vlm = load_model(MODEL_DIR, device="cpu")
    for ex in examples:
        image = Image.open(EXAMPLES.parent / ex["image"]).convert("RGB")
        result = explain(vlm, image, ex["question"])
        assert normalise(result.baseline_answer or "") == ex["vanilla_answer"], ex["caption"]
        assert normalise(result.answer) == ex["laser_answer"], ex["caption"]
        assert f"'{ex['laser_answer']}'" in ex["caption"]
    win = examples[0]
    assert win["laser_answer"] == win["answer"] != win["vanilla_answer"]
