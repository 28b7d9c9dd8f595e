"""Lesson 02: the reference attention against PyTorch, and checker 2.1 against correct variants."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import attention
from course_utils.checking import CheckFailed
from course_utils.exercises import check

SHAPES = [  # (query shape, key shape, value shape)
    ((5, 8), (7, 8), (7, 3)),
    ((2, 4, 16), (2, 6, 16), (2, 6, 5)),
    ((2, 3, 5, 8), (2, 3, 9, 8), (2, 3, 9, 8)),
    ((1, 2, 3, 4, 32), (1, 2, 3, 6, 32), (1, 2, 3, 6, 7)),
]


def _inputs(shapes, seed=0, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator) * scale for shape in shapes]


def _random_mask(shape, seed=1):
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(*shape, generator=generator) > 0.4
    mask[..., 0] = True  # never a query with nothing to attend to
    return mask


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{len(s[0])}d")
@pytest.mark.parametrize("masking", ["none", "random", "causal", "padding"])
def test_reference_equals_pytorch(shapes, masking):
    query, key, value = _inputs(shapes)
    seq_q, seq_k = query.shape[-2], key.shape[-2]
    mask = {
        "none": None,
        "random": _random_mask((*query.shape[:-1], seq_k)),
        "causal": torch.ones(seq_q, seq_k, dtype=torch.bool).tril(),
        "padding": attention.padding_mask(torch.tensor([seq_k - 1]), seq_k),  # (1, seq_k)
    }[masking]
    output, weights = attention.scaled_dot_product_attention(query, key, value, mask)
    expected = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    torch.testing.assert_close(output, expected, atol=1e-6, rtol=1e-6)
    assert weights.shape == (*query.shape[:-1], seq_k)
    torch.testing.assert_close(weights.sum(-1), torch.ones(query.shape[:-1]))
    if mask is not None:
        assert bool((weights.masked_select(~mask.expand_as(weights)) == 0).all())


def test_reference_rejects_mismatched_inputs_clearly():
    q, k, v = _inputs(((2, 3, 4), (2, 5, 6), (2, 5, 2)))
    with pytest.raises(ValueError, match="d_k"):
        attention.scaled_dot_product_attention(q, k, v)
    q, k, v = _inputs(((2, 3, 4), (2, 5, 4), (2, 6, 2)))
    with pytest.raises(ValueError, match="same number of positions"):
        attention.scaled_dot_product_attention(q, k, v)
    q, k, v = _inputs(((3, 4), (3, 4), (3, 2)))
    with pytest.raises(TypeError, match="bool"):
        attention.scaled_dot_product_attention(q, k, v, torch.ones(3, 3))


def test_masks_match_their_definitions():
    causal = attention.causal_mask(4)
    assert causal.dtype == torch.bool
    assert causal.tolist() == [[j <= i for j in range(4)] for i in range(4)]
    padding = attention.padding_mask(torch.tensor([2, 0, 3]), 3)
    assert padding.tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    with pytest.raises(ValueError, match=r"0\.\.3"):
        attention.padding_mask(torch.tensor([4]), 3)


def einsum_attention(query, key, value, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", query, key) / query.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -math.inf)
    weights = scores.softmax(-1)
    return torch.einsum("...qk,...kd->...qd", weights, value), weights


def matmul_attention_large_negative(query, key, value, mask=None):
    scores = torch.matmul(query, key.transpose(-1, -2)) * (1 / math.sqrt(key.size(-1)))
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(-1e9))
    weights = F.softmax(scores, dim=-1)
    return torch.matmul(weights, value), weights


def pytorch_attention(query, key, value, mask=None):
    output = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores + torch.zeros_like(scores).masked_fill(~mask, float("-inf"))
    return output, scores.softmax(dim=-1)


def mask_after_softmax_renormalised(query, key, value, mask=None):
    weights = (query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))).softmax(-1)
    if mask is not None:
        weights = weights * mask
        weights = weights / weights.sum(-1, keepdim=True)
    return weights @ value, weights


def float64_attention(query, key, value, mask=None):
    output, weights = attention.scaled_dot_product_attention(
        query.double(), key.double(), value.double(), mask
    )
    return output.float(), weights.float()


@pytest.mark.parametrize(
    "variant",
    [
        einsum_attention,
        matmul_attention_large_negative,
        pytorch_attention,
        mask_after_softmax_renormalised,
        float64_attention,
    ],
)
def test_checker_accepts_correct_variants(variant, capsys):
    check("2.1", variant)
    assert capsys.readouterr().out.startswith("✓ 2.1")


def test_checker_names_the_missing_tuple():
    def output_only(query, key, value, mask=None):
        return attention.scaled_dot_product_attention(query, key, value, mask)[0]

    with pytest.raises(CheckFailed, match=r"return a tuple \(output, weights\)"):
        check("2.1", output_only)


def test_checker_does_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check("2.1", attention.scaled_dot_product_attention)
    assert torch.equal(torch.rand(3), expected)


def test_checker_catches_inputs_changed_in_place():
    def mutating(query, key, value, mask=None):
        result = attention.scaled_dot_product_attention(query, key, value, mask)
        query.zero_()  # after computing the right answer: only the caller's tensor suffers
        return result

    with pytest.raises(CheckFailed, match="changed its input query in place"):
        check("2.1", mutating)
    check("2.1", attention.scaled_dot_product_attention)  # the reference saw intact inputs


def test_attention_applies_dropout_to_the_weights_it_mixes():
    query = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    drop_all_but_first = torch.zeros(3, 3)
    drop_all_but_first[:, 0] = 1.0

    def keep_first_key(weights):
        return weights * drop_all_but_first

    output, weights = attention.scaled_dot_product_attention(
        query, query, query, dropout=keep_first_key
    )
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))  # returned before dropout
    torch.testing.assert_close(output, weights[..., :1] * query[:, None, 0])


def test_float_mask_is_a_type_verdict():
    def float_mask(seq):
        return torch.ones(seq, seq).tril()

    with pytest.raises(CheckFailed, match="bool tensor"):
        check("2.2", float_mask)
