"""Checkers for lesson 03: splitting and merging heads, and multi-head attention."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import nn

from course_utils import attention
from course_utils.checkers.modules import (
    ModuleCase,
    build_quietly,
    module_exercise,
    randomise_parameters,
)
from course_utils.checking import (
    Case,
    Exercise,
    Mistake,
    Run,
    call_learner,
    flawed_mistake,
    function_exercise,
    judge,
    not_a_function,
    stub,
)

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


def _split_swapped_sizes(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, d_model // num_heads, num_heads).transpose(1, 2)


def _split_d_head_before_seq(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, num_heads, d_model // num_heads).permute(0, 2, 3, 1)


def _split_true_division(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, num_heads, d_model / num_heads).transpose(1, 2)


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
    Mistake(
        "num_heads and d_head swapped",
        "you reshaped to (batch, seq, d_head, num_heads); the head axis comes first: "
        "reshape to (batch, seq, num_heads, d_head), then .transpose(1, 2).",
        _split_swapped_sizes,
    ),
    Mistake(
        "d_head before seq",
        "your last two axes are (d_head, seq); each head must be (seq, d_head): after the "
        "reshape, swap only axes 1 and 2 (.transpose(1, 2) or .permute(0, 2, 1, 3)).",
        _split_d_head_before_seq,
    ),
    Mistake(
        "true division",
        "d_model / num_heads is a float, and shapes need whole numbers: use d_model // num_heads.",
        _split_true_division,
    ),
)


def _split_cases(gen: torch.Generator) -> list[Case]:
    return [
        Case((torch.randn(2, 5, 12, generator=gen), 3), label="x (2, 5, 12), num_heads=3"),
        Case((torch.randn(3, 4, 8, generator=gen), 2), label="x (3, 4, 8), num_heads=2"),
        Case((torch.randn(1, 6, 16, generator=gen), 4), label="x (1, 6, 16), num_heads=4"),
        Case((torch.randn(2, 3, 18, generator=gen), 6), label="x (2, 3, 18), num_heads=6"),
        Case((torch.randn(2, 4, 10, generator=gen), 1), label="x (2, 4, 10), one head"),
    ]


def _merge_straight(x):
    batch, num_heads, seq, d_head = x.shape
    return x.reshape(batch, seq, num_heads * d_head)


def _merge_interleaved(x):
    batch, num_heads, seq, d_head = x.shape
    return x.permute(0, 2, 3, 1).reshape(batch, seq, num_heads * d_head)


def _merge_by_view(x):
    batch, num_heads, seq, d_head = x.shape
    return x.transpose(1, 2).view(batch, seq, num_heads * d_head)


def _merge_not_flattened(x):
    return x.transpose(1, 2)


def _merge_summed(x):
    return x.sum(dim=1)


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
    Mistake(
        "view after transpose",
        "after a transpose the memory is no longer in order, so .view refuses; use "
        ".reshape(...) (or .contiguous().view(...)).",
        _merge_by_view,
    ),
    Mistake(
        "not flattened",
        "you moved the head axis but did not glue the last two axes together: reshape "
        "to (batch, seq, num_heads * d_head).",
        _merge_not_flattened,
    ),
    Mistake(
        "heads added",
        "you added the heads together; merging puts them side by side, so token t gets "
        "num_heads * d_head features: transpose(1, 2), then reshape.",
        _merge_summed,
    ),
)


def _merge_cases(gen: torch.Generator) -> list[Case]:
    return [
        Case((torch.randn(2, 3, 5, 4, generator=gen),), label="x (2, 3, 5, 4)"),
        Case((torch.randn(3, 2, 4, 4, generator=gen),), label="x (3, 2, 4, 4)"),
        Case((torch.randn(1, 4, 6, 2, generator=gen),), label="x (1, 4, 6, 2)"),
        Case((torch.randn(2, 6, 3, 3, generator=gen),), label="x (2, 6, 3, 3)"),
    ]


class _FlawedMultiHeadAttention(nn.Module):
    """Multi-head attention with one classic mistake switched on by a class attribute."""

    split, merge, use_out_proj, scale_by, cross, use_mask = "ok", "ok", True, "d_head", True, True
    value_default, invert_mask, average_weights, kv_proj = "key", False, False, "own"
    dropout_on, return_dropped = "weights", False

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads, self.d_head = num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x):
        if self.split == "straight":
            return _split_straight(x, self.num_heads)
        return attention.split_heads(x, self.num_heads)

    def _drop(self, tensor, place):
        return self.dropout(tensor) if self.dropout_on == place else tensor

    def forward(self, query, key=None, value=None, mask=None):
        if key is None or not self.cross:
            key = value = query
        if value is None:
            value = key if self.value_default == "key" else query
        k_proj, v_proj = {
            "own": (self.k_proj, self.v_proj),
            "q_proj": (self.q_proj, self.q_proj),
            "k_proj": (self.k_proj, self.k_proj),
        }[self.kv_proj]
        q, k, v = (
            self._split(p(t)) for p, t in ((self.q_proj, query), (k_proj, key), (v_proj, value))
        )
        if self.value_default == "query, lesson 02's function":
            _, weights = attention.scaled_dot_product_attention(q, k, v, mask)
        else:
            d_k = {
                "d_head": self.d_head,
                "d_model": self.num_heads * self.d_head,
                "rounded": math.isqrt(self.d_head) ** 2,
            }[self.scale_by]
            scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
            if mask is not None and self.use_mask:
                scores = scores.masked_fill(mask if self.invert_mask else ~mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
        dropped = self._drop(weights, "weights")
        heads = dropped @ self._drop(v, "values")
        merged = (
            _merge_straight(heads) if self.merge == "straight" else attention.merge_heads(heads)
        )
        output = self._drop(self.out_proj(merged) if self.use_out_proj else merged, "output")
        weights = dropped if self.return_dropped else weights
        return output, (weights.mean(dim=1) if self.average_weights else weights)


class _WithoutDropoutArgument(_FlawedMultiHeadAttention):
    """Right in evaluation mode, but it cannot be built with a dropout rate."""

    def __init__(self, d_model: int, num_heads: int):
        super().__init__(d_model, num_heads)


_mha_mistake = functools.partial(flawed_mistake, flawed=_FlawedMultiHeadAttention)

DIVIDE_HINT = (
    "num_heads must divide d_model: MultiHeadAttention(10, 3) should raise a ValueError "
    "naming both numbers, not quietly build heads of 10 // 3 = 3 features."
)

NO_DROPOUT_ARGUMENT_HINT = (
    "your __init__ takes no dropout argument: write __init__(self, d_model, num_heads, "
    "dropout=0.0) and build self.dropout = nn.Dropout(dropout), since lesson 04 builds its "
    "attention with a dropout rate."
)

VALUE_DEFAULT_HINT = (
    "when only key is given, value must default to the key (value = key if value is None), "
    "not to the query."
)

MHA_MISTAKES = (
    _mha_mistake(
        "merged without moving the head axis",
        "your heads are merged by a reshape straight from (batch, num_heads, seq_q, d_head); "
        "transpose to (batch, seq_q, num_heads, d_head) first (merge_heads does this).",
        merge="straight",
    ),
    _mha_mistake(
        "split and merged straight",
        "your heads are split by a reshape straight to (batch, num_heads, seq, d_head) and "
        "merged by a reshape straight back; the two scrambles do not cancel, because "
        "attention mixes the scrambled rows: split with reshape to (batch, seq, num_heads, "
        "d_head), then transpose(1, 2) (split_heads); merge with transpose(1, 2), then "
        "reshape (merge_heads).",
        split="straight",
        merge="straight",
    ),
    _mha_mistake(
        "split straight to heads",
        "your heads are split by a reshape straight to (batch, num_heads, seq, d_head); "
        "reshape to (batch, seq, num_heads, d_head), then transpose (split_heads does this).",
        split="straight",
    ),
    _mha_mistake(
        "no out_proj",
        "you return the merged heads without out_proj: pass them through self.out_proj, the "
        "layer that mixes what the heads found.",
        use_out_proj=False,
    ),
    _mha_mistake(
        "scaled by d_model",
        "you scaled the scores by √d_model; each head's dot products sum over d_head "
        "features, so divide by √d_head (or call scaled_dot_product_attention on the heads).",
        scale_by="d_model",
    ),
    _mha_mistake(
        "always self-attention",
        "with key and value given (cross-attention) you still attend over the query: project "
        "key with k_proj and value with v_proj, and use the query only when they are None.",
        cross=False,
    ),
    _mha_mistake(
        "mask ignored",
        "your module ignores mask: hand it to the attention so masked keys get weight 0 "
        "(True = may attend).",
        use_mask=False,
    ),
    _mha_mistake(
        "mask inverted",
        "your mask is inverted: True means a query MAY attend to that key, so the scores to "
        "fill with -inf are where the mask is False.",
        invert_mask=True,
    ),
    _mha_mistake(
        "value defaults to the query",
        VALUE_DEFAULT_HINT,
        value_default="query",
    ),
    _mha_mistake(
        "value defaults to the query, lesson 02's function",
        VALUE_DEFAULT_HINT,
        value_default="query, lesson 02's function",
    ),
    _mha_mistake(
        "rounded square root",
        "your √d_head was rounded to a whole number (int(math.sqrt(d_head))); √6 is 2.45: "
        "divide by math.sqrt(d_head) as it is.",
        scale_by="rounded",
    ),
    _mha_mistake(
        "weights averaged over heads",
        "return the weights of every head, (batch, num_heads, seq_q, seq_k), not their "
        "average over the heads.",
        average_weights=True,
        fields=(1,),
    ),
    _mha_mistake(
        "q_proj for keys and values",
        "you projected keys and values with q_proj; each has its own map: k_proj(key) and "
        "v_proj(value).",
        kv_proj="q_proj",
    ),
    _mha_mistake(
        "k_proj for values",
        "you projected the values with k_proj; use v_proj(value).",
        kv_proj="k_proj",
    ),
    _mha_mistake(
        "no dropout",
        "in training mode your attention never drops anything: build self.dropout = "
        "nn.Dropout(dropout) and mix the values with the dropped weights, "
        "heads = self.dropout(weights) @ v.",
        dropout_on="nothing",
    ),
    _mha_mistake(
        "dropout on the output",
        "you dropped the layer's output; this dropout goes on the attention weights, before "
        "they mix the values: heads = self.dropout(weights) @ v (the block of lesson 04 "
        "drops the output).",
        dropout_on="output",
    ),
    _mha_mistake(
        "dropout on the values",
        "you dropped the values; this dropout goes on the attention weights, before they mix "
        "the values: heads = self.dropout(weights) @ v.",
        dropout_on="values",
    ),
    _mha_mistake(
        "weights returned after dropout",
        "return the weights as the softmax gave them, before dropout (each row sums to 1); "
        "only the mixing uses the dropped ones: heads = self.dropout(weights) @ v.",
        return_dropped=True,
    ),
    Mistake("no dropout argument", NO_DROPOUT_ARGUMENT_HINT, _WithoutDropoutArgument),
    _mha_mistake("heads that don't divide d_model", DIVIDE_HINT),
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
        ModuleCase(
            (24, 4),
            (randn(2, 3, 24), randn(2, 5, 24)),
            label="key given without a value, d_head=6",
        ),
        ModuleCase(
            (16, 2),
            (randn(2, 4, 16),),
            {"mask": attention.padding_mask(torch.tensor([4, 2]), 4).flip(-1)[:, None, None, :]},
            label="left padding, mask (2, 1, 1, 4), d_head=8",
        ),
        ModuleCase(
            (12, 3),
            (randn(2, 5, 12),),
            {"mask": attention.causal_mask(5)},
            label="training mode, dropout=0.3, causal mask",
            init_kwargs={"dropout": 0.3},
            train=True,
        ),
    ]


class _Stub(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        raise NotImplementedError("Exercise not done yet: replace this line with your code.")


class _Crash(attention.MultiHeadAttention):
    def forward(self, query, key=None, value=None, mask=None):
        # A typical slip: splitting into heads with the wrong sizes.
        q = self.q_proj(query)
        return q.view(q.size(0), q.size(1), self.num_heads, self.d_head + 1), None


EXERCISES: tuple[Exercise, ...] = (
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
        argument_hints={"dropout": NO_DROPOUT_ARGUMENT_HINT},
        stub=_Stub,
        crash=_Crash,
        success="matches the reference for self- and cross-attention, with causal and padding "
        "masks, and drops attention weights in training.",
    ),
)


# 3.4 load_from_torch: PyTorch's weights into the learner's own class ---------------------------


def _flawed_loader(
    *,
    order=(0, 1, 2),
    transpose=(),
    interleaved=False,
    in_bias=True,
    out_weight=True,
    out_bias=True,
    bias_order=None,
    same=None,
):
    """A weight loader with one classic mistake; it fills ``mha`` in place like the reference."""

    def submission(mha, layer):
        split = (lambda t: (t[0::3], t[1::3], t[2::3])) if interleaved else (lambda t: t.chunk(3))
        weights = split(layer.in_proj_weight.detach())
        biases = split(layer.in_proj_bias.detach())
        projections = (mha.q_proj, mha.k_proj, mha.v_proj)
        with torch.no_grad():
            for i, proj in enumerate(projections):
                source = same if same is not None else order[i]
                weight = weights[source]
                proj.weight.copy_(weight.T if "in" in transpose else weight)
                if in_bias:
                    proj.bias.copy_(biases[(bias_order or order)[i] if same is None else same])
            if out_weight:
                out = layer.out_proj.weight
                mha.out_proj.weight.copy_(out.T if "out" in transpose else out)
            if out_bias and out_weight:
                mha.out_proj.bias.copy_(layer.out_proj.bias)
        return mha

    return submission


def _shared_loader(mha, layer):
    """Right values, but the learner's parameters are views of PyTorch's."""
    attention.load_from_torch(mha, layer)
    d_model = layer.embed_dim
    for i, proj in enumerate((mha.q_proj, mha.k_proj, mha.v_proj)):
        proj.weight.data = layer.in_proj_weight.data[i * d_model : (i + 1) * d_model]
    return mha


LOAD_MISTAKES = (
    Mistake(
        "q, k, v in the wrong order",
        "in_proj_weight stacks the rows as [q; k; v]: the first d_model rows are q_proj's, "
        "the next k_proj's, the last v_proj's; yours come in another order.",
        _flawed_loader(order=(1, 0, 2)),
    ),
    Mistake(
        "q and v swapped",
        "in_proj_weight stacks the rows as [q; k; v]; you swapped q's and v's blocks.",
        _flawed_loader(order=(2, 1, 0)),
    ),
    Mistake(
        "k and v swapped",
        "in_proj_weight stacks the rows as [q; k; v]; you swapped k's and v's blocks.",
        _flawed_loader(order=(0, 2, 1)),
    ),
    Mistake(
        "transposed weights",
        "you copied transposed weights; nn.Linear and in_proj_weight both store "
        "(out_features, in_features), so copy the blocks as they are, without .T.",
        _flawed_loader(transpose=("in", "out")),
    ),
    Mistake(
        "transposed q, k, v blocks",
        "you copied the q, k and v blocks transposed; nn.Linear and in_proj_weight both "
        "store (out_features, in_features), so copy them as they are, without .T.",
        _flawed_loader(transpose=("in",)),
    ),
    Mistake(
        "transposed out_proj",
        "you copied out_proj's weight transposed; both out_proj layers are nn.Linear with "
        "the same layout: copy it as it is, without .T.",
        _flawed_loader(transpose=("out",)),
    ),
    Mistake(
        "interleaved rows",
        "in_proj_weight holds three blocks one after the other, not interleaved rows: q_proj "
        "gets rows 0 to d_model - 1 (.chunk(3)), not rows 0, 3, 6, ...",
        _flawed_loader(interleaved=True),
    ),
    Mistake(
        "input biases forgotten",
        "you copied the weights but not the biases: in_proj_bias holds q_proj's, k_proj's and "
        "v_proj's biases, in that order (chunk it in three too).",
        _flawed_loader(in_bias=False),
    ),
    Mistake(
        "biases in the wrong order",
        "your biases come in another order than your weights; in_proj_bias is stacked "
        "[q; k; v] like in_proj_weight.",
        _flawed_loader(bias_order=(1, 0, 2)),
    ),
    Mistake(
        "out_proj not copied",
        "you copied the input projections but not out_proj: copy layer.out_proj.weight and "
        "layer.out_proj.bias into mha.out_proj too.",
        _flawed_loader(out_weight=False),
    ),
    Mistake(
        "out_proj bias forgotten",
        "you copied out_proj's weight but not its bias: copy layer.out_proj.bias too.",
        _flawed_loader(out_bias=False),
    ),
    Mistake(
        "one block for all three",
        "you gave q_proj, k_proj and v_proj the same block; in_proj_weight holds three "
        "different maps: split it in three with .chunk(3) and copy one into each.",
        _flawed_loader(same=0),
    ),
    Mistake(
        "parameters shared with PyTorch's layer",
        "shares memory with PyTorch's layer (a view or .data assignment), so training one "
        "would change the other: copy the values with .copy_() inside torch.no_grad().",
        _shared_loader,
    ),
)


def _load_cases(gen: torch.Generator) -> list[Case]:
    randn = functools.partial(torch.randn, generator=gen)

    def layer(d_model, num_heads):
        torch_layer = build_quietly(nn.MultiheadAttention, d_model, num_heads, batch_first=True)
        return randomise_parameters(torch_layer, gen).eval()

    padding = attention.padding_mask(torch.tensor([5, 3, 4]), 5)[:, None, None, :]
    left = torch.tensor([[True] * 6, [False, False, True, True, True, True]])[:, None, None, :]
    return [
        Case((layer(16, 4), randn(2, 5, 16)), label="d_model=16, 4 heads, self-attention"),
        Case(
            (layer(16, 4), randn(3, 5, 16)),
            {"mask": padding},
            label="padding mask (True = may attend)",
        ),
        Case(
            (layer(12, 2), randn(2, 6, 12)),
            {"mask": attention.causal_mask(6)},
            label="d_model=12, 2 heads, causal mask",
        ),
        Case(
            (layer(24, 6), randn(2, 4, 24), randn(2, 6, 24)),
            {"mask": left},
            label="cross-attention, seq_q=4, seq_k=6, 6 heads, left padding",
        ),
    ]


def _load_and_run(loader, layer, query, memory=None, mask=None, *, start):
    """Fill a fresh course MultiHeadAttention (from ``start``) with ``loader``; run it."""
    target = build_quietly(attention.MultiHeadAttention, layer.embed_dim, layer.num_heads)
    target.load_state_dict(start)
    loader(target, layer)
    return target.eval()(query, memory, mask=mask)


def _shares_memory(module: nn.Module, other: nn.Module) -> str | None:
    theirs = {p.untyped_storage().data_ptr() for p in other.parameters()}
    for name, parameter in module.named_parameters():
        if parameter.untyped_storage().data_ptr() in theirs:
            return name
    return None


def _load_verdict(submission: Any) -> str | None:
    wrong_kind = not_a_function(submission, "3.4", "load_from_torch")
    if wrong_kind:
        return wrong_kind
    generator = torch.Generator().manual_seed(34)
    runs = []
    with torch.no_grad():
        for case in _load_cases(generator):
            layer, query, *memory = case.args
            # Every loader starts from the same random weights, so a forgotten copy shows.
            start = randomise_parameters(
                build_quietly(attention.MultiHeadAttention, layer.embed_dim, layer.num_heads),
                generator,
            ).state_dict()
            received: list[Any] = []

            def learner_call(layer, query, memory=None, mask=None, _received=received, _s=start):
                # The target module is filled in place on purpose: only the PyTorch layer,
                # the query and the memory are inputs the learner must leave unchanged.
                target = build_quietly(
                    attention.MultiHeadAttention, layer.embed_dim, layer.num_heads
                )
                target.load_state_dict(_s)
                _received.extend([submission(target, layer), target, layer])
                return target.eval()(query, memory, mask=mask)

            actual = call_learner(
                learner_call, "load_from_torch", case.args, case.kwargs, signature_of=learner_call
            )
            returned, target, given_layer = received
            if returned is not target:
                return (
                    "return the module you were given, filled in (end with return mha); you "
                    f"returned {type(returned).__name__}."
                )
            shared = _shares_memory(target, given_layer)
            if shared:
                return f"your {shared} {LOAD_MISTAKES[-1].hint}"
            expected = _load_and_run(
                attention.load_from_torch, layer, query, *memory, start=start, **case.kwargs
            )
            outputs = [
                _load_and_run(m.submission, layer, query, *memory, start=start, **case.kwargs)
                for m in LOAD_MISTAKES
            ]
            runs.append(Run(case.label, actual, expected, outputs))
    return judge(runs, names=("output", "weights"), mistakes=LOAD_MISTAKES)


def _load_crash(mha, layer):
    q_w = layer.in_proj_weight.chunk(3, dim=1)[0]  # a typical slip: chunked the wrong axis
    with torch.no_grad():
        mha.q_proj.weight.copy_(q_w)
    return mha


LOAD_EXERCISE = Exercise(
    "3.4",
    "load_from_torch",
    attention.load_from_torch,
    _load_verdict,
    LOAD_MISTAKES,
    stub=stub,
    crash=_load_crash,
    success="your layer now computes what nn.MultiheadAttention computes, masks included.",
)

EXERCISES = (*EXERCISES, LOAD_EXERCISE)
