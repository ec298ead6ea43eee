"""Fixtures of the published-files tier: each published shape built once per session, loaded by
`load_model`, and one recorded run of `explain` and every method on it (see `published_models`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from published_models import (
    FAMILIES,
    QUESTION,
    QWEN_FILES,
    RUN_CONFIG,
    Checkpoint,
    MethodRuns,
    build_published_shape,
    llava_files,
    recording_rows,
    scene,
)

from laser_core import METHODS, explain, load_model, run_method, run_methods


def _checkpoint(family: str, files: Path, factory: pytest.TempPathFactory) -> Checkpoint:
    folder = build_published_shape(family, files, factory.mktemp(f"published_{family}") / "model")
    return Checkpoint(family, files, folder, load_model(folder, device="cpu"))


@pytest.fixture(scope="session")
def llava_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    """LLaVA-1.5-7B's files with a 4-layer random model (skips without the shared files)."""
    return _checkpoint("llava", llava_files(), tmp_path_factory)


@pytest.fixture(scope="session")
def qwen_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    """Qwen2.5-VL-7B-Instruct's vendored files with a 4-layer random model."""
    return _checkpoint("qwen2_5_vl", QWEN_FILES, tmp_path_factory)


@pytest.fixture(scope="session", params=FAMILIES)
def checkpoint(request: pytest.FixtureRequest) -> Checkpoint:
    """Each published shape in turn (ids: llava, qwen2_5_vl)."""
    name = "llava_checkpoint" if request.param == "llava" else "qwen_checkpoint"
    built: Checkpoint = request.getfixturevalue(name)
    return built


@pytest.fixture(scope="session")
def method_runs(checkpoint: Checkpoint) -> MethodRuns:
    """`explain`, each `run_method` and one `run_methods` on the scene, with every encoded row."""
    vlm, image, runs = checkpoint.vlm, scene(), MethodRuns(checkpoint.family)
    with recording_rows(vlm) as rows:
        runs.results["explain"] = explain(vlm, image, QUESTION, RUN_CONFIG)
    runs.rows["explain"] = rows
    for method in METHODS:
        with recording_rows(vlm) as rows:
            runs.results[method] = run_method(vlm, image, QUESTION, method, RUN_CONFIG)
        runs.rows[method] = rows
    with recording_rows(vlm) as rows:
        runs.results["run_methods"] = run_methods(vlm, image, QUESTION, METHODS, RUN_CONFIG)
    runs.rows["run_methods"] = rows
    return runs
