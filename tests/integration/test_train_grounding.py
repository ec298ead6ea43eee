"""The training data's grounding targets and the grounding loss of `scripts/toy_training`.

The loss reads two heads' attention at the last prompt position through the library's attention
hook; it is checked against transformers' own eager attention on a tiny model, and its targets
against the scene's ground truth.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from laser_core.capture import ATTENTION_NAME, attach
from laser_core.toy import scenes as W
from scripts.toy_training import data, model, tune


@pytest.fixture(scope="module")
def parts():
    processor = model.build_processor()
    return processor, data.Pixels(processor), data.Prompts(processor)


def test_object_patches_lie_on_the_object() -> None:
    scene = W.make_scene(W.HELD_OUT_START + 3)
    cell = W.CANVAS // model.GRID
    for index, obj in enumerate(scene.objects):
        mask = data.object_patches(scene, data.FULL, index).reshape(model.GRID, model.GRID)
        rows, cols = np.nonzero(mask)
        assert mask.sum() >= 4  # a 64-88 px object covers several 28-px patches
        x0, y0, x1, y1 = obj.box
        assert (cols * cell >= x0 - cell).all() and ((cols + 1) * cell <= x1 + cell).all()
        assert (rows * cell >= y0 - cell).all() and ((rows + 1) * cell <= y1 + cell).all()


def test_a_relation_looks_at_its_subject_then_its_reference() -> None:
    rng = np.random.default_rng(0)
    scene = next(s for s in map(W.make_scene, range(W.HELD_OUT_START, W.HELD_OUT_START + 50))
                 if len(s.objects) >= 3)  # fmt: skip
    q = W.make_question(scene, rng, "relation")
    assert q is not None
    subject, reference = data._look(scene, q)
    assert scene.objects[subject].box == q.box
    assert q.text.endswith(f"the {scene.objects[reference].colour} object?")
    assert subject != reference


def test_grounding_loss_is_the_attention_mass_eager_attention_gives(parts) -> None:
    processor, pixels, prompts = parts
    torch.manual_seed(0)
    toy = model.build_model(processor, hidden=32, layers=3, vision_hidden=32, vision_layers=1)
    toy.eval()
    x, ids, mask, _, last, targets = data.llava_batch(
        3, 6, pixels, prompts, total=10, full_kinds=data.FULL_KINDS, crop_kinds=data.CROP_KINDS
    )
    assert targets.any(-1).any(), "the batch should ask about some object"
    layer = 1
    toy.set_attn_implementation({"text_config": ATTENTION_NAME, "vision_config": "sdpa"})
    hook = tune.GroundingLoss(layer, last, targets)
    with attach([m.self_attn for m in toy.model.language_model.layers], hook):
        toy(input_ids=ids, attention_mask=mask, pixel_values=x)
    assert hook.loss is not None and hook.loss.requires_grad

    toy.set_attn_implementation("eager")
    with torch.no_grad():
        out = toy(input_ids=ids, attention_mask=mask, pixel_values=x, output_attentions=True)
    rows = out.attentions[layer][torch.arange(len(last)), :2, last]  # [batch, 2, seq]
    mass = (rows * targets).sum(-1)
    asked = targets.any(-1)
    expected = -(mass.clamp_min(1e-6).log() * asked).sum() / asked.sum()
    torch.testing.assert_close(hook.loss.detach(), expected, rtol=1e-5, atol=1e-5)


def test_relation_examples_look_at_the_subject_then_the_reference() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        ex = data.relation_example(rng)
        subject, reference = ex.look
        objects = ex.scene.objects
        assert ex.views == (data.FULL,) and subject != reference
        assert ex.text.startswith(f"Is the {objects[subject].colour} object ")
        assert ex.text.split("?")[0].endswith(f"the {objects[reference].colour} object")
        assert ex.answer in ("yes", "no")


def test_relation_batches_take_vicrops_two_image_turns_only_when_asked(parts) -> None:
    from scripts.toy_training.relations import relation_batch

    _, pixels, prompts = parts
    kinds = {"full_kinds": data.FULL_KINDS_V2, "crop_kinds": data.CROP_KINDS_V2}
    step = data.TWO_IMAGE_EVERY - 1
    for two_image, images in ((False, 4), (True, 8)):
        x, ids, *_ = relation_batch(
            step, 4, pixels, prompts, share=0.5, two_image=two_image, **kinds
        )
        assert x.shape[0] == images  # one view per turn, or the full view and the crop
        per_turn = (ids == prompts.tok.convert_tokens_to_ids(model.IMAGE_TOKEN)).sum(1)
        assert (per_turn == images // 4 * model.GRID**2).all()
    plain = relation_batch(step - 1, 4, pixels, prompts, share=0.5, two_image=True, **kinds)
    assert plain[0].shape[0] == 4  # the other batches are unchanged


def test_training_attention_stays_float32_under_bfloat16_autocast(parts) -> None:
    processor, pixels, prompts = parts
    torch.manual_seed(0)
    toy = model.build_model(processor, hidden=32, layers=3, vision_hidden=32, vision_layers=1)
    layers = tune.tuning_layers(toy)
    batch = data.llava_batch(
        3, 2, pixels, prompts, total=10, full_kinds=data.FULL_KINDS, crop_kinds=data.CROP_KINDS
    )
    seen = []

    def record(module, query, key, value, *args, **kwargs):  # what the scores are computed in
        seen.append((query @ key.transpose(-1, -2)).dtype)

    tower = [layer.self_attn for layer in toy.model.vision_tower.encoder.layers]
    with torch.autocast("cpu", dtype=torch.bfloat16), attach(layers + tower, record):
        toy(input_ids=batch[1], attention_mask=batch[2], pixel_values=batch[0])
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16  # autocast is on
    assert seen == [torch.float32] * (len(tower) + len(layers))  # the tower runs first
