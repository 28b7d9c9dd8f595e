"""The training toolkit shared by every model the course trains (lessons 06, 07 and 08).

Small pieces that each training loop needs and that should be written once: the optimizer
(AdamW, decaying the weight matrices only), the learning-rate schedule (linear warm-up, then
linear decay), batches of similar-length sequences, and padding a batch to its own longest
sequence. The loops themselves live with their lesson
(:mod:`course_utils.classifier_training`, :mod:`course_utils.mlm_training`, ...), because a
learner reads them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "IGNORE_INDEX",
    "adamw",
    "batches_forever",
    "length_batches",
    "pad_batch",
    "warmup_then_decay",
]

IGNORE_INDEX = -100  # cross_entropy skips targets equal to this (its default ignore_index)


def adamw(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW whose weight decay shrinks the weight matrices only, never biases or norm scales."""
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay},
    ]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)


def warmup_then_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor at ``step``: rises linearly to 1, then falls linearly to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def length_batches(
    sequences: Sequence[Sequence[int]],
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
) -> list[list[int]]:
    """Split the indices of ``sequences`` into batches of sequences of similar length.

    Shuffled: the indices are shuffled, cut into pools of 50 batches, each pool sorted by
    length and cut into batches, and the batches shuffled. Not shuffled: sorted by length.
    Either way a batch is padded only to its own longest sequence, which saves most padding.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = list(range(len(sequences)))
    rng = random.Random(seed)
    if not shuffle:
        order.sort(key=lambda i: len(sequences[i]))
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    pool = 50 * batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(sequences[i]))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def batches_forever(
    sequences: Sequence[Sequence[int]], batch_size: int, *, seed: int = 0
) -> Iterator[list[int]]:
    """Shuffled :func:`length_batches`, epoch after epoch (for loops counted in steps)."""
    epoch = 0
    while True:
        yield from length_batches(sequences, batch_size, shuffle=True, seed=seed + epoch)
        epoch += 1


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> torch.Tensor:
    """Stack id lists into a ``(batch, seq)`` tensor, ``seq`` being the longest one here.

    Shorter sequences are filled with ``pad_id`` at the end. A sequence with no tokens gets
    one ``pad_id`` so that it is not empty; models treat it as a sequence with no words.
    """
    if not sequences:
        raise ValueError("pad_batch needs at least one sequence")
    seq = max(1, max(len(s) for s in sequences))
    batch = torch.full((len(sequences), seq), pad_id, dtype=torch.long)
    for row, ids in enumerate(sequences):
        batch[row, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
    return batch
