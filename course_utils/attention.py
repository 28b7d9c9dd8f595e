"""Reference attention: scaled dot-product attention and the masks it uses (lesson 02).

Convention used throughout the course: a boolean mask is True where a query **may
attend** to a key, exactly as in ``torch.nn.functional.scaled_dot_product_attention``
and Hugging Face. Tensors are batch-first and may carry any leading dimensions.
"""

from __future__ import annotations

import math
import time

import torch

__all__ = [
    "causal_mask",
    "measure_attention_cost",
    "padding_mask",
    "scaled_dot_product_attention",
]


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attend from each query to every key; return ``(output, weights)``.

    Shapes: query ``(..., seq_q, d_k)``, key ``(..., seq_k, d_k)``, value
    ``(..., seq_k, d_v)``; ``mask`` is boolean and broadcastable to
    ``(..., seq_q, seq_k)``, True = may attend. Returns output ``(..., seq_q, d_v)``
    and weights ``(..., seq_q, seq_k)``, each row of weights summing to 1 over the keys.
    A query whose every key is masked has no defined output (its row is NaN).
    """
    if query.size(-1) != key.size(-1):
        raise ValueError(
            f"query and key must share their last dimension d_k; got {query.size(-1)} and {key.size(-1)}"
        )
    if key.size(-2) != value.size(-2):
        raise ValueError(
            f"key and value must have the same number of positions; got {key.size(-2)} and {value.size(-2)}"
        )
    # d_k is the size the dot products sum over: the queries' (and keys') feature size,
    # not the values'. Dividing by its square root keeps the scores' variance near 1.
    d_k = query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (..., seq_q, seq_k)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = may attend); got {mask.dtype}")
        # -inf, not 0: exp(-inf) = 0, so a masked key gets exactly zero weight.
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # over the keys: each query's row sums to 1
    output = weights @ value  # (..., seq_q, d_v)
    return output, weights


def causal_mask(seq: int, device: torch.device | str | None = None) -> torch.Tensor:
    """A ``(seq, seq)`` bool mask where position i may attend to positions 0..i only."""
    if seq < 1:
        raise ValueError(f"seq must be at least 1, got {seq}")
    return torch.ones(seq, seq, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, seq: int) -> torch.Tensor:
    """A ``(batch, seq)`` bool mask, True at the real tokens of each sequence.

    ``lengths`` holds each sequence's number of real tokens, shape ``(batch,)``;
    positions at and after a sequence's length are padding (False). To use it as an
    attention mask over keys, add the query axis: ``mask[:, None, :]``.
    """
    if lengths.dim() != 1:
        raise ValueError(f"lengths must have shape (batch,), got {tuple(lengths.shape)}")
    if bool((lengths > seq).any()) or bool((lengths < 0).any()):
        raise ValueError(f"every length must lie in 0..{seq}; got {lengths.tolist()}")
    positions = torch.arange(seq, device=lengths.device)  # (seq,)
    return positions[None, :] < lengths[:, None]  # (batch, seq)


def measure_attention_cost(
    seq_lengths: list[int], d_k: int = 64, repeats: int = 3, device: torch.device | str = "cpu"
) -> list[dict]:
    """Time one self-attention call for each length and measure its score and weight matrices.

    Returns one dict per length: ``seq``, ``seconds`` (median of ``repeats`` runs) and
    ``megabytes`` (bytes held by the ``(seq, seq)`` scores and weights of one call).
    """
    generator = torch.Generator().manual_seed(0)
    results = []
    for seq in seq_lengths:
        x = torch.randn(1, seq, d_k, generator=generator).to(device)
        timings = []
        for _ in range(repeats):
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            _, weights = scaled_dot_product_attention(x, x, x)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
        # The scores and the weights are both (seq, seq): that is what grows with seq².
        matrix_bytes = 2 * weights.numel() * weights.element_size()
        results.append(
            {"seq": seq, "seconds": sorted(timings)[len(timings) // 2], "megabytes": matrix_bytes / 1e6}
        )
    return results
