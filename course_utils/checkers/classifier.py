"""Checkers for lesson 06: masked mean pooling and the classifier's forward pass."""

from __future__ import annotations

import math

import torch
from torch import nn

from course_utils import classifier
from course_utils.attention import padding_mask
from course_utils.checkers.encoder import _SeededDropout
from course_utils.checkers.modules import build_quietly, randomise_parameters
from course_utils.checking import Case, Mistake, function_exercise

__all__ = ["EXERCISES"]


def _pool_mistake(name, hint, pool):
    def submission(hidden, mask):
        return pool(hidden, mask)

    submission.__name__ = name
    return Mistake(name, hint, submission)


def _masked_sum(hidden, mask, dim=1):
    return (hidden * mask.unsqueeze(-1).to(hidden.dtype)).sum(dim=dim)


POOL_MISTAKES = (
    _pool_mistake(
        "mean over the padding too",
        "you averaged over every position, padding included; multiply by the mask and divide "
        "by each review's number of real tokens.",
        lambda h, m: h.mean(dim=1),
    ),
    _pool_mistake(
        "mask inverted",
        "your mask has the wrong polarity: you averaged the padding; True marks the real "
        "tokens, so keep the positions where mask is True.",
        lambda h, m: _masked_sum(h, ~m) / (~m).sum(dim=1, keepdim=True),
    ),
    _pool_mistake(
        "divided by the padded length",
        "you zeroed the padding but divided by the padded length seq; divide by the number "
        "of real tokens, mask.sum(dim=1, keepdim=True).",
        lambda h, m: _masked_sum(h, m) / h.size(1),
    ),
    _pool_mistake(
        "sum instead of mean",
        "you summed the real tokens' vectors; divide the sum by how many there are.",
        lambda h, m: _masked_sum(h, m),
    ),
    _pool_mistake(
        "over the batch axis",
        "you averaged over the batch axis (dim=0), mixing different reviews; average over "
        "the sequence axis, dim=1.",
        lambda h, m: _masked_sum(h, m, dim=0) / m.sum(dim=0).unsqueeze(-1),
    ),
)


def _pool_cases(gen: torch.Generator) -> list[Case]:
    # Every sequence here has some padding, and the padding holds large values, so pooling
    # over it (or over it alone) cannot go unnoticed.
    def case(lengths, seq, d_model, label):
        hidden = torch.randn(len(lengths), seq, d_model, generator=gen)
        mask = padding_mask(torch.tensor(lengths), seq)
        hidden = torch.where(mask[..., None], hidden, 5 + 3 * hidden)
        return Case((hidden, mask), label=label)

    return [
        case([4, 2, 3], 5, 8, "lengths [4, 2, 3], seq=5"),
        case([1, 5], 7, 6, "lengths [1, 5], seq=7"),
        case([3, 6, 2, 5], 8, 4, "batch of 4, seq=8"),
    ]


def _flawed_forward(
    model,
    input_ids,
    *,
    scale=True,
    scale_after_positions=False,
    batch_positions=False,
    attention_mask="keep",
    pooling_mask="keep",
    cls_ignored=False,
    dropout=True,
):
    """The classifier's forward pass with one classic mistake switched on."""
    keep = input_ids != model.pad_id
    drop = model.dropout if dropout else nn.Identity()
    x = model.embedding(input_ids)
    if scale and not scale_after_positions:
        x = x * math.sqrt(model.d_model)
    if batch_positions:
        x = x + model.positional.table[: x.size(0)].unsqueeze(1)  # the original's bug
    else:
        x = model.positional(x)
    if scale_after_positions:
        x = x * math.sqrt(model.d_model)
    x = drop(x)
    masks = {"keep": keep[:, None, None, :], "inverted": ~keep[:, None, None, :], "none": None}
    x = model.encoder(x, mask=masks[attention_mask])
    if model.pooling == "cls" and not cls_ignored:
        pooled = x[:, 0]
    elif pooling_mask == "all":
        pooled = x.mean(dim=1)
    else:
        pooled = classifier.masked_mean_pool(x, keep if pooling_mask == "keep" else ~keep)
    return model.head(drop(pooled))


def _forward_mistake(name, hint, **flaw):
    def submission(model, input_ids):
        return _flawed_forward(model, input_ids, **flaw)

    submission.__name__ = name
    return Mistake(name, hint, submission)


FORWARD_MISTAKES = (
    _forward_mistake(
        "no √d_model scaling",
        "multiply the token embeddings by math.sqrt(model.d_model) before adding the positions.",
        scale=False,
    ),
    _forward_mistake(
        "scaled after adding positions",
        "you scaled the sum of embeddings and positions; scale the embeddings alone by "
        "√d_model, then add the positions.",
        scale_after_positions=True,
    ),
    _forward_mistake(
        "positions on the batch axis",
        "your positions run along the batch axis: in a batch-first tensor token t is x[:, t], "
        "so position t's row must be added to x[:, t] (model.positional(x) does that).",
        batch_positions=True,
    ),
    _forward_mistake(
        "no attention mask",
        "your encoder lets real tokens attend to padding: pass "
        "mask=keep[:, None, None, :] to model.encoder, where keep = input_ids != model.pad_id.",
        attention_mask="none",
    ),
    _forward_mistake(
        "attention mask inverted",
        "your attention mask has the wrong polarity: True must mark the real tokens "
        "(input_ids != model.pad_id), the keys that may be attended to.",
        attention_mask="inverted",
    ),
    _forward_mistake(
        "pooled over the padding",
        "you averaged over the padding too: pool with masked_mean_pool(x, keep).",
        pooling_mask="all",
    ),
    _forward_mistake(
        "pooling mask inverted",
        "your pooling averages the padding: give masked_mean_pool the mask that is True at "
        "real tokens.",
        pooling_mask="inverted",
    ),
    _forward_mistake(
        "[CLS] pooling ignored",
        "when model.pooling == \"cls\", the review's vector is the first token's, x[:, 0], "
        "not the mean.",
        cls_ignored=True,
    ),
    _forward_mistake(
        "no dropout",
        "in training mode apply model.dropout twice: after adding the positions and to the "
        "pooled vector before the head.",
        dropout=False,
    ),
)


def _model(gen, *, train=False, **sizes):
    model = build_quietly(classifier.TransformerClassifier, 40, 5, 16, **sizes)
    model = randomise_parameters(model, gen)
    if train:
        droppers = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Dropout)]
        for seed, (name, module) in enumerate(droppers):
            parent, _, attr = name.rpartition(".")
            owner = model.get_submodule(parent) if parent else model
            setattr(owner, attr, _SeededDropout(module.p, seed))
    return model.train(train)


def _ids(gen, lengths, seq, first=None):
    ids = torch.randint(3, 40, (len(lengths), seq), generator=gen)
    if first is not None:
        ids[:, 0] = first
    return ids.masked_fill(~padding_mask(torch.tensor(lengths), seq), 0)  # pad_id = 0


def _forward_cases(gen: torch.Generator) -> list[Case]:
    small = {"d_model": 16, "num_heads": 2, "d_ff": 32}
    mean = _model(gen, num_layers=2, **small)
    cls = _model(gen, pooling="cls", norm_first=False, **small)
    dropped = _model(gen, train=True, dropout=0.3, **small)
    return [
        Case((mean, _ids(gen, [7, 4, 2], 7)), label="mean pooling, 3 reviews, seq=7"),
        Case((mean, _ids(gen, [3, 6], 6)), label="mean pooling, 2 reviews, seq=6"),
        Case((cls, _ids(gen, [5, 5, 3, 1], 5, first=2)), label='pooling="cls", 4 reviews'),
        Case((dropped, _ids(gen, [6, 3], 6)), label="training mode, dropout=0.3"),
    ]


EXERCISES = (
    function_exercise(
        "6.1",
        classifier.masked_mean_pool,
        _pool_cases,
        names=("pooled",),
        mistakes=POOL_MISTAKES,
        success="each review's mean over its real tokens, whatever the padding holds.",
    ),
    function_exercise(
        "6.2",
        classifier.classifier_forward,
        _forward_cases,
        names=("logits",),
        mistakes=FORWARD_MISTAKES,
        success="positions on the sequence axis, padding masked, mean and [CLS] pooling.",
    ),
)
