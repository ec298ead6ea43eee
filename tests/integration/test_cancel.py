"""A run under `laser_core.cancel.stop_scope` stops at the next stage or decoding step once its
flag is set, leaving no hook behind; outside a scope nothing changes."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from laser_core import VLM, LaserConfig, explain, run_clvs
from laser_core.cancel import Cancelled, check, stop_scope


class SetAfter:
    """A stop flag that turns true at its `n`-th look, i.e. in the middle of a run."""

    def __init__(self, n: int) -> None:
        self.n, self.looks = n, 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= self.n


def _hooks(vlm: VLM) -> int:
    modules = list(vlm.model.modules())
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules)


def test_check_outside_and_inside_a_scope() -> None:
    check()  # no scope: never stops
    flag = threading.Event()
    with stop_scope(flag):
        check()
        flag.set()
        with pytest.raises(Cancelled):
            check()
    check()  # the scope is over


def test_a_stage_boundary_stops_explain(tiny_vlms: dict[str, VLM], photo: Image.Image) -> None:
    vlm = tiny_vlms["llava"]
    flag = threading.Event()
    seen: list[str] = []

    def on_stage(stage: str) -> None:
        seen.append(stage)
        if stage == "crop":
            flag.set()

    with stop_scope(flag), pytest.raises(Cancelled):
        explain(vlm, photo, "what is it", on_stage=on_stage)
    assert seen == ["capture", "layer", "crop"]  # stopped as the next stage began


@pytest.mark.parametrize("name", ["llava", "qwen2_vl"])
def test_decoding_stops_between_tokens(
    tiny_vlms: dict[str, VLM], photo: Image.Image, name: str
) -> None:
    """The flag turns true during the vanilla decoding (its 4th look: the "capture" stage, then
    two tokens, then the third): the run stops there, and every capture hook is gone."""
    vlm = tiny_vlms[name]
    before = _hooks(vlm)
    flag = SetAfter(4)
    config = LaserConfig(max_new_tokens=50)
    with stop_scope(flag), pytest.raises(Cancelled):
        explain(vlm, photo, "what is it", config)
    assert flag.looks == 4
    assert _hooks(vlm) == before


def test_clvs_stops_too(tiny_vlms: dict[str, VLM], photo: Image.Image) -> None:
    vlm = tiny_vlms["llava"]
    before = _hooks(vlm)
    flag = SetAfter(2)
    with stop_scope(flag), pytest.raises(Cancelled):
        run_clvs(vlm, photo, "what is it", LaserConfig(max_new_tokens=20))
    assert _hooks(vlm) == before
    assert run_clvs(vlm, photo, "what is it", LaserConfig(max_new_tokens=2)).answer is not None
