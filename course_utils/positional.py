"""Reference positional encodings (lesson 05): the sinusoidal table and learned embeddings.

Self-attention by itself cannot tell word order: permute the tokens and the outputs are
permuted the same way. Adding a vector that depends on each token's position fixes that.
Every tensor is batch-first, ``(batch, seq, d_model)``, so positions run along axis 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "LearnedPositionalEmbedding",
    "SinusoidalPositionalEncoding",
    "add_positional_encoding",
    "sinusoidal_positional_encoding",
]


def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """The ``(max_len, d_model)`` table of "Attention Is All You Need".

    ``PE[pos, 2i] = sin(pos / 10000^(2i / d_model))`` and
    ``PE[pos, 2i + 1] = cos(pos / 10000^(2i / d_model))``: sines in the even columns, cosines
    in the odd ones, each pair sharing one frequency. An odd ``d_model`` is allowed: the
    last column is then a sine without its cosine partner.
    """
    if max_len < 1 or d_model < 1:
        raise ValueError(f"max_len and d_model must be positive; got {max_len} and {d_model}")
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d_model / 2),)
    # 1 / 10000^(2i / d_model), computed in float64 so long tables stay accurate.
    frequency = torch.exp(-math.log(10000.0) * two_i / d_model)
    angle = position * frequency  # (max_len, ceil(d_model / 2))
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table.float()


def add_positional_encoding(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Add row t of ``table`` to token t of a batch-first ``x`` ``(batch, seq, d_model)``.

    Token t of every sequence gets ``table[t]``: the table is broadcast over the batch axis,
    never indexed by it. Returns a new tensor; ``x`` is left unchanged.
    """
    if x.dim() != 3:
        raise ValueError(f"x must be (batch, seq, d_model); got shape {tuple(x.shape)}")
    seq, d_model = x.shape[1], x.shape[2]
    if table.dim() != 2 or table.size(1) != d_model:
        raise ValueError(f"table must be (max_len, d_model={d_model}); got {tuple(table.shape)}")
    if table.size(0) < seq:
        raise ValueError(f"the table has {table.size(0)} positions; x needs {seq}")
    return x + table[:seq]  # (seq, d_model) broadcasts over batch


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table to ``(batch, seq, d_model)`` inputs; nothing to learn."""

    table: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        # A buffer follows the module to the GPU, but is neither trained nor saved.
        self.register_buffer(
            "table", sinusoidal_positional_encoding(max_len, d_model), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` plus the encoding of each position."""
        return add_positional_encoding(x, self.table)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a learned vector per position (as BERT and GPT-2 do) to ``(batch, seq, d_model)``.

    Each of the ``max_len`` positions has its own trainable row; unlike the sinusoidal table
    it cannot go beyond ``max_len`` and must be learned from data.
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.embedding = nn.Embedding(max_len, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` plus the learned vector of each position."""
        if x.dim() != 3:
            raise ValueError(f"x must be (batch, seq, d_model); got shape {tuple(x.shape)}")
        if x.size(1) > self.embedding.num_embeddings:
            raise ValueError(
                f"seq={x.size(1)} is longer than max_len={self.embedding.num_embeddings}"
            )
        positions = torch.arange(x.size(1), device=x.device)  # (seq,)
        return add_positional_encoding(x, self.embedding(positions))
