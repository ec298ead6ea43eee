"""The paper-benchmark runner end to end on fixture files, with the embedded model.

Every metric below is recomputed from the written records with the metric functions (whose
values are checked by hand in `tests/unit/test_bench_metrics.py`), never hard-coded: the model
may be retrained. Resume, error rows, sampling seeds and a two-process run are checked against
an uninterrupted single-process run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from bench_fixtures import write_aokvqa, write_grounding, write_pope, write_refcoco, write_textvqa

from laser_core.bench import runner
from laser_core.bench.__main__ import main
from laser_core.bench.datasets import read_aokvqa, read_pope, read_textvqa
from laser_core.bench.metrics import aokvqa_accuracy, pope_metrics, pope_parse, vqa_accuracy
from laser_core.config import LaserConfig

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--device", "cpu", "--no-progress", "--max-new-tokens", "4"]
VOLATILE = ("timings", "seconds", "wall")  # differ between runs of the same records


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench_data")
    write_textvqa(root / "textvqa")
    write_pope(root / "pope")
    write_aokvqa(root / "aokvqa")
    write_refcoco(root / "refer")
    write_grounding(root / "mine")
    return root


def _textvqa(data: Path, out: Path, *extra: str) -> list[str]:
    file, images = data / "textvqa/TextVQA_0.5.1_val.json", data / "textvqa/train_images"
    return ["textvqa", "--data", str(file), "--images", str(images), "--out", str(out), *extra]


def _pope(data: Path, out: Path, *extra: str) -> list[str]:
    files = [str(p) for p in sorted((data / "pope").glob("coco_pope_*.json"))]
    images = str(data / "pope/val2014")
    return ["pope", "--data", *files, "--images", images, "--out", str(out), *extra]


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def _stable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]


def _table(out: Path) -> str:
    return (out / "table.md").read_text().split("## Timings")[0]


@pytest.fixture(scope="module")
def textvqa_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted single-process TextVQA run on 4 questions: the reference."""
    out = tmp_path_factory.mktemp("textvqa_run")
    assert main(_textvqa(data, out, "--limit", "4", *FAST)) == 0
    return out


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Every `run_methods` call the runner makes: its methods."""
    seen: list[list[str]] = []
    real = runner.run_methods

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append(list(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_methods", counted)
    yield seen


def test_textvqa_records_scores_and_table(data: Path, textvqa_run: Path) -> None:
    queries = {q.qid: q for q in read_textvqa(data / "textvqa/TextVQA_0.5.1_val.json", data)}
    records = _records(textvqa_run)
    assert [(r["qid"], r["method"]) for r in records] == [
        (qid, m) for qid in list(queries)[:4] for m in runner.DEFAULT_METHODS
    ]
    for r in records:
        assert r["score"] == vqa_accuracy(r["answer"], queries[r["qid"]].answers)
        assert r["error"] is None and r["seconds"] > 0
    laser = [r for r in records if r["method"] == "laser"]
    assert all(0 <= r["layer"] < r["n_layers"] and len(r["box"]) == 4 for r in laser)
    assert all(isinstance(r["vat_applied"], bool) for r in laser)
    summary = json.loads((textvqa_run / "summary.json").read_text())
    for method in runner.DEFAULT_METHODS:
        scores = [r["score"] for r in records if r["method"] == method]
        assert summary["metrics"][method]["accuracy"]["mean"] == pytest.approx(np.mean(scores))
    assert sum(summary["layers"]["laser"]["counts"]) == 4
    assert summary["vat"]["applied"] == sum(r["vat_applied"] for r in laser)
    table = (textvqa_run / "table.md").read_text()
    for text in ("Table 1: TextVQA accuracy", "| Greedy |", "| LASER |", "Figure 5", "VAT"):
        assert text in table
    accuracy = 100 * summary["metrics"]["laser"]["accuracy"]["mean"]
    assert f"| LASER | {accuracy:.2f} | 4 |" in table


def test_pope_and_aokvqa_metrics_from_records(data: Path, tmp_path: Path) -> None:
    pope_out, aok_out = tmp_path / "pope", tmp_path / "aokvqa"
    assert main(_pope(data, pope_out, "--limit", "2", "--methods", "vanilla,laser", *FAST)) == 0
    labels = {q.qid: q.label for q in read_pope(sorted((data / "pope").glob("*.json")), data)}
    records = _records(pope_out)
    assert len(records) == 3 * 2 * 2
    summary = json.loads((pope_out / "summary.json").read_text())
    for method in ("vanilla", "laser"):
        for group in ("coco/random", "coco/popular", "coco/adversarial"):
            rows = [r for r in records if r["method"] == method and r["group"] == group]
            assert all(r["parsed"] == pope_parse(r["answer"]) for r in rows)
            expected = pope_metrics([r["parsed"] for r in rows], [labels[r["qid"]] for r in rows])
            assert summary["metrics"][method][group] == expected
    table = (pope_out / "table.md").read_text()
    assert "| Random Acc. | Random F1 | Popular Acc. | Popular F1 | Adversarial Acc." in table
    file, images = data / "aokvqa/aokvqa_v1p0_val.json", data / "aokvqa/val2017"
    args = ["aokvqa", "--data", str(file), "--images", str(images), "--out", str(aok_out)]
    assert main([*args, "--limit", "3", "--methods", "vanilla,laser_static", *FAST]) == 0
    answers = {q.qid: q.answers for q in read_aokvqa(file, images)}
    for r in _records(aok_out):
        assert r["score"] == aokvqa_accuracy(r["answer"], answers[r["qid"]])
    assert "A-OKVQA (Direct Answer) accuracy" in (aok_out / "table.md").read_text()


def test_refcoco_aggregation_and_pointing(data: Path, tmp_path: Path) -> None:
    refer = ["refcoco", "--data", str(data / "refer/refcoco")]
    args = [*refer, "--images", str(data / "refer/train2014"), "--out", str(tmp_path / "r")]
    assert main([*args, "--limit", "3", "--device", "cpu", "--no-progress"]) == 0
    records = _records(tmp_path / "r")
    assert len(records) == 3 and {r["method"] for r in records} == {"laser"}
    summary = json.loads((tmp_path / "r/summary.json").read_text())
    assert summary["config"]["max_new_tokens"] == 1  # the maps come from the prefills
    for name in ("raw", "relative", "contrastive"):
        shares = [r["shares"][name] for r in records]
        assert all(0.0 <= s <= 1.0 + 1e-9 for s in shares)
        cell = summary["metrics"]["refcoco"][name]
        assert cell["share"]["mean"] == pytest.approx(np.mean(shares))
        assert cell["pointing"]["mean"] == pytest.approx(
            np.mean([r["pointing"][name] for r in records])
        )
    table = (tmp_path / "r/table.md").read_text()
    assert "Table 2: attention aggregation" in table and "| Contra Att |" in table
    mine = ["refcoco", "--data", str(data / "mine/grounding.jsonl"), "--images"]
    own = [*mine, str(data / "mine/mine"), "--out", str(tmp_path / "g"), "--device", "cpu"]
    assert main([*own, "--no-progress"]) == 0
    assert len(_records(tmp_path / "g")) == 2


def test_refcoco_refuses_methods(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["refcoco", "--data", str(data), "--images", str(data), "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        main([*args, "--methods", "vanilla"])
    assert "--methods does not apply to refcoco" in capsys.readouterr().err


def test_a_missing_image_is_an_error_row_and_is_retried(
    data: Path, tmp_path: Path, calls: list[list[str]]
) -> None:
    copy = tmp_path / "data"
    shutil.copytree(data / "textvqa", copy / "textvqa")
    queries = read_textvqa(copy / "textvqa/TextVQA_0.5.1_val.json", copy / "textvqa/train_images")
    image = queries[1].image
    missing = {q.qid for q in queries[:3] if q.image == image}  # questions on that image
    hidden = image.rename(tmp_path / "hidden.jpg")
    out = tmp_path / "out"
    assert main(_textvqa(copy, out, "--limit", "3", "--methods", "vanilla,laser", *FAST)) == 0
    errors = [r for r in _records(out) if r["error"]]
    assert {r["qid"] for r in errors} == missing and len(errors) == 2 * len(missing)
    assert "image not found" in errors[0]["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["errors"] == {"vanilla": len(missing), "laser": len(missing)}
    assert summary["metrics"]["laser"]["accuracy"]["n"] == 3 - len(missing)
    assert "## Errors (not scored)" in (out / "table.md").read_text()
    hidden.rename(image)
    calls.clear()
    assert main(_textvqa(copy, out, "--limit", "3", "--methods", "vanilla,laser", *FAST)) == 0
    assert calls == [["vanilla", "laser"]] * len(missing)  # only the failed questions run again
    assert not any(r["error"] for r in _records(out))


def test_resume_after_an_interruption(
    data: Path, textvqa_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, started = runner.run_methods, []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        started.append(args[2])
        if len(started) == 3:
            raise KeyboardInterrupt  # Ctrl-C (or a lost machine) during the third question
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_methods", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(_textvqa(data, tmp_path, "--limit", "4", *FAST))
    shard = tmp_path / "shards/rank-0.jsonl"
    assert len(shard.read_text().splitlines()) == 2 * len(runner.DEFAULT_METHODS)
    with shard.open("a") as stream:  # and the crash tore a record in half
        stream.write('{"qid": "34604", "method": "van')
    resumed: list[list[str]] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        resumed.append(list(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_methods", counted)
    assert main(_textvqa(data, tmp_path, "--limit", "4", *FAST)) == 0
    assert len(resumed) == 2  # questions 3 and 4; the first two were kept
    assert _stable(_records(tmp_path)) == _stable(_records(textvqa_run))
    assert _table(tmp_path) == _table(textvqa_run)
    resumed.clear()
    assert main(_textvqa(data, tmp_path, "--limit", "4", "--methods", "vanilla,clvs", *FAST)) == 0
    assert resumed == [["clvs"]] * 4  # a new method is added, nothing else is rerun


def test_other_settings_in_the_same_folder_are_refused(
    data: Path, textvqa_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(textvqa_run, out)
    args = _textvqa(data, out, "--limit", "4", "--device", "cpu", "--no-progress")
    assert main([*args, "--max-new-tokens", "5"]) == 2
    assert "config.max_new_tokens differ" in capsys.readouterr().err


def test_sampling_seeds_come_from_the_ids(data: Path, tmp_path: Path) -> None:
    sample = ["--decoding", "sample", "--methods", "vanilla,laser", *FAST]
    assert main(_textvqa(data, tmp_path / "once", "--limit", "3", *sample)) == 0
    assert main(_textvqa(data, tmp_path / "twice", "--limit", "1", *sample)) == 0
    assert main(_textvqa(data, tmp_path / "twice", "--limit", "3", *sample)) == 0
    once, twice = _records(tmp_path / "once"), _records(tmp_path / "twice")
    assert _stable(once) == _stable(twice)
    config = LaserConfig(decoding="sample", max_new_tokens=4)
    assert all(r["seed"] == runner.question_seed(config, r["qid"], r["method"]) for r in once)
    assert len({r["seed"] for r in once}) == len(once)  # every (question, method) its own


def test_two_processes_merge_into_the_single_process_table(data: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2` (CPU ranks, `PartialState(cpu=True)`) against one process."""
    args = _pope(data, tmp_path / "two", "--limit", "2", *FAST)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    done = subprocess.run(
        [*launch, "2", "-m", "laser_core.bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shards = sorted(p.name for p in (tmp_path / "two/shards").iterdir())
    assert shards == ["rank-0.jsonl", "rank-1.jsonl"]
    assert all((tmp_path / "two/shards" / s).read_text() for s in shards)  # both did work
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic as each of the two processes
    try:
        assert main(_pope(data, tmp_path / "one", "--limit", "2", *FAST)) == 0
    finally:
        torch.set_num_threads(threads)
    one = json.loads((tmp_path / "one/summary.json").read_text())
    two = json.loads((tmp_path / "two/summary.json").read_text())
    for key in ("metrics", "errors", "layers", "vat", "n_questions"):
        assert one[key] == two[key]
    assert _table(tmp_path / "one") == _table(tmp_path / "two")
    assert _stable(_records(tmp_path / "one")) == _stable(_records(tmp_path / "two"))
