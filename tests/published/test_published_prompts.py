"""Every method sends the prompt the published chat template renders, with one or two images.

The expected prompts are written out below from the published templates (`chat_template.json`
of each checkpoint); a test renders those template files with plain jinja2, without transformers,
to confirm them, and another records what each method really hands the processor.
"""

from __future__ import annotations

import json

import jinja2
import jinja2.ext
import jinja2.sandbox
import pytest
from published_models import FAMILIES, RUNS, Checkpoint, MethodRuns, family_files, scene

from laser_core import LaserConfig
from laser_core.stages import prompt_texts

pytestmark = pytest.mark.published

# METHOD.md's user texts for the question "What colour is the ball?", with the default suffix.
TEXTS = {
    "query": "What colour is the ball? Answer the question using a single word or phrase.",
    "free": "Answer the question using a single word or phrase.",
    "generic": (
        "Write a general description of the image. Answer the question using a single word or "
        "phrase."
    ),
}
_QWEN_SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
_QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
_QWEN_REPLY = "<|im_end|>\n<|im_start|>assistant\n"
# (user text, number of images) -> the prompt the published template renders.
PROMPTS: dict[str, dict[tuple[str, int], str]] = {
    "llava": {  # llava-hf: "USER: <image>\n{text} ASSISTANT:", no system turn
        ("query", 1): "USER: <image>\nWhat colour is the ball? Answer the question using a "
        "single word or phrase. ASSISTANT:",
        ("free", 1): "USER: <image>\nAnswer the question using a single word or phrase. ASSISTANT:",
        ("generic", 1): "USER: <image>\nWrite a general description of the image. Answer the "
        "question using a single word or phrase. ASSISTANT:",
        ("query", 2): "USER: <image>\n<image>\nWhat colour is the ball? Answer the question "
        "using a single word or phrase. ASSISTANT:",
    },
    "qwen2_5_vl": {  # the default system turn, the image(s), then the text
        ("query", 1): _QWEN_SYSTEM + _QWEN_IMAGE + "What colour is the ball? Answer the "
        "question using a single word or phrase." + _QWEN_REPLY,
        ("free", 1): _QWEN_SYSTEM + _QWEN_IMAGE + "Answer the question using a single word or "
        "phrase." + _QWEN_REPLY,
        ("generic", 1): _QWEN_SYSTEM + _QWEN_IMAGE + "Write a general description of the image. "
        "Answer the question using a single word or phrase." + _QWEN_REPLY,
        ("query", 2): _QWEN_SYSTEM + _QWEN_IMAGE + _QWEN_IMAGE + "What colour is the ball? "
        "Answer the question using a single word or phrase." + _QWEN_REPLY,
    },
}
# The rows (user text, number of images) each run must encode, whatever it batches together.
# Each method encodes only its own prompts (`run_methods` shares what several need).
SINGLE = {("query", 1)}
EXPLAIN = {("query", 1), ("free", 1), ("generic", 1)}
CROP_ONLY = {("query", 1), ("free", 1)}  # LASER alone: no generic prompt
VICROP = {("query", 1), ("generic", 1), ("query", 2)}
EXPECTED_ROWS = {
    "explain": EXPLAIN,
    "vanilla": SINGLE,
    "vicrop": VICROP,
    "vcd": SINGLE,
    "laser": CROP_ONLY,
    "laser_no_vat": CROP_ONLY,
    "laser_static": CROP_ONLY,
    "clvs": SINGLE,
    "run_methods": EXPLAIN | VICROP,
}
CASES = sorted(PROMPTS["llava"])


class _Generation(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`, transformers' marker of assistant text (used for
    training masks): renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> list[jinja2.nodes.Node]:
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _published_template(family: str) -> str:
    """The chat template of the published files, checking that every copy of it agrees."""
    files = family_files(family)
    template = json.loads((files / "chat_template.json").read_text())["chat_template"]
    if family == "llava":
        assert (files / "chat_template.jinja").read_text() == template
    else:
        tokenizer_config = json.loads((files / "tokenizer_config.json").read_text())
        assert tokenizer_config["chat_template"] == template
    return template


def _render(template: str, text: str, n_images: int) -> str:
    """One user turn rendered with plain jinja2, under the settings transformers documents."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, jinja2.ext.loopcontrols]
    )
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]
    messages = [{"role": "user", "content": content}]
    return env.from_string(template).render(messages=messages, add_generation_prompt=True)


def test_the_user_texts_are_method_md_s() -> None:
    prompts = prompt_texts("What colour is the ball?", LaserConfig())
    assert (prompts.query, prompts.free, prompts.generic) == (
        TEXTS["query"],
        TEXTS["free"],
        TEXTS["generic"],
    )


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("kind", "n_images"), CASES)
def test_the_written_prompts_are_what_the_published_template_renders(
    family: str, kind: str, n_images: int
) -> None:
    rendered = _render(_published_template(family), TEXTS[kind], n_images)
    assert rendered == PROMPTS[family][(kind, n_images)]


@pytest.mark.parametrize(("kind", "n_images"), CASES)
def test_the_adapter_builds_the_published_prompt(
    checkpoint: Checkpoint, kind: str, n_images: int
) -> None:
    vlm = checkpoint.vlm
    assert vlm.processor.chat_template == _published_template(checkpoint.family)
    prompt = vlm.adapter.prompt(TEXTS[kind], n_images=n_images)
    assert prompt == PROMPTS[checkpoint.family][(kind, n_images)]


@pytest.mark.parametrize("run", RUNS)
def test_every_method_sends_the_published_prompts(method_runs: MethodRuns, run: str) -> None:
    """What the processor received, row by row: the published prompt of a METHOD.md text."""
    kinds = {text: kind for kind, text in TEXTS.items()}
    seen = set()
    for row in method_runs.rows[run]:
        assert row.text in kinds, f"{run} encoded a text METHOD.md does not define: {row.text!r}"
        case = (kinds[row.text], len(row.images))
        assert row.prompt == PROMPTS[method_runs.family].get(case), f"{run}, {case}: {row.prompt!r}"
        seen.add(case)
    assert seen == EXPECTED_ROWS[run]


def test_vicrop_answers_from_the_scene_and_its_crop(method_runs: MethodRuns) -> None:
    (turn,) = [row for row in method_runs.rows["vicrop"] if len(row.images) == 2]
    crop = method_runs.results["vicrop"].input_image
    assert turn.images[0].tobytes() == scene().tobytes()
    assert turn.images[1].size == crop.size and turn.images[1].tobytes() == crop.tobytes()
