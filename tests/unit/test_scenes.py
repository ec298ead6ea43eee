"""The synthetic world: deterministic, boxes match the drawing, answers match the scene."""

from __future__ import annotations

import numpy as np
import pytest

from laser_core.toy import scenes as W

SEEDS = [0, 1, 2, 3, 17, 123, W.HELD_OUT_START, W.HELD_OUT_START + 5]


def test_same_seed_same_scene_and_questions() -> None:
    for seed in SEEDS:
        a, b = W.make_scene(seed), W.make_scene(seed)
        assert a.objects == b.objects
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
        qa = W.make_questions(a, np.random.default_rng(seed))
        qb = W.make_questions(b, np.random.default_rng(seed))
        assert qa == qb
    assert W.make_scene(0).objects != W.make_scene(1).objects


def test_scene_basics() -> None:
    for seed in SEEDS:
        scene = W.make_scene(seed)
        assert scene.image.mode == "RGB" and scene.image.size == (W.CANVAS, W.CANVAS)
        assert 1 <= len(scene.objects) <= W.MAX_OBJECTS
        assert len({o.colour for o in scene.objects}) == len(scene.objects)
        assert len({o.shape for o in scene.objects}) == len(scene.objects)
        for o in scene.objects:
            side = o.box[2] - o.box[0]
            assert W.MIN_SIZE - 2 <= side <= W.MAX_SIZE


@pytest.mark.parametrize("seed", SEEDS)
def test_boxes_are_tight_around_drawn_pixels(seed: int) -> None:
    scene = W.make_scene(seed)
    pixels = np.asarray(scene.image).astype(int)
    for i, o in enumerate(scene.objects):
        rows, cols = np.nonzero(scene.labels == i)
        assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == o.box
        # Pixels in the object's full ink colour occur only inside its box.
        ink = np.all(pixels == np.array(W.COLOURS[o.colour]), axis=-1)
        rows, cols = np.nonzero(ink)
        assert len(rows) > 0
        x0, y0, x1, y1 = o.box
        assert x0 <= cols.min() and cols.max() < x1 and y0 <= rows.min() and rows.max() < y1
    # Boxes do not overlap, and background pixels carry the background colour.
    bg = scene.labels == -1
    assert np.all(pixels[bg] == np.array(scene.background))


def _object_in(scene: W.Scene, box: W.Box | None) -> W.ToyObject:
    matches = [o for o in scene.objects if o.box == box]
    assert len(matches) == 1
    return matches[0]


@pytest.mark.parametrize("seed", range(40))
def test_answers_agree_with_scene(seed: int) -> None:
    scene = W.make_scene(seed)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        for q in W.make_questions(scene, rng):
            assert q.text.endswith("?") and " " not in q.answer
            if q.kind == "exist":
                name = q.text.removeprefix("Is there a ").removesuffix("?")
                present = name in {o.name for o in scene.objects}
                assert q.answer == ("yes" if present else "no")
                assert (q.box is None) == (not present)
                if present:
                    assert _object_in(scene, q.box).name == name
                continue
            target = _object_in(scene, q.box)
            if q.kind == "colour":
                assert target.shape in q.text and q.answer == target.colour
            elif q.kind == "shape":
                assert target.colour in q.text and q.answer == target.shape
            elif q.kind == "mark":
                assert q.answer == target.mark
                assert target.colour in q.text or target.shape in q.text
            elif q.kind == "relation":
                words = q.text.removeprefix("Is the ").removesuffix(" object?")
                subject, rest = words.split(" object ", 1)
                relation, other = rest.rsplit(" the ", 1)
                a = next(o for o in scene.objects if o.colour == subject)
                b = next(o for o in scene.objects if o.colour == other)
                assert a is target
                ax, ay = a.centre
                bx, by = b.centre
                truth = {
                    "left of": ax < bx,
                    "right of": ax > bx,
                    "above": ay < by,
                    "below": ay > by,
                }[relation]
                assert q.answer == ("yes" if truth else "no")


def test_vocabulary_covers_every_prompt_word() -> None:
    vocab = set(W.vocabulary())
    texts = [W.SUFFIX, W.GENERIC_QUESTION]
    for seed in range(30):
        scene = W.make_scene(seed)
        texts.append(W.describe(scene))
        for q in W.make_questions(scene, np.random.default_rng(seed)):
            texts += [q.text, q.answer]
    words = " ".join("".join(c if c.isalnum() else " " for c in t.lower()) for t in texts).split()
    assert set(words) <= vocab


def test_train_and_heldout_seeds_are_disjoint() -> None:
    held = W.heldout_seeds(1000)
    assert all(W.split_of(s) == "heldout" for s in held)
    assert all(W.split_of(s) == "train" for s in range(0, W.HELD_OUT_START, 9973))
    assert len(set(held)) == 1000 and min(held) >= W.HELD_OUT_START


def test_crop_box_holds_the_object() -> None:
    for seed in SEEDS:
        scene = W.make_scene(seed)
        for o in scene.objects:
            x0, y0, x1, y1 = W.crop_box(o.box)
            assert (x1 - x0, y1 - y0) == (W.CANVAS // 2, W.CANVAS // 2)
            assert 0 <= x0 and 0 <= y0 and x1 <= W.CANVAS and y1 <= W.CANVAS
            assert x0 <= o.box[0] and y0 <= o.box[1] and o.box[2] <= x1 and o.box[3] <= y1
