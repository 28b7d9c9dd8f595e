"""Lesson 08's checkers against a catalogue of realistic learner code, written the ways
learners write it (not the checkers' own mistake functions): every wrong version is
rejected, at least 80% of them with a named mistake, and every valid version passes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.checkers import generation
from course_utils.checking import CheckFailed
from course_utils.exercises import EXERCISES, check

# 8.1 next_token_loss(logits, token_ids, pad_id) -------------------------------------------


def loss_reshape(logits, token_ids, pad_id):
    vocab_size = logits.size(-1)
    predictions = logits[:, :-1, :].reshape(-1, vocab_size)
    targets = token_ids[:, 1:].reshape(-1)
    return F.cross_entropy(predictions, targets, ignore_index=pad_id)


def loss_transpose(logits, token_ids, pad_id):
    # cross_entropy also takes (batch, classes, seq) logits with (batch, seq) targets
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), token_ids[:, 1:], ignore_index=pad_id)


def loss_gather(logits, token_ids, pad_id):
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
    targets = token_ids[:, 1:]
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (batch, seq - 1)
    real = (targets != pad_id).float()
    return -(picked * real).sum() / real.sum()


def loss_boolean_index(logits, token_ids, pad_id):
    inputs, targets = logits[:, :-1], token_ids[:, 1:]
    keep = targets != pad_id
    return F.cross_entropy(inputs[keep], targets[keep])


def loss_no_shift(logits, token_ids, pad_id):
    return F.cross_entropy(
        logits.view(-1, logits.shape[-1]), token_ids.view(-1), ignore_index=pad_id
    )


def loss_wrong_way(logits, token_ids, pad_id):
    return F.cross_entropy(
        logits[:, 1:].reshape(-1, logits.shape[-1]),
        token_ids[:, :-1].reshape(-1),
        ignore_index=pad_id,
    )


def loss_with_padding(logits, token_ids, pad_id):
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), token_ids[:, 1:])


def loss_flat_shift(logits, token_ids, pad_id):
    flat_logits = logits.view(-1, logits.size(-1))
    flat_ids = token_ids.view(-1)
    return F.cross_entropy(flat_logits[:-1], flat_ids[1:], ignore_index=pad_id)


def loss_gather_unmasked(logits, token_ids, pad_id):
    log_probs = logits[:, :-1].log_softmax(-1)
    picked = log_probs.gather(2, token_ids[:, 1:, None])
    return -picked.mean()


def loss_pad_zero(logits, token_ids, pad_id):
    targets = token_ids[:, 1:].flatten()
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), targets, ignore_index=0)


def loss_sum(logits, token_ids, pad_id):
    predictions = logits[:, :-1].reshape(-1, logits.size(-1))
    targets = token_ids[:, 1:].reshape(-1)
    return F.cross_entropy(predictions, targets, ignore_index=pad_id, reduction="sum")


def loss_double_softmax(logits, token_ids, pad_id):
    probs = torch.softmax(logits, dim=-1)
    return F.cross_entropy(
        probs[:, :-1].reshape(-1, probs.size(-1)), token_ids[:, 1:].reshape(-1), ignore_index=pad_id
    )


def loss_nll_on_logits(logits, token_ids, pad_id):
    # nll_loss expects log-probabilities; raw logits are not
    return F.nll_loss(logits[:, :-1].transpose(1, 2), token_ids[:, 1:], ignore_index=pad_id)


def loss_per_sentence(logits, token_ids, pad_id):
    losses = []
    for row in range(logits.size(0)):
        targets = token_ids[row, 1:]
        keep = targets != pad_id
        losses.append(F.cross_entropy(logits[row, :-1][keep], targets[keep]))
    return torch.stack(losses).mean()


def loss_same_positions(logits, token_ids, pad_id):
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)),
        token_ids[:, :-1].reshape(-1),
        ignore_index=pad_id,
    )


def loss_mask_from_inputs(logits, token_ids, pad_id):
    log_probs = logits[:, :-1].log_softmax(-1)
    picked = log_probs.gather(-1, token_ids[:, 1:, None]).squeeze(-1)
    real = token_ids[:, :-1] != pad_id  # the inputs' mask, one position too early
    return -picked[real].mean()


def loss_targets_transposed(logits, token_ids, pad_id):
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)),
        token_ids[:, 1:].t().reshape(-1),
        ignore_index=pad_id,
    )


def loss_masked_mean_of_all(logits, token_ids, pad_id):
    targets = token_ids[:, 1:]
    losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), targets, reduction="none")
    mask = (targets != pad_id).float()
    return (losses * mask).mean()  # divides by every position, padding included


# 8.2 sample_next_token(logits, temperature, top_k, generator) ----------------------------


def sample_scatter(logits, temperature, top_k, generator):
    logits = logits / temperature
    if top_k is not None:
        values, indices = torch.topk(logits, top_k, dim=-1)
        logits = torch.full_like(logits, float("-inf")).scatter(-1, indices, values)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)[:, 0]


def sample_sort_threshold(logits, temperature, top_k, generator):
    if top_k is not None:
        threshold = torch.sort(logits, dim=-1, descending=True).values[:, top_k - 1 : top_k]
        logits = torch.where(logits >= threshold, logits, torch.tensor(float("-inf")))
    probs = torch.softmax(logits / temperature, dim=-1)  # top-k first: the same k tokens
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def sample_gumbel(logits, temperature, top_k, generator):
    scaled = logits / temperature
    if top_k is not None:
        kth = scaled.topk(top_k, dim=-1).values[..., -1, None]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    uniform = torch.rand(scaled.shape, generator=generator).clamp(1e-10, 1.0)
    return (scaled - torch.log(-torch.log(uniform))).argmax(dim=-1)  # the Gumbel-max trick


def sample_inverse_cdf(logits, temperature, top_k, generator):
    scaled = logits / temperature
    if top_k:
        kth = scaled.topk(top_k).values[:, [-1]]
        scaled[scaled < kth] = float("-inf")
    probs = scaled.softmax(-1)
    u = torch.rand(probs.size(0), 1, generator=generator)
    return (probs.cumsum(-1) < u).sum(-1).clamp(max=probs.size(-1) - 1)


def sample_topk_gather(logits, temperature, top_k, generator):
    k = top_k or logits.size(-1)
    values, indices = (logits / temperature).topk(k, dim=-1)
    choice = torch.multinomial(values.softmax(-1), 1, generator=generator)  # (batch, 1)
    return indices.gather(-1, choice).squeeze(-1)


def sample_temperature_after(logits, temperature, top_k, generator):
    if top_k is not None:
        kth = torch.topk(logits, top_k).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1) / temperature
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def sample_times_temperature(logits, temperature, top_k, generator):
    logits = logits * temperature
    if top_k is not None:
        v, _ = torch.topk(logits, top_k)
        logits[logits < v[:, [-1]]] = -float("inf")
    return torch.multinomial(F.softmax(logits, -1), 1, generator=generator).view(-1)


def sample_unnormalised_cdf(logits, temperature, top_k, generator):
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_k is not None:
        kth = probs.topk(top_k).values[:, -1:]
        probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
    u = torch.rand(probs.shape[0], 1, generator=generator)
    return torch.searchsorted(probs.cumsum(-1), u).squeeze(-1).clamp(max=probs.shape[-1] - 1)


def sample_no_top_k(logits, temperature, top_k, generator):
    return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]


def sample_logits_directly(logits, temperature, top_k, generator):
    scaled = logits / temperature
    if top_k is not None:
        kth = scaled.topk(top_k).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.multinomial(scaled, 1, generator=generator).squeeze(-1)


def sample_argmax(logits, temperature, top_k, generator):
    return torch.argmax(logits / temperature, dim=-1)


def sample_global_rng(logits, temperature, top_k, generator):
    scaled = logits / temperature
    if top_k is not None:
        kth = scaled.topk(top_k).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.multinomial(scaled.softmax(-1), 1).squeeze(-1)  # the generator is ignored


def sample_categorical(logits, temperature, top_k, generator):
    scaled = logits / temperature
    if top_k is not None:
        kth = scaled.topk(top_k).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.distributions.Categorical(logits=scaled).sample()


def sample_keeps_column(logits, temperature, top_k, generator):
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)  # (batch, 1): not squeezed


def sample_softmax_dim0(logits, temperature, top_k, generator):
    scaled = logits / temperature
    if top_k is not None:
        kth = scaled.topk(top_k).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.multinomial(torch.softmax(scaled, 0), 1, generator=generator).squeeze(-1)


def sample_off_by_one(logits, temperature, top_k, generator):
    scaled = logits / temperature
    if top_k is not None:
        kth = scaled.sort(dim=-1, descending=True).values[:, top_k : top_k + 1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.multinomial(scaled.softmax(-1), 1, generator=generator).squeeze(-1)


def sample_topk_positions(logits, temperature, top_k, generator):
    k = top_k or logits.size(-1)
    values, _ = (logits / temperature).topk(k, dim=-1)
    return torch.multinomial(values.softmax(-1), 1, generator=generator).squeeze(-1)


def sample_at_most_threshold(logits, temperature, top_k, generator):
    scaled = logits / temperature
    if top_k is not None:
        threshold = torch.topk(scaled, top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled <= threshold, float("-inf"))  # drops the k-th too
    return torch.multinomial(scaled.softmax(-1), 1, generator=generator).squeeze(-1)


def sample_fill_zero(logits, temperature, top_k, generator):
    scaled = logits / temperature
    if top_k is not None:
        values, indices = scaled.topk(top_k, dim=-1)
        scaled = torch.zeros_like(scaled).scatter(-1, indices, values)  # 0, not -inf
    return torch.multinomial(F.softmax(scaled, -1), 1, generator=generator).squeeze(-1)


# 8.3 attend_with_cache(query, key, value, key_cache, value_cache) --------------------------


def cached_reference_style(query, key, value, key_cache, value_cache):
    key_cache = torch.cat((key_cache, key), dim=2)
    value_cache = torch.cat((value_cache, value), dim=2)
    weights = torch.softmax(query @ key_cache.transpose(2, 3) / key.shape[-1] ** 0.5, dim=-1)
    return weights @ value_cache, key_cache, value_cache


def cached_sdpa(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], -2), torch.cat([value_cache, value], -2)
    return F.scaled_dot_product_attention(query, keys, values), keys, values


def cached_einsum(query, key, value, key_cache, value_cache):
    keys = torch.cat([key_cache, key], dim=-2)
    values = torch.cat([value_cache, value], dim=-2)
    scores = torch.einsum("bhqd,bhkd->bhqk", query, keys) / math.sqrt(query.size(-1))
    scores = scores - scores.amax(dim=-1, keepdim=True)
    weights = scores.exp() / scores.exp().sum(dim=-1, keepdim=True)
    return torch.einsum("bhqk,bhkd->bhqd", weights, values), keys, values


def cached_is_causal(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], -2), torch.cat([value_cache, value], -2)
    return F.scaled_dot_product_attention(query, keys, values, is_causal=True), keys, values


def cached_tril_mask(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], 2), torch.cat([value_cache, value], 2)
    scores = query @ keys.transpose(-2, -1) / math.sqrt(query.size(-1))
    mask = torch.tril(torch.ones(scores.size(-2), scores.size(-1))).bool()  # (1, seq)
    scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ values, keys, values


def cached_cat_heads(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], dim=1), torch.cat([value_cache, value], dim=1)
    return F.scaled_dot_product_attention(query, keys, values), keys, values


def cached_cat_features(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], dim=-1), torch.cat([value_cache, value], dim=-1)
    return F.scaled_dot_product_attention(query, keys, values), keys, values


def cached_cat_batch(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key]), torch.cat([value_cache, value])
    return F.scaled_dot_product_attention(query, keys, values), keys, values


def cached_prepend(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key, key_cache], dim=2), torch.cat([value, value_cache], dim=2)
    return F.scaled_dot_product_attention(query, keys, values), keys, values


def cached_attend_then_append(query, key, value, key_cache, value_cache):
    scores = query @ key_cache.transpose(-2, -1) / math.sqrt(query.size(-1))
    output = scores.softmax(dim=-1) @ value_cache
    return output, torch.cat([key_cache, key], 2), torch.cat([value_cache, value], 2)


def cached_returns_inputs(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], 2), torch.cat([value_cache, value], 2)
    return F.scaled_dot_product_attention(query, keys, values), key_cache, value_cache


def cached_unscaled(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], 2), torch.cat([value_cache, value], 2)
    return torch.softmax(query @ keys.transpose(2, 3), dim=-1) @ values, keys, values


def cached_softmax_queries(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], 2), torch.cat([value_cache, value], 2)
    scores = query @ keys.transpose(2, 3) / math.sqrt(keys.size(-1))
    return torch.softmax(scores, dim=2) @ values, keys, values


def cached_keys_as_values(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], 2), torch.cat([value_cache, value], 2)
    scores = query @ keys.transpose(2, 3) / math.sqrt(keys.size(-1))
    return torch.softmax(scores, dim=-1) @ keys, keys, values


def cached_scaled_by_length(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], 2), torch.cat([value_cache, value], 2)
    scores = query @ keys.transpose(2, 3) / math.sqrt(keys.size(2))  # seq, not d_head
    return torch.softmax(scores, dim=-1) @ values, keys, values


def cached_square_causal_mask(query, key, value, key_cache, value_cache):
    keys, values = torch.cat([key_cache, key], 2), torch.cat([value_cache, value], 2)
    seq = keys.size(2)
    scores = query @ keys.transpose(2, 3) / math.sqrt(keys.size(-1))
    scores = scores.masked_fill(~torch.ones(seq, seq, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ values, keys, values


CATALOGUE = {
    "8.1": {
        "valid": [loss_reshape, loss_transpose, loss_gather, loss_boolean_index],
        "wrong": [
            loss_no_shift,
            loss_wrong_way,
            loss_with_padding,
            loss_flat_shift,
            loss_gather_unmasked,
            loss_pad_zero,
            loss_sum,
            loss_double_softmax,
            loss_nll_on_logits,
            loss_per_sentence,
            loss_same_positions,
            loss_mask_from_inputs,
            loss_targets_transposed,
            loss_masked_mean_of_all,
        ],
    },
    "8.2": {
        "valid": [
            sample_scatter,
            sample_sort_threshold,
            sample_gumbel,
            sample_inverse_cdf,
            sample_topk_gather,
        ],
        "wrong": [
            sample_temperature_after,
            sample_times_temperature,
            sample_unnormalised_cdf,
            sample_no_top_k,
            sample_logits_directly,
            sample_argmax,
            sample_global_rng,
            sample_categorical,
            sample_keeps_column,
            sample_softmax_dim0,
            sample_off_by_one,
            sample_topk_positions,
            sample_at_most_threshold,
            sample_fill_zero,
        ],
    },
    "8.3": {
        "valid": [cached_reference_style, cached_sdpa, cached_einsum],
        "wrong": [
            cached_is_causal,
            cached_tril_mask,
            cached_cat_heads,
            cached_cat_features,
            cached_cat_batch,
            cached_prepend,
            cached_attend_then_append,
            cached_returns_inputs,
            cached_unscaled,
            cached_softmax_queries,
            cached_keys_as_values,
            cached_scaled_by_length,
            cached_square_causal_mask,
        ],
    },
}

# Hints that name a mistake without being one of the exercise's Mistake objects.
EXTRA_HINTS = {"8.2": (generation.GENERATOR_HINT, ".squeeze(-1) it")}


def verdict_of(exercise_id: str, submission) -> str | None:
    """None if the check passed, else its sentence (a failure, or the notes on a crash)."""
    try:
        check(exercise_id, submission)
    except CheckFailed as failure:
        return str(failure)
    except Exception as crash:
        return repr(crash) + " " + " ".join(getattr(crash, "__notes__", []))
    return None


def named(exercise_id: str, message: str) -> bool:
    hints = [m.hint for m in EXERCISES[exercise_id].mistakes]
    hints += EXTRA_HINTS.get(exercise_id, ())
    return any(hint in message for hint in hints)


VALID = [
    pytest.param(i, f, id=f"{i}-{f.__name__}") for i, c in CATALOGUE.items() for f in c["valid"]
]


@pytest.mark.parametrize(("exercise_id", "submission"), VALID)
def test_every_valid_version_passes(exercise_id, submission, capsys):
    assert verdict_of(exercise_id, submission) is None
    assert capsys.readouterr().out.startswith(f"✓ {exercise_id}")


@pytest.mark.parametrize("exercise_id", sorted(CATALOGUE))
def test_every_wrong_version_is_rejected_and_most_are_named(exercise_id):
    wrong = CATALOGUE[exercise_id]["wrong"]
    assert len(wrong) >= 10 and len(CATALOGUE[exercise_id]["valid"]) >= 3
    verdicts = {f.__name__: verdict_of(exercise_id, f) for f in wrong}
    accepted = [name for name, verdict in verdicts.items() if verdict is None]
    assert not accepted, f"wrong versions passed: {accepted}"
    unnamed = {name: v for name, v in verdicts.items() if not named(exercise_id, v)}
    assert len(unnamed) <= 0.2 * len(wrong), f"no mistake named for: {unnamed}"


def test_a_check_of_8_2_is_deterministic_and_leaves_the_global_rng_alone(capsys):
    torch.manual_seed(5)
    state = torch.get_rng_state()
    first = verdict_of("8.2", sample_off_by_one)
    assert torch.equal(state, torch.get_rng_state())
    assert first == verdict_of("8.2", sample_off_by_one)
