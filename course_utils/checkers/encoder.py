"""Checkers for lesson 04: LayerNorm, the feed-forward sublayer, the encoder block's forward."""

from __future__ import annotations

import torch
from torch import nn

from course_utils import attention, encoder
from course_utils.checkers.modules import (
    ModuleCase,
    build_quietly,
    module_exercise,
    randomise_parameters,
)
from course_utils.checking import Case, Mistake, function_exercise

__all__ = ["EXERCISES"]


def _flawed_layer_norm(
    x, weight, bias, eps=1e-5, *, dim=-1, unbiased=False, eps_inside=True, affine=True
):
    mean = x.mean(dim=dim, keepdim=True)
    variance = x.var(dim=dim, keepdim=True, unbiased=unbiased)
    if eps_inside:
        normalised = (x - mean) / torch.sqrt(variance + eps)
    else:
        normalised = (x - mean) / (torch.sqrt(variance) + eps)
    return normalised * weight + bias if affine else normalised


def _norm_mistake(name, hint, **flaw):
    def submission(x, weight, bias, eps=1e-5):
        return _flawed_layer_norm(x, weight, bias, eps, **flaw)

    submission.__name__ = name
    return Mistake(name, hint, submission)


LAYER_NORM_MISTAKES = (
    _norm_mistake(
        "unbiased variance",
        "you used the unbiased variance (dividing by d_model - 1); LayerNorm divides by "
        "d_model: use x.var(dim=-1, unbiased=False, keepdim=True).",
        unbiased=True,
    ),
    _norm_mistake(
        "eps outside the square root",
        "your eps sits outside the square root; add it to the variance first: "
        "(x - mean) / torch.sqrt(variance + eps).",
        eps_inside=False,
    ),
    _norm_mistake(
        "over the sequence axis",
        "you normalised over the sequence axis (dim=-2); LayerNorm normalises each token "
        "over its own features, dim=-1.",
        dim=-2,
    ),
    _norm_mistake(
        "over the batch axis",
        "you normalised over the batch axis (dim=0), which mixes different sentences; "
        "LayerNorm normalises each token over its own features, dim=-1.",
        dim=0,
    ),
    _norm_mistake(
        "no weight and bias",
        "you normalised but forgot the learned scale and shift: multiply by weight, then add bias.",
        affine=False,
    ),
)


def _layer_norm_cases(gen: torch.Generator) -> list[Case]:
    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    return [
        Case(
            (randn(3, 5, 16) * 2 + 1, 1 + 0.3 * randn(16), 0.3 * randn(16)),
            label="x (3, 5, 16)",
        ),
        Case(
            (randn(2, 7, 10) * 1e-3 + 1e-3 * randn(2, 7, 1), 1 + 0.3 * randn(10), 0.3 * randn(10)),
            label="tokens whose features vary by only ~0.001, where eps matters",
        ),
        Case(
            (randn(4, 3, 8), 1 + 0.3 * randn(8), 0.3 * randn(8)),
            {"eps": 0.1},
            label="x (4, 3, 8), eps=0.1",
        ),
    ]


class _FlawedFeedForward(nn.Module):
    """A feed-forward sublayer with one classic mistake switched on by a class attribute."""

    activations, relu_always, tanh_gelu = "hidden", False, False

    def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        if activation == "relu" or self.relu_always:
            self.activation = nn.ReLU()
        else:
            self.activation = nn.GELU(approximate="tanh" if self.tanh_gelu else "none")

    def forward(self, x):
        hidden = self.linear1(x)
        if self.activations != "none":
            hidden = self.activation(hidden)
        out = self.linear2(self.dropout(hidden))
        return self.activation(out) if self.activations == "both" else out


def _flawed_ff(name, **flaw):
    return type("FeedForward", (_FlawedFeedForward,), {"__qualname__": name, **flaw})


FEED_FORWARD_MISTAKES = (
    Mistake(
        "no activation",
        "without an activation between linear1 and linear2 the two maps collapse into one "
        "linear map: apply self.activation to linear1's output.",
        _flawed_ff("no activation", activations="none"),
    ),
    Mistake(
        "activation after linear2 too",
        "you also applied the activation after linear2; the sublayer's output must be free "
        "to take any value, so the activation goes only between the two linear maps.",
        _flawed_ff("activation after linear2 too", activations="both"),
    ),
    Mistake(
        "activation argument ignored",
        'with activation="gelu" your module still uses ReLU: choose nn.GELU() when the '
        "argument asks for it.",
        _flawed_ff("activation argument ignored", relu_always=True),
    ),
    Mistake(
        "tanh GELU",
        'you used the tanh approximation of GELU; activation="gelu" means the exact one, '
        'nn.GELU() (approximate="none"), as in PyTorch\'s encoder layer.',
        _flawed_ff("tanh GELU", tanh_gelu=True),
    ),
)


def _feed_forward_cases(gen: torch.Generator) -> list[ModuleCase]:
    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    return [
        ModuleCase((12, 24), (randn(2, 5, 12),), label="d_model=12, d_ff=24, ReLU"),
        ModuleCase(
            (16, 48),
            (randn(3, 4, 16),),
            init_kwargs={"activation": "gelu"},
            label='d_model=16, d_ff=48, activation="gelu"',
        ),
    ]


class _StubFeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
        super().__init__()
        raise NotImplementedError("Exercise not done yet: replace this line with your code.")


class _CrashFeedForward(encoder.FeedForward):
    def forward(self, x):
        return self.linear2(x)  # a typical slip: linear2 expects d_ff features, not d_model


def _flawed_block(
    block,
    x,
    mask=None,
    *,
    skip=(),
    after_norm=False,
    ff_reads_input=False,
    residual_from_normed=False,
    use_mask=True,
    dropout="sublayer",
):
    """An encoder block forward with one classic mistake switched on."""

    def attention_sublayer(h):
        return block.self_attn(h, mask=mask if use_mask else None)[0]

    def step(x, norm, drop, sublayer, name, source):
        drop_out = drop if dropout == "sublayer" else nn.Identity()
        drop_sum = drop if dropout == "sum" else nn.Identity()
        if block.norm_first:
            h = norm(source)
            base = h if residual_from_normed else x
            out = drop_out(sublayer(h))
            return out if name in skip else drop_sum(base + out)
        out = drop_out(sublayer(source))
        if after_norm:
            return norm(out) + x
        return norm(out) if name in skip else norm(drop_sum(x + out))

    block_input = x
    x = step(x, block.norm1, block.dropout1, attention_sublayer, "attention", x)
    source = block_input if ff_reads_input else x
    return step(x, block.norm2, block.dropout2, block.feed_forward, "feed-forward", source)


def _block_mistake(name, hint, **flaw):
    def submission(block, x, mask=None):
        return _flawed_block(block, x, mask, **flaw)

    submission.__name__ = name
    return Mistake(name, hint, submission)


BLOCK_MISTAKES = (
    _block_mistake(
        "no attention residual",
        "the attention sublayer has no residual connection: add its input back, "
        "x + dropout1(attention), before (post-norm) or without (pre-norm) the norm.",
        skip=("attention",),
    ),
    _block_mistake(
        "no feed-forward residual",
        "the feed-forward sublayer has no residual connection: add its input back, "
        "x + dropout2(feed_forward(...)).",
        skip=("feed-forward",),
    ),
    _block_mistake(
        "residual added after the norm",
        "in the post-norm block you added the residual after the norm; the norm comes last: "
        "x = norm1(x + dropout1(attention)).",
        after_norm=True,
    ),
    _block_mistake(
        "feed-forward reads the block's input",
        "your feed-forward reads the block's original input; it must read the output of the "
        "attention sublayer (the updated x).",
        ff_reads_input=True,
    ),
    _block_mistake(
        "pre-norm residual from the normalised x",
        "in the pre-norm block your residual adds the normalised x; add the un-normalised "
        "input: x = x + dropout1(attention(norm1(x))).",
        residual_from_normed=True,
    ),
    _block_mistake(
        "mask ignored",
        "your block ignores mask: pass it to block.self_attn(..., mask=mask) so padding "
        "gets no attention.",
        use_mask=False,
    ),
    _block_mistake(
        "no dropout",
        "in training mode your block skips dropout: apply block.dropout1 to the attention "
        "output and block.dropout2 to the feed-forward output.",
        dropout="none",
    ),
    _block_mistake(
        "dropout after the residual sum",
        "you applied dropout to the sum x + sublayer(...), which also drops the residual "
        "path; drop only the sublayer's output, then add the residual.",
        dropout="sum",
    ),
)


class _SeededDropout(nn.Dropout):
    """Dropout whose mask depends only on ``seed`` and the input's shape: repeatable in checks."""

    def __init__(self, p: float, seed: int):
        super().__init__(p)
        self.seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(self.seed)) >= self.p
        return x * keep / (1 - self.p)


class _CheckedBlock(encoder.EncoderBlock):
    def __repr__(self) -> str:  # the crash note prints this, so keep it on one line
        kind = "pre-norm" if self.norm_first else "post-norm"
        return f"EncoderBlock({kind}, d_model={self.self_attn.d_model})"


def _block(gen, *args, train=False, **kwargs):
    block = randomise_parameters(build_quietly(_CheckedBlock, *args, **kwargs), gen)
    if train:
        droppers = [(n, m) for n, m in block.named_modules() if isinstance(m, nn.Dropout)]
        for seed, (name, module) in enumerate(droppers):
            parent, _, attr = name.rpartition(".")
            setattr(block.get_submodule(parent), attr, _SeededDropout(module.p, seed))
    return block.train(train)


def _block_cases(gen: torch.Generator) -> list[Case]:
    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    post = _block(gen, 16, 4, 32)
    pre = _block(gen, 16, 2, 48, activation="gelu", norm_first=True)
    padding = attention.padding_mask(torch.tensor([4, 2, 3]), 4)[:, None, None, :]
    return [
        Case((post, randn(2, 5, 16)), label="post-norm, no mask"),
        Case((post, randn(3, 4, 16)), {"mask": padding}, label="post-norm, padding mask"),
        Case((pre, randn(3, 4, 16)), {"mask": padding}, label="pre-norm, padding mask"),
        Case(
            (_block(gen, 16, 4, 32, dropout=0.3, train=True), randn(2, 6, 16)),
            label="post-norm in training mode, dropout=0.3",
        ),
        Case(
            (_block(gen, 16, 4, 32, dropout=0.3, norm_first=True, train=True), randn(2, 6, 16)),
            label="pre-norm in training mode, dropout=0.3",
        ),
    ]


EXERCISES = (
    function_exercise(
        "4.1",
        encoder.layer_norm,
        _layer_norm_cases,
        names=("normalised",),
        mistakes=LAYER_NORM_MISTAKES,
        success="matches nn.LayerNorm, tiny variances and a large eps included.",
    ),
    module_exercise(
        "4.2",
        encoder.FeedForward,
        _feed_forward_cases,
        names=("output",),
        layout="build linear1 = nn.Linear(d_model, d_ff) and linear2 = nn.Linear(d_ff, d_model).",
        mistakes=FEED_FORWARD_MISTAKES,
        stub=_StubFeedForward,
        crash=_CrashFeedForward,
        success="the same two linear maps on every token, ReLU and GELU.",
    ),
    function_exercise(
        "4.3",
        encoder.encoder_block_forward,
        _block_cases,
        names=("output",),
        mistakes=BLOCK_MISTAKES,
        success="post-norm and pre-norm, with masks and with dropout in training mode.",
    ),
)
