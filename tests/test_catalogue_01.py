"""Catalogue of learner implementations for lesson 01 (exercises 1.1-1.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from catalogue import Catalogue, catalogue_tests

# The learner's a @ b.T on 1-D tensors warns; the check shows the warning, as it should.
pytestmark = pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning")

CATALOGUE = Catalogue()
valid, wrong = CATALOGUE.valid, CATALOGUE.wrong

# 1.1 cosine similarity -------------------------------------------------------------------


@valid("1.1")
def cos_textbook(a, b):
    return (a * b).sum(dim=-1) / (a.norm(dim=-1) * b.norm(dim=-1))


@valid("1.1")
def cos_normalise_first(a, b):
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    return (a * b).sum(-1)


@valid("1.1")
def cos_torch(a, b):
    return F.cosine_similarity(a, b, dim=-1)


@valid("1.1")
def cos_by_hand(a, b):
    dot = torch.sum(a * b, dim=-1)
    return dot / (torch.sqrt(torch.sum(a**2, dim=-1)) * torch.sqrt(torch.sum(b**2, dim=-1)))


@wrong("1.1", "plain dot product")
def cos_dot_only(a, b):
    return (a * b).sum(dim=-1)


@wrong("1.1", "length of one vector only")
def cos_one_norm(a, b):
    return (a * b).sum(dim=-1) / a.norm(dim=-1)


@wrong("1.1", "length of one vector only")
def cos_other_norm(a, b):
    return (a * b).sum(dim=-1) / b.norm(dim=-1)


@wrong("1.1", "squared lengths")
def cos_squared(a, b):
    return (a * b).sum(-1) / ((a * a).sum(-1) * (b * b).sum(-1))


@wrong("1.1", "whole tensor")
def cos_global_norm(a, b):
    return (a * b).sum(dim=-1) / (torch.norm(a) * torch.norm(b))


@wrong("1.1", "cosine distance")
def cos_distance(a, b):
    return 1 - (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


@wrong("1.1", "keepdim=True")
def cos_keepdim(a, b):
    dot = (a * b).sum(dim=-1, keepdim=True)
    return dot / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True))


@wrong("1.1", "matrix product")
def cos_matmul(a, b):
    return (a @ b.T) / (a.norm(dim=-1) * b.norm(dim=-1))


@wrong("1.1", "absolute value")
def cos_abs(a, b):
    return torch.abs((a * b).sum(-1)) / (a.norm(dim=-1) * b.norm(dim=-1))


@wrong("1.1", "in place")
def cos_normalise_in_place(a, b):
    a /= a.norm(dim=-1, keepdim=True)
    b /= b.norm(dim=-1, keepdim=True)
    return (a * b).sum(-1)


@wrong("1.1", "should be a torch.Tensor")
def cos_numpy(a, b):
    a, b = a.numpy(), b.numpy()
    return np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@wrong("1.1", "")
def cos_sum_first_axis(a, b):
    return (a * b).sum(dim=0) / (a.norm(dim=0) * b.norm(dim=0))


# 1.2 nearest neighbours ------------------------------------------------------------------


def _cosine(query, embeddings):
    return (embeddings * query).sum(-1) / (embeddings.norm(dim=-1) * query.norm())


@valid("1.2")
def nn_topk(query, embeddings, k=5):
    similarities = _cosine(query, embeddings)
    return torch.topk(similarities, k)


@valid("1.2")
def nn_argsort(query, embeddings, k=5):
    similarities = F.cosine_similarity(query[None, :], embeddings, dim=-1)
    order = torch.argsort(similarities, descending=True)[:k]
    return similarities[order], order


@valid("1.2")
def nn_sort(query, embeddings, k=5):
    sims = (embeddings @ query) / (embeddings.norm(dim=1) * query.norm())
    values, indices = sims.sort(descending=True)
    return values[:k], indices[:k]


@wrong("1.2", "raw dot product")
def nn_dot(query, embeddings, k=5):
    return torch.topk(embeddings @ query, k)


@wrong("1.2", "least similar rows")
def nn_smallest(query, embeddings, k=5):
    return torch.topk(_cosine(query, embeddings), k, largest=False)


@wrong("1.2", "Euclidean distance")
def nn_distance(query, embeddings, k=5):
    distances = (embeddings - query).norm(dim=-1)
    indices = distances.argsort()[:k]
    return _cosine(query, embeddings)[indices], indices


@wrong("1.2", "not in order")
def nn_unsorted(query, embeddings, k=5):
    similarities = _cosine(query, embeddings)
    _, indices = torch.topk(similarities, k)
    indices = indices.sort().values
    return similarities[indices], indices


@wrong("1.2", "other way round")
def nn_swapped(query, embeddings, k=5):
    values, indices = torch.topk(_cosine(query, embeddings), k)
    return indices, values


@wrong("1.2", "least similar first")
def nn_ascending(query, embeddings, k=5):
    similarities = _cosine(query, embeddings)
    order = similarities.argsort()[-k:]
    return similarities[order], order


@wrong("1.2", "exactly k")
def nn_k_ignored(query, embeddings, k=5):
    return torch.topk(_cosine(query, embeddings), 5)


@wrong("1.2", "skipped the most similar")
def nn_skip_self(query, embeddings, k=5):
    values, indices = torch.topk(_cosine(query, embeddings), min(k + 1, len(embeddings)))
    return values[1:], indices[1:]


@wrong("1.2", "lengths of both")
def nn_query_norm_missing(query, embeddings, k=5):
    return torch.topk(embeddings @ query / embeddings.norm(dim=-1), k)


@wrong("1.2", "return a tuple")
def nn_indices_only(query, embeddings, k=5):
    return torch.topk(_cosine(query, embeddings), k).indices


@wrong("1.2", "in place")
def nn_normalise_table(query, embeddings, k=5):
    embeddings /= embeddings.norm(dim=-1, keepdim=True)
    return torch.topk(embeddings @ (query / query.norm()), k)


@wrong("1.2", "should be a torch.Tensor")
def nn_lists(query, embeddings, k=5):
    values, indices = torch.topk(_cosine(query, embeddings), k)
    return values.tolist(), indices.tolist()


# 1.3 softmax ------------------------------------------------------------------------------


@valid("1.3")
def softmax_textbook(x, dim=-1):
    shifted = x - x.max(dim=dim, keepdim=True).values
    return shifted.exp() / shifted.exp().sum(dim=dim, keepdim=True)


@valid("1.3")
def softmax_amax(x, dim=-1):
    e = torch.exp(x - torch.amax(x, dim=dim, keepdim=True))
    return e / torch.sum(e, dim=dim, keepdim=True)


@valid("1.3")
def softmax_torch(x, dim=-1):
    return torch.softmax(x, dim=dim)


@valid("1.3")
def softmax_logsumexp(x, dim=-1):
    return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))


@wrong("1.3", "overflows")
def softmax_naive(x, dim=-1):
    return torch.exp(x) / torch.exp(x).sum(dim=dim, keepdim=True)


@wrong("1.3", "maximum of the whole tensor")
def softmax_global_max(x, dim=-1):
    e = torch.exp(x - x.max())
    return e / e.sum(dim=dim, keepdim=True)


@wrong("1.3", "over the whole tensor")
def softmax_sum_all(x, dim=-1):
    e = torch.exp(x - x.max(dim=dim, keepdim=True).values)
    return e / e.sum()


@wrong("1.3", "dim argument")
def softmax_last_axis(x, dim=-1):
    e = torch.exp(x - x.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


@wrong("1.3", "dim argument")
def softmax_first_axis(x, dim=-1):
    e = torch.exp(x - x.max(dim=0, keepdim=True).values)
    return e / e.sum(dim=0, keepdim=True)


@wrong("1.3", "keepdim=True")
def softmax_max_no_keepdim(x, dim=-1):
    e = torch.exp(x - x.max(dim=dim).values)
    return e / e.sum(dim=dim, keepdim=True)


@wrong("1.3", "keepdim=True")
def softmax_sum_no_keepdim(x, dim=-1):
    e = torch.exp(x - x.max(dim=dim, keepdim=True).values)
    return e / e.sum(dim=dim)


@wrong("1.3", "subtracted the minimum")
def softmax_min(x, dim=-1):
    e = torch.exp(x - x.min(dim=dim, keepdim=True).values)
    return e / e.sum(dim=dim, keepdim=True)


@wrong("1.3", "subtracted the mean")
def softmax_mean(x, dim=-1):
    e = torch.exp(x - x.mean(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


@wrong("1.3", "returns (values, indices); use .values")
def softmax_max_without_values(x, dim=-1):
    e = torch.exp(x - x.max(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


@wrong("1.3", "log-probabilities")
def softmax_log(x, dim=-1):
    return (
        x
        - x.max(dim=dim, keepdim=True).values
        - torch.log(torch.exp(x - x.max(dim=dim, keepdim=True).values).sum(dim=dim, keepdim=True))
    )


@wrong("1.3", "in place")
def softmax_in_place(x, dim=-1):
    x -= x.max(dim=dim, keepdim=True).values
    x.exp_()
    return x / x.sum(dim=dim, keepdim=True)


@wrong("1.3", "")
def softmax_sigmoid(x, dim=-1):
    return torch.sigmoid(x)


# 1.4 attention weights ---------------------------------------------------------------------


@valid("1.4")
def weights_textbook(query, keys):
    return torch.softmax(query @ keys.T / math.sqrt(keys.size(-1)), dim=-1)


@valid("1.4")
def weights_with_own_softmax(query, keys):
    scores = query @ keys.T / keys.shape[-1] ** 0.5
    return softmax_textbook(scores, dim=-1)


@valid("1.4")
def weights_matmul(query, keys):
    d = keys.size(-1)
    scores = torch.matmul(query, keys.transpose(0, 1)) / torch.sqrt(torch.tensor(float(d)))
    return F.softmax(scores, dim=-1)


@wrong("1.4", "not scaled")
def weights_unscaled(query, keys):
    return torch.softmax(query @ keys.T, dim=-1)


@wrong("1.4", "divided the scores by d")
def weights_by_d(query, keys):
    return torch.softmax(query @ keys.T / keys.size(-1), dim=-1)


@wrong("1.4", "number of keys")
def weights_by_keys(query, keys):
    return torch.softmax(query @ keys.T / math.sqrt(len(keys)), dim=-1)


@wrong("1.4", "raw scores")
def weights_no_softmax(query, keys):
    return query @ keys.T / math.sqrt(keys.size(-1))


@wrong("1.4", "runs over the queries")
def weights_softmax_dim0(query, keys):
    return torch.softmax(query @ keys.T / math.sqrt(keys.size(-1)), dim=0)


@wrong("1.4", "overflows")
def weights_naive_softmax(query, keys):
    scores = query @ keys.T / math.sqrt(keys.size(-1))
    return scores.exp() / scores.exp().sum(-1, keepdim=True)


@wrong("1.4", "cosine similarity")
def weights_cosine(query, keys):
    cos = F.cosine_similarity(query.unsqueeze(-2), keys, dim=-1)
    return torch.softmax(cos / math.sqrt(keys.size(-1)), dim=-1)


@wrong("1.4", "rounded to a whole number")
def weights_int_sqrt(query, keys):
    return torch.softmax(query @ keys.T / int(math.sqrt(keys.size(-1))), dim=-1)


@wrong("1.4", "d ** 1/2")
def weights_precedence(query, keys):
    d = keys.size(-1)
    return torch.softmax(query @ keys.T / d**1 / 2, dim=-1)


@wrong("1.4", "multiplied the scores by √d")
def weights_times_sqrt(query, keys):
    return torch.softmax(query @ keys.T * math.sqrt(keys.size(-1)), dim=-1)


@wrong("1.4", "mix of the keys")
def weights_mixed(query, keys):
    weights = torch.softmax(query @ keys.T / math.sqrt(keys.size(-1)), dim=-1)
    return weights @ keys


@wrong("1.4", "in place")
def weights_scale_query_in_place(query, keys):
    query /= math.sqrt(keys.size(-1))
    return torch.softmax(query @ keys.T, dim=-1)


@wrong("1.4", "")
def weights_relu(query, keys):
    scores = torch.relu(query @ keys.T / math.sqrt(keys.size(-1)))
    return scores / scores.sum(-1, keepdim=True)


MINIMUM = {exercise: (10, 3) for exercise in ("1.1", "1.2", "1.3", "1.4")}
(
    test_valid_is_accepted,
    test_wrong_is_rejected_with_its_mistake_named,
    test_catalogue_covers_each_exercise,
) = catalogue_tests(CATALOGUE, MINIMUM)
