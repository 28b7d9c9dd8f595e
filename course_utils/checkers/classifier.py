"""Checkers for lesson 06: masked mean pooling and the classifier's forward pass."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from course_utils import classifier
from course_utils.attention import padding_mask
from course_utils.checkers.modules import build_quietly, randomise_parameters, seed_dropouts
from course_utils.checking import Case, flawed_mistake, function_exercise, with_gradient_check

__all__ = ["EXERCISES"]


def _masked_sum(hidden, mask, dim=1):
    return (hidden * mask.unsqueeze(-1).to(hidden.dtype)).sum(dim=dim)


POOL_GRADIENT_HINT = (
    "your pooling cut the gradient (detach / no_grad): fine-tuning trains the encoder through it."
)

UNSQUEEZE_HINT = (
    "mask is (batch, seq); to weigh hidden (batch, seq, d_model), give it a last axis: "
    "mask.unsqueeze(-1)."
)


@torch.no_grad()
def _pool_without_gradients(hidden, mask):
    return classifier.masked_mean_pool(hidden, mask)


POOL_MISTAKES = (
    flawed_mistake(
        "mean over the padding too",
        "you averaged over every position, padding included; multiply by the mask and divide "
        "by each review's number of real tokens.",
        lambda h, m: h.mean(dim=1),
    ),
    flawed_mistake(
        "mask inverted",
        "your mask has the wrong polarity, so you averaged the padding: True marks the real "
        "tokens, so keep the positions where mask is True.",
        lambda h, m: _masked_sum(h, ~m) / (~m).sum(dim=1, keepdim=True),
    ),
    flawed_mistake(
        "divided by the padded length",
        "you zeroed the padding but divided by the padded length seq; divide by the number "
        "of real tokens, mask.sum(dim=1, keepdim=True).",
        lambda h, m: _masked_sum(h, m) / h.size(1),
    ),
    flawed_mistake(
        "sum instead of mean",
        "you summed the real tokens' vectors; divide the sum by how many there are.",
        lambda h, m: _masked_sum(h, m),
    ),
    flawed_mistake(
        "first n positions",
        "you averaged the first n positions of each review, as if padding always came last; "
        "use the mask itself, which also handles padding on the left.",
        lambda h, m: torch.stack([h[b, : int(m[b].sum())].mean(dim=0) for b in range(h.size(0))]),
    ),
    flawed_mistake(
        "everything pooled together",
        "you averaged the real tokens of all reviews together; return one vector per "
        "review, shape (batch, d_model).",
        lambda h, m: h[m].mean(dim=0),
    ),
    flawed_mistake(
        "count without keepdim",
        "your count of real tokens has shape (batch,), which does not line up with the "
        "(batch, d_model) sum: divide by mask.sum(dim=1, keepdim=True).",
        lambda h, m: _masked_sum(h, m) / m.sum(dim=1),
    ),
    flawed_mistake(
        "max pooling",
        "you took the maximum over the tokens; this exercise asks for the mean over the "
        "real tokens.",
        lambda h, m: h.masked_fill(~m[..., None], float("-inf")).max(dim=1).values,
    ),
    flawed_mistake(
        "over the batch axis",
        "you averaged over the batch axis (dim=0), mixing different reviews; average over "
        "the sequence axis, dim=1.",
        lambda h, m: _masked_sum(h, m, dim=0) / m.sum(dim=0).unsqueeze(-1),
    ),
    # Crash on every case (seq != d_model), recognised by the crash; each operand order
    # words PyTorch's broadcasting error differently.
    flawed_mistake(
        "mask without a last axis",
        UNSQUEEZE_HINT,
        lambda h, m: (h * m).sum(dim=1) / m.sum(dim=1, keepdim=True),
    ),
    flawed_mistake(
        "mask without a last axis, mask first",
        UNSQUEEZE_HINT,
        lambda h, m: torch.where(m, h, 0.0).sum(dim=1) / m.sum(dim=1, keepdim=True),
    ),
    # Right values, but no gradient flows back: recognised by the gradient check.
    flawed_mistake(
        "result detached",
        POOL_GRADIENT_HINT,
        lambda h, m: classifier.masked_mean_pool(h, m).detach(),
    ),
    flawed_mistake("under torch.no_grad()", POOL_GRADIENT_HINT, _pool_without_gradients),
)


def _pool_cases(gen: torch.Generator) -> list[Case]:
    # Every sequence here has some padding, and the padding holds large values, so pooling
    # over it (or over it alone) cannot go unnoticed.
    def case(lengths, seq, d_model, label):
        hidden = torch.randn(len(lengths), seq, d_model, generator=gen)
        mask = padding_mask(torch.tensor(lengths), seq)
        hidden = torch.where(mask[..., None], hidden, 5 + 3 * hidden)
        return Case((hidden, mask), label=label)

    def left(lengths, seq, d_model, label):
        built = case(lengths, seq, d_model, label)
        hidden, mask = built.args
        return Case((hidden.flip(1), mask.flip(1)), label=label)

    return [
        case([4, 2, 3], 5, 8, "lengths [4, 2, 3], seq=5"),
        case([1, 5], 7, 6, "lengths [1, 5], seq=7"),
        case([3, 6, 2, 5], 8, 4, "batch of 4, seq=8"),
        left([2, 4, 1], 4, 3, "padding on the left, lengths [2, 4, 1], seq=4"),
    ]


def _pool_gradient_case() -> tuple:
    hidden = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(61))
    return hidden, padding_mask(torch.tensor([4, 2, 5]), 5)


def _pool_dtype(pooled: torch.Tensor) -> str | None:
    if pooled.dtype == torch.float32:  # the gradient case's hidden is float32
        return None
    dtype = str(pooled.dtype).removeprefix("torch.")
    return (
        f"return the same dtype as hidden (float32); yours is {dtype}: turn the mask into "
        "numbers with mask.to(hidden.dtype) or mask.float()."
    )


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
    first_token=False,
    dropout="both",
    pad_id=None,
    blocks_only=False,
    output="logits",
):
    """The classifier's forward pass with one classic mistake switched on."""
    keep = input_ids != (model.pad_id if pad_id is None else pad_id)
    drop = model.dropout if dropout in ("both", "first") else nn.Identity()
    drop_pooled = model.dropout if dropout in ("both", "second") else nn.Identity()
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
    masks = {
        "keep": keep[:, None, None, :],
        "inverted": ~keep[:, None, None, :],
        "none": None,
        "2-D": keep,
        "3-D": keep[:, None, :],
        "query axis": keep[:, None, :, None],
    }
    if blocks_only:  # the blocks without the encoder's final norm
        for layer in model.encoder.layers:
            x = layer(x, masks[attention_mask])
    else:
        x = model.encoder(x, mask=masks[attention_mask])
    if first_token or (model.pooling == "cls" and not cls_ignored):
        pooled = x[:, 0]
    elif pooling_mask == "all":
        pooled = x.mean(dim=1)
    else:
        pooled = classifier.masked_mean_pool(x, keep if pooling_mask == "keep" else ~keep)
    logits = model.head(drop_pooled(pooled))
    if output == "softmax":
        return torch.softmax(logits, dim=-1)
    if output == "log_softmax":
        return torch.log_softmax(logits, dim=-1)
    return logits


SOFTMAX_HINT = "return raw logits; nn.CrossEntropyLoss applies the softmax itself."

_forward_mistake = functools.partial(flawed_mistake, flawed=_flawed_forward)


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
        dropout="none",
    ),
    _forward_mistake(
        "no dropout on the pooled vector",
        "apply model.dropout a second time, to the pooled vector before model.head.",
        dropout="first",
    ),
    _forward_mistake(
        "no dropout after the positions",
        "apply model.dropout after adding the positions too, not only before the head.",
        dropout="second",
    ),
    _forward_mistake(
        "pad id 0 hard-coded",
        "you took padding to be token id 0; padding is model.pad_id, which need not be 0: "
        "keep = input_ids != model.pad_id.",
        pad_id=0,
    ),
    _forward_mistake(
        "mask without the head and query axes",
        "give the padding mask the head and query axes, keep[:, None, None, :] of shape "
        "(batch, 1, 1, seq), so it lines up with the scores (batch, num_heads, seq, seq).",
        attention_mask="2-D",
    ),
    _forward_mistake(
        "mask without the head axis",
        "your mask keep[:, None, :] lacks the head axis; use keep[:, None, None, :], shape "
        "(batch, 1, 1, seq), so it lines up with the scores (batch, num_heads, seq, seq).",
        attention_mask="3-D",
    ),
    _forward_mistake(
        "mask on the query axis",
        "your mask hides queries; the key axis is the last one: keep[:, None, None, :].",
        attention_mask="query axis",
    ),
    _forward_mistake(
        "first token under mean pooling",
        "with mean pooling use masked_mean_pool, not x[:, 0]: the first token's vector is "
        'the review\'s only when model.pooling == "cls".',
        first_token=True,
    ),
    _forward_mistake(
        "blocks without the final norm",
        "you ran the blocks of model.encoder.layers yourself and skipped the final layer "
        "norm: call model.encoder(...), which also applies the final layer norm.",
        blocks_only=True,
    ),
    _forward_mistake("softmax on the logits", SOFTMAX_HINT, output="softmax"),
    _forward_mistake("log_softmax on the logits", SOFTMAX_HINT, output="log_softmax"),
)


class _CheckedClassifier(classifier.TransformerClassifier):
    """The classifier the checks run, which notes whether its own forward was called."""

    forward_called = False

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The reference forward pass, noted so the check can tell the learner it was used."""
        self.forward_called = True
        return super().forward(input_ids)

    def __repr__(self) -> str:  # the crash note names the type only; keep any repr short
        return f"TransformerClassifier(pooling={self.pooling!r}, pad_id={self.pad_id})"


def _called_the_model(arguments: dict) -> str | None:
    model = arguments.get("model")
    if getattr(model, "forward_called", False):
        return (
            "you called model(input_ids), which runs the course's own forward pass; write "
            "the steps out with the model's parts (model.embedding, model.encoder, ...)."
        )
    return None


def _model(gen, *, train=False, **sizes):
    model = build_quietly(_CheckedClassifier, 40, 5, 16, **sizes)
    model = randomise_parameters(model, gen)
    if train:
        model = seed_dropouts(model)
    return model.train(train)


def _ids(gen, lengths, seq, first=None, pad_id=0, left=False):
    ids = torch.randint(3, 40, (len(lengths), seq), generator=gen)
    if first is not None:
        ids[:, 0] = first
    keep = padding_mask(torch.tensor(lengths), seq)
    return ids.masked_fill(~(keep.flip(-1) if left else keep), pad_id)


def _forward_cases(gen: torch.Generator) -> list[Case]:
    small = {"d_model": 16, "num_heads": 2, "d_ff": 32}
    mean = _model(gen, num_layers=2, **small)
    cls = _model(gen, pooling="cls", norm_first=False, **small)
    dropped = _model(gen, train=True, dropout=0.3, **small)
    other_pad = _model(gen, pad_id=1, **small)
    return [
        Case((mean, _ids(gen, [7, 4, 2], 7)), label="mean pooling, 3 reviews, seq=7"),
        Case((mean, _ids(gen, [3, 6], 6)), label="mean pooling, 2 reviews, seq=6"),
        Case((cls, _ids(gen, [5, 5, 3, 1], 5, first=2)), label='pooling="cls", 4 reviews'),
        Case((dropped, _ids(gen, [6, 3], 6)), label="training mode, dropout=0.3"),
        Case(
            (other_pad, _ids(gen, [5, 2, 4], 5, pad_id=1, left=True)),
            label="pad_id=1, padding on the left",
        ),
    ]


# Values first; then the dtype and the gradients, since fine-tuning trains the encoder
# through the learner's pooling (model.pool).
_POOL = with_gradient_check(
    function_exercise(
        "6.1",
        classifier.masked_mean_pool,
        _pool_cases,
        names=("pooled",),
        mistakes=POOL_MISTAKES,
        success="each review's mean over its real tokens, whatever the padding holds.",
    ),
    _pool_gradient_case,
    {0: "hidden"},
    hint=POOL_GRADIENT_HINT,
    label="test case: gradients, lengths [4, 2, 5], seq=5",
    values="pooled values",
    advice="compute the mean with ordinary tensor operations, so autograd can follow it",
    check_output=_pool_dtype,
)


EXERCISES = (
    _POOL,
    function_exercise(
        "6.2",
        classifier.classifier_forward,
        _forward_cases,
        names=("logits",),
        mistakes=FORWARD_MISTAKES,
        inspect_call=_called_the_model,
        success="positions on the sequence axis, padding masked, mean and [CLS] pooling.",
    ),
)
