"""Checkers for lesson 02: scaled dot-product attention and its masks."""

from __future__ import annotations

import functools
import math

import torch

from course_utils import attention
from course_utils.checking import (
    Case,
    Mistake,
    flawed_mistake,
    function_exercise,
    with_gradient_check,
)

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
    use_mask=True,
    additive=False,
    transpose=(-2, -1),
    output_from_scores=False,
    naive_softmax=False,
    all_axes_reversed=False,
    weights_detached=False,
):
    """Attention with one classic mistake switched on; used to recognise that mistake."""
    scale = math.sqrt(query.size(-1)) if scale is None else scale(query, key, value)
    # key.T written without its deprecation warning: it reverses every axis
    transposed = key.permute(*reversed(range(key.dim()))) if all_axes_reversed else None
    scores = query @ (key.transpose(*transpose) if transposed is None else transposed) / scale
    if not use_mask:
        mask = None
    blocked = None if mask is None else (mask if invert_mask else ~mask)
    if additive and mask is not None:  # the mask itself added, as a float: mask * -1e9
        scores = scores + mask.float() * -1e9
    elif blocked is not None and not mask_after_softmax:
        scores = scores.masked_fill(blocked, fill)
    if not softmax:
        weights = scores
    elif naive_softmax:
        weights = scores.exp() / scores.exp().sum(dim=softmax_dim, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=softmax_dim)
    if blocked is not None and mask_after_softmax:
        weights = weights.masked_fill(blocked, 0.0)
    if weights_detached:
        weights = weights.detach()
    return (scores if output_from_scores else weights) @ value, weights


_mistake = functools.partial(flawed_mistake, flawed=_flawed_attention)


def _weights_for_output(query, key, value, mask=None):
    output, weights = attention.scaled_dot_product_attention(query, key, value, mask)
    return weights, output


@torch.no_grad()
def _without_gradients(query, key, value, mask=None):
    return attention.scaled_dot_product_attention(query, key, value, mask)


GRADIENT_HINT = (
    "no gradient reaches query/key/value: remove .detach() / torch.no_grad(); lesson 06 "
    "trains through this function."
)

INVERTED_HINT = (
    "your mask is inverted: True means a query MAY attend to that key, so fill the "
    "scores where the mask is False (scores.masked_fill(~mask, float('-inf')))."
)

POWER_HINT = (
    "d_k ** 1/2 means (d_k ** 1) / 2, not a square root; write d_k ** 0.5 or math.sqrt(d_k)."
)

ATTENTION_MISTAKES = (
    _mistake(
        "no scaling",
        "your scores are not scaled: divide query @ key.T by √d_k, where d_k = query.size(-1).",
        scale=lambda q, k, v: 1.0,
    ),
    _mistake(
        "divided by d",
        "you divided the scores by d_k; divide by its square root, math.sqrt(d_k).",
        scale=lambda q, k, v: q.size(-1),
    ),
    _mistake(
        "scaled by d_v",
        "scale by √d_k, the feature size of queries and keys (query.size(-1)), "
        "not by the size of the values.",
        scale=lambda q, k, v: math.sqrt(v.size(-1)),
    ),
    _mistake(
        "rounded square root",
        "your √d_k was rounded to a whole number (int(math.sqrt(d_k)) or math.isqrt); √8 is "
        "2.83, not 2: divide by math.sqrt(d_k) as it is.",
        scale=lambda q, k, v: math.isqrt(q.size(-1)),
    ),
    _mistake("d ** 1/2", POWER_HINT, scale=lambda q, k, v: q.size(-1) / 2),
    _mistake("scores / d ** 1/2", POWER_HINT, scale=lambda q, k, v: q.size(-1) * 2),
    _mistake(
        "scaled by the number of keys",
        "you scaled by the square root of the number of keys; scale by √d_k, the feature "
        "size of queries and keys, query.size(-1).",
        scale=lambda q, k, v: math.sqrt(k.size(-2)),
    ),
    _mistake(
        "multiplied by √d",
        "you multiplied the scores by √d_k; divide by it.",
        scale=lambda q, k, v: 1 / math.sqrt(q.size(-1)),
    ),
    _mistake(
        "mask ignored",
        "your function ignores mask: fill the scores where mask is False with float('-inf') "
        "before the softmax (scores.masked_fill(~mask, float('-inf'))).",
        use_mask=False,
    ),
    _mistake(
        "key transposed with transpose(1, 2)",
        "key.transpose(1, 2) swaps the wrong axes once there are heads (or none once there "
        "is no batch axis); key.transpose(-2, -1) swaps the last two, whatever comes before.",
        transpose=(1, 2),
    ),
    _mistake(
        "key.T",
        "key.T reverses all axes of a batched tensor; use key.transpose(-2, -1).",
        all_axes_reversed=True,  # crashes on batched inputs and is recognised by that crash
    ),
    _mistake(
        "key transposed with transpose(0, 1)",
        "key.transpose(0, 1) swaps the wrong axes when there is a batch axis; "
        "key.transpose(-2, -1) swaps the last two, whatever comes before.",
        transpose=(0, 1),
    ),
    _mistake(
        "overflowing softmax",
        "your softmax overflows on large scores (NaN): use torch.softmax, which subtracts "
        "each row's maximum before exp.",
        naive_softmax=True,
    ),
    _mistake(
        "softmax over queries",
        "your softmax runs over the query axis; each query's weights must sum to 1 over "
        "the keys, so use softmax(..., dim=-1).",
        softmax_dim=-2,
    ),
    _mistake(
        "softmax over dim=1",
        "softmax(..., dim=1) picks a different axis for each number of leading axes; each "
        "query's weights must sum to 1 over the keys, the last axis: dim=-1.",
        softmax_dim=1,
    ),
    _mistake(
        "no softmax",
        "your weights are raw scores; turn them into probabilities with a softmax over the keys.",
        softmax=False,
    ),
    _mistake("mask inverted", INVERTED_HINT, invert_mask=True),
    _mistake("mask inverted, -1e9", INVERTED_HINT, invert_mask=True, fill=-1e9),
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
    _mistake(
        "mask added as mask * -1e9",
        INVERTED_HINT,
        additive=True,
    ),
    _mistake(
        "output from the scores",
        "your output mixes the values with the raw scores; mix them with the weights (after "
        "the softmax): output = weights @ value.",
        output_from_scores=True,
        fields=(0,),
    ),
    Mistake(
        "weights returned as output",
        "your first return value is the attention weights; return (output, weights), "
        "where output = weights @ value.",
        _weights_for_output,
        fields=(0,),
    ),
    # Right values, but no gradient flows back: recognised by the gradient check.
    _mistake("weights detached", GRADIENT_HINT, weights_detached=True),
    Mistake("under torch.no_grad()", GRADIENT_HINT, _without_gradients),
)


def _attention_cases(gen: torch.Generator) -> list[Case]:
    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale

    causal = attention.causal_mask(6)
    padding = attention.padding_mask(torch.tensor([5, 3]), 6)[:, None, :]  # (batch, 1, seq_k)
    left = attention.padding_mask(torch.tensor([6, 4, 2]), 6).flip(-1)[:, None, None, :]
    cases = [
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
        Case(
            (randn(3, 2, 4, 8, scale=2.0), randn(3, 2, 6, 8, scale=2.0), randn(3, 2, 6, 5)),
            {"mask": left},
            label="left padding, mask (3, 1, 1, 6), 4-D",
        ),
        Case(
            (randn(1, 3, 64, scale=12.0), randn(1, 5, 64, scale=12.0), randn(1, 5, 4)),
            label="large scores (entries of size 12, d_k=64)",
        ),
    ]
    # Keys that all point one way and queries that point the other: every real score is
    # near -16, below a finite fill such as -10, which would then take the weight. Placed
    # before the causal case, so such a fill fails here with a visible gap.
    direction = randn(8)
    keys = direction + randn(2, 6, 8, scale=0.2)  # (batch, seq_k, d_k)
    queries = -2.0 * direction + randn(2, 4, 8, scale=0.2)
    queries = queries * (16 * math.sqrt(8) / (2 * direction.dot(direction)))
    cases.insert(
        3,
        Case(
            (queries, keys, randn(2, 6, 3)),
            {"mask": padding},
            label="every score far below 0 (about -16), padding mask (2, 1, 6)",
        ),
    )
    return cases


def _flawed_causal(kind):
    def submission(seq, device=None):
        ones = torch.ones(seq, seq, dtype=torch.bool, device=device)
        return {
            "inverted": lambda: ones.triu(1),
            "upper": lambda: ones.triu(),
            "no diagonal": lambda: ones.tril(-1),
            "one step ahead": lambda: ones.tril(1),
            "extra axis": lambda: ones.tril()[None],
        }[kind]()

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
    Mistake(
        "one step ahead",
        "your mask lets each position see one step into the future (tril with diagonal=1); "
        "keep only the diagonal and below, torch.tril(..., diagonal=0).",
        _flawed_causal("one step ahead"),
    ),
    Mistake(
        "extra axis",
        "your mask has an extra leading axis; return shape (seq, seq), which broadcasts "
        "over batches and heads by itself.",
        _flawed_causal("extra axis"),
    ),
)


def _causal_cases(gen: torch.Generator) -> list[Case]:
    return [Case((seq,), label=f"seq={seq}") for seq in (1, 2, 5, 8)]


def _flawed_padding(kind):
    def submission(lengths, seq):
        positions = torch.arange(seq)
        if kind == "longest length":
            positions = torch.arange(int(lengths.max()))
        return {
            "transposed": lambda: positions[:, None] < lengths[None, :],
            "inverted": lambda: positions[None, :] >= lengths[:, None],
            "off by one": lambda: positions[None, :] <= lengths[:, None],
            "one too few": lambda: positions[None, :] < lengths[:, None] - 1,
            "longest length": lambda: positions[None, :] < lengths[:, None],
            "no broadcasting": lambda: positions < lengths,
        }[kind]()

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
    Mistake(
        "one too few",
        "off by one: you marked one real token too few; a sequence of length 3 has real "
        "tokens at 0, 1 and 2 (use position < length).",
        _flawed_padding("one too few"),
    ),
    Mistake(
        "longest length",
        "your mask has as many columns as the longest sequence; it must have seq columns, "
        "even when every sequence is shorter than seq.",
        _flawed_padding("longest length"),
    ),
    Mistake(
        "no broadcasting",
        "compare torch.arange(seq)[None, :] with lengths[:, None], so the comparison "
        "broadcasts to (batch, seq); without the new axes the shapes do not line up.",
        _flawed_padding("no broadcasting"),
    ),
)


def _padding_cases(gen: torch.Generator) -> list[Case]:
    return [
        Case((torch.tensor([3, 5, 1]), 5), label="lengths [3, 5, 1], seq=5"),
        Case((torch.tensor([2, 4]), 6), label="lengths [2, 4], seq=6"),
        Case((torch.tensor([4]), 4), label="one full-length sequence"),
        Case((torch.tensor([0, 2, 1, 3]), 4), label="lengths [0, 2, 1, 3], seq=4"),
    ]


def _gradient_case() -> tuple:
    generator = torch.Generator().manual_seed(21)
    query, key, value = (
        torch.randn(2, s, d, generator=generator) for s, d in ((4, 8), (6, 8), (6, 3))
    )
    return query, key, value, attention.padding_mask(torch.tensor([6, 3]), 6)[:, None, :]


# Values first; then the gradients, since lesson 06 trains W_Q and W_K through it.
_ATTENTION = with_gradient_check(
    function_exercise(
        "2.1",
        attention.scaled_dot_product_attention,
        _attention_cases,
        names=("output", "weights"),
        mistakes=ATTENTION_MISTAKES,
        success="matches the reference with and without masks, for 2-D to 4-D inputs, "
        "and gradients flow through it.",
    ),
    _gradient_case,
    {0: "query", 1: "key", 2: "value"},
    hint=GRADIENT_HINT,
    label="test case: gradients of a masked 3-D call",
    values="outputs",
    advice="compute the output from the weights with ordinary tensor operations, so "
    "autograd can follow it",
    output=lambda result: result[0],
)


EXERCISES = (
    _ATTENTION,
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
