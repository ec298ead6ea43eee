"""A tiny word-level tokenizer for offline toy models.

Real VLM checkpoints ship large BPE tokenizers that cannot be downloaded here. For tests and the
embedded demo model we only need a tokenizer that (1) maps a small English vocabulary to ids,
(2) keeps the model's special tokens (``<image>``, ``<|image_pad|>``, ...) whole, (3) carries a
chat template, and (4) saves and reloads with ``save_pretrained``/``from_pretrained`` offline.

The tokenizer lower-cases its input, splits on whitespace and punctuation ("red?" -> "red", "?")
and maps unknown words to ``unk_token``. Decoding joins words with single spaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

# Punctuation characters that become tokens of their own; always part of the vocabulary.
PUNCTUATION = tuple(".,;:!?'\"()-/")


def build_word_tokenizer(
    words: Iterable[str],
    *,
    special_tokens: Sequence[str],
    chat_template: str,
    unk_token: str = "[UNK]",
    pad_token: str = "[PAD]",
    eos_token: str = "</s>",
) -> PreTrainedTokenizerFast:
    """Build a lower-casing word-level tokenizer with whole special tokens and a chat template.

    Ids are assigned in this order: ``pad_token``, ``unk_token``, ``eos_token``, then
    ``special_tokens`` (in the given order), then punctuation, then the lower-cased ``words``
    (deduplicated, first occurrence wins). The tokenizer adds no BOS/EOS automatically.

    Args:
        words: Vocabulary words; lower-cased. Words containing whitespace or punctuation would
            never be produced by the pre-tokenizer and are rejected.
        special_tokens: Tokens kept whole and never lower-cased or split, e.g. ``"<image>"``,
            ``"<|image_pad|>"``. ``unk_token``, ``pad_token`` and ``eos_token`` are added
            automatically.
        chat_template: Jinja chat template stored on the tokenizer (used by
            ``apply_chat_template``).
        unk_token: Token that unknown words map to.
        pad_token: Padding token (id 0).
        eos_token: End-of-sequence token (id 2).

    Returns:
        A ``PreTrainedTokenizerFast`` that round-trips through ``save_pretrained`` and
        ``AutoTokenizer.from_pretrained`` with ``HF_HUB_OFFLINE=1``.

    Raises:
        ValueError: If a word contains whitespace or punctuation, or is empty.
    """
    core = [pad_token, unk_token, eos_token]
    specials = list(dict.fromkeys([*core, *special_tokens]))
    vocab: dict[str, int] = {}
    for token in [*specials, *PUNCTUATION, *(_check_word(w) for w in words)]:
        vocab.setdefault(token, len(vocab))

    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk_token))
    tokenizer.normalizer = normalizers.Lowercase()
    # \w+ runs become words; every other non-space character is its own token.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(Regex(r"[^\w\s]"), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tokenizer.add_special_tokens(specials)

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=unk_token,
        pad_token=pad_token,
        eos_token=eos_token,
        extra_special_tokens=[t for t in specials if t not in core],
        chat_template=chat_template,
        clean_up_tokenization_spaces=False,
    )


def _check_word(word: str) -> str:
    """Lower-case ``word`` and reject what the pre-tokenizer could never emit as one token."""
    word = word.lower()
    if not word or any(not (c.isalnum() or c == "_") for c in word):
        raise ValueError(f"vocabulary words must be non-empty \\w+ runs, got {word!r}")
    return word
