"""Checkers for lesson 02: scaled dot-product attention and its masks."""

from __future__ import annotations

import math

import torch

from course_utils import attention
from course_utils.checking import Case, Mistake, function_exercise

__all__ = ["EXERCISES"]


def _flawed_attention(
    query,
    key,
    value,
    mask=None,
    *,
    scale=None,
    softmax_dim=-1,
    fill=float("-inf"),
    invert_mask=False,
    mask_after_softmax=False,
    softmax=True,
):
    """Attention with one classic mistake switched on; used to recognise that mistake."""
    scale = math.sqrt(query.size(-1)) if scale is None else scale(query, value)
    scores = query @ key.transpose(-2, -1) / scale
    blocked = None if mask is None else (mask if invert_mask else ~mask)
    if blocked is not None and not mask_after_softmax:
        scores = scores.masked_fill(blocked, fill)
    weights = torch.softmax(scores, dim=softmax_dim) if softmax else scores
    if blocked is not None and mask_after_softmax:
        weights = weights.masked_fill(blocked, 0.0)
    return weights @ value, weights


def _mistake(name, hint, fields=None, **flaw):
    def submission(query, key, value, mask=None):
        return _flawed_attention(query, key, value, mask, **flaw)

    submission.__name__ = name
    return Mistake(name, hint, submission, fields)


def _weights_for_output(query, key, value, mask=None):
    output, weights = attention.scaled_dot_product_attention(query, key, value, mask)
    return weights, output


ATTENTION_MISTAKES = (
    _mistake(
        "no scaling",
        "your scores are not scaled: divide query @ key.T by √d_k, where d_k = query.size(-1).",
        scale=lambda q, v: 1.0,
    ),
    _mistake(
        "divided by d",
        "you divided the scores by d_k; divide by its square root, math.sqrt(d_k).",
        scale=lambda q, v: q.size(-1),
    ),
    _mistake(
        "scaled by d_v",
        "scale by √d_k, the feature size of queries and keys (query.size(-1)), "
        "not by the size of the values.",
        scale=lambda q, v: math.sqrt(v.size(-1)),
    ),
    _mistake(
        "softmax over queries",
        "your softmax runs over the query axis; each query's weights must sum to 1 over "
        "the keys, so use softmax(..., dim=-1).",
        softmax_dim=-2,
    ),
    _mistake(
        "no softmax",
        "your weights are raw scores; turn them into probabilities with a softmax over the keys.",
        softmax=False,
    ),
    _mistake(
        "mask inverted",
        "your mask is inverted: True means a query MAY attend to that key, so fill the "
        "scores where the mask is False (scores.masked_fill(~mask, float('-inf'))).",
        invert_mask=True,
    ),
    _mistake(
        "masked scores set to 0",
        "you set masked scores to 0, but exp(0) = 1 still gives them weight; "
        "fill them with float('-inf') so their weight is exactly 0.",
        fill=0.0,
    ),
    _mistake(
        "mask after softmax",
        "you masked after the softmax, so the remaining weights no longer sum to 1; "
        "mask the scores before the softmax.",
        mask_after_softmax=True,
    ),
    Mistake(
        "weights returned as output",
        "your first return value is the attention weights; return (output, weights), "
        "where output = weights @ value.",
        _weights_for_output,
        fields=(0,),
    ),
)


def _attention_cases(gen: torch.Generator) -> list[Case]:
    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale

    causal = attention.causal_mask(6)
    padding = attention.padding_mask(torch.tensor([5, 3]), 6)[:, None, :]  # (batch, 1, seq_k)
    return [
        Case((randn(2, 4, 16), randn(2, 6, 16), randn(2, 6, 5)), label="no mask, 3-D"),
        Case(
            (randn(2, 3, 5, 8, scale=2.0), randn(2, 3, 7, 8, scale=2.0), randn(2, 3, 7, 4)),
            label="no mask, 4-D (batch, heads, seq, d)",
        ),
        Case((randn(4, 9), randn(7, 9), randn(7, 3)), label="no batch axis"),
        Case(
            (randn(2, 6, 8), randn(2, 6, 8), randn(2, 6, 3)),
            {"mask": causal},
            label="causal mask of shape (6, 6)",
        ),
        Case(
            (randn(2, 4, 8, scale=2.0), randn(2, 6, 8, scale=2.0), randn(2, 6, 3)),
            {"mask": padding},
            label="padding mask of shape (2, 1, 6)",
        ),
    ]


def _flawed_causal(kind):
    def submission(seq, device=None):
        ones = torch.ones(seq, seq, dtype=torch.bool, device=device)
        return {"inverted": ones.triu(1), "upper": ones.triu(), "no diagonal": ones.tril(-1)}[kind]

    return submission


CAUSAL_MISTAKES = (
    Mistake(
        "inverted",
        "your mask is inverted: True must mark the positions a query MAY attend to, "
        "i.e. itself and the positions before it.",
        _flawed_causal("inverted"),
    ),
    Mistake(
        "upper triangle",
        "your mask lets each position see the future instead of the past: keep the entries "
        "on and below the diagonal (tril), not above it (triu).",
        _flawed_causal("upper"),
    ),
    Mistake(
        "no diagonal",
        "your mask hides each position from itself; a token may attend to itself, "
        "so keep the diagonal (torch.tril with diagonal=0).",
        _flawed_causal("no diagonal"),
    ),
)


def _causal_cases(gen: torch.Generator) -> list[Case]:
    return [Case((seq,), label=f"seq={seq}") for seq in (1, 2, 5, 8)]


def _flawed_padding(kind):
    def submission(lengths, seq):
        positions = torch.arange(seq)
        if kind == "transposed":
            return positions[:, None] < lengths[None, :]
        if kind == "inverted":
            return positions[None, :] >= lengths[:, None]
        return positions[None, :] <= lengths[:, None]

    return submission


PADDING_MISTAKES = (
    Mistake(
        "inverted",
        "your mask is inverted: True must mark the real tokens (which may be attended to), "
        "False the padding.",
        _flawed_padding("inverted"),
    ),
    Mistake(
        "off by one",
        "off by one: positions count from 0, so a sequence of length 3 has real tokens at "
        "0, 1 and 2 (use position < length).",
        _flawed_padding("off by one"),
    ),
    Mistake(
        "transposed",
        "your mask is (seq, batch); the course is batch-first, so return (batch, seq).",
        _flawed_padding("transposed"),
    ),
)


def _padding_cases(gen: torch.Generator) -> list[Case]:
    return [
        Case((torch.tensor([3, 5, 1]), 5), label="lengths [3, 5, 1], seq=5"),
        Case((torch.tensor([2, 4]), 6), label="lengths [2, 4], seq=6"),
        Case((torch.tensor([4]), 4), label="one full-length sequence"),
    ]


EXERCISES = (
    function_exercise(
        "2.1",
        attention.scaled_dot_product_attention,
        _attention_cases,
        names=("output", "weights"),
        mistakes=ATTENTION_MISTAKES,
        success="matches the reference with and without masks, for 2-D to 4-D inputs.",
    ),
    function_exercise(
        "2.2",
        attention.causal_mask,
        _causal_cases,
        names=("mask",),
        mistakes=CAUSAL_MISTAKES,
        success="each position attends to itself and the positions before it.",
    ),
    function_exercise(
        "2.3",
        attention.padding_mask,
        _padding_cases,
        names=("mask",),
        mistakes=PADDING_MISTAKES,
        success="True at real tokens, False at padding, batch-first.",
    ),
)
