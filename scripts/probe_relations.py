"""What a toy model holds where it answers a relation question: linear probes per layer.

    python scripts/probe_relations.py                 # the shipped model, 1500 questions (~2 min)

For held-out relation questions ("Is the red object left of the blue object?") it takes the
residual stream at the last prompt position (where the answer's first word is predicted) after
every decoder layer, and fits linear probes on 80 % of the questions, scored on the rest:

- ``answer``: yes / no. Never linear by nature (it is the XOR of the relation word and the
  geometry), so chance here proves nothing on its own;
- ``geometry``: is the subject before the reference on the asked axis (left of it for
  left/right questions, above it for above/below);
- ``answer | word``: yes / no with one probe per relation word (linear if the geometry is);
- ``R2``: ridge regression of the subject's and the reference's centres (x, y).

If the centres are not there (R2 near 0), the answer cannot be computed at that position,
whatever the later layers do. The model card quotes this script's output.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from laser_core import EMBEDDED_MODEL, VLM, LaserConfig, load_model  # noqa: E402
from laser_core.toy import scenes as W  # noqa: E402

RELATION_WORDS = tuple(W.RELATIONS)  # "left of", "right of", "above", "below"
SEED_START = 500_000  # held-out seeds from HELD_OUT_START + this: apart from the evaluation's


@torch.no_grad()
def relation_features(vlm: VLM, n: int) -> dict[str, torch.Tensor]:
    """Residuals at the answer position for ``n`` held-out relation questions, with labels.

    Returns:
        ``hidden`` [n, layers + 1, hidden] float32 (index 0: the input embeddings), ``answer``,
        ``geometry`` [n] bool, ``word`` [n] int64 (index into ``RELATION_WORDS``), ``centres``
        [n, 4] (subject x, y, reference x, y; canvas fractions).
    """
    rows: dict[str, list] = {k: [] for k in ("hidden", "answer", "geometry", "word", "centres")}
    seed = W.HELD_OUT_START + SEED_START
    while len(rows["answer"]) < n:
        seed += 1
        rng = np.random.default_rng(seed)
        scene = W.make_scene(seed, n_objects=int(rng.integers(2, W.MAX_OBJECTS + 1)))
        q = W.make_question(scene, rng, "relation")
        if q is None:
            continue
        match = re.search(r"object (.+) the (\w+) object\?$", q.text)
        assert match is not None, q.text
        relation, reference = match.groups()
        a = next(o for o in scene.objects if o.box == q.box)
        b = next(o for o in scene.objects if o.colour == reference)
        axis = 0 if relation in ("left of", "right of") else 1
        inputs = vlm.adapter.encode([q.text + W.SUFFIX], [scene.image], LaserConfig())
        out = vlm.model(**inputs.to(vlm.device), output_hidden_states=True)
        rows["hidden"].append(torch.stack([h[0, -1].float().cpu() for h in out.hidden_states]))
        rows["answer"].append(q.answer == "yes")
        rows["geometry"].append(a.centre[axis] < b.centre[axis])
        rows["word"].append(RELATION_WORDS.index(relation))
        rows["centres"].append([*a.centre, *b.centre])
    out_rows = {k: torch.tensor(v) for k, v in rows.items() if k != "hidden"}
    out_rows["centres"] = out_rows["centres"].float() / W.CANVAS
    return {"hidden": torch.stack(rows["hidden"]), **out_rows}


def _standardise(x: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    return (x - x[train].mean(0)) / (x[train].std(0) + 1e-5)


def probe_accuracy(x: torch.Tensor, y: torch.Tensor, train: torch.Tensor) -> tuple[float, int]:
    """Held-out accuracy of an L2-regularised logistic regression ``x -> y`` (bool).

    Args:
        x: [n, d] features; y: [n] bool; train: [n] bool, the rows to fit on (the rest score).

    Returns:
        (accuracy on the rows not in ``train``, their number).
    """
    x = _standardise(x.float(), train)
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200)
    target = y[train].float()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = x[train] @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        loss = loss + 1e-3 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    test = ~train
    with torch.no_grad():
        hits = ((x[test] @ w + b > 0) == y[test]).float()
    return hits.mean().item(), int(test.sum())


def ridge_r2(x: torch.Tensor, y: torch.Tensor, train: torch.Tensor) -> list[float]:
    """Held-out R² per column of ``y`` [n, k] for a ridge regression from ``x`` [n, d]."""
    x = _standardise(x.float(), train)
    x = torch.cat([x, torch.ones(len(x), 1)], 1)
    a = x[train]
    coef = torch.linalg.solve(a.T @ a + 10.0 * torch.eye(a.shape[1]), a.T @ y[train])
    test = ~train
    resid = ((x[test] @ coef - y[test]) ** 2).sum(0)
    total = ((y[test] - y[train].mean(0)) ** 2).sum(0)
    return (1 - resid / total).tolist()


def probe_table(features: dict[str, torch.Tensor]) -> str:
    """A markdown table: one row per hidden state, the probes of the module docstring."""
    hidden, word = features["hidden"], features["word"]
    n = len(word)
    train = torch.arange(n) < int(0.8 * n)
    lines = [
        "| hidden state | answer | geometry | answer \\| word "
        "| R2 subject x, y | R2 reference x, y |",
        "|---|---|---|---|---|---|",
    ]
    for layer in range(hidden.shape[1]):
        x = hidden[:, layer]
        answer, _ = probe_accuracy(x, features["answer"], train)
        geometry, _ = probe_accuracy(x, features["geometry"], train)
        per_word = [
            probe_accuracy(x[word == k], features["answer"][word == k], train[word == k])
            for k in range(len(RELATION_WORDS))
        ]
        given_word = sum(acc * m for acc, m in per_word) / sum(m for _, m in per_word)
        r2 = ridge_r2(x, features["centres"], train)
        name = "embeddings" if layer == 0 else f"after layer {layer - 1}"
        if layer == hidden.shape[1] - 1:
            name += " (final norm)"  # transformers' last hidden state: what the LM head reads
        lines.append(
            f"| {name} | {answer:.3f} | {geometry:.3f} | {given_word:.3f} "
            f"| {r2[0]:.2f}, {r2[1]:.2f} | {r2[2]:.2f}, {r2[3]:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(EMBEDDED_MODEL), help="model folder")
    ap.add_argument("--questions", type=int, default=1500, help="held-out relation questions")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    features = relation_features(load_model(Path(args.model), device="cpu"), args.questions)
    print(f"{args.questions} held-out relation questions; probes fit on 80 %, scored on 20 %\n")
    print(probe_table(features))


if __name__ == "__main__":
    main()
