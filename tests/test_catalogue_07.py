"""Catalogue of learner implementations for lesson 07 (exercises 7.1-7.2)."""

from __future__ import annotations

import torch
from catalogue import Catalogue, catalogue_tests

from course_utils.probing import encode_with_candidate

CATALOGUE = Catalogue()
valid, wrong = CATALOGUE.valid, CATALOGUE.wrong

# 7.1 candidate probabilities ---------------------------------------------------------------


@valid("7.1")
def candidates_textbook(model, tokenizer, text, candidates):
    probabilities = []
    for candidate in candidates:
        input_ids, positions = encode_with_candidate(tokenizer, text, candidate)
        masked = input_ids.clone()
        masked[0, positions] = tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=masked.to(model.device)).logits[0]
        log_probs = logits[positions].log_softmax(dim=-1)
        targets = input_ids[0, positions]
        probabilities.append(log_probs.gather(1, targets[:, None]).sum().exp())
    return torch.stack(probabilities)


@valid("7.1")
def candidates_product(model, tokenizer, text, candidates):
    result = torch.zeros(len(candidates))
    for c, candidate in enumerate(candidates):
        ids, positions = encode_with_candidate(tokenizer, text, candidate)
        masked = ids.clone()
        for p in positions:
            masked[0, p] = tokenizer.mask_token_id
        with torch.no_grad():
            probs = torch.softmax(model(input_ids=masked).logits, dim=-1)[0]
        total = 1.0
        for p in positions:
            total = total * probs[p, ids[0, p]]
        result[c] = total
    return result


@valid("7.1")
def candidates_log_loop(model, tokenizer, text, candidates):
    out = []
    for candidate in candidates:
        ids, positions = encode_with_candidate(tokenizer, text, candidate)
        masked = ids.clone()
        masked[0, positions] = tokenizer.mask_token_id
        with torch.no_grad():
            log_probs = torch.log_softmax(model(masked).logits[0], dim=-1)
        score = sum(log_probs[p, ids[0, p]] for p in positions)
        out.append(torch.exp(score))
    return torch.tensor(out)


def _scores(model, tokenizer, text, candidate, *, mask=True, softmax_dim=-1, one_at_a_time=False):
    """(log-probability per piece) with the chosen flaw."""
    ids, positions = encode_with_candidate(tokenizer, text, candidate)
    pieces = []
    groups = [[p] for p in positions] if one_at_a_time else [positions]
    for group in groups:
        masked = ids.clone()
        if mask:
            masked[0, group] = tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=masked).logits[0]
        log_probs = logits.log_softmax(dim=softmax_dim)
        pieces += [log_probs[p, ids[0, p]] for p in group]
    return torch.stack(pieces)


@wrong("7.1", "visible to the model")
def candidates_unmasked(model, tokenizer, text, candidates):
    return torch.stack(
        [_scores(model, tokenizer, text, c, mask=False).sum().exp() for c in candidates]
    )


@wrong("7.1", "positions of the sentence")
def candidates_softmax_positions(model, tokenizer, text, candidates):
    return torch.stack(
        [_scores(model, tokenizer, text, c, softmax_dim=0).sum().exp() for c in candidates]
    )


@wrong("7.1", "only the first piece")
def candidates_first_piece(model, tokenizer, text, candidates):
    return torch.stack([_scores(model, tokenizer, text, c)[0].exp() for c in candidates])


@wrong("7.1", "single mask")
def candidates_one_mask_whole_word(model, tokenizer, text, candidates):
    input_ids = tokenizer(text.replace("___", tokenizer.mask_token), return_tensors="pt")[
        "input_ids"
    ]
    position = (input_ids[0] == tokenizer.mask_token_id).nonzero()[0, 0]
    with torch.no_grad():
        probs = model(input_ids=input_ids).logits[0, position].softmax(-1)
    return torch.stack([probs[tokenizer.convert_tokens_to_ids(c)] for c in candidates])


@wrong("7.1", "single mask")
def candidates_one_mask_first_id(model, tokenizer, text, candidates):
    input_ids = tokenizer(text.replace("___", "[MASK]"), return_tensors="pt")["input_ids"]
    position = input_ids[0].tolist().index(tokenizer.mask_token_id)
    with torch.no_grad():
        probs = model(input_ids=input_ids).logits[0, position].softmax(-1)
    ids = [tokenizer.encode(c, add_special_tokens=False)[0] for c in candidates]
    return probs[ids]


@wrong("7.1", "one at a time")
def candidates_one_at_a_time(model, tokenizer, text, candidates):
    return torch.stack(
        [_scores(model, tokenizer, text, c, one_at_a_time=True).sum().exp() for c in candidates]
    )


@wrong("7.1", "added the pieces' probabilities")
def candidates_sum_probs(model, tokenizer, text, candidates):
    return torch.stack([_scores(model, tokenizer, text, c).exp().sum() for c in candidates])


@wrong("7.1", "averaged the pieces'")
def candidates_mean(model, tokenizer, text, candidates):
    return torch.stack([_scores(model, tokenizer, text, c).mean().exp() for c in candidates])


@wrong("7.1", "these are log-probabilities")
def candidates_log(model, tokenizer, text, candidates):
    return torch.stack([_scores(model, tokenizer, text, c).sum() for c in candidates])


@wrong("7.1", "sum to 1 over the candidates")
def candidates_normalised(model, tokenizer, text, candidates):
    p = torch.stack([_scores(model, tokenizer, text, c).sum().exp() for c in candidates])
    return p / p.sum()


@wrong("7.1", "raw logits")
def candidates_raw_logits(model, tokenizer, text, candidates):
    out = []
    for candidate in candidates:
        ids, positions = encode_with_candidate(tokenizer, text, candidate)
        masked = ids.clone()
        masked[0, positions] = tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=masked).logits[0]
        out.append(sum(logits[p, ids[0, p]] for p in positions).exp())
    return torch.stack(out)


@wrong("7.1", "torch.stack")
def candidates_list(model, tokenizer, text, candidates):
    return [float(_scores(model, tokenizer, text, c).sum().exp()) for c in candidates]


@wrong("7.1", "out of evaluation mode")
def candidates_train_mode(model, tokenizer, text, candidates):
    model.train()
    return candidates_textbook(model, tokenizer, text, candidates)


@wrong("7.1", "")
def candidates_unk_mask(model, tokenizer, text, candidates):
    out = []
    for candidate in candidates:
        ids, positions = encode_with_candidate(tokenizer, text, candidate)
        masked = ids.clone()
        masked[0, positions] = tokenizer.unk_token_id
        with torch.no_grad():
            log_probs = model(input_ids=masked).logits[0].log_softmax(-1)
        out.append(sum(log_probs[p, ids[0, p]] for p in positions).exp())
    return torch.stack(out)


# 7.2 pseudo-log-likelihood -----------------------------------------------------------------


@valid("7.2")
def pll_textbook(model, tokenizer, sentence):
    input_ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
    total = torch.tensor(0.0)
    for position in range(1, input_ids.size(1) - 1):
        masked = input_ids.clone()
        masked[0, position] = tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=masked.to(model.device)).logits[0, position]
        total = total + logits.log_softmax(dim=-1)[input_ids[0, position]].cpu()
    return total


@valid("7.2")
def pll_batched(model, tokenizer, sentence):
    ids = tokenizer(sentence, return_tensors="pt").input_ids[0]
    positions = torch.arange(1, len(ids) - 1)
    batch = ids.repeat(len(positions), 1)
    batch[torch.arange(len(positions)), positions] = tokenizer.mask_token_id
    with torch.no_grad():
        logits = model(input_ids=batch).logits
    log_probs = logits[torch.arange(len(positions)), positions].log_softmax(-1)
    return log_probs[torch.arange(len(positions)), ids[positions]].sum()


@valid("7.2")
def pll_log_of_softmax(model, tokenizer, sentence):
    encoded = tokenizer(sentence, return_tensors="pt")
    ids = encoded["input_ids"]
    scores = []
    for i in range(1, ids.shape[1] - 1):
        masked = ids.clone()
        masked[0][i] = tokenizer.mask_token_id
        with torch.no_grad():
            probs = torch.softmax(model(**{"input_ids": masked}).logits[0, i], dim=-1)
        scores.append(torch.log(probs[ids[0][i]]))
    return torch.stack(scores).sum()


def _pll(model, tokenizer, sentence, positions=None, *, mask="each", score="log", special=True):
    ids = tokenizer(sentence, return_tensors="pt", add_special_tokens=special)["input_ids"]
    seq = ids.size(1)
    positions = range(1, seq - 1) if positions is None else positions(seq)
    masked = ids.clone()
    total = []
    for p in positions:
        if mask == "each":
            masked = ids.clone()
        if mask != "none":
            masked[0, p] = tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=masked).logits[0, p]
        if score == "log":
            total.append(logits.log_softmax(-1)[ids[0, p]])
        elif score == "prob":
            total.append(logits.softmax(-1)[ids[0, p]])
        else:
            total.append(logits[ids[0, p]])
    return torch.stack(total).sum()


@wrong("7.2", "visible while it was scored")
def pll_unmasked(model, tokenizer, sentence):
    return _pll(model, tokenizer, sentence, mask="none")


@wrong("7.2", "earlier masks stay in place")
def pll_accumulating(model, tokenizer, sentence):
    return _pll(model, tokenizer, sentence, mask="accumulate")


@wrong("7.2", "masked every token at once")
def pll_all_at_once(model, tokenizer, sentence):
    ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
    masked = ids.clone()
    masked[0, 1:-1] = tokenizer.mask_token_id
    with torch.no_grad():
        log_probs = model(input_ids=masked).logits[0].log_softmax(-1)
    return sum(log_probs[p, ids[0, p]] for p in range(1, ids.size(1) - 1))


@wrong("7.2", "[CLS] or [SEP]")
def pll_all_positions(model, tokenizer, sentence):
    return _pll(model, tokenizer, sentence, range)


@wrong("7.2", "[CLS] or [SEP]")
def pll_with_sep(model, tokenizer, sentence):
    return _pll(model, tokenizer, sentence, lambda seq: range(1, seq))


@wrong("7.2", "[CLS] or [SEP]")
def pll_with_cls(model, tokenizer, sentence):
    return _pll(model, tokenizer, sentence, lambda seq: range(seq - 1))


@wrong("7.2", "left out the last real token")
def pll_off_by_one(model, tokenizer, sentence):
    return _pll(model, tokenizer, sentence, lambda seq: range(1, seq - 2))


@wrong("7.2", "added probabilities")
def pll_probabilities(model, tokenizer, sentence):
    return _pll(model, tokenizer, sentence, score="prob")


@wrong("7.2", "raw logits")
def pll_logits(model, tokenizer, sentence):
    return _pll(model, tokenizer, sentence, score="logit")


@wrong("7.2", "return their sum")
def pll_mean(model, tokenizer, sentence):
    ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
    return _pll(model, tokenizer, sentence) / (ids.size(1) - 2)


@wrong("7.2", "keep [CLS] and [SEP] in the input")
def pll_no_specials(model, tokenizer, sentence):
    return _pll(model, tokenizer, sentence, range, special=False)


@wrong("7.2", "positions of the sentence")
def pll_softmax_positions(model, tokenizer, sentence):
    ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
    total = torch.tensor(0.0)
    for p in range(1, ids.size(1) - 1):
        masked = ids.clone()
        masked[0, p] = tokenizer.mask_token_id
        with torch.no_grad():
            log_probs = model(input_ids=masked).logits[0].log_softmax(dim=0)
        total = total + log_probs[p, ids[0, p]]
    return total


@wrong("7.2", "should be a torch.Tensor")
def pll_float(model, tokenizer, sentence):
    return float(pll_textbook(model, tokenizer, sentence))


@wrong("7.2", "out of evaluation mode")
def pll_train_mode(model, tokenizer, sentence):
    model.train()
    return pll_textbook(model, tokenizer, sentence)


@wrong("7.2", "")
def pll_last_position_logits(model, tokenizer, sentence):
    ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
    total = torch.tensor(0.0)
    for p in range(1, ids.size(1) - 1):
        masked = ids.clone()
        masked[0, p] = tokenizer.mask_token_id
        with torch.no_grad():
            log_probs = model(input_ids=masked).logits[0, -1].log_softmax(-1)
        total = total + log_probs[ids[0, p]]
    return total


MINIMUM = {"7.1": (14, 3), "7.2": (14, 3)}
(
    test_valid_is_accepted,
    test_wrong_is_rejected_with_its_mistake_named,
    test_catalogue_covers_each_exercise,
) = catalogue_tests(CATALOGUE, MINIMUM)
