"""Checkers for lesson 01: cosine similarity, neighbours, a stable softmax, attention weights."""

from __future__ import annotations

import functools
import math

import torch

from course_utils import embeddings
from course_utils.checking import Case, flawed_mistake, function_exercise

__all__ = ["EXERCISES"]


def _dot(a, b):
    return (a * b).sum(dim=-1)


ONE_LENGTH_HINT = (
    "you divided by the length of one vector only; cosine similarity divides by both lengths."
)

COSINE_MISTAKES = (
    flawed_mistake(
        "dot product",
        "you returned the plain dot product; divide it by the lengths of both vectors, "
        "a.norm(dim=-1) * b.norm(dim=-1).",
        lambda a, b: _dot(a, b),
    ),
    flawed_mistake("length of a only", ONE_LENGTH_HINT, lambda a, b: _dot(a, b) / a.norm(dim=-1)),
    flawed_mistake("length of b only", ONE_LENGTH_HINT, lambda a, b: _dot(a, b) / b.norm(dim=-1)),
    flawed_mistake(
        "squared lengths",
        "you divided by the squared lengths; a vector's length is the square root of "
        "(v * v).sum(-1), which is what v.norm(dim=-1) gives.",
        lambda a, b: _dot(a, b) / (_dot(a, a) * _dot(b, b)),
    ),
    flawed_mistake(
        "length of the whole tensor",
        "you took the length of the whole tensor; take each vector's own length along "
        "the last axis, v.norm(dim=-1).",
        lambda a, b: _dot(a, b) / (a.norm() * b.norm()),
    ),
    flawed_mistake(
        "distance",
        "you returned the cosine distance 1 − cos; return the similarity itself.",
        lambda a, b: 1 - embeddings.cosine_similarity(a, b),
    ),
    flawed_mistake(
        "reduced axis kept",
        "you kept the summed axis (keepdim=True), so your result ends in an extra axis of "
        "size 1; return one number per pair of vectors, shape (...).",
        lambda a, b: embeddings.cosine_similarity(a, b)[..., None],
    ),
    flawed_mistake(
        "matrix product",
        "you used a matrix product (a @ b.T), which pairs every vector of a with every "
        "vector of b; multiply element-wise and sum over the last axis, (a * b).sum(dim=-1).",
        lambda a, b: (
            (a @ b.transpose(-1, -2) if a.dim() > 1 else a @ b) / (a.norm(dim=-1) * b.norm(dim=-1))
        ),
    ),
    flawed_mistake(
        "absolute value",
        "you took the absolute value; opposite vectors have cosine −1, so keep the sign.",
        lambda a, b: embeddings.cosine_similarity(a, b).abs(),
    ),
)


def _cosine_cases(gen: torch.Generator) -> list[Case]:
    randn = functools.partial(torch.randn, generator=gen)
    return [
        Case((randn(8), randn(8)), label="two vectors of size 8"),
        Case((randn(5, 8) * 3, randn(5, 8)), label="5 pairs of vectors, shape (5, 8)"),
        Case((randn(4, 6), randn(4, 6) * 0.2), label="4 pairs of vectors, shape (4, 6)"),
        Case(
            (randn(1, 16), randn(6, 16) * 0.5),
            label="one vector against 6, shapes (1, 16), (6, 16)",
        ),
    ]


def _ranked(scores, k, largest=True):
    return torch.topk(scores, k, largest=largest)


NEIGHBOUR_MISTAKES = (
    flawed_mistake(
        "ranked by dot product",
        "you ranked by the raw dot product, which favours long vectors; rank by cosine "
        "similarity, which only looks at directions.",
        lambda query, embeddings_, k=5: _ranked(embeddings_ @ query, k),
        fields=(1,),
    ),
    flawed_mistake(
        "least similar",
        "you returned the least similar rows; take the k largest similarities "
        "(torch.topk(similarities, k) does this).",
        lambda query, embeddings_, k=5: _ranked(
            embeddings.cosine_similarity(query[None, :], embeddings_), k, largest=False
        ),
        fields=(1,),
    ),
    flawed_mistake(
        "ranked by distance",
        "you ranked by Euclidean distance, which depends on the vectors' lengths; "
        "rank by cosine similarity.",
        lambda query, embeddings_, k=5: _ranked(
            (embeddings_ - query).norm(dim=-1), k, largest=False
        ),
        fields=(1,),
    ),
    flawed_mistake(
        "not sorted",
        "you found the right rows but not in order; return them most similar first "
        "(torch.topk sorts them for you).",
        lambda query, embeddings_, k=5: _by_index(
            *embeddings.nearest_neighbours(query, embeddings_, k)
        ),
    ),
    flawed_mistake(
        "swapped outputs",
        "return (similarities, indices) in that order; you returned them the other way round.",
        lambda query, embeddings_, k=5: embeddings.nearest_neighbours(query, embeddings_, k)[::-1],
    ),
    flawed_mistake(
        "least similar first",
        "you found the k most similar rows but listed them least similar first; return them "
        "in decreasing order of similarity (torch.topk already sorts them so).",
        lambda query, embeddings_, k=5: tuple(
            t.flip(0) for t in embeddings.nearest_neighbours(query, embeddings_, k)
        ),
    ),
    flawed_mistake(
        "k ignored",
        "you always returned the same number of neighbours; return exactly k of them "
        "(torch.topk(similarities, k)).",
        lambda query, embeddings_, k=5: embeddings.nearest_neighbours(query, embeddings_, 5),
    ),
    flawed_mistake(
        "first neighbour skipped",
        "you skipped the most similar row (as if it were the query itself); return the k "
        "most similar rows, the best one included.",
        lambda query, embeddings_, k=5: tuple(
            t[1:]
            for t in embeddings.nearest_neighbours(query, embeddings_, min(k + 1, len(embeddings_)))
        ),
    ),
    flawed_mistake(
        "query length left out",
        "your ranking is right but the similarities are not cosines: divide each dot "
        "product by the lengths of both the row and the query.",
        lambda query, embeddings_, k=5: _ranked(embeddings_ @ query / embeddings_.norm(dim=-1), k),
    ),
)


def _by_index(similarities, indices):
    order = torch.argsort(indices)
    return similarities[order], indices[order]


def _neighbour_cases(gen: torch.Generator) -> list[Case]:
    def table(rows, d):
        # Lengths that vary a lot, as real word vectors' do, so dot products and distances
        # rank differently from cosine similarity.
        lengths = torch.rand(rows, 1, generator=gen) * 4 + 0.1
        return torch.randn(rows, d, generator=gen) * lengths

    return [
        Case(
            (torch.randn(8, generator=gen), table(40, 8)), {"k": 5}, label="40 rows of size 8, k=5"
        ),
        Case((torch.randn(16, generator=gen), table(100, 16)), {"k": 3}, label="100 rows, k=3"),
        Case((torch.randn(4, generator=gen), table(10, 4)), {"k": 10}, label="k = all 10 rows"),
        Case(
            (torch.randn(6, generator=gen) * 3, table(30, 6)), {"k": 1}, label="k=1, a long query"
        ),
    ]


def _naive_softmax(x, dim=-1):
    exps = x.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


KEEPDIM_HINT = (
    "your maximum or sum lost its reduced axis, so it lines up with the wrong axis of x: "
    "use x.max(dim=dim, keepdim=True).values and .sum(dim=dim, keepdim=True)."
)

SOFTMAX_MISTAKES = (
    flawed_mistake(
        "overflow",
        "your softmax overflows (exp(1000.) is inf, and inf / inf is NaN): subtract each "
        "slice's maximum before exp, x - x.max(dim, keepdim=True).values, which changes "
        "nothing mathematically.",
        _naive_softmax,
    ),
    flawed_mistake(
        "global maximum",
        "you subtracted the maximum of the whole tensor, so a row far below it underflows "
        "to 0 / 0; subtract each row's own maximum, x.max(dim, keepdim=True).values.",
        lambda x, dim=-1: _naive_softmax(x - x.max(), dim),
    ),
    flawed_mistake(
        "summed over everything",
        "your weights sum to 1 over the whole tensor; each slice along dim must sum to 1, "
        "so sum with .sum(dim, keepdim=True).",
        lambda x, dim=-1: (
            (x - x.max(dim=dim, keepdim=True).values).exp()
            / (x - x.max(dim=dim, keepdim=True).values).exp().sum()
        ),
    ),
    flawed_mistake(
        "dim ignored",
        "you always normalised the last axis; use the dim argument you are given.",
        lambda x, dim=-1: embeddings.softmax(x, dim=-1),
    ),
    flawed_mistake(
        "always the first axis",
        "you always normalised axis 0; use the dim argument you are given.",
        lambda x, dim=-1: embeddings.softmax(x, dim=0),
    ),
    flawed_mistake(
        "maximum without keepdim",
        KEEPDIM_HINT,
        lambda x, dim=-1: (
            _naive_softmax(x - x.max(dim=dim).values, dim)
            if x.dim() > 1
            else embeddings.softmax(x, dim)
        ),
    ),
    flawed_mistake(
        "sum without keepdim",
        KEEPDIM_HINT,
        lambda x, dim=-1: (
            (
                (x - x.max(dim=dim, keepdim=True).values).exp()
                / (x - x.max(dim=dim, keepdim=True).values).exp().sum(dim=dim)
            )
            if x.dim() > 1
            else embeddings.softmax(x, dim)
        ),
    ),
    flawed_mistake(
        "minimum subtracted",
        "you subtracted the minimum, so the largest score still overflows when the scores "
        "are far apart; subtract each slice's maximum.",
        lambda x, dim=-1: _naive_softmax(x - x.min(dim=dim, keepdim=True).values, dim),
    ),
    flawed_mistake(
        "mean subtracted",
        "you subtracted the mean, so the largest score still overflows when the scores are "
        "far apart; subtract each slice's maximum.",
        lambda x, dim=-1: _naive_softmax(x - x.mean(dim=dim, keepdim=True), dim),
    ),
    flawed_mistake(
        "maximum without .values",
        "x.max(dim=...) returns (values, indices); use .values: "
        "x - x.max(dim=dim, keepdim=True).values.",
        # crashes (a tensor minus a pair) and is recognised by that crash
        lambda x, dim=-1: _naive_softmax(x - x.max(dim=dim, keepdim=True), dim),
    ),
    flawed_mistake(
        "log-probabilities",
        "you returned log-probabilities (log-softmax); return the probabilities themselves.",
        lambda x, dim=-1: torch.log_softmax(x, dim=dim),
    ),
)


def _softmax_cases(gen: torch.Generator) -> list[Case]:
    # The far-apart row comes before the masked score: subtracting the minimum or the mean
    # turns [0., -inf, 1.] into all NaN alike, while [-500., 500., 0.] tells them apart.
    return [
        Case((torch.tensor([1.0, 2.0, 3.0]),), label="[1., 2., 3.]"),
        Case(
            (torch.tensor([[1000.0, 1001.0, 999.0], [0.0, 1.0, 2.0]]),),
            label="large scores [[1000., 1001., 999.], [0., 1., 2.]]",
        ),
        Case(
            (torch.tensor([[-1000.0, -1001.0, -999.0], [3.0, 1.0, 2.0], [-500.0, 500.0, 0.0]]),),
            label="rows of large negative scores and of scores far apart, shape (3, 3)",
        ),
        Case((torch.tensor([0.0, float("-inf"), 1.0]),), label="a masked score, [0., -inf, 1.]"),
        Case(
            (torch.randn(2, 3, 4, generator=gen) * 5,), {"dim": 1}, label="shape (2, 3, 4), dim=1"
        ),
    ]


def _flawed_weights(scale=None, softmax=torch.softmax, dim=-1, scores=None, mix=False):
    def submission(query, keys):
        raw = scores(query, keys) if scores else query @ keys.T
        divided = raw / (math.sqrt(keys.size(-1)) if scale is None else scale(keys))
        weights = divided if softmax is None else softmax(divided, dim=dim)
        return weights @ keys if mix else weights

    return submission


COSINE_HINT = (
    "you scored the keys by cosine similarity; attention uses the scaled dot product "
    "query · key / √d, so a key's length matters too."
)
POWER_HINT = "d ** 1/2 means (d ** 1) / 2, not a square root; write d ** 0.5 or math.sqrt(d)."

ATTENTION_MISTAKES = (
    flawed_mistake(
        "no scaling",
        "your scores are not scaled: divide query · key by √d, where d = keys.size(-1).",
        _flawed_weights(scale=lambda keys: 1.0),
    ),
    flawed_mistake(
        "divided by d",
        "you divided the scores by d; divide by its square root, math.sqrt(d).",
        _flawed_weights(scale=lambda keys: keys.size(-1)),
    ),
    flawed_mistake(
        "scaled by the number of keys",
        "you scaled by the square root of the number of keys; scale by √d, the vector "
        "size, keys.size(-1).",
        _flawed_weights(scale=lambda keys: math.sqrt(keys.size(0))),
    ),
    flawed_mistake(
        "rounded square root",
        "your √d was rounded to a whole number (int(math.sqrt(d)) or math.isqrt); √8 is "
        "2.83, not 2: use math.sqrt(d) as it is.",
        _flawed_weights(scale=lambda keys: math.isqrt(keys.size(-1))),
    ),
    flawed_mistake(
        "d ** 1/2",
        POWER_HINT,
        _flawed_weights(scale=lambda keys: keys.size(-1) / 2),
    ),
    flawed_mistake(
        "scores / d ** 1/2",
        POWER_HINT,
        _flawed_weights(scale=lambda keys: keys.size(-1) * 2),
    ),
    flawed_mistake(
        "multiplied by √d",
        "you multiplied the scores by √d; divide by it, so scores keep the same size "
        "whatever d is.",
        _flawed_weights(scale=lambda keys: 1 / math.sqrt(keys.size(-1))),
    ),
    flawed_mistake(
        "keys mixed",
        "you returned the weighted mix of the keys; this exercise returns the weights "
        "themselves, one per key.",
        _flawed_weights(mix=True),
    ),
    flawed_mistake(
        "no softmax",
        "your weights are raw scores; turn them into weights that sum to 1 with a softmax "
        "over the keys.",
        _flawed_weights(softmax=None),
    ),
    flawed_mistake(
        "softmax over queries",
        "your softmax runs over the queries; each query's weights must sum to 1 over the "
        "keys, so use dim=-1.",
        _flawed_weights(dim=0),
    ),
    flawed_mistake(
        "overflowing softmax",
        "your softmax overflows on large scores (NaN): use a stable softmax that "
        "subtracts the maximum first, such as torch.softmax or your exercise 1.3.",
        _flawed_weights(softmax=_naive_softmax),
    ),
    flawed_mistake(
        "cosine scores",
        COSINE_HINT,
        _flawed_weights(
            scores=lambda q, k: (
                embeddings.cosine_similarity(q.unsqueeze(-2), k) * math.sqrt(k.size(-1))
            )
        ),
    ),
    flawed_mistake(
        "cosine scores, scaled",
        COSINE_HINT,
        _flawed_weights(scores=lambda q, k: embeddings.cosine_similarity(q.unsqueeze(-2), k)),
    ),
)


def _attention_cases(gen: torch.Generator) -> list[Case]:
    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale

    return [
        Case((randn(16, scale=2.0), randn(5, 16, scale=2.0)), label="one query, 5 keys of size 16"),
        Case((randn(3, 8, scale=2.0), randn(6, 8, scale=2.0)), label="3 queries, 6 keys of size 8"),
        Case((randn(10, scale=2.0), randn(3, 10, scale=2.0)), label="one query, 3 keys of size 10"),
        Case((randn(4, 12, scale=2.0), randn(4, 12, scale=2.0)), label="4 queries, 4 keys of 12"),
        Case((randn(64, scale=40.0), randn(4, 64, scale=40.0)), label="long vectors: large scores"),
    ]


EXERCISES = (
    function_exercise(
        "1.1",
        embeddings.cosine_similarity,
        _cosine_cases,
        names=("similarity",),
        mistakes=COSINE_MISTAKES,
        success="matches the reference for single vectors, batches and broadcasting.",
    ),
    function_exercise(
        "1.2",
        embeddings.nearest_neighbours,
        _neighbour_cases,
        names=("similarities", "indices"),
        mistakes=NEIGHBOUR_MISTAKES,
        success="the k most cosine-similar rows, most similar first.",
    ),
    function_exercise(
        "1.3",
        embeddings.softmax,
        _softmax_cases,
        names=("probabilities",),
        mistakes=SOFTMAX_MISTAKES,
        success="correct, and no overflow on scores of 1000.",
    ),
    function_exercise(
        "1.4",
        embeddings.attention_weights,
        _attention_cases,
        names=("weights",),
        mistakes=ATTENTION_MISTAKES,
        success="softmax(query · key / √d) over the keys, for one query and for several.",
    ),
)
