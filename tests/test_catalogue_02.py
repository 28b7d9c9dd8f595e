"""Catalogue of learner implementations for lesson 02 (exercises 2.1-2.3)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from catalogue import Catalogue, catalogue_tests

# The learner's key.T on a batched tensor warns before it crashes; the check shows it.
pytestmark = pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning")

CATALOGUE = Catalogue()
valid, wrong = CATALOGUE.valid, CATALOGUE.wrong

# 2.1 scaled dot-product attention --------------------------------------------------------


@valid("2.1")
def sdpa_textbook(query, key, value, mask=None):
    d_k = query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


@valid("2.1")
def sdpa_large_negative(query, key, value, mask=None):
    scores = torch.matmul(query, key.transpose(-1, -2)) / key.size(-1) ** 0.5
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    weights = F.softmax(scores, dim=-1)
    return torch.matmul(weights, value), weights


@valid("2.1")
def sdpa_where(query, key, value, mask=None):
    scores = query @ key.mT / torch.sqrt(torch.tensor(query.shape[-1], dtype=query.dtype))
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf")))
    weights = scores.softmax(-1)
    return weights @ value, weights


@valid("2.1")
def sdpa_additive_float_mask(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores + (~mask).float() * -1e9
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


@valid("2.1")
def sdpa_mask_then_renormalise(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights @ value, weights


@valid("2.1")
def sdpa_einsum(query, key, value, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", query, key) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.einsum("...qk,...kv->...qv", weights, value), weights


@valid("2.1")
def sdpa_weights_detached_for_display(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights.detach()  # only the output needs gradients


def _attend(scores, value, mask, fill=float("-inf")):
    if mask is not None:
        scores = scores.masked_fill(~mask, fill)
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


@wrong("2.1", "not scaled")
def sdpa_unscaled(query, key, value, mask=None):
    return _attend(query @ key.transpose(-2, -1), value, mask)


@wrong("2.1", "divided the scores by d_k")
def sdpa_by_d(query, key, value, mask=None):
    return _attend(query @ key.transpose(-2, -1) / query.size(-1), value, mask)


@wrong("2.1", "not by the size of the values")
def sdpa_by_d_v(query, key, value, mask=None):
    return _attend(query @ key.transpose(-2, -1) / math.sqrt(value.size(-1)), value, mask)


@wrong("2.1", "rounded to a whole number")
def sdpa_int_sqrt(query, key, value, mask=None):
    return _attend(query @ key.transpose(-2, -1) / int(math.sqrt(query.size(-1))), value, mask)


@wrong("2.1", "not a square root")
def sdpa_precedence(query, key, value, mask=None):
    d_k = query.size(-1)
    return _attend(query @ key.transpose(-2, -1) / d_k**1 / 2, value, mask)


@wrong("2.1", "number of keys")
def sdpa_by_seq(query, key, value, mask=None):
    return _attend(query @ key.transpose(-2, -1) / math.sqrt(key.size(-2)), value, mask)


@wrong("2.1", "query axis")
def sdpa_softmax_queries(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-2)
    return weights @ value, weights


@wrong("2.1", "dim=1")
def sdpa_softmax_dim1(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=1)
    return weights @ value, weights


@wrong("2.1", "raw scores")
def sdpa_no_softmax(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores @ value, scores


@wrong("2.1", "mask is inverted")
def sdpa_inverted(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


@wrong("2.1", "mask is inverted")
def sdpa_mask_times_minus(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores + mask * -1e9
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


@wrong("2.1", "mask is inverted")
def sdpa_inverted_large_negative(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask == 1, -1e9)
    return F.softmax(scores, dim=-1) @ value, F.softmax(scores, dim=-1)


@wrong("2.1", "ignores mask")
def sdpa_mask_ignored(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


@wrong("2.1", "exp(0) = 1")
def sdpa_fill_zero(query, key, value, mask=None):
    return _attend(query @ key.transpose(-2, -1) / math.sqrt(query.size(-1)), value, mask, 0.0)


@wrong("2.1", "after the softmax")
def sdpa_mask_after(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ value, weights


@wrong("2.1", "first return value is the attention weights")
def sdpa_swapped(query, key, value, mask=None):
    output, weights = sdpa_textbook(query, key, value, mask)
    return weights, output


@wrong("2.1", "transpose(-2, -1) swaps the last two")
def sdpa_transpose_1_2(query, key, value, mask=None):
    scores = query @ key.transpose(1, 2) / math.sqrt(query.size(-1))
    return _attend(scores, value, mask)


@wrong("2.1", "key.T reverses all axes")
def sdpa_key_T(query, key, value, mask=None):
    return _attend(query @ key.T / math.sqrt(query.size(-1)), value, mask)


@wrong("2.1", "no gradient reaches query/key/value")
def sdpa_weights_detached(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).detach()
    return weights @ value, weights


@wrong("2.1", "no gradient reaches query/key/value")
def sdpa_under_no_grad(query, key, value, mask=None):
    with torch.no_grad():
        return _attend(query @ key.transpose(-2, -1) / math.sqrt(query.size(-1)), value, mask)


@wrong("2.1", "no gradient reaches query/key/value")
@torch.no_grad()
def sdpa_no_grad_decorator(query, key, value, mask=None):
    return _attend(query @ key.transpose(-2, -1) / math.sqrt(query.size(-1)), value, mask)


@wrong("2.1", "wrong values (largest gap")
def sdpa_fill_minus_ten(query, key, value, mask=None):
    return _attend(query @ key.transpose(-2, -1) / math.sqrt(query.size(-1)), value, mask, -10.0)


@wrong("2.1", "with the weights")
def sdpa_output_from_scores(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = torch.softmax(scores, dim=-1)
    return scores @ value, weights


@wrong("2.1", "overflows")
def sdpa_naive_softmax(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.exp() / scores.exp().sum(-1, keepdim=True)
    return weights @ value, weights


@wrong("2.1", "in place")
def sdpa_scale_in_place(query, key, value, mask=None):
    query /= math.sqrt(query.size(-1))
    return _attend(query @ key.transpose(-2, -1), value, mask)


@wrong("2.1", "multiplied the scores")
def sdpa_times_sqrt(query, key, value, mask=None):
    return _attend(query @ key.transpose(-2, -1) * math.sqrt(query.size(-1)), value, mask)


@wrong("2.1", "")
def sdpa_value_as_key(query, key, value, mask=None):
    scores = query @ value.transpose(-2, -1) / math.sqrt(query.size(-1))
    return _attend(scores, value, mask)


# 2.2 causal mask ---------------------------------------------------------------------------


@valid("2.2")
def causal_tril(seq):
    return torch.tril(torch.ones(seq, seq, dtype=torch.bool))


@valid("2.2")
def causal_not_triu(seq):
    return ~torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)


@valid("2.2")
def causal_arange(seq):
    positions = torch.arange(seq)
    return positions[None, :] <= positions[:, None]


@valid("2.2")
def causal_float_then_bool(seq):
    return torch.tril(torch.ones(seq, seq)) == 1


@wrong("2.2", "inverted")
def causal_triu_1(seq):
    return torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)


@wrong("2.2", "see the future")
def causal_triu(seq):
    return torch.ones(seq, seq, dtype=torch.bool).triu()


@wrong("2.2", "hides each position from itself")
def causal_strict(seq):
    return torch.tril(torch.ones(seq, seq, dtype=torch.bool), diagonal=-1)


@wrong("2.2", "hides each position from itself")
def causal_arange_strict(seq):
    positions = torch.arange(seq)
    return positions[None, :] < positions[:, None]


@wrong("2.2", "one step into the future")
def causal_diag_1(seq):
    return torch.tril(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)


@wrong("2.2", "bool tensor")
def causal_float(seq):
    return torch.tril(torch.ones(seq, seq))


@wrong("2.2", "bool tensor")
def causal_additive(seq):
    return torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1)


@wrong("2.2", "extra leading axis")
def causal_batched(seq):
    return torch.tril(torch.ones(1, seq, seq, dtype=torch.bool))


@wrong("2.2", "see the future")
def causal_arange_ge(seq):
    positions = torch.arange(seq)
    return positions[None, :] >= positions[:, None]


@wrong("2.2", "should have shape")
def causal_fixed_size(seq):
    return torch.tril(torch.ones(8, 8, dtype=torch.bool))


@wrong("2.2", "bool tensor")
def causal_int(seq):
    return torch.tril(torch.ones(seq, seq, dtype=torch.long))


# 2.3 padding mask --------------------------------------------------------------------------


@valid("2.3")
def padding_broadcast(lengths, seq):
    return torch.arange(seq)[None, :] < lengths[:, None]


@valid("2.3")
def padding_loop(lengths, seq):
    mask = torch.zeros(len(lengths), seq, dtype=torch.bool)
    for row, length in enumerate(lengths):
        mask[row, :length] = True
    return mask


@valid("2.3")
def padding_unsqueeze(lengths, seq):
    return torch.arange(seq).unsqueeze(0) < lengths.unsqueeze(1)


@valid("2.3")
def padding_expand(lengths, seq):
    positions = torch.arange(seq).expand(len(lengths), seq)
    return positions < lengths.view(-1, 1)


@wrong("2.3", "inverted")
def padding_inverted(lengths, seq):
    return torch.arange(seq)[None, :] >= lengths[:, None]


@wrong("2.3", "off by one")
def padding_le(lengths, seq):
    return torch.arange(seq)[None, :] <= lengths[:, None]


@wrong("2.3", "off by one")
def padding_one_based(lengths, seq):
    return torch.arange(1, seq + 1)[None, :] < lengths[:, None]


@wrong("2.3", "batch-first")
def padding_transposed(lengths, seq):
    return torch.arange(seq)[:, None] < lengths[None, :]


@wrong("2.3", "columns as the longest")
def padding_longest(lengths, seq):
    return torch.arange(lengths.max())[None, :] < lengths[:, None]


@wrong("2.3", "without the new axes")
def padding_no_broadcast(lengths, seq):
    return torch.arange(seq) < lengths


@wrong("2.3", "bool tensor")
def padding_float(lengths, seq):
    return (torch.arange(seq)[None, :] < lengths[:, None]).float()


@wrong("2.3", "inverted")
def padding_loop_inverted(lengths, seq):
    mask = torch.zeros(len(lengths), seq, dtype=torch.bool)
    for row, length in enumerate(lengths):
        mask[row, length:] = True
    return mask


@wrong("2.3", "in place")
def padding_decrement(lengths, seq):
    lengths -= 1
    return torch.arange(seq)[None, :] <= lengths[:, None]


@wrong("2.3", "bool tensor")
def padding_long(lengths, seq):
    return (torch.arange(seq)[None, :] < lengths[:, None]).long()


@wrong("2.3", "")
def padding_fixed_length(lengths, seq):
    return torch.arange(seq)[None, :] < torch.full_like(lengths, 3)[:, None]


MINIMUM = {"2.1": (20, 5), "2.2": (10, 3), "2.3": (10, 3)}
(
    test_valid_is_accepted,
    test_wrong_is_rejected_with_its_mistake_named,
    test_catalogue_covers_each_exercise,
) = catalogue_tests(CATALOGUE, MINIMUM)
