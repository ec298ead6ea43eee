"""The readers on fixture files in each official format, and their messages for broken ones."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from bench_fixtures import (
    SEEDS,
    write_aokvqa,
    write_grounding,
    write_pope,
    write_refcoco,
    write_textvqa,
)

from laser_core.bench.datasets import (
    DataError,
    pope_group,
    read_aokvqa,
    read_grounding_jsonl,
    read_pope,
    read_refer,
    read_textvqa,
    refs_file,
)
from laser_core.bench.safe_pickle import UnsafePickleError
from laser_core.toy import scenes as world


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench_data")
    write_textvqa(folder / "textvqa")
    write_pope(folder / "pope")
    write_aokvqa(folder / "aokvqa")
    write_refcoco(folder / "refer")
    write_grounding(folder / "mine")
    return folder


def test_textvqa(root: Path) -> None:
    queries = read_textvqa(root / "textvqa/TextVQA_0.5.1_val.json", root / "textvqa/train_images")
    assert len(queries) == 2 * len(SEEDS)  # a colour and a mark question per scene
    assert all(q.image.is_file() and len(q.answers) == 10 for q in queries)
    assert queries[0].qid == "34602" and queries[0].image.name == f"{SEEDS[0]:x}abc.jpg"


def test_pope_groups_by_file(root: Path) -> None:
    files = sorted((root / "pope").glob("coco_pope_*.json"))
    queries = read_pope(files, root / "pope/val2014")
    groups = [q.group for q in queries]
    assert sorted(set(groups)) == ["coco/adversarial", "coco/popular", "coco/random"]
    assert all(q.label in ("yes", "no") and q.image.is_file() for q in queries)
    assert len({q.qid for q in queries}) == len(queries)
    assert pope_group(Path("gqa_pope_adversarial.json")) == "gqa/adversarial"
    assert pope_group(Path("aokvqa_pope_seem_popular.json")) == "aokvqa/popular"
    assert pope_group(Path("my_questions.jsonl")) == "my_questions"


def test_aokvqa_images_are_coco_2017_names(root: Path) -> None:
    queries = read_aokvqa(root / "aokvqa/aokvqa_v1p0_val.json", root / "aokvqa/val2017")
    assert queries[0].image.name == f"{SEEDS[0]:012d}.jpg" and queries[0].image.is_file()
    assert all(len(q.answers) == 10 for q in queries)


def test_refcoco_every_sentence_of_the_split_with_xyxy_boxes(root: Path) -> None:
    folder = root / "refer/refcoco"
    assert refs_file(folder) == folder / "refs(unc).p"
    (root / "refer/refcocog").mkdir(exist_ok=True)
    assert refs_file(root / "refer/refcocog") == root / "refer/refcocog/refs(umd).p"
    assert refs_file(root / "refer/refcocog", "google") == root / "refer/refcocog/refs(google).p"
    val = read_refer(folder, root / "refer/train2014")
    refs = pickle.loads((folder / "refs(unc).p").read_bytes())
    sentences = [r for r in refs if r["split"] == "val" for _ in r["sentences"]]
    assert len(val) == len(sentences) > 0
    assert all(q.group == "refcoco" and q.image.is_file() for q in val)
    first_val_scene = world.make_scene(SEEDS[1])  # scene 0 is train
    boxes = {tuple(float(v) for v in o.box) for o in first_val_scene.objects}
    assert val[0].box in boxes and val[0].question in {o.name for o in first_val_scene.objects}
    test_a = read_refer(folder / "refs(unc).p", root / "refer/train2014", split="testA")
    assert len(test_a) == 1
    train = read_refer(folder, root / "refer/train2014", split="train")
    assert {q.image.name for q in train} == {f"COCO_train2014_{SEEDS[0]:012d}.jpg"}


def test_grounding_jsonl(root: Path) -> None:
    queries = read_grounding_jsonl(root / "mine/grounding.jsonl", root / "mine/mine")
    obj = world.make_scene(SEEDS[0]).objects[0]
    assert queries[0].box == tuple(float(v) for v in obj.box)
    assert queries[0].question == obj.name and queries[0].qid == "1"


def _broken(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_or_malformed_files_name_the_file_and_the_field(tmp_path: Path) -> None:
    images = tmp_path
    with pytest.raises(DataError, match=r"nowhere\.json: no such file"):
        read_textvqa(tmp_path / "nowhere.json", images)
    path = _broken(tmp_path, "TextVQA_0.5.1_val.json", "{not json")
    with pytest.raises(DataError, match=r"TextVQA_0\.5\.1_val\.json: not valid JSON"):
        read_textvqa(path, images)
    path = _broken(tmp_path, "t.json", json.dumps({"questions": []}))
    with pytest.raises(DataError, match=r"t\.json: field 'data' is missing"):
        read_textvqa(path, images)
    entry = {"question": "q?", "image_id": "a", "question_id": 1, "answers": ["x"] * 10}
    path = _broken(tmp_path, "t.json", json.dumps({"data": [entry, {**entry, "answers": None}]}))
    with pytest.raises(DataError, match=r"t\.json: data\[1\]: field 'answers' must be list"):
        read_textvqa(path, images)
    bad = {k: v for k, v in entry.items() if k != "image_id"}
    path = _broken(tmp_path, "t.json", json.dumps({"data": [bad]}))
    with pytest.raises(DataError, match=r"data\[0\]: field 'image_id' is missing"):
        read_textvqa(path, images)
    path = _broken(tmp_path, "a.json", json.dumps([{"question_id": "x", "image_id": "12"}]))
    with pytest.raises(DataError, match=r"a\.json: entry 0: field 'image_id' must be int"):
        read_aokvqa(path, images)


def test_pope_and_grounding_lines(tmp_path: Path) -> None:
    line = {"question_id": 1, "image": "a.jpg", "text": "Is there a cat?", "label": "Yes"}
    path = _broken(tmp_path, "coco_pope_random.json", json.dumps(line) + "\n")
    with pytest.raises(DataError, match=r"coco_pope_random\.json: line 1: field 'label' must"):
        read_pope([path], tmp_path)
    path = _broken(tmp_path, "p.json", json.dumps({**line, "label": "yes"}) + "\n{oops\n")
    with pytest.raises(DataError, match=r"p\.json: line 2: not valid JSON"):
        read_pope([path], tmp_path)
    twice = json.dumps({**line, "label": "no"}) + "\n"
    path = _broken(tmp_path, "p.json", twice * 2)
    with pytest.raises(DataError, match="appears twice"):
        read_pope([path], tmp_path)
    row = {"image": "a.jpg", "expression": "the cat", "bbox": [1, 2, 0, 4]}
    path = _broken(tmp_path, "g.jsonl", json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"g\.jsonl: line 1: field 'bbox' has a width"):
        read_grounding_jsonl(path, tmp_path)


def test_refer_files_checked(tmp_path: Path) -> None:
    folder, images = write_refcoco(tmp_path, "refcoco+")
    (folder / "instances.json").rename(folder / "moved.json")
    with pytest.raises(DataError, match=r"instances\.json: no such file"):
        read_refer(folder, images)
    (folder / "moved.json").rename(folder / "instances.json")
    with pytest.raises(DataError, match=r"refs\(umd\)\.p: no such file"):
        read_refer(folder, images, split_by="umd")
    refs = pickle.loads((folder / "refs(unc).p").read_bytes())
    del refs[1]["sentences"]
    (folder / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    with pytest.raises(DataError, match=r"refs\(unc\)\.p: ref 1: field 'sentences' is missing"):
        read_refer(folder, images, split="train")


class _Payload:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.target),))


def test_a_refs_pickle_with_code_is_refused_unrun(tmp_path: Path) -> None:
    folder, images = write_refcoco(tmp_path)
    target = tmp_path / "pwned"
    (folder / "refs(unc).p").write_bytes(pickle.dumps([_Payload(target)], protocol=2))
    with pytest.raises(UnsafePickleError, match=r"refs\(unc\)\.p: refused to load"):
        read_refer(folder, images)
    assert not target.exists()
