"""A transformer that classifies reviews (lesson 06), built only from the course's own parts.

token ids ─► embedding × √d_model ─► + sinusoidal positions ─► encoder blocks (padding
masked) ─► pooling (masked mean, or the [CLS] token) ─► linear head ─► one logit per class

Padding is recognised from the token ids (``pad_id``), so a review's logits do not depend
on how much padding its batch needed. The number of classes, the vocabulary size and the
longest sequence come from the data and the tokenizer (see :func:`build_classifier`), never
from the shape of a batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from course_utils.encoder import Encoder
from course_utils.positional import SinusoidalPositionalEncoding

__all__ = [
    "POOLINGS",
    "TransformerClassifier",
    "build_classifier",
    "classifier_forward",
    "count_parameters",
    "masked_mean_pool",
]

POOLINGS = ("mean", "cls")


def masked_mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average each sequence's vectors over its real tokens only.

    ``hidden`` is ``(batch, seq, d_model)``; ``mask`` is a bool ``(batch, seq)``, True at real
    tokens (the course's polarity). Returns ``(batch, d_model)``. A sequence without any real
    token averages nothing and gets zeros.
    """
    if hidden.dim() != 3 or mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"hidden must be (batch, seq, d_model) and mask (batch, seq); got "
            f"{tuple(hidden.shape)} and {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = real token); got {mask.dtype}")
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1): 1 at real tokens
    total = (hidden * weights).sum(dim=1)  # (batch, d_model): padding contributes nothing
    count = weights.sum(dim=1).clamp(min=1.0)  # (batch, 1): how many real tokens
    return total / count


class TransformerClassifier(nn.Module):
    """Embedding, positions, an :class:`~course_utils.encoder.Encoder`, pooling and a head.

    ``forward(input_ids)`` maps ``(batch, seq)`` token ids to ``(batch, num_classes)`` logits;
    ids equal to ``pad_id`` are padding. ``pooling`` is ``"mean"`` (masked mean over the real
    tokens) or ``"cls"`` (the vector of the first token, which must then be ``[CLS]``).
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        max_len: int,
        *,
        d_model: int = 64,
        num_heads: int = 4,
        d_ff: int = 256,
        num_layers: int = 1,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        pooling: str = "mean",
        pad_id: int = 0,
        norm_first: bool = True,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if not 0 <= pad_id < vocab_size:
            raise ValueError(
                f"pad_id={pad_id} is not a token id of a {vocab_size}-token vocabulary"
            )
        self.d_model, self.pooling, self.pad_id = d_model, pooling, pad_id
        self.num_classes, self.max_len = num_classes, max_len
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        # Entries of size 1/√d_model, so that after the × √d_model of the forward pass a
        # token vector has entries of size 1, like the positional encoding added to it.
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()
        self.positional = SinusoidalPositionalEncoding(d_model, max_len)
        self.dropout = nn.Dropout(dropout)
        self.encoder = Encoder(
            num_layers, d_model, num_heads, d_ff, dropout=dropout, norm_first=norm_first
        )
        for block in self.encoder.layers:
            # Dropping attention weights regularises a little but costs a random draw per
            # query-key pair: on a CPU that is a third of the training time, so it is optional.
            block.self_attn.dropout.p = attention_dropout
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)`` for a batch of token ids ``(batch, seq)``."""
        return classifier_forward(self, input_ids)


def classifier_forward(model: TransformerClassifier, input_ids: torch.Tensor) -> torch.Tensor:
    """The forward pass of :class:`TransformerClassifier`, written out (exercise 6.2)."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, seq); got shape {tuple(input_ids.shape)}")
    keep = input_ids != model.pad_id  # (batch, seq): True at real tokens
    # 1. Token vectors, scaled up by √d_model, plus the position of each token (axis 1).
    x = model.embedding(input_ids) * math.sqrt(model.d_model)  # (batch, seq, d_model)
    x = model.dropout(model.positional(x))
    # 2. The encoder; no real token may attend to padding. One mask row serves every query.
    x = model.encoder(x, mask=keep[:, None, None, :])  # mask (batch, 1, 1, seq)
    # 3. One vector per review, then one score per class.
    pooled = x[:, 0] if model.pooling == "cls" else masked_mean_pool(x, keep)  # (batch, d_model)
    return model.head(model.dropout(pooled))  # (batch, num_classes)


def build_classifier(
    vocab_size: int, labels: Sequence[int], max_len: int, **sizes
) -> TransformerClassifier:
    """A :class:`TransformerClassifier` sized from the data: one output per class in ``labels``.

    ``labels`` are the training labels (0 to num_classes - 1); ``vocab_size`` comes from the
    tokenizer and ``max_len`` is the length reviews are truncated to. Other keyword
    arguments (``d_model``, ``num_layers``, ...) go to the model.
    """
    labels = [int(label) for label in labels]
    if not labels or min(labels) < 0:
        raise ValueError("labels must be a non-empty sequence of class numbers 0, 1, 2, ...")
    return TransformerClassifier(vocab_size, max(labels) + 1, max_len, **sizes)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
