"""Smoke test of `scripts/train_embedded.py`: a few seeded steps of each phase, into tmp_path.

A shrunken model (2 + 1 layers, hidden 32) keeps training to well under a second a run. Checked:
the saved folder loads and explains, the same arguments give the same weights (at either
precision of the forward passes), a run interrupted in or after any phase resumes to exactly
those weights, ``--init-from`` runs phase 3 alone from a saved model, and phase 3's second stage
equals a run of its own from the first stage's model. Only the reference run writes example
scenes (the slow part: ~150 greedy answers).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from laser_core import explain, load_model
from laser_core.toy import scenes as W
from scripts import train_embedded
from scripts.toy_training import loop, relations, run, tune, vision

TINY = [
    "--vision-steps", "3", "--llava-steps", "3",
    "--relation-steps", "3", "--relation-share", "0.7", "--relation-tower-lr-scale", "0.5",
    "--vision-batch", "4", "--batch", "4",
    "--hidden", "32", "--layers", "2", "--vision-hidden", "32", "--vision-layers", "1",
    "--log-every", "1", "--ckpt-every", "2", "--eval-scenes", "1", "--threads", "2",
]  # fmt: skip


class Interrupted(Exception):
    """Stands in for a killed process."""


def _train(folder: Path, *extra: str) -> Path:
    """Run the script's `main` with every output under ``folder``; returns the model folder."""
    argv = [*TINY, *extra, "--run-dir", str(folder / "run"), "--out", str(folder / "model")]
    with torch.random.fork_rng(devices=[]):  # main seeds torch's global RNG; leave ours alone
        train_embedded.main([*argv, "--examples", str(folder / "examples")])
    return folder / "model"


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "model.safetensors")


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model folder of one uninterrupted tiny run."""
    return _train(tmp_path_factory.mktemp("train_reference"))


def test_saved_model_loads_and_explains(reference: Path) -> None:
    summary = json.loads((reference.parent / "run" / "summary.json").read_text())
    assert summary["args"]["llava_steps"] == 3 and summary["params"] < 200_000
    assert (reference.parent / "examples" / "examples.json").exists()
    vlm = load_model(reference, device="cpu")
    scene = W.make_scene(W.HELD_OUT_START)
    result = explain(vlm, scene.image, "What color is the circle?")
    assert isinstance(result.answer, str)
    assert result.grid == (16, 16)
    assert result.attn_query.shape == (2, 4, 256)  # [layer, head, patch]


@pytest.fixture
def no_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the example scenes, written after the weights are saved (they cannot change them)."""
    monkeypatch.setattr(run, "write_examples", lambda *args, **kwargs: None)


@pytest.mark.usefixtures("no_examples")
def test_same_arguments_give_the_same_weights(reference: Path, tmp_path: Path) -> None:
    _assert_same_weights(reference, _train(tmp_path / "again"))
    longer = _weights(_train(tmp_path / "longer", "--llava-steps", "4"))
    assert not all(torch.equal(t, longer[k]) for k, t in _weights(reference).items())


@pytest.mark.usefixtures("no_examples")
def test_batches_made_in_worker_processes_give_the_same_weights(
    reference: Path, tmp_path: Path
) -> None:
    _assert_same_weights(reference, _train(tmp_path, "--workers", "2"))


@pytest.mark.parametrize(
    ("module", "batch_fn", "stop", "checkpoints"),
    [
        (vision, "vision_batch", 2, {"vision.pt": 2}),  # during phase 1, after its checkpoint
        (tune, "llava_batch", 0, {"vision.pt": 3}),  # after phase 1, before any LLaVA step
        (tune, "llava_batch", 2, {"vision.pt": 3, "llava.pt": 2}),  # after a LLaVA checkpoint
        (relations, "relation_batch", 0, {"vision.pt": 3, "llava.pt": 3}),  # before phase 3
        (relations, "relation_batch", 2, {"vision.pt": 3, "llava.pt": 3, "relations-1.pt": 2}),
    ],
    ids=["mid-vision", "after-vision", "mid-llava", "after-llava", "mid-relations"],
)
@pytest.mark.usefixtures("no_examples")
def test_resumed_run_equals_uninterrupted(
    reference: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: object,
    batch_fn: str,
    stop: int,
    checkpoints: dict[str, int],
) -> None:
    make_batch = getattr(module, batch_fn)

    def interrupt_at_stop(step: int, *args: object, **kwargs: object) -> object:
        if step == stop:
            raise Interrupted
        return make_batch(step, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(module, batch_fn, interrupt_at_stop)
        with pytest.raises(Interrupted):
            _train(tmp_path)
    run_dir = tmp_path / "run"
    saved = {p.name: torch.load(p, weights_only=False)["step"] for p in run_dir.glob("*.pt")}
    assert saved == checkpoints
    assert not (tmp_path / "model").exists()
    _assert_same_weights(reference, _train(tmp_path))


@pytest.mark.usefixtures("no_examples")
def test_init_from_runs_the_relations_phase_alone(reference: Path, tmp_path: Path) -> None:
    frozen_tower = ("--relation-tower-lr-scale", "0")
    model_dir = _train(tmp_path, "--init-from", str(reference), *frozen_tower)
    assert sorted(p.name for p in (tmp_path / "run").glob("*.pt")) == ["relations-1.pt"]
    start, tuned = _weights(reference), _weights(model_dir)
    tower = [k for k in start if "vision_tower" in k]
    assert tower and all(torch.equal(start[k], tuned[k]) for k in tower)  # frozen
    assert not all(torch.equal(start[k], tuned[k]) for k in start)  # the rest learnt
    again = _train(tmp_path / "again", "--init-from", str(reference), *frozen_tower)
    _assert_same_weights(model_dir, again)


@pytest.mark.usefixtures("no_examples")
def test_phase_3_asks_its_own_question_mixes(reference: Path, tmp_path: Path) -> None:
    alone = ("--init-from", str(reference))
    default = _weights(_train(tmp_path / "default", *alone))
    marks = ("--relation-full-kinds", "mark", "--relation-crop-kinds", "mark")
    only_marks = _weights(_train(tmp_path / "marks", *alone, *marks))
    assert not all(torch.equal(t, only_marks[k]) for k, t in default.items())
    phase_2_marks = _train(
        tmp_path / "phase-2", *alone, "--full-kinds", "mark", "--crop-kinds", "mark"
    )
    _assert_same_weights(tmp_path / "default" / "model", phase_2_marks)  # phase 2's are not used


@pytest.mark.usefixtures("no_examples")
def test_a_second_stage_equals_a_run_from_the_first_stages_model(
    reference: Path, tmp_path: Path
) -> None:
    # The first stage as TINY's phase 3, then a frozen tower.
    second = ("--relation-share", "0.7,0.3", "--relation-tower-lr-scale", "0.5,0")
    staged = _train(tmp_path / "staged", "--relation-steps", "3,2", *second)
    saved = sorted(p.name for p in (tmp_path / "staged" / "run").glob("relations-*.pt"))
    assert saved == ["relations-1.pt", "relations-2.pt"]
    alone = ("--relation-steps", "2", "--relation-share", "0.3", "--relation-tower-lr-scale", "0")
    _assert_same_weights(staged, _train(tmp_path / "alone", "--init-from", str(reference), *alone))
    assert not all(torch.equal(t, _weights(staged)[k]) for k, t in _weights(reference).items())


@pytest.mark.usefixtures("no_examples")
def test_precision_is_bf16_on_a_native_cpu_by_default_and_each_choice_is_seeded(
    reference: Path, tmp_path: Path
) -> None:
    def used(folder: Path) -> str:
        return json.loads((folder / "run" / "summary.json").read_text())["args"]["precision"]

    native = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    assert used(reference.parent) == native  # the default is auto
    assert loop.pick_precision("auto", torch.device("cuda")) == "fp32"  # no bf16 run on a GPU
    fp32, bf16 = (_weights(_train(tmp_path / p, "--precision", p)) for p in ("fp32", "bf16"))
    assert used(tmp_path / "fp32") == "fp32"
    again = _weights(_train(tmp_path / "bf16-again", "--precision", "bf16"))
    assert all(torch.equal(t, again[k]) for k, t in bf16.items())  # seeded in bfloat16 too
    assert not all(torch.equal(t, bf16[k]) for k, t in fp32.items())
