"""The VAT decoding table: one row per (step, candidate), ready for a dataframe or a slide.

Each decoding step shows its top candidates with the logits of the cropped image (z+), of the
masked counterfactual (z-), their difference VAT = z+ - z-, the final score s = z+ + alpha * VAT
and its probability p(s), and marks the candidate that was generated. Numbers are fixed-width
strings, so columns line up in a monospace table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

VAT_HEADERS = ["step", "token", "candidate", "z+", "z-", "VAT", "s", "p(s)", "chosen"]
CHOSEN_MARK = "✓"
_NUMBER_KEYS = ("z_plus", "z_minus", "vat", "score", "p_score")  # the numeric columns, in order

# Whitespace and tokenizer space markers made visible: SentencePiece "▁", byte-level BPE "Ġ"/"Ċ",
# and byte-fallback tokens such as "<0x0A>".
_BYTE_TOKENS = {"<0x20>": " ", "<0x0A>": "\n", "<0x09>": "\t", "<0x0D>": "\r"}
_MARKERS = str.maketrans({"▁": " ", "Ġ": " ", "Ċ": "\n"})
_VISIBLE = str.maketrans({" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"})


def format_token(token: str) -> str:
    """A token string with its whitespace made visible ("␣Yes", "⏎"); "</s>" stays as is.

    Args:
        token: Token text as the tokenizer spells it (raw piece or decoded text).

    Returns:
        Printable text: spaces as "␣", newlines as "⏎", tabs as "⇥", other control characters
        as escapes ("\\x07"), the empty token as '""'.
    """
    if not token:
        return '""'
    text = _BYTE_TOKENS.get(token, token).translate(_MARKERS).translate(_VISIBLE)
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def vat_rows(
    steps: Sequence[Mapping[str, Any]], *, decimals: int = 3
) -> tuple[list[str], list[list[str | int]]]:
    """Headers and rows of the VAT table.

    Args:
        steps: One dict per generated token with "index", "token", "token_id" and
            "candidates" (dicts with "token", "token_id", "z_plus", "z_minus", "vat", "score",
            "p_score"), candidates sorted by score, best first.
        decimals: Digits after the decimal point for every number, >= 0.

    Returns:
        (headers, rows): `VAT_HEADERS` and one row per (step, candidate):
        [step index, generated token (first row of its step only, else ""), candidate token,
        z+, z-, VAT, s, p(s), "✓" for the generated candidate else ""]. Numbers are strings
        right-aligned to a common width per column.
    """
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")
    rows: list[list[str | int]] = []
    numbers: list[list[str]] = []
    for step in steps:
        for rank, candidate in enumerate(step["candidates"]):
            chosen = candidate["token_id"] == step["token_id"]
            rows.append(
                [
                    int(step["index"]),
                    format_token(step["token"]) if rank == 0 else "",
                    format_token(candidate["token"]),
                    CHOSEN_MARK if chosen else "",
                ]
            )
            numbers.append([f"{float(candidate[key]):.{decimals}f}" for key in _NUMBER_KEYS])
    widths = [max((len(row[col]) for row in numbers), default=0) for col in range(5)]
    for row, values in zip(rows, numbers, strict=True):
        row[3:3] = [value.rjust(width) for value, width in zip(values, widths, strict=True)]
    return list(VAT_HEADERS), rows
