"""Checkers for lesson 07: candidate probabilities for a blank (7.1), pseudo-log-likelihood (7.2).

Both run the learner's function on a tiny two-layer BERT whose weights come from a fixed
seed (built once, without touching the learner's random generator) and a 40-piece
vocabulary in which some words split into several pieces (``nurses`` → ``nurs ##e ##s``).
"""

from __future__ import annotations

import functools

import torch

from course_utils import probing
from course_utils.checking import Case, flawed_mistake, function_exercise

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
    single_mask=None,
    first_piece_only=False,
    one_piece_at_a_time=False,
    combine="product",
    softmax_dim=-1,
    scores="log_softmax",
    normalise=False,
):
    """Candidate probabilities with one classic mistake switched on.

    ``single_mask`` replaces the blank by one [MASK] whatever the number of pieces and
    scores it as ``"first piece"`` (the candidate's first piece id) or ``"unk"`` (the id
    ``convert_tokens_to_ids`` gives a word that is not one piece, [UNK]). ``combine``
    joins the pieces' log-probabilities: ``"product"`` (right), ``"sum of probabilities"``,
    ``"mean"`` or ``"log"`` (the log-probability itself).
    """
    results = []
    for candidate in candidates:
        if single_mask:
            filled = text.replace(probing.BLANK, tokenizer.mask_token)
            input_ids = tokenizer(filled, return_tensors="pt")["input_ids"]
            positions = (input_ids[0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
            if single_mask == "unk":
                target = tokenizer.convert_tokens_to_ids(candidate)
            else:
                target = tokenizer(candidate, add_special_tokens=False)["input_ids"][0]
            targets = torch.tensor([target])
            groups = [positions]
        else:
            input_ids, positions = probing.encode_with_candidate(tokenizer, text, candidate)
            targets = input_ids[0, positions]
            groups = [[p] for p in positions] if one_piece_at_a_time else [positions]
        piece_scores = []
        for group in groups:
            masked = input_ids.clone()
            if mask:
                masked[0, group] = tokenizer.mask_token_id
            with torch.no_grad():
                logits = model(input_ids=masked).logits[0]  # (seq, vocab_size)
            if scores == "log_softmax":
                table = logits.log_softmax(dim=softmax_dim)
            else:  # raw logits used as log-probabilities
                table = logits
            piece_scores.append(table[group])
        table = torch.cat(piece_scores)  # (pieces, vocab_size)
        log_probs = table.gather(1, targets[:, None])[:, 0]  # (pieces,)
        if first_piece_only:
            log_probs = log_probs[:1]
        results.append(
            {
                "product": lambda lp: lp.sum().exp(),
                "sum of probabilities": lambda lp: lp.exp().sum(),
                "mean": lambda lp: lp.mean().exp(),
                "log": lambda lp: lp.sum(),
            }[combine](log_probs)
        )
    results = torch.stack(results)
    return results / results.sum() if normalise else results


_candidate_mistake = functools.partial(flawed_mistake, flawed=_flawed_candidates)


SINGLE_MASK_HINT = (
    "you used a single mask for a candidate of several word pieces; mask every one of "
    "its positions (encode_with_candidate gives them) and score each piece."
)

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
        SINGLE_MASK_HINT,
        single_mask="first piece",
    ),
    _candidate_mistake(
        "one mask, the word's id looked up whole",
        SINGLE_MASK_HINT,
        single_mask="unk",
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
        combine="sum of probabilities",
    ),
    _candidate_mistake(
        "pieces averaged",
        "you averaged the pieces' log-probabilities; add them (the word's probability is "
        "the product of its pieces'), then exp.",
        combine="mean",
    ),
    _candidate_mistake(
        "log-probabilities returned",
        "these are log-probabilities; return probabilities (apply .exp() to the sum of the "
        "pieces' log-probabilities).",
        combine="log",
    ),
    _candidate_mistake(
        "raw logits",
        "you read raw logits as if they were log-probabilities; apply log_softmax(dim=-1) "
        "over the vocabulary first.",
        scores="logits",
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
    softmax_dim=-1,
    special_tokens=True,
    probabilities=False,
    raw_logits=False,
    mean=False,
):
    """A pseudo-log-likelihood with one classic mistake switched on."""
    input_ids = tokenizer(sentence, return_tensors="pt", add_special_tokens=special_tokens)[
        "input_ids"
    ]
    seq = input_ids.size(1)
    positions = {
        False: range(1, seq - 1),
        True: range(seq),
        "[CLS]": range(seq - 1),
        "[SEP]": range(1, seq),
        "last token skipped": range(1, seq - 2),
        "none present": range(seq),
    }[include_special if special_tokens else "none present"]
    positions = list(positions)
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
            logits = model(input_ids=masked).logits[0]  # (seq, vocab_size)
        logits = logits.log_softmax(dim=0)[position] if softmax_dim == 0 else logits[position]
        token = input_ids[0, position]
        if raw_logits or softmax_dim == 0:  # already log-probabilities over the positions
            scores.append(logits[token])
        elif probabilities:
            scores.append(logits.softmax(dim=-1)[token])
        else:
            scores.append(logits.log_softmax(dim=-1)[token])
    scores = torch.stack(scores)
    return scores.mean() if mean else scores.sum()


_pll_mistake = functools.partial(flawed_mistake, flawed=_flawed_pll)


SPECIAL_HINT = (
    "you also scored [CLS] or [SEP]; they are the same in every sentence, so score "
    "only the real tokens (positions 1 to seq - 2)."
)

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
        SPECIAL_HINT,
        include_special=True,
    ),
    _pll_mistake(
        "[CLS] scored",
        SPECIAL_HINT,
        include_special="[CLS]",
    ),
    _pll_mistake(
        "[SEP] scored",
        SPECIAL_HINT,
        include_special="[SEP]",
    ),
    _pll_mistake(
        "last token skipped",
        "you left out the last real token; score positions 1 to seq - 2 inclusive, "
        "range(1, seq - 1) in Python.",
        include_special="last token skipped",
    ),
    _pll_mistake(
        "no special tokens",
        "keep [CLS] and [SEP] in the input, where the model expects them; only leave them "
        "out of the sum.",
        special_tokens=False,
    ),
    _pll_mistake(
        "softmax over positions",
        "your softmax runs over the positions of the sentence; each position's "
        "log-probabilities run over the vocabulary, log_softmax(dim=-1).",
        softmax_dim=0,
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
