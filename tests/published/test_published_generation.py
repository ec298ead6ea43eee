"""The checkpoints' generation_config.json does not leak into our decoding.

Qwen2.5-VL publishes `do_sample: true`, `temperature: 1e-6` and `repetition_penalty: 1.05`. A
penalty would silently rescale the logits LASER, VCD and CLVS combine, and a model of random
weights repeats tokens, so we compare every recorded step with the model's own raw logits,
teacher-forced along the same tokens, and show the comparison catches the published penalty.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from published_models import QUESTION, Checkpoint, scene
from transformers import BatchFeature, GenerationConfig

from laser_core import VLM, LaserConfig, run_method
from laser_core.decode import DecodeStep

pytestmark = pytest.mark.published

CONFIG = LaserConfig(max_new_tokens=6)
PUBLISHED_QWEN = {"do_sample": True, "temperature": 1e-6, "repetition_penalty": 1.05}
TOKEN_KEYS = {"bos_token_id", "eos_token_id", "pad_token_id"}


def _raw_logits(vlm: VLM, inputs: BatchFeature, token_ids: list[int]) -> list[torch.Tensor]:
    """[vocab] logits at the last position after each prefix of `token_ids`, no processors."""
    inputs = BatchFeature(dict(inputs))
    logits = []
    with torch.inference_mode():
        for token_id in token_ids:
            logits.append(vlm.model(**inputs, logits_to_keep=1).logits[0, -1].float())
            new = torch.tensor([[token_id]])
            inputs["input_ids"] = torch.cat([inputs["input_ids"], new], dim=1)
            mask = inputs["attention_mask"]
            inputs["attention_mask"] = torch.cat([mask, torch.ones_like(new)], dim=1)
            if "mm_token_type_ids" in inputs:  # Qwen: generated tokens are text (type 0)
                types = inputs["mm_token_type_ids"]
                inputs["mm_token_type_ids"] = torch.cat([types, torch.zeros_like(new)], dim=1)
    return logits


def _vanilla(vlm: VLM) -> tuple[tuple[DecodeStep, ...], list[torch.Tensor], list[set[int]]]:
    """Vanilla's steps, the raw logits along its tokens, and the ids seen before each step."""
    image = scene()
    steps = run_method(vlm, image, QUESTION, "vanilla", CONFIG).steps
    inputs = vlm.adapter.encode([QUESTION + CONFIG.prompt_suffix], [image], CONFIG)
    tokens = [step.token_id for step in steps]
    prompt = set(inputs["input_ids"][0].tolist())
    seen = [prompt | set(tokens[:index]) for index in range(len(tokens))]
    return steps, _raw_logits(vlm, inputs, tokens), seen


def test_the_built_folder_keeps_the_published_generation_config(checkpoint: Checkpoint) -> None:
    name = "generation_config.json"
    assert (checkpoint.folder / name).read_bytes() == (checkpoint.files / name).read_bytes()
    if checkpoint.family == "qwen2_5_vl":
        published = GenerationConfig.from_pretrained(checkpoint.folder)
        assert {key: getattr(published, key) for key in PUBLISHED_QWEN} == PUBLISHED_QWEN


def test_load_model_keeps_only_the_special_tokens(checkpoint: Checkpoint) -> None:
    published = GenerationConfig.from_pretrained(checkpoint.folder)
    ours = checkpoint.vlm.model.generation_config
    kept = {key: value for key, value in ours.to_diff_dict().items() if key in TOKEN_KEYS}
    assert kept == {key: getattr(published, key) for key in TOKEN_KEYS}
    others = set(ours.to_diff_dict()) - TOKEN_KEYS - {"transformers_version"}
    assert others <= {"do_sample"} and not ours.do_sample
    assert ours.repetition_penalty in (None, 1.0) and ours.temperature in (None, 1.0)
    assert ours.top_k in (None, 0) and ours.top_p in (None, 1.0)


def test_each_step_is_the_argmax_of_the_raw_logits(checkpoint: Checkpoint) -> None:
    steps, raw, seen = _vanilla(checkpoint.vlm)
    assert len(steps) == CONFIG.max_new_tokens
    first = steps[0].candidates[0]
    assert first.z_plus == pytest.approx(float(raw[0][first.token_id]), abs=1e-4)
    for step, logits in zip(steps, raw, strict=True):
        assert step.token_id == int(torch.argmax(logits))
        assert [c.token_id for c in step.candidates] == torch.topk(logits, 5).indices.tolist()
        for candidate in step.candidates:
            assert candidate.z_plus == pytest.approx(float(logits[candidate.token_id]), abs=1e-4)
    # A penalty would have had something to act on: a candidate the context already holds.
    repeated = [
        c
        for step, ids in zip(steps, seen, strict=True)
        for c in step.candidates
        if c.token_id in ids
    ]
    assert repeated


def test_the_comparison_catches_the_published_penalty(
    qwen_checkpoint: Checkpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: with the published generation config on the model, the same comparison fails."""
    vlm = qwen_checkpoint.vlm
    published = GenerationConfig.from_pretrained(qwen_checkpoint.folder)
    monkeypatch.setattr(vlm.model, "generation_config", published)
    steps, raw, seen = _vanilla(vlm)
    penalised = [
        abs(c.z_plus - float(logits[c.token_id]))
        for step, logits, ids in zip(steps, raw, seen, strict=True)
        for c in step.candidates
        if c.token_id in ids
    ]
    assert penalised and max(penalised) > 1e-3


def test_two_stream_decoding_sees_the_raw_logits_too(checkpoint: Checkpoint) -> None:
    """VCD's first step: z+ is the clean image's raw logit, whatever the checkpoint says."""
    vlm = checkpoint.vlm
    config = replace(CONFIG, max_new_tokens=1)
    step = run_method(vlm, scene(), QUESTION, "vcd", config).steps[0]
    inputs = vlm.adapter.encode([QUESTION + config.prompt_suffix], [scene()], config)
    (logits,) = _raw_logits(vlm, inputs, [step.token_id])
    for candidate in step.candidates:
        assert candidate.z_plus == pytest.approx(float(logits[candidate.token_id]), abs=1e-4)
