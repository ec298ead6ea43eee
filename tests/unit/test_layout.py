"""The layout holds: each package imports only what its place allows, and says what it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {  # package -> top-level modules it must never import
    "laser_core": {"gradio", "matplotlib", "ui", "viz", "app"},
    "viz": {"transformers", "gradio", "laser_core", "ui", "app"},
    "ui": {"transformers"},
}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """Top-level names of every module the file imports (at any depth of its code)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_what_their_place_allows(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported(path) & FORBIDDEN[package])
        for path in _modules(package)
        if _imported(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    import gradio.components\n    from matplotlib import x\n")
    assert _imported(source) == {"gradio", "matplotlib"}


@pytest.mark.parametrize("package", ["laser_core", "viz", "ui", "bench", "scripts"])
def test_every_module_opens_with_what_it_is(package: str) -> None:
    missing = []
    for path in _modules(package):
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree)
        if path.stat().st_size and not (doc and doc.strip().splitlines()[0].strip()):
            missing.append(str(path.relative_to(ROOT)))
    assert missing == []


def test_app_py_only_builds_and_launches() -> None:
    assert _imported(ROOT / "app.py") <= {"__future__", "os", "ui"}


def test_only_the_benchmark_runner_imports_accelerate_and_only_when_it_shards() -> None:
    importers = [p for p in _modules("laser_core") if "accelerate" in _imported(p)]
    assert [str(p.relative_to(ROOT)) for p in importers] == ["laser_core/bench/runner.py"]
    top_level = ast.parse(importers[0].read_text()).body  # module-level statements only
    assert not any("accelerate" in ast.dump(node) for node in top_level if _is_import(node))


def _is_import(node: ast.stmt) -> bool:
    return isinstance(node, (ast.Import, ast.ImportFrom))
