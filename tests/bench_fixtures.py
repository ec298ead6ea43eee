"""Fixture data sets in each benchmark's official file format, made from the toy world.

Every image is a held-out scene of `laser_core.toy.scenes` (known objects, answers and boxes)
saved under the name its benchmark uses; every file has the fields and nesting its publisher's
file has (see `laser_core/bench/datasets.py`). A few questions each: the embedded model answers
them in well under a second.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from laser_core.toy import scenes as world

SEEDS = world.heldout_seeds(4, start=900)  # four scenes, shared by every fixture


def _scene(i: int) -> world.Scene:
    return world.make_scene(SEEDS[i % len(SEEDS)])


def _save(scene: world.Scene, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scene.image.save(path, format="JPEG", quality=95)


def _questions(
    kinds: tuple[world.QuestionKind, ...], offset: int = 0
) -> list[tuple[int, world.Question]]:
    """(scene index, question) for the given kinds, one of each per scene, in scene order."""
    out = []
    for i in range(len(SEEDS)):
        rng = np.random.default_rng(SEEDS[i] + offset)
        for kind in kinds:
            question = world.make_question(_scene(i), rng, kind)
            if question is not None:
                out.append((i, question))
    return out


def human_answers(truth: str, i: int) -> list[str]:
    """Ten answers as annotators write them: the truth in several spellings, and others."""
    spellings = [truth, truth.capitalize(), f"the {truth}", f"{truth}.", f" {truth.upper()} "]
    count = 2 + i % 4  # 2..5 agreeing answers: scores 0.6, 0.9 (3: 1.0), 1.0
    others = ["unknown", "none", "two", "it's red", "don't know", "other", "blue-ish", "a cat"]
    return [spellings[k % len(spellings)] for k in range(count)] + others[: 10 - count]


def write_textvqa(root: Path) -> tuple[Path, Path]:
    """`TextVQA_0.5.1_val.json` + `train_images/<image_id>.jpg`."""
    images = root / "train_images"
    data = []
    for n, (i, q) in enumerate(_questions(("colour", "mark"))):
        image_id = f"{SEEDS[i]:x}abc"
        _save(_scene(i), images / f"{image_id}.jpg")
        data.append(
            {
                "question": q.text,
                "image_id": image_id,
                "image_classes": ["toy"],
                "flickr_original_url": "",
                "flickr_300k_url": "",
                "image_width": 448,
                "image_height": 448,
                "answers": human_answers(q.answer, n),
                "question_tokens": q.text.lower().rstrip("?").split(),
                "question_id": 34602 + n,
                "set_name": "val",
            }
        )
    path = root / "TextVQA_0.5.1_val.json"
    top = {"dataset_type": "val", "dataset_name": "textvqa", "dataset_version": "0.5.1"}
    path.write_text(json.dumps({**top, "data": data}))
    return path, images


def write_pope(root: Path) -> tuple[list[Path], Path]:
    """`coco_pope_{random,popular,adversarial}.json` (JSON lines) + `val2014/` images."""
    images = root / "val2014"
    files = []
    for s, split in enumerate(("random", "popular", "adversarial")):
        lines = []
        for n, (i, q) in enumerate(_questions(("exist",), offset=s)):
            name = f"COCO_val2014_{SEEDS[i]:012d}.jpg"
            _save(_scene(i), images / name)
            entry = {"question_id": n + 10 * s, "image": name, "text": q.text, "label": q.answer}
            lines.append(json.dumps(entry))
        path = root / f"coco_pope_{split}.json"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    return files, images


def write_aokvqa(root: Path) -> tuple[Path, Path]:
    """`aokvqa_v1p0_val.json` + `val2017/<image_id:012d>.jpg`."""
    images = root / "val2017"
    entries = []
    for n, (i, q) in enumerate(_questions(("shape", "colour"))):
        _save(_scene(i), images / f"{SEEDS[i]:012d}.jpg")
        direct = [q.answer] * (1 + n % 4) + ["square", "green", "unknown"] * 3
        entries.append(
            {
                "split": "val",
                "image_id": SEEDS[i],
                "question_id": f"22MexNkBPpdZGX{n:04d}",
                "question": q.text,
                "choices": [q.answer, "circle", "red", "other"],
                "correct_choice_idx": 0,
                "direct_answers": direct[:10],
                "difficult_direct_answer": False,
                "rationales": ["toy"],
            }
        )
    path = root / "aokvqa_v1p0_val.json"
    path.write_text(json.dumps(entries))
    return path, images


def write_refcoco(root: Path, name: str = "refcoco") -> tuple[Path, Path]:
    """`<name>/refs(unc).p` (a Python-2-style pickle of plain data) + `<name>/instances.json`
    + `train2014/COCO_train2014_<id:012d>.jpg`. Splits: scene 0 train (excluded from val),
    the others val, one testA."""
    images, folder = root / "train2014", root / name
    folder.mkdir(parents=True, exist_ok=True)
    refs, image_rows, annotations, sent_id, ann_id = [], [], [], 0, 0
    for i in range(len(SEEDS)):
        scene, image_id = _scene(i), SEEDS[i]
        file_name = f"COCO_train2014_{image_id:012d}.jpg"
        _save(scene, images / file_name)
        image_rows.append({"id": image_id, "file_name": file_name, "width": 448, "height": 448})
        for k, obj in enumerate(scene.objects):
            ann_id += 1
            x0, y0, x1, y1 = obj.box
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": 1.0,
                    "iscrowd": 0,
                }
            )
            texts = [obj.name, f"the {obj.colour} object"][: 1 + k % 2]
            sentences = []
            for text in texts:
                sent_id += 1
                sentences.append(
                    {"sent_id": sent_id, "sent": text, "raw": text, "tokens": text.split()}
                )
            split = "train" if i == 0 else ("testA" if (i, k) == (1, 0) else "val")
            refs.append(
                {
                    "ref_id": ann_id,
                    "ann_id": ann_id,
                    "image_id": image_id,
                    "category_id": 1,
                    "split": split,
                    "sentences": sentences,
                    "sent_ids": [s["sent_id"] for s in sentences],
                    "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
                }
            )
    (folder / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    instances = {
        "images": image_rows,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "shape"}],
    }
    (folder / "instances.json").write_text(json.dumps(instances))
    return folder, images


def write_grounding(root: Path) -> tuple[Path, Path]:
    """A JSON-lines grounding file `{image, expression, bbox: [x, y, w, h]}` + its images."""
    images = root / "mine"
    lines = []
    for i in range(2):
        scene = _scene(i)
        _save(scene, images / f"scene{i}.jpg")
        obj = scene.objects[0]
        x0, y0, x1, y1 = obj.box
        lines.append(
            json.dumps(
                {
                    "image": f"scene{i}.jpg",
                    "expression": obj.name,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                }
            )
        )
    path = root / "grounding.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, images
