"""Catalogue of learner implementations for lesson 03 (exercises 3.1-3.3)."""

from __future__ import annotations

import math

import torch
from catalogue import Catalogue, catalogue_tests
from torch import nn

from course_utils.attention import merge_heads, scaled_dot_product_attention, split_heads

CATALOGUE = Catalogue()
valid, wrong = CATALOGUE.valid, CATALOGUE.wrong

# 3.1 split heads ---------------------------------------------------------------------------


@valid("3.1")
def split_reshape_transpose(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, num_heads, d_model // num_heads).transpose(1, 2)


@valid("3.1")
def split_view_permute(x, num_heads):
    b, s, _ = x.size()
    return x.view(b, s, num_heads, -1).permute(0, 2, 1, 3)


@valid("3.1")
def split_chunk_stack(x, num_heads):
    return torch.stack(x.chunk(num_heads, dim=-1), dim=1)


@valid("3.1")
def split_unflatten(x, num_heads):
    return x.unflatten(-1, (num_heads, -1)).transpose(1, 2)


@wrong("3.1", "reshaped straight to")
def split_straight(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, num_heads, s, d // num_heads)


@wrong("3.1", "reshaped straight to")
def split_straight_view(x, num_heads):
    b, _, d = x.shape
    return x.view(b, num_heads, -1, d // num_heads)


@wrong("3.1", "heads sit on axis 2")
def split_no_transpose(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, s, num_heads, d // num_heads)


@wrong("3.1", "like cards")
def split_interleaved(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, s, d // num_heads, num_heads).permute(0, 3, 1, 2)


@wrong("3.1", "the head axis comes first")
def split_sizes_swapped(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, s, d // num_heads, num_heads).transpose(1, 2)


@wrong("3.1", "(d_head, seq)")
def split_permute_wrong(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, s, num_heads, d // num_heads).permute(0, 2, 3, 1)


@wrong("3.1", "d_model // num_heads")
def split_true_division(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, s, num_heads, d / num_heads).transpose(1, 2)


@wrong("3.1", "")
def split_fixed_d_head(x, num_heads):
    b, s, _ = x.shape
    return x.reshape(b, s, num_heads, 4).transpose(1, 2)


@wrong("3.1", "like cards")
def split_strided(x, num_heads):
    return torch.stack([x[..., h::num_heads] for h in range(num_heads)], dim=1)


@wrong("3.1", "heads sit on axis 2")
def split_stack_wrong_axis(x, num_heads):
    return torch.stack(x.chunk(num_heads, dim=-1), dim=2)


@wrong("3.1", "")
def split_transpose_first(x, num_heads):
    b, s, d = x.shape
    return x.transpose(1, 2).reshape(b, num_heads, s, d // num_heads)


# 3.2 merge heads ---------------------------------------------------------------------------


@valid("3.2")
def merge_transpose_reshape(x):
    b, h, s, d = x.shape
    return x.transpose(1, 2).reshape(b, s, h * d)


@valid("3.2")
def merge_contiguous_view(x):
    b, _, s, _ = x.shape
    return x.permute(0, 2, 1, 3).contiguous().view(b, s, -1)


@valid("3.2")
def merge_cat(x):
    return torch.cat(x.unbind(dim=1), dim=-1)


@valid("3.2")
def merge_flatten(x):
    return x.transpose(1, 2).flatten(2)


@wrong("3.2", "glues pieces of different tokens")
def merge_straight(x):
    b, h, s, d = x.shape
    return x.reshape(b, s, h * d)


@wrong("3.2", "glues pieces of different tokens")
def merge_straight_view(x):
    return x.contiguous().view(x.size(0), x.size(2), -1)


@wrong("3.2", "interleaved")
def merge_interleaved(x):
    b, h, s, d = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, s, h * d)


@wrong("3.2", ".view refuses")
def merge_view_after_transpose(x):
    b, h, s, d = x.shape
    return x.transpose(1, 2).view(b, s, h * d)


@wrong("3.2", "did not glue the last two axes")
def merge_no_reshape(x):
    return x.transpose(1, 2)


@wrong("3.2", "added the heads together")
def merge_sum(x):
    return x.sum(dim=1)


@wrong("3.2", "should have shape")
def merge_mean(x):
    return x.mean(dim=1)


@wrong("3.2", "interleaved")
def merge_stack_last(x):
    return torch.stack(x.unbind(dim=1), dim=-1).flatten(2)


@wrong("3.2", "glues pieces of different tokens")
def merge_reshape_minus_one(x):
    return x.reshape(x.shape[0], x.shape[2], -1)


@wrong("3.2", "")
def merge_fixed(x):
    b, _, s, _ = x.shape
    return x.transpose(1, 2).reshape(b, s, 16)


@wrong("3.2", "")
def merge_transpose_3(x):
    b, h, s, d = x.shape
    return x.transpose(1, 3).reshape(b, s, h * d)


# 3.3 multi-head attention ------------------------------------------------------------------


class MhaTextbook(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, key=None, value=None, mask=None):
        key = query if key is None else key
        value = key if value is None else value
        q = split_heads(self.q_proj(query), self.num_heads)
        k = split_heads(self.k_proj(key), self.num_heads)
        v = split_heads(self.v_proj(value), self.num_heads)
        _, weights = scaled_dot_product_attention(q, k, v, mask)
        heads = self.dropout(weights) @ v
        return self.out_proj(merge_heads(heads)), weights


valid("3.3")(MhaTextbook)


@valid("3.3")
class MhaWrittenOut(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.h, self.d_k = num_heads, d_model // num_heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_proj, self.out_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.attn_dropout = nn.Dropout(p=dropout)  # another name: masks follow the call order

    def forward(self, query, key=None, value=None, mask=None):
        if key is None:
            key = query
        if value is None:
            value = key
        b = query.size(0)
        q = self.q_proj(query).view(b, -1, self.h, self.d_k).transpose(1, 2)
        k = self.k_proj(key).view(b, -1, self.h, self.d_k).transpose(1, 2)
        v = self.v_proj(value).view(b, -1, self.h, self.d_k).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e9)
        attn = scores.softmax(dim=-1)
        out = (
            (self.attn_dropout(attn) @ v)
            .transpose(1, 2)
            .contiguous()
            .view(b, -1, self.h * self.d_k)
        )
        return self.out_proj(out), attn


@valid("3.3")
class MhaTorchFunction(MhaTextbook):
    def forward(self, query, key=None, value=None, mask=None):
        key = query if key is None else key
        value = key if value is None else value
        q = split_heads(self.q_proj(query), self.num_heads)
        k = split_heads(self.k_proj(key), self.num_heads)
        v = split_heads(self.v_proj(value), self.num_heads)
        scores = q @ k.transpose(-2, -1) / q.size(-1) ** 0.5
        if mask is not None:
            scores = torch.where(mask, scores, float("-inf"))
        weights = torch.softmax(scores, -1)
        return self.out_proj(merge_heads(self.dropout(weights) @ v)), weights


@valid("3.3")
class MhaDropoutOnlyInTraining(MhaTextbook):
    def forward(self, query, key=None, value=None, mask=None):
        key = query if key is None else key
        value = key if value is None else value
        q, k, v = _heads(self, query, key, value)
        heads, weights = scaled_dot_product_attention(q, k, v, mask)
        if self.training:  # lesson 02's output is right in evaluation mode
            heads = self.dropout(weights) @ v
        return self.out_proj(merge_heads(heads)), weights


def _variant(name, forward):
    return type(name, (MhaTextbook,), {"forward": forward})


def _heads(module, query, key, value):
    return (
        split_heads(module.q_proj(query), module.num_heads),
        split_heads(module.k_proj(key), module.num_heads),
        split_heads(module.v_proj(value), module.num_heads),
    )


def _attend(module, q, k, v, mask=None):
    """Lesson 02's weights, dropped before they mix the values, as the exercise asks."""
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    return module.dropout(weights) @ v, weights


def _softmax_attend(module, q, k, v, mask, scale):
    scores = q @ k.transpose(-2, -1) / scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    return module.dropout(weights) @ v, weights


def _defaults(query, key, value):
    key = query if key is None else key
    return key, key if value is None else value


def _forward_merged_straight(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    heads, weights = _attend(self, *_heads(self, query, key, value), mask)
    b, h, s, d = heads.shape
    return self.out_proj(heads.reshape(b, s, h * d)), weights


def _straight_split(self, x):
    return x.reshape(x.size(0), self.num_heads, x.size(1), x.size(-1) // self.num_heads)


def _forward_split_straight(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    q, k, v = (_straight_split(self, p(t)) for p, t in _projections(self, query, key, value))
    heads, weights = _attend(self, q, k, v, mask)
    return self.out_proj(merge_heads(heads)), weights


def _forward_both_straight(self, query, key=None, value=None, mask=None):
    # The original video's pair: split and merge by bare reshapes.
    key, value = _defaults(query, key, value)
    q, k, v = (_straight_split(self, p(t)) for p, t in _projections(self, query, key, value))
    heads, weights = _attend(self, q, k, v, mask)
    b, h, s, d = heads.shape
    return self.out_proj(heads.reshape(b, s, h * d)), weights


def _projections(self, query, key, value):
    return ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))


def _forward_no_out_proj(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    heads, weights = _attend(self, *_heads(self, query, key, value), mask)
    return merge_heads(heads), weights


def _forward_scaled_d_model(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    q, k, v = _heads(self, query, key, value)
    heads, weights = _softmax_attend(self, q, k, v, mask, math.sqrt(query.size(-1)))
    return self.out_proj(merge_heads(heads)), weights


def _forward_int_sqrt(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    q, k, v = _heads(self, query, key, value)
    heads, weights = _softmax_attend(self, q, k, v, mask, int(math.sqrt(self.d_head)))
    return self.out_proj(merge_heads(heads)), weights


def _forward_self_only(self, query, key=None, value=None, mask=None):
    heads, weights = _attend(self, *_heads(self, query, query, query), mask)
    return self.out_proj(merge_heads(heads)), weights


def _forward_mask_ignored(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    heads, weights = _attend(self, *_heads(self, query, key, value))
    return self.out_proj(merge_heads(heads)), weights


def _forward_mask_inverted(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    inverted = None if mask is None else ~mask
    heads, weights = _attend(self, *_heads(self, query, key, value), inverted)
    return self.out_proj(merge_heads(heads)), weights


def _forward_value_from_query(self, query, key=None, value=None, mask=None):
    key = query if key is None else key
    value = query if value is None else value
    heads, weights = _attend(self, *_heads(self, query, key, value), mask)
    return self.out_proj(merge_heads(heads)), weights


def _forward_mean_weights(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    heads, weights = _attend(self, *_heads(self, query, key, value), mask)
    return self.out_proj(merge_heads(heads)), weights.mean(dim=1)


def _forward_q_proj_everywhere(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    q, k, v = (split_heads(self.q_proj(t), self.num_heads) for t in (query, key, value))
    heads, weights = _attend(self, q, k, v, mask)
    return self.out_proj(merge_heads(heads)), weights


def _forward_k_proj_for_values(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    q = split_heads(self.q_proj(query), self.num_heads)
    k = split_heads(self.k_proj(key), self.num_heads)
    v = split_heads(self.k_proj(value), self.num_heads)
    heads, weights = _attend(self, q, k, v, mask)
    return self.out_proj(merge_heads(heads)), weights


def _forward_in_place(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    query *= 1.0 / math.sqrt(self.d_head)  # scale once, up front
    q, k, v = _heads(self, query, key, value)
    heads, weights = _softmax_attend(self, q, k, v, mask, 1.0)
    return self.out_proj(merge_heads(heads)), weights


def _forward_output_only(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    heads, _ = _attend(self, *_heads(self, query, key, value), mask)
    return self.out_proj(merge_heads(heads))


def _forward_lesson_02_output(self, query, key=None, value=None, mask=None):
    # Builds self.dropout but mixes the values with lesson 02's undropped weights.
    key, value = _defaults(query, key, value)
    heads, weights = scaled_dot_product_attention(*_heads(self, query, key, value), mask)
    return self.out_proj(merge_heads(heads)), weights


def _forward_output_dropped(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    heads, weights = scaled_dot_product_attention(*_heads(self, query, key, value), mask)
    return self.dropout(self.out_proj(merge_heads(heads))), weights


def _forward_values_dropped(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    q, k, v = _heads(self, query, key, value)
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    return self.out_proj(merge_heads(weights @ self.dropout(v))), weights


def _forward_weights_dropped_in_place(self, query, key=None, value=None, mask=None):
    key, value = _defaults(query, key, value)
    q, k, v = _heads(self, query, key, value)
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    weights = self.dropout(weights)  # the name now holds the dropped weights
    return self.out_proj(merge_heads(weights @ v)), weights


for _name, _forward, _names in [
    ("MhaMergedStraight", _forward_merged_straight, "merged by a reshape straight"),
    ("MhaSplitStraight", _forward_split_straight, "split by a reshape straight"),
    ("MhaBothStraight", _forward_both_straight, "the two scrambles do not cancel"),
    ("MhaNoOutProj", _forward_no_out_proj, "without out_proj"),
    ("MhaScaledDModel", _forward_scaled_d_model, "√d_model"),
    ("MhaIntSqrt", _forward_int_sqrt, "rounded to a whole number"),
    ("MhaSelfOnly", _forward_self_only, "you still attend over the query"),
    ("MhaMaskIgnored", _forward_mask_ignored, "ignores mask"),
    ("MhaMaskInverted", _forward_mask_inverted, "mask is inverted"),
    ("MhaValueFromQuery", _forward_value_from_query, "default to the key"),
    ("MhaMeanWeights", _forward_mean_weights, "not their average"),
    ("MhaQProjEverywhere", _forward_q_proj_everywhere, "with q_proj"),
    ("MhaKProjForValues", _forward_k_proj_for_values, "values with k_proj"),
    ("MhaInPlace", _forward_in_place, "in place"),
    ("MhaOutputOnly", _forward_output_only, "return a tuple"),
    ("MhaNeverDrops", _forward_lesson_02_output, "never drops anything"),
    ("MhaOutputDropped", _forward_output_dropped, "you dropped the layer's output"),
    ("MhaValuesDropped", _forward_values_dropped, "you dropped the values"),
    ("MhaDroppedWeightsReturned", _forward_weights_dropped_in_place, "before dropout"),
]:
    wrong("3.3", _names)(_variant(_name, _forward))


@wrong("3.3", "never drops anything")
class MhaNoDropoutModule(MhaTextbook):
    """Takes the dropout argument, builds no dropout, mixes with lesson 02's output."""

    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__(d_model, num_heads)
        del self.dropout
        self.p = dropout

    forward = _forward_lesson_02_output


@wrong("3.3", "takes no dropout argument")
class MhaNoDropoutArgument(MhaTextbook):
    def __init__(self, d_model, num_heads):
        super().__init__(d_model, num_heads)

    forward = _forward_lesson_02_output


@wrong("3.3", "num_heads must divide d_model")
class MhaNoDivisibilityCheck(MhaTextbook):
    def __init__(self, d_model, num_heads, dropout=0.0):
        nn.Module.__init__(self)
        self.num_heads, self.d_head = num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)


@wrong("3.3", "raise a ValueError")
class MhaAssert(MhaTextbook):
    def __init__(self, d_model, num_heads, dropout=0.0):
        assert d_model % num_heads == 0, "num_heads must divide d_model"
        super().__init__(d_model, num_heads, dropout)


@wrong("3.3", "q_proj.bias")
class MhaNoBias(MhaTextbook):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__(d_model, num_heads, dropout)
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)


@wrong("3.3", "copies the reference weights into your module by name")
class MhaOtherNames(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"{num_heads} does not divide {d_model}")
        self.num_heads = num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, key=None, value=None, mask=None):
        raise AssertionError("never reached: the weights cannot be loaded")


CATALOGUE.add("3.3", "instance", MhaTextbook(12, 3), "an instance of")


MINIMUM = {"3.1": (10, 3), "3.2": (10, 3), "3.3": (15, 4)}
(
    test_valid_is_accepted,
    test_wrong_is_rejected_with_its_mistake_named,
    test_catalogue_covers_each_exercise,
) = catalogue_tests(CATALOGUE, MINIMUM)
