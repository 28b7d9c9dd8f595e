"""Checkers for lesson 07: candidate probabilities for a blank (7.1), pseudo-log-likelihood (7.2).

Both run the learner's function on a tiny two-layer BERT whose weights come from a fixed
seed (built once, without touching the learner's random generator) and a 40-piece
vocabulary in which some words split into several pieces (``nurses`` → ``nurs ##e ##s``).
"""

from __future__ import annotations

import functools

import torch

from course_utils import probing
from course_utils.checking import Case, Mistake, function_exercise

__all__ = ["EXERCISES"]

VOCAB = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] the a his her he she doctor nurs ##e ##s picked up bag . "
    "was is cat dog sat on mat home ##town in engineer , their good old man woman and to "
    "river bank"
).split()


@functools.lru_cache(maxsize=1)
def probe_model():
    """``(tokenizer, model)``: the tiny seeded BERT every check of this lesson runs."""
    from transformers import BertConfig, BertForMaskedLM

    from course_utils.mlm import wordpiece_tokenizer

    tokenizer = wordpiece_tokenizer(VOCAB, model_max_length=32)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        initializer_range=0.5,  # large weights: peaked, clearly different probabilities
    )
    with torch.random.fork_rng(devices=[]):  # a fixed model, and the learner's RNG untouched
        torch.manual_seed(7)
        model = BertForMaskedLM(config).eval()
    return tokenizer, model


# 7.1 candidate probabilities ---------------------------------------------------------------


def _flawed_candidates(
    model,
    tokenizer,
    text,
    candidates,
    *,
    mask=True,
    single_mask=False,
    first_piece_only=False,
    one_piece_at_a_time=False,
    sum_probabilities=False,
    softmax_dim=-1,
    log=False,
    normalise=False,
):
    """Candidate probabilities with one classic mistake switched on."""
    results = []
    for candidate in candidates:
        input_ids, positions = probing.encode_with_candidate(tokenizer, text, candidate)
        targets = input_ids[0, positions]
        if single_mask:  # one [MASK] whatever the number of pieces
            input_ids = torch.cat(
                [input_ids[:, : positions[0]], input_ids[:, positions[-1] :]], dim=1
            )
            positions, targets = positions[:1], targets[:1]
        groups = [[p] for p in positions] if one_piece_at_a_time else [positions]
        piece_log_probs = []
        for group in groups:
            masked = input_ids.clone()
            if mask:
                masked[0, group] = tokenizer.mask_token_id
            with torch.no_grad():
                logits = model(input_ids=masked).logits[0]  # (seq, vocab_size)
            log_probs = logits.log_softmax(dim=softmax_dim)[group]
            piece_log_probs.append(log_probs.gather(1, input_ids[0, group][:, None])[:, 0])
        piece_log_probs = torch.cat(piece_log_probs)
        if first_piece_only:
            piece_log_probs = piece_log_probs[:1]
        if sum_probabilities:
            results.append(piece_log_probs.exp().sum())
        else:
            results.append(piece_log_probs.sum() if log else piece_log_probs.sum().exp())
    results = torch.stack(results)
    return results / results.sum() if normalise else results


def _candidate_mistake(name, hint, **flaw):
    def submission(model, tokenizer, text, candidates):
        return _flawed_candidates(model, tokenizer, text, candidates, **flaw)

    submission.__name__ = name
    return Mistake(name, hint, submission)


CANDIDATE_MISTAKES = (
    _candidate_mistake(
        "no mask",
        "the candidate is visible to the model: replace its pieces by "
        "tokenizer.mask_token_id before the forward pass, then read their probabilities.",
        mask=False,
    ),
    _candidate_mistake(
        "softmax over positions",
        "your softmax runs over the positions of the sentence; the probabilities at one "
        "position must sum to 1 over the vocabulary, so use log_softmax(dim=-1).",
        softmax_dim=0,
    ),
    _candidate_mistake(
        "first piece only",
        "for a candidate of several word pieces you kept only the first piece's probability; "
        "multiply the probabilities of all its pieces (add their log-probabilities).",
        first_piece_only=True,
    ),
    _candidate_mistake(
        "one mask for several pieces",
        "you used a single mask for a candidate of several word pieces; mask every one of "
        "its positions (encode_with_candidate gives them) and score each piece.",
        single_mask=True,
    ),
    _candidate_mistake(
        "pieces masked one at a time",
        "you masked the candidate's pieces one at a time, so each piece saw the others (cat "
        "gives away ##s); mask all of the candidate's pieces at once.",
        one_piece_at_a_time=True,
    ),
    _candidate_mistake(
        "probabilities added",
        "you added the pieces' probabilities; a word is all of its pieces together, so "
        "multiply them (or add their log-probabilities, then exp).",
        sum_probabilities=True,
    ),
    _candidate_mistake(
        "log-probabilities returned",
        "these are log-probabilities; return probabilities (apply .exp() to the sum of the "
        "pieces' log-probabilities).",
        log=True,
    ),
    _candidate_mistake(
        "normalised over candidates",
        "your values sum to 1 over the candidates; return each candidate's own probability "
        "under the model, without dividing by the candidates' total.",
        normalise=True,
    ),
)


def _candidate_cases(generator: torch.Generator) -> list[Case]:
    tokenizer, model = probe_model()
    return [
        Case((model, tokenizer, "the doctor picked up ___ bag .", ["his", "her"]), label="his/her"),
        Case(
            (model, tokenizer, "___ was a good doctor .", ["he", "she", "nurses"]),
            label="a candidate of three pieces",
        ),
        Case(
            (model, tokenizer, "the cat sat on the ___ in his home .", ["mat", "hometown", "cats"]),
            label="candidates of one and two pieces",
        ),
    ]


# 7.2 pseudo-log-likelihood ------------------------------------------------------------------


def _flawed_pll(
    model,
    tokenizer,
    sentence,
    *,
    mask=True,
    all_at_once=False,
    include_special=False,
    accumulate=False,
    probabilities=False,
    raw_logits=False,
    mean=False,
):
    """A pseudo-log-likelihood with one classic mistake switched on."""
    input_ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
    seq = input_ids.size(1)
    positions = list(range(seq)) if include_special else list(range(1, seq - 1))
    masked = input_ids.clone()
    if all_at_once:
        masked[0, positions] = tokenizer.mask_token_id
    scores = []
    for position in positions:
        if not (accumulate or all_at_once):
            masked = input_ids.clone()
        if mask:
            masked[0, position] = tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=masked).logits[0, position]  # (vocab_size,)
        token = input_ids[0, position]
        if raw_logits:
            scores.append(logits[token])
        elif probabilities:
            scores.append(logits.softmax(dim=-1)[token])
        else:
            scores.append(logits.log_softmax(dim=-1)[token])
    scores = torch.stack(scores)
    return scores.mean() if mean else scores.sum()


def _pll_mistake(name, hint, **flaw):
    def submission(model, tokenizer, sentence):
        return _flawed_pll(model, tokenizer, sentence, **flaw)

    submission.__name__ = name
    return Mistake(name, hint, submission)


PLL_MISTAKES = (
    _pll_mistake(
        "no mask",
        "each token was visible while it was scored; mask the token you score (one copy "
        "of the sentence per token, that token replaced by the mask id).",
        mask=False,
    ),
    _pll_mistake(
        "all masked at once",
        "you masked every token at once; mask one token at a time and keep the others "
        "visible, one forward pass (or one batch row) per token.",
        all_at_once=True,
    ),
    _pll_mistake(
        "masks accumulate",
        "your earlier masks stay in place: start every token from a fresh copy of the "
        "input ids (input_ids.clone()), so only one token is masked at a time.",
        accumulate=True,
    ),
    _pll_mistake(
        "special tokens scored",
        "you also scored [CLS] and [SEP]; they are the same in every sentence, so score "
        "only the real tokens (positions 1 to seq - 2).",
        include_special=True,
    ),
    _pll_mistake(
        "probabilities added",
        "you added probabilities; the pseudo-log-likelihood adds log-probabilities "
        "(log_softmax), which multiplies the probabilities.",
        probabilities=True,
    ),
    _pll_mistake(
        "raw logits",
        "you added raw logits; turn each position's logits into log-probabilities with "
        "log_softmax(dim=-1) first.",
        raw_logits=True,
    ),
    _pll_mistake(
        "mean instead of sum",
        "you averaged the log-probabilities; return their sum (CrowS-Pairs compares sums).",
        mean=True,
    ),
)


def _pll_cases(generator: torch.Generator) -> list[Case]:
    tokenizer, model = probe_model()
    return [
        Case((model, tokenizer, "the doctor picked up his bag ."), label="seven tokens"),
        Case((model, tokenizer, "she was a nurse ."), label="a word of two pieces"),
        Case(
            (model, tokenizer, "the old man and the woman sat in their hometown ."),
            label="a longer sentence",
        ),
    ]


EXERCISES = (
    function_exercise(
        "7.1",
        probing.candidate_probabilities,
        _candidate_cases,
        names=("probabilities",),
        mistakes=CANDIDATE_MISTAKES,
        atol=1e-6,
        rtol=1e-4,
        success="right for candidates of one, two and three word pieces.",
    ),
    function_exercise(
        "7.2",
        probing.pseudo_log_likelihood,
        _pll_cases,
        names=("pll",),
        mistakes=PLL_MISTAKES,
        atol=1e-4,
        rtol=1e-4,
        success="each token masked in turn, log-probabilities summed, specials left out.",
    ),
)
