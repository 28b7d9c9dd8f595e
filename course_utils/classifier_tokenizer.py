"""Subword tokenisation for lesson 06: a WordPiece vocabulary trained on the training reviews.

Training takes a few seconds with the ``tokenizers`` library and needs no download, so the
lesson works offline. Reviews become lists of token ids, truncated to ``max_len`` by keeping
their beginning *and* their end (a review's verdict is often in its last sentences), and
batches are padded only to their own longest review (dynamic padding).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from course_utils.cache import atomic_write, cache_key

__all__ = [
    "CLS",
    "MASK",
    "PAD",
    "SPECIAL_TOKENS",
    "UNK",
    "encode_reviews",
    "head_tail",
    "load_tokenizer",
    "train_or_load_tokenizer",
    "train_tokenizer",
]

PAD, UNK, CLS, MASK = "[PAD]", "[UNK]", "[CLS]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, MASK)  # PAD gets id 0, UNK 1, CLS 2, MASK 3 (pretraining)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2
) -> Tokenizer:
    """Learn a lowercase WordPiece vocabulary of at most ``vocab_size`` tokens from ``texts``.

    Frequent words become one token; rare words are split into pieces, the later pieces
    marked with ``##`` (``"unwatchable"`` might become ``un ##watch ##able``).
    """
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens")
    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
    # Unicode clean-up, lowercasing and accent stripping, then split on spaces and punctuation.
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer


def train_or_load_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    *,
    folder: str | os.PathLike,
    min_frequency: int = 2,
) -> Tokenizer:
    """Load the tokenizer saved for these texts and settings, or train and save it.

    Training is not exactly repeatable (tokens of equal frequency may get their ids in
    another order), so a trained model must be kept with *its* tokenizer: the file is
    ``folder/tokenizer-<fingerprint of texts and settings>.json``.
    """
    texts = list(texts)
    path = Path(folder) / f"tokenizer-{cache_key(vocab_size, min_frequency, texts)}.json"
    if path.is_file():
        return load_tokenizer(path)
    tokenizer = train_tokenizer(texts, vocab_size, min_frequency=min_frequency)
    with atomic_write(path) as temporary:
        tokenizer.save(str(temporary))
    return tokenizer


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Read a tokenizer saved with ``tokenizer.save(path)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {path}")
    return Tokenizer.from_file(str(path))


def head_tail(ids: Sequence[int], max_len: int, head: int | None = None) -> list[int]:
    """Keep at most ``max_len`` ids: the first ``head`` and the last ``max_len - head``.

    ``head`` defaults to a quarter of ``max_len``. Sequences that fit are returned whole.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    head = max_len // 4 if head is None else head
    if not 0 <= head <= max_len:
        raise ValueError(f"head must lie in 0..max_len={max_len}, got {head}")
    ids = list(ids)
    if len(ids) <= max_len:
        return ids
    tail = max_len - head
    return ids[:head] + (ids[-tail:] if tail else [])


def encode_reviews(
    tokenizer: Tokenizer,
    texts: Iterable[str],
    max_len: int,
    *,
    head: int | None = None,
    cls: bool = False,
) -> list[list[int]]:
    """Token ids of each text, truncated with :func:`head_tail` to ``max_len`` ids.

    With ``cls`` every sequence starts with the ``[CLS]`` token (counted in ``max_len``).
    An empty text becomes ``[UNK]``, so that no sequence is all padding.
    """
    budget = max_len - 1 if cls else max_len
    cls_id, unk_id = tokenizer.token_to_id(CLS), tokenizer.token_to_id(UNK)
    if cls_id is None or unk_id is None:
        raise ValueError(f"the tokenizer needs the special tokens {CLS} and {UNK}")
    encoded = []
    for encoding in tokenizer.encode_batch(list(texts)):
        ids = head_tail(encoding.ids, budget, head) or [unk_id]
        encoded.append([cls_id, *ids] if cls else ids)
    return encoded
