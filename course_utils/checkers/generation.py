"""Checkers for lesson 08: the next-token loss (8.1), one sampling step (8.2), and
attention with a key-value cache (8.3).

8.2 returns random token ids, so it cannot be compared value by value: its checker draws
20,000 tokens per case from a local generator (deterministic, and the learner's global
RNG is left exactly as it was) and compares how often each token came up with the exact
probabilities, then with what each classic mistake draws on the same inputs.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from course_utils import decoder
from course_utils.checking import (
    Case,
    Exercise,
    call_learner,
    flawed_mistake,
    function_exercise,
    index_crash,
    mistake_output,
    not_a_function,
    stub,
)

__all__ = ["EXERCISES", "GENERATOR_HINT"]


# 8.1 next-token loss ------------------------------------------------------------------------


def _flawed_loss(
    logits,
    token_ids,
    pad_id,
    *,
    shift="right",
    ignore=True,
    reduction="mean",
    flatten_first=False,
    softmax_first=False,
    per_sequence=False,
    pad_as_zero=False,
    seq_major_logits=False,
    seq_major_targets=False,
    nll_on_logits=False,
    mask_from_inputs=False,
    zeroed_mean=False,
):
    """The next-token loss with one classic mistake switched on."""
    vocab = logits.size(-1)
    if softmax_first:
        logits = logits.softmax(dim=-1)
    ignore_index = (0 if pad_as_zero else pad_id) if ignore else -100
    if flatten_first:
        predictions, targets = logits.reshape(-1, vocab)[:-1], token_ids.reshape(-1)[1:]
        return F.cross_entropy(predictions, targets, ignore_index=ignore_index)
    predictions, targets = {
        "right": (logits[:, :-1], token_ids[:, 1:]),
        "none": (logits, token_ids),
        "wrong way": (logits[:, 1:], token_ids[:, :-1]),
        "cut only": (logits[:, :-1], token_ids[:, :-1]),
    }[shift]
    if per_sequence:
        losses = F.cross_entropy(
            predictions.transpose(1, 2), targets, ignore_index=ignore_index, reduction="none"
        )  # (batch, seq - 1)
        counts = (targets != ignore_index).sum(dim=1).clamp(min=1)
        return (losses.sum(dim=1) / counts).mean()
    if nll_on_logits:
        return F.nll_loss(predictions.transpose(1, 2), targets, ignore_index=ignore_index)
    if mask_from_inputs:
        picked = predictions.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
        return -picked[token_ids[:, :-1] != pad_id].mean()
    if zeroed_mean:  # padding's losses zeroed, but the mean still counts its positions
        return F.cross_entropy(
            predictions.reshape(-1, vocab),
            targets.reshape(-1),
            ignore_index=ignore_index,
            reduction="none",
        ).mean()
    if seq_major_logits:
        predictions = predictions.transpose(0, 1)
    if seq_major_targets:
        targets = targets.transpose(0, 1)
    return F.cross_entropy(
        predictions.reshape(-1, vocab),
        targets.reshape(-1),
        ignore_index=ignore_index,
        reduction=reduction,
    )


_loss_mistake = functools.partial(flawed_mistake, flawed=_flawed_loss)


LOSS_MISTAKES = (
    _loss_mistake(
        "not shifted",
        "you scored each position's logits against the token AT that position; a language "
        "model predicts the NEXT one: pair logits[:, :-1] with token_ids[:, 1:].",
        shift="none",
    ),
    _loss_mistake(
        "shifted the wrong way",
        "you shifted the wrong way (logits[:, 1:] against token_ids[:, :-1]): position t "
        "must predict token t + 1, so pair logits[:, :-1] with token_ids[:, 1:].",
        shift="wrong way",
    ),
    _loss_mistake(
        "cut without shifting",
        "you dropped the last position but still compared logits[:, :-1] with "
        "token_ids[:, :-1]; the targets are one step ahead: token_ids[:, 1:].",
        shift="cut only",
    ),
    _loss_mistake(
        "padding averaged",
        "your mean includes the padding targets; skip them with ignore_index=pad_id "
        "(or average only where token_ids[:, 1:] != pad_id).",
        ignore=False,
    ),
    _loss_mistake(
        "padding zeroed but counted",
        "you zeroed the padding targets' losses but divided by every position, padding "
        "included; divide by the number of real targets (mask.sum()), or let "
        "F.cross_entropy(..., ignore_index=pad_id) take the mean.",
        zeroed_mean=True,
    ),
    _loss_mistake(
        "pad id hard-coded",
        "you skipped the id 0 instead of pad_id; use the pad_id you are given.",
        pad_as_zero=True,
    ),
    _loss_mistake(
        "shifted after flattening",
        "logits and targets are misaligned: you shifted after flattening the batch, so each "
        "sequence's last position is scored against the first token of the next sequence; "
        "shift along the sequence axis (logits[:, :-1], token_ids[:, 1:]), then flatten.",
        flatten_first=True,
    ),
    _loss_mistake(
        "flattened in different orders",
        "logits and targets are misaligned: they are flattened in different orders (one "
        "position-major, one batch-major); reshape both straight from (batch, seq - 1, ...).",
        seq_major_logits=True,
    ),
    _loss_mistake(
        "targets flattened in another order",
        "logits and targets are misaligned: they are flattened in different orders (one "
        "position-major, one batch-major); reshape both straight from (batch, seq - 1, ...).",
        seq_major_targets=True,
    ),
    _loss_mistake(
        "padding mask from the inputs",
        "your padding mask is one position early: it looks at the inputs "
        "(token_ids[:, :-1]); skip the positions whose TARGET is padding, "
        "token_ids[:, 1:] != pad_id.",
        mask_from_inputs=True,
    ),
    _loss_mistake(
        "nll_loss on logits",
        "F.nll_loss expects log-probabilities; apply log_softmax first, or give the raw "
        "logits to F.cross_entropy.",
        nll_on_logits=True,
    ),
    _loss_mistake(
        "summed",
        "you returned the sum over the targets; return their mean (the default reduction).",
        reduction="sum",
    ),
    _loss_mistake(
        "softmax before the loss",
        "F.cross_entropy takes raw logits and applies log-softmax itself; you gave it "
        "probabilities (a softmax applied twice).",
        softmax_first=True,
    ),
    _loss_mistake(
        "mean per sequence",
        "you averaged each sequence first, so a short sentence weighs as much as a long one; "
        "take one mean over all real targets of the batch.",
        per_sequence=True,
    ),
)


def _loss_cases(gen: torch.Generator) -> list[Case]:
    def ids(lengths, seq, vocab, pad_id):
        rows = torch.randint(0, vocab - 1, (len(lengths), seq), generator=gen)
        rows = rows + (rows >= pad_id).long()  # real tokens never equal pad_id
        for row, length in enumerate(lengths):
            rows[row, length:] = pad_id
        return rows

    def logits(batch, seq, vocab):
        return torch.randn(batch, seq, vocab, generator=gen) * 2.0

    return [
        Case((logits(3, 7, 11), ids([7, 5, 3], 7, 11, 0), 0), label="padded batch, pad_id=0"),
        Case((logits(2, 6, 9), ids([6, 6], 6, 9, 0), 0), label="no padding"),
        Case((logits(3, 8, 12), ids([8, 4, 6], 8, 12, 5), 5), label="padded batch, pad_id=5"),
        Case((logits(1, 2, 7), ids([2], 2, 7, 0), 0), label="one sequence of 2 tokens"),
    ]


LOSS = function_exercise(
    "8.1",
    decoder.next_token_loss,
    _loss_cases,
    names=("loss",),
    mistakes=LOSS_MISTAKES,
    success="shifted by one, padding skipped, one mean over the real targets.",
)


# 8.2 one sampling step ----------------------------------------------------------------------

SAMPLES = 20_000  # draws per row of a case: frequencies within about ±0.01 of the truth
PASS_DISTANCE = 0.03  # total variation distance to the exact probabilities
MISTAKE_DISTANCE = 0.04  # to a mistake's own draws (both sides are noisy)
GENERATOR_HINT = (
    "your function drew from PyTorch's global random generator; pass generator=generator "
    "to torch.multinomial (or torch.rand), so the same generator gives the same tokens."
)


def _filtered(logits, top_k, fill=float("-inf"), extra=0, drop_kth=False):
    if top_k is None:
        return logits
    kth = logits.sort(dim=-1, descending=True).values[:, top_k - 1 + extra : top_k + extra]
    return logits.masked_fill(logits <= kth if drop_kth else logits < kth, fill)


def _draw(probabilities, generator):
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


def _unrenormalised(logits, temperature, top_k, generator):
    probabilities = torch.softmax(logits / temperature, dim=-1)
    probabilities = probabilities.masked_fill(_filtered(logits, top_k) == float("-inf"), 0.0)
    u = torch.rand(logits.size(0), 1, generator=generator)
    # Walks the cumulative sum of probabilities that no longer sum to 1.
    return (probabilities.cumsum(dim=-1) < u).sum(dim=-1).clamp(max=logits.size(-1) - 1)


# fields=(0,) marks a mistake recognised on the kept tokens alone (see _sampling_verdict).
SAMPLE_MISTAKES = (
    flawed_mistake(
        "temperature after softmax",
        "your samples ignore the temperature: divide the LOGITS by it before the softmax "
        "(dividing the probabilities changes nothing once they are renormalised).",
        lambda x, t, k, g: _draw(torch.softmax(_filtered(x, k), dim=-1) / t, g),
    ),
    flawed_mistake(
        "temperature multiplied",
        "you multiplied the logits by the temperature; divide them by it, so that a "
        "temperature below 1 sharpens the distribution.",
        lambda x, t, k, g: _draw(torch.softmax(_filtered(x * t, k), dim=-1), g),
    ),
    flawed_mistake(
        "top-k ignored",
        "tokens outside the top k are drawn: set every logit below the k-th largest to -inf.",
        lambda x, t, k, g: _draw(torch.softmax(x / t, dim=-1), g),
    ),
    flawed_mistake(
        "top-k not renormalised",
        "after keeping the top k tokens, their probabilities no longer sum to 1: "
        "renormalise them (or set the other logits to -inf before the softmax).",
        _unrenormalised,
        fields=(0,),
    ),
    flawed_mistake(
        "top-k keeps one too many",
        "you keep k + 1 tokens: the threshold is the k-th largest logit, "
        "sorted[..., k - 1] (or torch.topk(logits, k).values[..., -1:]).",
        lambda x, t, k, g: _draw(torch.softmax(_filtered(x / t, k, extra=1), dim=-1), g),
    ),
    flawed_mistake(
        "top-k keeps one too few",
        "you keep only k - 1 tokens: logits <= threshold also drops the k-th largest; "
        "drop only the logits strictly below it (logits < threshold).",
        lambda x, t, k, g: _draw(torch.softmax(_filtered(x / t, k, drop_kth=True), dim=-1), g),
    ),
    flawed_mistake(
        "dropped logits set to 0",
        "you set the dropped logits to 0, and the softmax still gives each of them "
        'e^0 / Σ e^logit; set them to float("-inf"), whose exponential is exactly 0.',
        lambda x, t, k, g: _draw(torch.softmax(_filtered(x / t, k, fill=0.0), dim=-1), g),
    ),
    flawed_mistake(
        "sampled from logits",
        "you sampled in proportion to the logits themselves; sample from "
        "softmax(logits / temperature), which are probabilities.",
        lambda x, t, k, g: _draw(_filtered(x / t, k, fill=0.0).clamp(min=0), g),
    ),
    flawed_mistake(
        "sampled from logits, crashing",
        "you sampled in proportion to the logits themselves; sample from "
        "softmax(logits / temperature), which are probabilities.",
        lambda x, t, k, g: _draw(_filtered(x / t, k), g),
    ),
    flawed_mistake(
        "position within the top k",
        "you returned each token's position in the top-k list, not its id; map it back "
        "with the indices torch.topk returned: indices.gather(-1, choice).",
        lambda x, t, k, g: _draw(torch.softmax(torch.topk(x / t, k, dim=-1).values, dim=-1), g),
    ),
    flawed_mistake(
        "greedy",
        "you always return the likeliest token (argmax); draw at random from the "
        "probabilities with torch.multinomial(probabilities, 1, generator=generator).",
        lambda x, t, k, g: x.argmax(dim=-1),
    ),
    flawed_mistake(
        "softmax over the batch",
        "your softmax runs over the batch axis; each row's probabilities must sum to 1 over "
        "the vocabulary: softmax(..., dim=-1).",
        lambda x, t, k, g: _draw(torch.softmax(_filtered(x / t, k), dim=0), g),
    ),
)


def _sampling_cases(gen: torch.Generator) -> list[Case]:
    positive = torch.tensor([2.0, 1.2, 3.0, 0.5, 2.5, 1.0, 0.2, 1.8])
    mixed = torch.randn(8, generator=gen) * 1.5 - 1.0
    two_rows = torch.stack([positive, mixed]).repeat(SAMPLES, 1)  # (2 * SAMPLES, 8)
    return [
        Case((positive.repeat(SAMPLES, 1), 1.0, None), label="temperature 1, no top-k"),
        Case((positive.repeat(SAMPLES, 1), 0.5, None), label="temperature 0.5"),
        Case((positive.repeat(SAMPLES, 1), 2.0, 3), label="temperature 2, top_k=3"),
        Case((two_rows, 0.8, 4), label="two different rows, temperature 0.8, top_k=4"),
    ]


def _rows(logits: torch.Tensor) -> dict[tuple, list[int]]:
    """Which rows of a case hold the same logits (each group is sampled many times)."""
    groups: dict[tuple, list[int]] = {}
    for index, row in enumerate(logits.tolist()):
        groups.setdefault(tuple(row), []).append(index)
    return groups


def _frequencies(tokens: torch.Tensor, rows: list[int], vocab: int) -> torch.Tensor:
    return torch.bincount(tokens[rows], minlength=vocab).double() / len(rows)


def _distance(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> float:
    gap = (a - b).abs()
    return 0.5 * float(gap[where].sum() if where is not None else gap.sum())


def _call_sampler(submission, case: Case, seed: int, mistakes=()):
    """Run a sampler on ``case`` with a fresh generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return call_learner(
        submission,
        "sample_next_token",
        (*case.args, generator),
        signature_of=decoder.sample_next_token,
        mistakes=[
            (m.hint, functools.partial(m.submission, *case.args, generator)) for m in mistakes
        ],
    )


def _structure(tokens, logits) -> str | None:
    batch, vocab = logits.shape
    if not isinstance(tokens, torch.Tensor):
        return f"return a tensor of token ids; you returned a {type(tokens).__name__}."
    if tokens.is_floating_point() or tokens.dtype == torch.bool:
        return f"return token ids as integers (torch.long); yours have dtype {tokens.dtype}."
    if tuple(tokens.shape) == (batch, 1):
        return (
            f"return one id per row, shape ({batch},); yours has shape ({batch}, 1): "
            "torch.multinomial returns (batch, 1), so .squeeze(-1) it."
        )
    if tuple(tokens.shape) != (batch,):
        return f"return one id per row, shape ({batch},); yours has shape {tuple(tokens.shape)}."
    if bool((tokens < 0).any()) or bool((tokens >= vocab).any()):
        low, high = int(tokens.min()), int(tokens.max())
        return f"token ids must lie in 0..{vocab - 1}; yours range from {low} to {high}."
    return None


def _sampling_verdict(tokens, case: Case, seed: int) -> str | None:
    logits, temperature, top_k = case.args
    vocab = logits.size(-1)
    exact = torch.softmax(_filtered(logits / temperature, top_k), dim=-1).double()
    groups = list(_rows(logits).values())
    distances = [_distance(_frequencies(tokens, rows, vocab), exact[rows[0]]) for rows in groups]
    if max(distances) <= PASS_DISTANCE:
        return None
    for mistake in SAMPLE_MISTAKES:
        generator = torch.Generator().manual_seed(seed)
        drawn = mistake_output(mistake.submission, (*case.args, generator), {})
        if not isinstance(drawn, torch.Tensor):
            continue  # this form of the mistake crashes on these inputs
        explains, differs = True, False
        for rows in groups:
            kept = exact[rows[0]] > 0 if mistake.fields == (0,) else None
            theirs = _frequencies(drawn, rows, vocab)
            differs |= _distance(theirs, exact[rows[0]], kept) > PASS_DISTANCE
            mine = _frequencies(tokens, rows, vocab)
            explains &= _distance(mine, theirs, kept) <= MISTAKE_DISTANCE
        if explains and differs:
            return mistake.hint
    worst = groups[max(range(len(groups)), key=distances.__getitem__)]
    mine = _frequencies(tokens, worst, vocab)
    token = int((mine - exact[worst[0]]).abs().argmax())
    return (
        f"your tokens do not follow softmax(logits / temperature) over the top-k tokens: token "
        f"{token} came up {float(mine[token]):.1%} of the time, expected "
        f"{float(exact[worst[0], token]):.1%}."
    )


def _sampler_verdict(submission) -> str | None:
    wrong_kind = not_a_function(submission, "8.2", "sample_next_token")
    if wrong_kind:
        return wrong_kind
    for index, case in enumerate(_sampling_cases(torch.Generator().manual_seed(0))):
        seed = 100 + index
        tokens = _call_sampler(submission, case, seed, SAMPLE_MISTAKES)
        verdict = _structure(tokens, case.args[0])
        if verdict is None and not torch.equal(tokens, _call_sampler(submission, case, seed)):
            verdict = GENERATOR_HINT  # the same generator state gave other tokens
        if verdict is None:
            verdict = _sampling_verdict(tokens, case, seed)
        if verdict is not None:
            return f"{verdict} (test case: {case.label})"
    return None


SAMPLER = Exercise(
    "8.2",
    "sample_next_token",
    decoder.sample_next_token,
    _sampler_verdict,
    SAMPLE_MISTAKES,
    stub=stub,
    crash=index_crash,
    success="temperature, top-k and sampling all right (20,000 draws per case).",
)


# 8.3 attention with a key-value cache -------------------------------------------------------

CAT_HINT = (
    "the cache and the new token's key and value grow along the sequence axis: "
    "torch.cat([key_cache, key], dim=-2) for (batch, num_heads, seq, d_head) tensors."
)


def _flawed_cached(
    query,
    key,
    value,
    key_cache,
    value_cache,
    *,
    first_only=False,
    new_first=False,
    scale=True,
    softmax_dim=-1,
    skip_self=False,
    return_old=False,
    keys_as_values=False,
    cat_dim=-2,
):
    """Cached attention with one classic mistake switched on."""
    pair = [key, key_cache] if new_first else [key_cache, key]
    keys = torch.cat(pair, dim=cat_dim)
    values = torch.cat([value, value_cache] if new_first else [value_cache, value], dim=cat_dim)
    attend_k, attend_v = (key_cache, value_cache) if skip_self else (keys, values)
    if keys_as_values:
        attend_v = attend_k
    scores = query @ attend_k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(query.size(-1))
    if first_only:
        # a causal mask built for the one query row: (1, seq).tril() keeps the first key only
        allowed = torch.ones(1, scores.size(-1), dtype=torch.bool).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    output = torch.softmax(scores, dim=softmax_dim) @ attend_v
    if return_old:
        return output, key_cache, value_cache
    return output, keys, values


_cached_mistake = functools.partial(flawed_mistake, flawed=_flawed_cached)


CACHE_MISTAKES = (
    _cached_mistake(
        "causal mask on the new query",
        "a causal mask built for the single new query lets it see only the first position; "
        "the new token is the LAST position, so it may attend to every cached key and to "
        "itself: use no mask (and not is_causal=True).",
        first_only=True,
    ),
    *(_cached_mistake(f"cache grown along dim {dim}", CAT_HINT, cat_dim=dim) for dim in (0, 1, -1)),
    _cached_mistake(
        "new token first",
        "you put the new token before the cache; append it at the end, "
        "torch.cat([key_cache, key], dim=-2), so positions stay in order.",
        new_first=True,
    ),
    _cached_mistake(
        "new token left out",
        "the new token must attend to itself too: add its key and value to the cache "
        "before attending, not after.",
        skip_self=True,
    ),
    _cached_mistake(
        "old cache returned",
        "return the grown caches (with the new token's key and value), not the ones you "
        "were given.",
        return_old=True,
    ),
    _cached_mistake(
        "no scaling",
        "your scores are not scaled: divide query @ keys.T by √d_head = √query.size(-1).",
        scale=False,
    ),
    _cached_mistake(
        "softmax over the query",
        "your softmax runs over the query axis (one entry); run it over the keys, dim=-1.",
        softmax_dim=-2,
    ),
    _cached_mistake(
        "keys as values",
        "you averaged the keys; the weights must average the VALUES (value_cache with the "
        "new value appended).",
        keys_as_values=True,
    ),
)


def _cache_cases(gen: torch.Generator) -> list[Case]:
    def case(batch, heads, past, d_head, scale, label):
        def randn(seq):
            return torch.randn(batch, heads, seq, d_head, generator=gen) * scale

        return Case((randn(1), randn(1), randn(1), randn(past), randn(past)), label=label)

    return [
        case(2, 3, 4, 5, 1.0, "4 cached positions"),
        case(1, 2, 1, 4, 2.0, "1 cached position"),
        case(2, 2, 0, 4, 1.0, "empty cache (the first token)"),
        case(2, 2, 6, 8, 2.0, "6 cached positions, larger scores"),
    ]


CACHED = function_exercise(
    "8.3",
    decoder.attend_with_cache,
    _cache_cases,
    names=("output", "key_cache", "value_cache"),
    mistakes=CACHE_MISTAKES,
    success="equal to the last row of full causal attention on every test case.",
)

EXERCISES = (LOSS, SAMPLER, CACHED)
