"""A seeded synthetic world for the embedded toy model: scenes, questions, ground-truth boxes.

Each scene is a square canvas (448 px by default) holding 1-4 objects. An object has a
*shape* (circle, square, triangle, diamond), a *colour* (red, green, blue, yellow, purple) and a
fine *mark*: a texture of 5-px bands drawn inside the shape (stripes, bars, checker, diagonal).

The sizes are chosen for the LASER crop rule. The model sees 64 x 64 px, so at full view the
canvas is shrunk 7x: an object (64-88 px) is ~10 px wide, its colour, shape and position survive,
but the 5-px bands of the mark blur into a flat tint. A LASER crop of a 448-px canvas is 224 px,
shrunk only 3.5x: the bands are ~1.4 px wide and the mark becomes legible. So the fine-mark
question is the one where looking closer pays.

Questions (single-word answers) come in five kinds of graded difficulty:
``exist`` (yes/no), ``colour`` (of the object named by shape), ``shape`` (of the object named by
colour), ``relation`` (yes/no: is A left of / right of / above / below B) and ``mark`` (of the
object named by colour or by shape). Every question carries the tight box ``(x0, y0, x1, y1)``
(canvas pixels, exclusive right/bottom) of the object it is about: the subject for relations,
``None`` for an existence question answered "no".

Train and held-out seeds never overlap: held-out scenes use seeds >= ``HELD_OUT_START``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 448  # canvas side, px
MIN_SIZE, MAX_SIZE = 64, 88  # object bounding-square side, px
BAND = 5  # width of one band of a mark, px (period 10)
WIDE = 7  # checker cell / diagonal step, px (their finest detail is then ~BAND)
GAP = 12  # minimum free space between two objects' boxes, px
MARGIN = 8  # minimum distance from an object to the canvas border, px
MAX_OBJECTS = 4
HELD_OUT_START = 10**6  # seeds >= this are held out; training seeds are below

QuestionKind = Literal["exist", "colour", "shape", "relation", "mark"]

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = {
    "red": (220, 40, 40),
    "green": (30, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 20),
    "purple": (150, 50, 190),
}
MARKS = ("stripes", "bars", "checker", "diagonal")
RELATIONS = {"left of": "left", "right of": "right", "above": "above", "below": "below"}
KINDS: tuple[QuestionKind, ...] = ("exist", "colour", "shape", "relation", "mark")

SUFFIX = " Answer the question using a single word or phrase."
GENERIC_QUESTION = "Write a general description of the image."

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class ToyObject:
    """One object: attributes and its tight box ``(x0, y0, x1, y1)`` in canvas pixels."""

    shape: str
    colour: str
    mark: str
    box: Box

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """A rendered scene.

    Attributes:
        image: RGB canvas, ``size`` x ``size``.
        objects: The objects, in drawing order.
        labels: [size, size] int8; index of the object drawn at each pixel, -1 for background.
        seed: The seed that generated it.
        background: Background RGB.
    """

    image: Image.Image
    objects: tuple[ToyObject, ...]
    labels: np.ndarray
    seed: int
    background: tuple[int, int, int]

    @property
    def size(self) -> int:
        return self.image.size[0]


@dataclass(frozen=True)
class Question:
    """A question about a scene, with its single-word answer and ground-truth box (or None)."""

    text: str
    answer: str
    kind: QuestionKind
    box: Box | None


def split_of(seed: int) -> Literal["train", "heldout"]:
    """Which split a seed belongs to."""
    return "heldout" if seed >= HELD_OUT_START else "train"


def heldout_seeds(n: int, *, start: int = 0) -> list[int]:
    """``n`` held-out scene seeds (disjoint from every training seed)."""
    return [HELD_OUT_START + start + i for i in range(n)]


def _pattern(mark: str, size: int) -> np.ndarray:
    """[size, size] bool; True where the band is inked (full colour)."""
    v, u = np.mgrid[0:size, 0:size]
    if mark == "stripes":  # horizontal bands
        return (v // BAND) % 2 == 0
    if mark == "bars":  # vertical bands
        return (u // BAND) % 2 == 0
    if mark == "checker":
        return (u // WIDE + v // WIDE) % 2 == 0
    if mark == "diagonal":  # 45-degree bands, ~5 px wide measured across
        return ((u + v) // WIDE) % 2 == 0
    raise ValueError(f"unknown mark {mark!r}; expected one of {MARKS}")


def _shape_mask(shape: str, size: int) -> np.ndarray:
    """[size, size] bool mask of ``shape`` filling a size x size square."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    s = size - 1
    if shape == "circle":
        draw.ellipse((0, 0, s, s), fill=255)
    elif shape == "square":
        draw.rectangle((0, 0, s, s), fill=255)
    elif shape == "triangle":
        draw.polygon([(s / 2, 0), (s, s), (0, s)], fill=255)
    elif shape == "diamond":
        draw.polygon([(s / 2, 0), (s, s / 2), (s / 2, s), (0, s / 2)], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return np.asarray(mask) > 127


def _place(rng: np.random.Generator, sizes: list[int], canvas: int) -> list[tuple[int, int]] | None:
    """Top-left corners for squares of ``sizes`` that keep ``GAP`` apart, or None if stuck."""
    placed: list[tuple[int, int, int]] = []
    for size in sizes:
        for _ in range(200):
            x = int(rng.integers(MARGIN, canvas - MARGIN - size + 1))
            y = int(rng.integers(MARGIN, canvas - MARGIN - size + 1))
            if all(
                x + size + GAP <= px
                or px + ps + GAP <= x
                or y + size + GAP <= py
                or py + ps + GAP <= y
                for px, py, ps in placed
            ):
                placed.append((x, y, size))
                break
        else:
            return None
    return [(x, y) for x, y, _ in placed]


def make_scene(seed: int, *, n_objects: int | None = None, canvas: int = CANVAS) -> Scene:
    """Render the scene of ``seed`` (deterministic).

    Args:
        seed: Any non-negative int; see ``split_of`` for train vs held-out.
        n_objects: Object count (1..4); default drawn from the seed.
        canvas: Canvas side in px.

    Returns:
        The ``Scene``; object colours and shapes are unique within a scene.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, MAX_OBJECTS + 1)) if n_objects is None else n_objects
    if not 1 <= n <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be in 1..{MAX_OBJECTS}, got {n}")
    colours = [str(c) for c in rng.permutation(list(COLOURS))[:n]]
    shapes = [str(s) for s in rng.permutation(SHAPES)[:n]]
    marks = [MARKS[int(i)] for i in rng.integers(0, len(MARKS), n)]
    grey = int(rng.integers(190, 231))
    background = (grey, grey, grey)
    corners = None
    while corners is None:
        sizes = [int(s) for s in rng.integers(MIN_SIZE, MAX_SIZE + 1, n)]
        corners = _place(rng, sizes, canvas)

    pixels = np.empty((canvas, canvas, 3), np.uint8)
    pixels[:] = background
    labels = np.full((canvas, canvas), -1, np.int8)
    objects = []
    for i, ((x, y), size) in enumerate(zip(corners, sizes, strict=True)):
        ink = np.array(COLOURS[colours[i]], np.float32)
        tint = 0.55 * ink + 0.45 * 255.0  # the un-inked bands: a pale tint of the colour
        mask = _shape_mask(shapes[i], size)
        texture = np.where(_pattern(marks[i], size)[..., None], ink, tint).astype(np.uint8)
        region = pixels[y : y + size, x : x + size]
        region[mask] = texture[mask]
        labels[y : y + size, x : x + size][mask] = i
        rows, cols = np.nonzero(mask)
        box = (
            x + int(cols.min()),
            y + int(rows.min()),
            x + int(cols.max()) + 1,
            y + int(rows.max()) + 1,
        )
        objects.append(ToyObject(shapes[i], colours[i], marks[i], box))
    return Scene(Image.fromarray(pixels), tuple(objects), labels, seed, background)


def _relation_holds(a: ToyObject, b: ToyObject, relation: str) -> bool:
    """True if ``a`` is clearly ``relation`` ``b`` (boxes do not overlap on that axis)."""
    if relation == "left of":
        return a.box[2] <= b.box[0]
    if relation == "right of":
        return a.box[0] >= b.box[2]
    if relation == "above":
        return a.box[3] <= b.box[1]
    return a.box[1] >= b.box[3]  # below


_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def make_question(
    scene: Scene, rng: np.random.Generator, kind: QuestionKind, *, target: ToyObject | None = None
) -> Question | None:
    """One question of ``kind`` about ``scene`` (None if the scene cannot support it).

    ``target`` fixes the object asked about (for relations: the subject); default random.
    """
    objs = scene.objects
    if target is None:
        target = objs[int(rng.integers(len(objs)))]
    if kind == "exist":
        if rng.random() < 0.5:
            return Question(f"Is there a {target.name}?", "yes", kind, target.box)
        present = {o.name for o in objs}
        absent = [f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" not in present]
        # Half the "no" cases reuse a present colour or shape, so one attribute is not enough.
        near = [
            a
            for a in absent
            if any(a.split()[0] == o.colour or a.split()[1] == o.shape for o in objs)
        ]
        pool = near if near and rng.random() < 0.5 else absent
        return Question(f"Is there a {pool[int(rng.integers(len(pool)))]}?", "no", kind, None)
    if kind == "colour":
        return Question(f"What color is the {target.shape}?", target.colour, kind, target.box)
    if kind == "shape":
        return Question(
            f"What shape is the {target.colour} object?", target.shape, kind, target.box
        )
    if kind == "mark":
        named = target.colour + " object" if rng.random() < 0.7 else target.shape
        return Question(f"What pattern is on the {named}?", target.mark, kind, target.box)
    if kind == "relation":
        pairs = [
            (a, b, r)
            for a in objs
            for b in objs
            if a is not b
            for r in RELATIONS
            if _relation_holds(a, b, r)
        ]
        about_target = [p for p in pairs if p[0] is target]
        pairs = about_target or pairs
        if not pairs:
            return None
        a, b, relation = pairs[int(rng.integers(len(pairs)))]
        answer = "yes"
        if rng.random() < 0.5:
            relation, answer = _OPPOSITE[relation], "no"
        text = f"Is the {a.colour} object {relation} the {b.colour} object?"
        return Question(text, answer, kind, a.box)
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


def make_questions(scene: Scene, rng: np.random.Generator) -> list[Question]:
    """One question of every kind the scene supports, in ``KINDS`` order."""
    questions = [make_question(scene, rng, kind) for kind in KINDS]
    return [q for q in questions if q is not None]


def describe(scene: Scene) -> str:
    """Short description (target of the generic prompt): objects left to right."""
    objs = sorted(scene.objects, key=lambda o: o.centre[0])
    return " and ".join(o.name for o in objs)


def salient_colour(scene: Scene) -> str:
    """Colour of the largest object (target of the query-free prompt)."""
    return max(scene.objects, key=lambda o: (o.box[2] - o.box[0]) * (o.box[3] - o.box[1])).colour


def crop_box(box: Box, *, canvas: int = CANVAS, side: int = CANVAS // 2) -> Box:
    """The ``side``-px window centred on ``box``, shifted to lie inside the canvas."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(round(min(max(cx - side / 2, 0), canvas - side)))
    y0 = int(round(min(max(cy - side / 2, 0), canvas - side)))
    return (x0, y0, x0 + side, y0 + side)


def vocabulary() -> list[str]:
    """Every word that prompts, questions and answers of this world use (lower case)."""
    text = " ".join(
        [
            SUFFIX,
            GENERIC_QUESTION,
            "Is there a",
            "What color is the",
            "What shape is the object",
            "What pattern is on the",
            "Is the object the",
            "yes no and user assistant",
            *RELATIONS,
            *SHAPES,
            *COLOURS,
            *MARKS,
        ]
    )
    words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return list(dict.fromkeys(words))
