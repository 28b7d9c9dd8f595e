"""Probing a masked language model (lesson 07): words for a blank, and how likely a sentence is.

Every function takes a Hugging Face masked LM and its tokenizer, as
:func:`~course_utils.pretrained.load_masked_lm` returns them, so the same code probes
``bert-base-uncased``, ``roberta-base`` or the course's small model. Nothing here
hard-codes ``[MASK]``: RoBERTa's mask is ``<mask>``, so the tokenizer's ``mask_token_id``
is used throughout, and candidate words are located by character offsets in the whole
sentence, which handles BERT's ``##`` pieces and RoBERTa's space-marking ``Ġ`` alike.

A blank is written ``___`` (three underscores): ``"The doctor picked up ___ bag."``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # transformers is imported by whoever loads the model
    import pandas as pd  # imported by the two functions that make tables (half a second)
    from torch import nn
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "BLANK",
    "candidate_probabilities",
    "encode_with_candidate",
    "probe_table",
    "pseudo_log_likelihood",
    "top_predictions",
]

BLANK = "___"


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _split_at_blank(text: str) -> tuple[str, str]:
    if not isinstance(text, str) or text.count(BLANK) != 1:
        raise ValueError(f"the text must contain exactly one blank {BLANK!r}; got {text!r}")
    before, after = text.split(BLANK)
    return before, after


def encode_with_candidate(
    tokenizer: PreTrainedTokenizerBase, text: str, candidate: str
) -> tuple[torch.Tensor, list[int]]:
    """Fill the blank with ``candidate``; return the ids ``(1, seq)`` and the candidate's positions.

    The positions are those of every word piece of the candidate (one for ``"his"``,
    two for ``"nurse"`` if it splits as ``nurs ##e``), found from the pieces' character
    offsets in the filled sentence, so they are right for any tokenizer.
    """
    before, after = _split_at_blank(text)
    candidate = candidate.strip()
    if not candidate:
        raise ValueError("a candidate must be a non-empty word")
    start, end = len(before), len(before) + len(candidate)
    encoding = tokenizer(
        before + candidate + after,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        return_tensors="pt",
    )
    offsets = encoding["offset_mapping"][0].tolist()
    special = encoding["special_tokens_mask"][0].tolist()
    # A piece overlaps the candidate's characters, or is an empty-width piece right at its
    # start: a lone "Ġ" (RoBERTa's mark for the space before a word) has its offsets trimmed.
    positions = [
        i
        for i, ((first, last), is_special) in enumerate(zip(offsets, special, strict=True))
        if not is_special and ((first < end and last > start) or first == last == start)
    ]
    return encoding["input_ids"], positions


@torch.no_grad()
def candidate_probabilities(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, text: str, candidates: Sequence[str]
) -> torch.Tensor:
    """The probability of each candidate for the blank: a tensor ``(len(candidates),)``.

    For each candidate, all its word pieces are masked at once and the probability is
    the product of each piece's probability at its masked position (the model knows
    how many pieces to fill, but not which). Probabilities are not renormalised over
    the candidates: a small total means the model expected another word altogether.
    """
    probabilities = []
    for candidate in candidates:
        input_ids, positions = encode_with_candidate(tokenizer, text, candidate)
        masked = input_ids.clone()
        masked[0, positions] = tokenizer.mask_token_id
        logits = model(input_ids=masked.to(_device(model))).logits[0]  # (seq, vocab_size)
        log_probs = logits[positions].float().log_softmax(dim=-1)  # (pieces, vocab_size)
        targets = input_ids[0, positions].to(log_probs.device)
        # Multiply the pieces' probabilities by adding their logs, then undo the log.
        total = log_probs.gather(1, targets[:, None]).sum()
        probabilities.append(total.exp().cpu())
    return torch.stack(probabilities)


@torch.no_grad()
def pseudo_log_likelihood(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, sentence: str
) -> torch.Tensor:
    """The sentence's pseudo-log-likelihood, a 0-dim tensor: Σ log P(token | the rest).

    Each token except the special ones (``[CLS]``, ``[SEP]``) is masked in turn, the
    others left visible, and the log-probabilities of the true tokens are summed. The
    copies, one per masked token, run as a single batch.
    """
    encoding = tokenizer(sentence, return_special_tokens_mask=True, return_tensors="pt")
    input_ids = encoding["input_ids"]
    positions = (encoding["special_tokens_mask"][0] == 0).nonzero().flatten()  # (n,)
    rows = torch.arange(len(positions))
    masked = input_ids.repeat(len(positions), 1)  # (n, seq): one copy per token to score
    masked[rows, positions] = tokenizer.mask_token_id
    logits = model(input_ids=masked.to(_device(model))).logits  # (n, seq, vocab_size)
    log_probs = logits[rows, positions].float().log_softmax(dim=-1).cpu()  # (n, vocab_size)
    return log_probs[rows, input_ids[0, positions]].sum()


@torch.no_grad()
def top_predictions(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, text: str, k: int = 10
) -> pd.DataFrame:
    """The ``k`` likeliest tokens for a blank replaced by one mask token, with probabilities."""
    before, after = _split_at_blank(text)
    encoding = tokenizer(before + tokenizer.mask_token + after, return_tensors="pt")
    input_ids = encoding["input_ids"]
    position = int((input_ids[0] == tokenizer.mask_token_id).nonzero()[0])
    logits = model(input_ids=input_ids.to(_device(model))).logits[0, position]  # (vocab_size,)
    top = logits.float().softmax(dim=-1).topk(k)
    tokens = tokenizer.convert_ids_to_tokens(top.indices.tolist())
    import pandas as pd

    return pd.DataFrame({"token": tokens, "probability": top.values.cpu().numpy().round(4)})


def probe_table(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    candidates: str | Sequence[str],
) -> pd.DataFrame:
    """Candidates (a list, or one string separated by commas or slashes) and their probabilities.

    Columns: the candidate, its word pieces, its probability for the blank, and its
    share among the candidates given (the probabilities renormalised to sum to 1).
    """
    if isinstance(candidates, str):
        candidates = [c.strip() for c in candidates.replace("/", ",").split(",")]
    candidates = [c for c in candidates if c]
    if not candidates:
        raise ValueError("give at least one candidate word, e.g. 'his, her'")
    probabilities = candidate_probabilities(model, tokenizer, text, candidates).double()
    pieces = []
    for candidate in candidates:
        input_ids, positions = encode_with_candidate(tokenizer, text, candidate)
        pieces.append(" ".join(tokenizer.convert_ids_to_tokens(input_ids[0, positions].tolist())))
    import pandas as pd

    return pd.DataFrame(
        {
            "candidate": candidates,
            "pieces": pieces,
            "probability": probabilities.numpy(),
            "share": (probabilities / probabilities.sum()).numpy().round(3),
        }
    )
