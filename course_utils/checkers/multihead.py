"""Checkers for lesson 03: splitting and merging heads, and multi-head attention."""

from __future__ import annotations

import math

import torch
from torch import nn

from course_utils import attention
from course_utils.checkers.modules import ModuleCase, build_quietly, module_exercise
from course_utils.checking import Case, Mistake, function_exercise

__all__ = ["EXERCISES"]


def _split_straight(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, num_heads, seq, d_model // num_heads)


def _split_without_transpose(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, num_heads, d_model // num_heads)


def _split_interleaved(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, d_model // num_heads, num_heads).permute(0, 3, 1, 2)


SPLIT_MISTAKES = (
    Mistake(
        "reshape straight to heads",
        "you reshaped straight to (batch, num_heads, seq, d_head), which deals features of "
        "different tokens to one head: reshape to (batch, seq, num_heads, d_head) first, "
        "then .transpose(1, 2).",
        _split_straight,
    ),
    Mistake(
        "head axis not moved",
        "your heads sit on axis 2, (batch, seq, num_heads, d_head); move them in front of "
        "seq with .transpose(1, 2) so each head attends over the whole sequence.",
        _split_without_transpose,
    ),
    Mistake(
        "interleaved features",
        "each head must get one contiguous block of d_head features (head 0: features "
        "0..d_head-1); you reshaped to (..., d_head, num_heads), which deals features out "
        "like cards.",
        _split_interleaved,
    ),
)


def _split_cases(gen: torch.Generator) -> list[Case]:
    return [
        Case((torch.randn(2, 5, 12, generator=gen), 3), label="x (2, 5, 12), num_heads=3"),
        Case((torch.randn(3, 4, 8, generator=gen), 2), label="x (3, 4, 8), num_heads=2"),
        Case((torch.randn(1, 6, 16, generator=gen), 4), label="x (1, 6, 16), num_heads=4"),
    ]


def _merge_straight(x):
    batch, num_heads, seq, d_head = x.shape
    return x.reshape(batch, seq, num_heads * d_head)


def _merge_interleaved(x):
    batch, num_heads, seq, d_head = x.shape
    return x.permute(0, 2, 3, 1).reshape(batch, seq, num_heads * d_head)


MERGE_MISTAKES = (
    Mistake(
        "reshape without moving the head axis back",
        "you reshaped (batch, num_heads, seq, d_head) straight to (batch, seq, d_model), which "
        "glues pieces of different tokens together: .transpose(1, 2) first, then reshape.",
        _merge_straight,
    ),
    Mistake(
        "interleaved heads",
        "you moved d_head in front of num_heads, so the heads' features end up interleaved; "
        "after .transpose(1, 2) the axes must be (batch, seq, num_heads, d_head).",
        _merge_interleaved,
    ),
)


def _merge_cases(gen: torch.Generator) -> list[Case]:
    return [
        Case((torch.randn(2, 3, 5, 4, generator=gen),), label="x (2, 3, 5, 4)"),
        Case((torch.randn(3, 2, 4, 4, generator=gen),), label="x (3, 2, 4, 4)"),
        Case((torch.randn(1, 4, 6, 2, generator=gen),), label="x (1, 4, 6, 2)"),
    ]


class _FlawedAttention(nn.Module):
    """Multi-head attention with one classic mistake switched on by a class attribute."""

    split, merge, use_out_proj, scale_by, cross, use_mask = "ok", "ok", True, "d_head", True, True

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        self.num_heads, self.d_head = num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _split(self, x):
        if self.split == "straight":
            return _split_straight(x, self.num_heads)
        return attention.split_heads(x, self.num_heads)

    def forward(self, query, key=None, value=None, mask=None):
        if key is None or not self.cross:
            key = value = query
        value = key if value is None else value
        q, k, v = (
            self._split(p(t))
            for p, t in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))
        )
        d_k = self.d_head if self.scale_by == "d_head" else self.num_heads * self.d_head
        scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
        if mask is not None and self.use_mask:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        heads = weights @ v
        merged = (
            _merge_straight(heads) if self.merge == "straight" else attention.merge_heads(heads)
        )
        return (self.out_proj(merged) if self.use_out_proj else merged), weights


def _flawed(name: str, **flaw) -> type:
    return type("MultiHeadAttention", (_FlawedAttention,), {"__qualname__": name, **flaw})


DIVIDE_HINT = (
    "num_heads must divide d_model: MultiHeadAttention(10, 3) should raise a ValueError "
    "naming both numbers, not quietly build heads of 10 // 3 = 3 features."
)

MHA_MISTAKES = (
    Mistake(
        "merged without moving the head axis",
        "your heads are merged by a reshape straight from (batch, num_heads, seq_q, d_head); "
        "transpose to (batch, seq_q, num_heads, d_head) first (merge_heads does this).",
        _flawed("merged without moving the head axis", merge="straight"),
    ),
    Mistake(
        "split straight to heads",
        "your heads are split by a reshape straight to (batch, num_heads, seq, d_head); "
        "reshape to (batch, seq, num_heads, d_head), then transpose (split_heads does this).",
        _flawed("split straight to heads", split="straight"),
    ),
    Mistake(
        "no out_proj",
        "you return the merged heads without out_proj: pass them through self.out_proj, the "
        "layer that mixes what the heads found.",
        _flawed("no out_proj", use_out_proj=False),
    ),
    Mistake(
        "scaled by d_model",
        "you scaled the scores by √d_model; each head's dot products sum over d_head "
        "features, so divide by √d_head (or call scaled_dot_product_attention on the heads).",
        _flawed("scaled by d_model", scale_by="d_model"),
    ),
    Mistake(
        "always self-attention",
        "with key and value given (cross-attention) you still attend over the query: project "
        "key with k_proj and value with v_proj, and use the query only when they are None.",
        _flawed("always self-attention", cross=False),
    ),
    Mistake(
        "mask ignored",
        "your module ignores mask: hand it to the attention so masked keys get weight 0 "
        "(True = may attend).",
        _flawed("mask ignored", use_mask=False),
    ),
    Mistake("heads that don't divide d_model", DIVIDE_HINT, _flawed("no divisibility check")),
)


def _rejects_bad_heads(submission: type) -> str | None:
    try:
        build_quietly(submission, 10, 3)
    except ValueError:
        return None
    except NotImplementedError:
        raise
    except Exception as error:  # the learner's own check, of the wrong kind
        return (
            f"MultiHeadAttention(10, 3) raised {type(error).__name__}; raise a ValueError "
            "(assert statements vanish under python -O)."
        )
    return DIVIDE_HINT


def _mha_cases(gen: torch.Generator) -> list[ModuleCase]:
    def randn(*shape):
        return torch.randn(*shape, generator=gen) * 1.5

    memory = randn(2, 6, 12)
    padding = attention.padding_mask(torch.tensor([6, 3]), 6)[:, None, None, :]  # (2, 1, 1, 6)
    return [
        ModuleCase((12, 3), (randn(2, 5, 12),), label="self-attention, d_model=12, num_heads=3"),
        ModuleCase(
            (12, 3), (randn(2, 4, 12), memory, memory), label="cross-attention, seq_q=4, seq_k=6"
        ),
        ModuleCase(
            (16, 4),
            (randn(3, 5, 16),),
            {"mask": attention.causal_mask(5)},
            label="causal mask (5, 5), num_heads=4",
        ),
        ModuleCase(
            (16, 2),
            (randn(2, 6, 16),),
            {"mask": padding},
            label="padding mask (2, 1, 1, 6), num_heads=2",
        ),
        ModuleCase(
            (16, 4),
            (randn(3, 2, 16), randn(3, 5, 16), randn(3, 5, 16)),
            label="cross-attention with different key and value",
        ),
    ]


class _Stub(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        raise NotImplementedError("Exercise not done yet: replace this line with your code.")


class _Crash(attention.MultiHeadAttention):
    def forward(self, query, key=None, value=None, mask=None):
        # A typical slip: splitting into heads with the wrong sizes.
        q = self.q_proj(query)
        return q.view(q.size(0), q.size(1), self.num_heads, self.d_head + 1), None


EXERCISES = (
    function_exercise(
        "3.1",
        attention.split_heads,
        _split_cases,
        names=("heads",),
        mistakes=SPLIT_MISTAKES,
        success="each head gets its own block of features for every token.",
    ),
    function_exercise(
        "3.2",
        attention.merge_heads,
        _merge_cases,
        names=("merged",),
        mistakes=MERGE_MISTAKES,
        success="the heads are glued back token by token.",
    ),
    module_exercise(
        "3.3",
        attention.MultiHeadAttention,
        _mha_cases,
        names=("output", "weights"),
        layout="build q_proj, k_proj, v_proj and out_proj, each nn.Linear(d_model, d_model).",
        mistakes=MHA_MISTAKES,
        after=(_rejects_bad_heads,),
        stub=_Stub,
        crash=_Crash,
        success="matches the reference for self- and cross-attention, with causal and padding "
        "masks.",
    ),
)
