"""Readers of the benchmarks' files, as their publishers distribute them, into `Query` lists.

One function per format; each returns the queries in file order and checks every field it uses:
a missing or malformed file raises `DataError`, whose message names the file, the entry and the
field. Images are only located here (a missing image becomes an error row of the run, not an
exception).

- TextVQA: `TextVQA_0.5.1_val.json`, `{"data": [{question, image_id, answers, question_id}]}`;
  images `<image_id>.jpg` (its `train_images/` folder holds the val images too).
- POPE: JSON lines `{question_id, image, text, label}` (`coco_pope_random.json`, ...); images
  by their `image` name.
- A-OKVQA: `aokvqa_v1p0_val.json`, `[{question_id, image_id, question, direct_answers}]`;
  images `<image_id:012d>.jpg` in COCO's `val2017/`.
- RefCOCO / RefCOCO+ / RefCOCOg: `refs(unc).p` or `refs(umd).p` with `instances.json` beside it
  (the refer toolkit's files; boxes COCO `[x, y, w, h]`); images by `file_name` in `train2014/`.
- Grounding data of your own: JSON lines `{image, expression, bbox: [x, y, w, h]}`, optional `id`.

Layouts follow the publishers' loaders: allenai/aokvqa `load_aokvqa.py` (`get_coco_path`) and the
refer toolkit's `refer.py` (lichengunc/refer: refs pickle, `instances.json`, splits).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laser_core.bench.safe_pickle import load_plain_file

Box = tuple[float, float, float, float]
POPE_SPLITS = ("random", "popular", "adversarial")
REFER_DEFAULT_SPLIT_BY = {"refcocog": "umd"}  # every other refer dataset: "unc"


class DataError(ValueError):
    """A benchmark file is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Query:
    """One question of a benchmark, with what its metric needs."""

    qid: str  # unique within the benchmark; the key of the records with the method name
    image: Path  # where the image should be
    question: str  # what the model is asked (RefCOCO: the referring expression itself)
    answers: tuple[str, ...] = ()  # TextVQA: human answers; A-OKVQA: direct answers
    label: str | None = None  # POPE: "yes" or "no"
    box: Box | None = None  # grounding: the referred object (x0, y0, x1, y1), original pixels
    group: str = "all"  # POPE: "<source>/<split>"; grounding: the dataset's name


def read_textvqa(path: str | Path, images: str | Path) -> list[Query]:
    """TextVQA's `TextVQA_0.5.1_val.json` (its `data` entries need answers: val or train)."""
    path, folder = Path(path), Path(images)
    top = _load_json(path)
    if not isinstance(top, dict) or "data" not in top:
        raise DataError(f"{path}: field 'data' is missing (TextVQA files are {{\"data\": [...]}})")
    entries = top["data"]
    if not isinstance(entries, list):
        raise DataError(f"{path}: field 'data' must be a list, got {type(entries).__name__}")
    queries = []
    for i, entry in enumerate(entries):
        where = f"data[{i}]"
        qid = _field(entry, "question_id", (int, str), path, where)
        image_id = _field(entry, "image_id", str, path, where)
        queries.append(
            Query(
                str(qid),
                folder / f"{image_id}.jpg",
                _field(entry, "question", str, path, where),
                answers=_strings(entry, "answers", path, where),
            )
        )
    return _unique(queries, path)


def read_aokvqa(path: str | Path, images: str | Path) -> list[Query]:
    """A-OKVQA's `aokvqa_v1p0_val.json`, Direct Answer setting (choices are not shown)."""
    path, folder = Path(path), Path(images)
    entries = _load_json(path)
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a list of questions, got {type(entries).__name__}")
    queries = []
    for i, entry in enumerate(entries):
        where = f"entry {i}"
        image_id = _field(entry, "image_id", int, path, where)
        queries.append(
            Query(
                str(_field(entry, "question_id", (str, int), path, where)),
                folder / f"{image_id:012d}.jpg",
                _field(entry, "question", str, path, where),
                answers=_strings(entry, "direct_answers", path, where),
            )
        )
    return _unique(queries, path)


def pope_group(path: Path) -> str:
    """`coco_pope_random.json` -> "coco/random"; a name without a split word stays as it is."""
    stem = path.name.split(".")[0]
    split = next((s for s in POPE_SPLITS if s in stem.split("_")), None)
    if split is None:
        return stem
    source = stem.split("_pope")[0] if "_pope" in stem else stem.replace(split, "").strip("_")
    return f"{source or 'pope'}/{split}"


def read_pope(paths: Sequence[str | Path], images: str | Path) -> list[Query]:
    """POPE's JSON-lines question files; each file is one group (e.g. "coco/adversarial")."""
    folder, queries = Path(images), []
    for raw in paths:
        path = Path(raw)
        group = pope_group(path)
        for where, entry in _json_lines(path):
            label = _field(entry, "label", str, path, where)
            if label not in ("yes", "no"):
                raise DataError(
                    f"{path}: {where}: field 'label' must be 'yes' or 'no', got {label!r}"
                )
            queries.append(
                Query(
                    f"{group}/{_field(entry, 'question_id', (int, str), path, where)}",
                    folder / _field(entry, "image", str, path, where),
                    _field(entry, "text", str, path, where),
                    label=label,
                    group=group,
                )
            )
    return _unique(queries, Path(paths[0]) if paths else folder)


def refs_file(path: str | Path, split_by: str | None = None) -> Path:
    """The refs pickle: `path` itself, or `refs(<split_by>).p` in the folder `path`.

    The default partition is the refer toolkit's usual one: umd for RefCOCOg, unc otherwise.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    chosen = split_by or REFER_DEFAULT_SPLIT_BY.get(path.name.lower(), "unc")
    return path / f"refs({chosen}).p"


def read_refer(
    path: str | Path, images: str | Path, *, split: str = "val", split_by: str | None = None
) -> list[Query]:
    """RefCOCO / RefCOCO+ / RefCOCOg: every sentence of every ref of `split`, one query each.

    Args:
        path: The refs pickle (`refer_data/refcoco/refs(unc).p`) or its folder; `instances.json`
            must lie beside it. The folder's name is the dataset's name in the tables.
        images: COCO `train2014/` (file names as `instances.json` gives them).
        split: "val" (default), "train", "test", "testA", "testB", ... selected as `refer.py`'s
            `getRefIds` does ("testA" takes every ref whose split contains "A").
        split_by: "unc", "umd", "google" when `path` is a folder.
    """
    refs_path = refs_file(path, split_by)
    if not refs_path.is_file():
        raise DataError(f"{refs_path}: no such file (the refer toolkit's refs pickle)")
    refs = load_plain_file(refs_path)
    if not isinstance(refs, list):
        raise DataError(f"{refs_path}: expected a list of refs, got {type(refs).__name__}")
    instances_path = refs_path.parent / "instances.json"
    instances = _load_json(instances_path)
    boxes = _boxes(instances, instances_path)
    files = _image_files(instances, instances_path)
    dataset, folder, queries = refs_path.parent.name, Path(images), []
    for i, ref in enumerate(refs):
        where = f"ref {i}"
        if not _in_split(_field(ref, "split", str, refs_path, where), split):
            continue
        ann_id = _field(ref, "ann_id", (int, str), refs_path, where)
        image_id = _field(ref, "image_id", (int, str), refs_path, where)
        if ann_id not in boxes:
            raise DataError(f"{instances_path}: no annotation with id {ann_id!r} ({where})")
        if image_id not in files:
            raise DataError(f"{instances_path}: no image with id {image_id!r} ({where})")
        sentences = _field(ref, "sentences", list, refs_path, where)
        for j, sentence in enumerate(sentences):
            at = f"{where}, sentences[{j}]"
            queries.append(
                Query(
                    str(_field(sentence, "sent_id", (int, str), refs_path, at)),
                    folder / files[image_id],
                    _field(sentence, "sent", str, refs_path, at),
                    box=boxes[ann_id],
                    group=dataset,
                )
            )
    return _unique(queries, refs_path)


def read_grounding_jsonl(path: str | Path, images: str | Path) -> list[Query]:
    """Anyone's grounding data: JSON lines `{image, expression, bbox: [x, y, w, h]}`.

    `bbox` is in COCO's convention (top-left corner, width, height, pixels); an optional `id`
    names the query (default: the line number).
    """
    path, folder, queries = Path(path), Path(images), []
    for where, entry in _json_lines(path):
        qid = entry.get("id", where.split()[-1]) if isinstance(entry, dict) else None
        queries.append(
            Query(
                str(qid),
                folder / _field(entry, "image", str, path, where),
                _field(entry, "expression", str, path, where),
                box=_xywh(_field(entry, "bbox", list, path, where), path, where),
                group=path.name.split(".")[0],
            )
        )
    return _unique(queries, path)


# --- helpers -------------------------------------------------------------------------------
def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from error
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error})") from error


def _json_lines(path: Path) -> list[tuple[str, Any]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows = []
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {number}: not valid JSON ({error})") from error
    return rows


def _field(entry: Any, name: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    if not isinstance(entry, dict):
        raise DataError(f"{path}: {where}: expected an object, got {type(entry).__name__}")
    if name not in entry:
        raise DataError(f"{path}: {where}: field '{name}' is missing")
    value = entry[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(k.__name__ for k in kinds)
        raise DataError(f"{path}: {where}: field '{name}' must be {wanted}, got {value!r:.60}")
    return value


def _strings(entry: Any, name: str, path: Path, where: str) -> tuple[str, ...]:
    values = _field(entry, name, list, path, where)
    if not values or not all(isinstance(v, str) for v in values):
        raise DataError(f"{path}: {where}: field '{name}' must be a non-empty list of strings")
    return tuple(values)


def _xywh(values: list[Any], path: Path, where: str) -> Box:
    if len(values) != 4 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise DataError(f"{path}: {where}: field 'bbox' must be [x, y, width, height] numbers")
    x, y, w, h = (float(v) for v in values)
    if w <= 0 or h <= 0:
        raise DataError(f"{path}: {where}: field 'bbox' has a width or height <= 0: {values}")
    return (x, y, x + w, y + h)


def _boxes(instances: Any, path: Path) -> dict[Any, Box]:
    annotations = _field(instances, "annotations", list, path, "top level")
    return {
        _field(a, "id", (int, str), path, f"annotations[{i}]"): _xywh(
            _field(a, "bbox", list, path, f"annotations[{i}]"), path, f"annotations[{i}]"
        )
        for i, a in enumerate(annotations)
    }


def _image_files(instances: Any, path: Path) -> dict[Any, str]:
    images = _field(instances, "images", list, path, "top level")
    return {
        _field(m, "id", (int, str), path, f"images[{i}]"): _field(
            m, "file_name", str, path, f"images[{i}]"
        )
        for i, m in enumerate(images)
    }


def _in_split(ref_split: str, wanted: str) -> bool:
    """`refer.py`'s `getRefIds(split=...)` rule."""
    if wanted in ("testA", "testB", "testC"):
        return wanted[-1] in ref_split
    if wanted == "test":
        return "test" in ref_split
    return ref_split == wanted


def _unique(queries: list[Query], path: Path) -> list[Query]:
    seen: set[str] = set()
    for query in queries:
        if query.qid in seen:
            raise DataError(f"{path}: question id {query.qid!r} appears twice")
        seen.add(query.qid)
    return queries
