"""Checkers for lesson 04: LayerNorm (4.1), the feed-forward sublayer (4.2), the block (4.3).

4.2 and 4.3 are classes the learner writes, checked by
:func:`~course_utils.checkers.modules.module_exercise` in evaluation mode and in training
mode, where the learner's dropouts and the reference's drop the same entries.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from course_utils import attention, encoder
from course_utils.checkers.modules import ModuleCase, module_exercise
from course_utils.checking import Case, flawed_mistake, function_exercise

__all__ = ["EXERCISES"]


# 4.1 layer_norm -----------------------------------------------------------------------------


def _flawed_layer_norm(
    x,
    weight,
    bias,
    eps=1e-5,
    *,
    dim=-1,
    unbiased=False,
    eps_at="inside",
    affine="scale then shift",
    centre=True,
    root=True,
):
    mean = x.mean(dim=dim, keepdim=True)
    variance = x.var(dim=dim, keepdim=True, unbiased=unbiased)
    centred = x - mean if centre else x
    spread = {
        "inside": variance + eps,
        "outside": variance,
        "none": variance,
        "default": variance + 1e-5,
    }[eps_at]
    spread = torch.sqrt(spread) if root else spread
    normalised = centred / (spread + eps if eps_at == "outside" else spread)
    if affine == "none":
        return normalised
    if affine == "swapped":
        return normalised * bias + weight
    if affine == "shift then scale":
        return (normalised + bias) * weight
    return normalised * weight + bias


_norm_mistake = functools.partial(flawed_mistake, flawed=_flawed_layer_norm)

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
        eps_at="outside",
    ),
    _norm_mistake(
        "no eps",
        "you left eps out: torch.sqrt(variance + eps) keeps a token whose features are all "
        "(nearly) equal from being divided by (nearly) zero.",
        eps_at="none",
    ),
    _norm_mistake(
        "eps argument ignored",
        "your layer_norm ignores its eps argument (it always uses 1e-5); use the eps it is "
        "given: torch.sqrt(variance + eps).",
        eps_at="default",
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
        "over the whole sentence",
        "you computed one mean and variance per sentence (over seq and features together); "
        "LayerNorm uses one per token, over its features only: dim=-1.",
        dim=(-2, -1),
    ),
    _norm_mistake(
        "no weight and bias",
        "you normalised but forgot the learned scale and shift: multiply by weight, then add bias.",
        affine="none",
    ),
    _norm_mistake(
        "weight and bias swapped",
        "you swapped weight and bias: weight scales (multiply), bias shifts (add): "
        "normalised * weight + bias.",
        affine="swapped",
    ),
    _norm_mistake(
        "shift before scale",
        "you added bias before multiplying by weight; scale first, then shift: "
        "normalised * weight + bias.",
        affine="shift then scale",
    ),
    _norm_mistake(
        "mean not subtracted",
        "you divided by the standard deviation without subtracting the mean first: "
        "(x - mean) / torch.sqrt(variance + eps).",
        centre=False,
    ),
    _norm_mistake(
        "divided by the variance",
        "you divided by the variance; divide by the standard deviation, its square root: "
        "torch.sqrt(variance + eps).",
        root=False,
    ),
)


def _layer_norm_cases(gen: torch.Generator) -> list[Case]:
    randn = functools.partial(torch.randn, generator=gen)
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
        Case((randn(6, 12) * 3, 1 + 0.3 * randn(12), 0.3 * randn(12)), label="x (6, 12), 2-D"),
    ]


# 4.2 FeedForward ------------------------------------------------------------------------------


class _FlawedFeedForward(encoder.FeedForward):
    """A feed-forward sublayer with one classic mistake switched on by a class attribute."""

    activations, relu_always, tanh_gelu, dropout_at = "hidden", False, False, "hidden"
    residual = False

    def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
        super().__init__(d_model, d_ff, dropout, activation)
        if activation == "relu" or self.relu_always:
            self.activation = nn.ReLU()
        else:
            self.activation = nn.GELU(approximate="tanh" if self.tanh_gelu else "none")

    def forward(self, x):
        hidden = self.linear1(self.dropout(x) if self.dropout_at == "input" else x)
        if self.activations != "none":
            hidden = self.activation(hidden)
        if self.dropout_at == "hidden":
            hidden = self.dropout(hidden)
        out = self.linear2(hidden)
        if self.activations == "both":
            out = self.activation(out)
        out = self.dropout(out) if self.dropout_at == "output" else out
        return x + out if self.residual else out


_ff_mistake = functools.partial(flawed_mistake, flawed=_FlawedFeedForward)


FEED_FORWARD_MISTAKES = (
    _ff_mistake(
        "no activation",
        "without an activation between linear1 and linear2 the two maps collapse into one "
        "linear map: apply self.activation to linear1's output.",
        activations="none",
    ),
    _ff_mistake(
        "activation after linear2 too",
        "you also applied the activation after linear2; the sublayer's output must be free "
        "to take any value, so the activation goes only between the two linear maps.",
        activations="both",
    ),
    _ff_mistake(
        "activation argument ignored",
        'with activation="gelu" your module still uses ReLU: choose nn.GELU() when the '
        "argument asks for it.",
        relu_always=True,
    ),
    _ff_mistake(
        "tanh GELU",
        'you used the tanh approximation of GELU; activation="gelu" means the exact one, '
        'nn.GELU() (approximate="none"), as in PyTorch\'s encoder layer.',
        tanh_gelu=True,
    ),
    _ff_mistake(
        "no dropout",
        "in training mode your feed-forward never drops anything: apply self.dropout to "
        "the hidden activations, between the activation and linear2.",
        dropout_at="none",
    ),
    _ff_mistake(
        "dropout on the output",
        "you dropped the output of linear2; in this sublayer dropout goes on the hidden "
        "activations, between the activation and linear2 (the block drops the output).",
        dropout_at="output",
    ),
    _ff_mistake(
        "dropout on the input",
        "you dropped the input of linear1; in this sublayer dropout goes on the hidden "
        "activations, between the activation and linear2.",
        dropout_at="input",
    ),
    _ff_mistake(
        "residual inside the feed-forward",
        "your feed-forward adds its input back (x + ...); the residual belongs to the block "
        "(exercise 4.3): the sublayer returns linear2(...) alone.",
        residual=True,
    ),
)


def _feed_forward_cases(gen: torch.Generator) -> list[ModuleCase]:
    randn = functools.partial(torch.randn, generator=gen)

    def case(x, label, train=False, **settings):
        return ModuleCase((), (x,), label=label, init_kwargs=settings, train=train)

    return [
        case(randn(2, 5, 12), "d_model=12, d_ff=24", d_model=12, d_ff=24),
        case(
            randn(3, 4, 16),
            'd_model=16, d_ff=48, activation="gelu"',
            d_model=16,
            d_ff=48,
            activation="gelu",
        ),
        case(
            randn(2, 6, 8),
            "training mode, dropout=0.3",
            train=True,
            d_model=8,
            d_ff=20,
            dropout=0.3,
        ),
    ]


class _StubFeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
        super().__init__()
        raise NotImplementedError("Exercise not done yet: replace this line with your code.")


class _CrashFeedForward(encoder.FeedForward):
    def forward(self, x):
        return self.linear2(x)  # a typical slip: linear2 expects d_ff features, not d_model


# 4.3 EncoderBlock -----------------------------------------------------------------------------


class _UndroppedAttention(attention.MultiHeadAttention):
    """Multi-head attention that builds its dropout but never applies it."""

    def forward(self, query, key=None, value=None, mask=None):
        key = query if key is None else key
        value = key if value is None else value
        q, k, v = (
            attention.split_heads(proj(t), self.num_heads)
            for proj, t in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))
        )
        heads, weights = self.attention(q, k, v, mask)
        return self.out_proj(attention.merge_heads(heads)), weights


class _FlawedEncoderBlock(encoder.EncoderBlock):
    """An encoder block with one classic mistake switched on by a class attribute."""

    skip: tuple = ()
    after_norm = ff_reads_input = residual_from_normed = False
    use_mask, invert_mask, fixed_eps, one_norm = True, False, False, False
    attention_dropout = True
    dropouts = ("dropout1", "dropout2")
    dropout_at = "sublayer"
    norm_style = "as asked"  # or "always post", "always pre"

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, activation="relu", **kwargs):
        if self.fixed_eps:
            kwargs["eps"] = 1e-5
        super().__init__(d_model, num_heads, d_ff, dropout, activation, **kwargs)
        if not self.attention_dropout:
            self.self_attn = _UndroppedAttention(d_model, num_heads, dropout)

    def _step(self, x, norm, drop, sublayer, name, source):
        drop = drop if f"dropout{1 if name == 'attention' else 2}" in self.dropouts else None
        drop_out = drop if drop is not None and self.dropout_at == "sublayer" else nn.Identity()
        drop_sum = drop if drop is not None and self.dropout_at == "sum" else nn.Identity()
        drop_in = drop if drop is not None and self.dropout_at == "input" else nn.Identity()
        pre = {"as asked": self.norm_first, "always post": False, "always pre": True}
        if pre[self.norm_style]:
            h = norm(source)
            base = h if self.residual_from_normed else x
            out = drop_out(sublayer(drop_in(h)))
            return out if name in self.skip else drop_sum(base + out)
        out = drop_out(sublayer(drop_in(source)))
        if self.after_norm:
            return norm(out) + x
        return norm(out) if name in self.skip else norm(drop_sum(x + out))

    def forward(self, x, mask=None):
        if mask is not None and self.invert_mask:
            mask = ~mask
        given = mask if self.use_mask else None
        block_input = x
        x = self._step(
            x, self.norm1, self.dropout1, lambda h: self.self_attn(h, mask=given)[0], "attention", x
        )
        source = block_input if self.ff_reads_input else x
        norm2 = self.norm1 if self.one_norm else self.norm2
        return self._step(x, norm2, self.dropout2, self.feed_forward, "feed-forward", source)


_block_mistake = functools.partial(flawed_mistake, flawed=_FlawedEncoderBlock)


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
        "norm_first ignored",
        "your block is always post-norm: with norm_first=True normalise first, "
        "x = x + dropout1(attention(norm1(x))), and the same for the feed-forward.",
        norm_style="always post",
    ),
    _block_mistake(
        "norm_first=False ignored",
        "your block is always pre-norm: with norm_first=False (the original block) the norm "
        "comes after the residual sum, x = norm1(x + dropout1(attention(x))).",
        norm_style="always pre",
    ),
    _block_mistake(
        "mask ignored",
        "your block ignores mask: pass it to self.self_attn(..., mask=mask) so padding "
        "gets no attention.",
        use_mask=False,
    ),
    _block_mistake(
        "mask inverted",
        "you inverted the mask: in this course True means may attend, so pass mask to "
        "self.self_attn as it is (only PyTorch's own layers want ~mask).",
        invert_mask=True,
    ),
    _block_mistake(
        "eps not passed on",
        "your layer norms ignore the eps argument (they use 1e-5): build them with "
        "LayerNorm(d_model, eps).",
        fixed_eps=True,
    ),
    _block_mistake(
        "one norm for both sublayers",
        "you used norm1 for both sublayers; the feed-forward sublayer has its own norm2 "
        "(with its own weight and bias).",
        one_norm=True,
    ),
    _block_mistake(
        "no dropout",
        "in training mode your block skips dropout: apply self.dropout1 to the attention "
        "output and self.dropout2 to the feed-forward output.",
        dropouts=(),
    ),
    _block_mistake(
        "no dropout1",
        "in training mode your attention sublayer is never dropped: apply self.dropout1 to "
        "the attention output before adding the residual.",
        dropouts=("dropout2",),
    ),
    _block_mistake(
        "no dropout2",
        "in training mode your feed-forward sublayer is never dropped: apply self.dropout2 "
        "to the feed-forward output before adding the residual.",
        dropouts=("dropout1",),
    ),
    _block_mistake(
        "attention weights never dropped",
        "in training mode your attention never drops any weights: your MultiHeadAttention "
        "(lesson 03) needs self.dropout = nn.Dropout(dropout), applied as "
        "self.dropout(weights) @ v.",
        attention_dropout=False,
    ),
    _block_mistake(
        "dropout after the residual sum",
        "you applied dropout to the sum x + sublayer(...), which also drops the residual "
        "path; drop only the sublayer's output, then add the residual.",
        dropout_at="sum",
    ),
    _block_mistake(
        "dropout on the sublayer's input",
        "you dropped the sublayer's input; dropout goes on the sublayer's output, just "
        "before the residual is added: x + dropout1(attention(...)).",
        dropout_at="input",
    ),
)

BLOCK_LAYOUT = (
    "build self_attn = MultiHeadAttention(d_model, num_heads, dropout), feed_forward = "
    "FeedForward(d_model, d_ff, dropout, activation), norm1 and norm2 = LayerNorm(d_model, "
    "eps), dropout1 and dropout2 = nn.Dropout(dropout)."
)


def _block_cases(gen: torch.Generator) -> list[ModuleCase]:
    randn = functools.partial(torch.randn, generator=gen)

    def case(settings, x, mask, label, train=False):
        kwargs = {} if mask is None else {"mask": mask}
        return ModuleCase((), (x,), kwargs, label, init_kwargs=settings, train=train)

    def settings(d_model, num_heads, d_ff, **more):
        return {"d_model": d_model, "num_heads": num_heads, "d_ff": d_ff, **more}

    # Right and left padding, so that neither [:n] slicing nor a fixed side passes.
    padding = attention.padding_mask(torch.tensor([4, 2, 3]), 4)[:, None, None, :]
    left = torch.tensor([[False, True, True, True, True], [False, False, False, True, True]])
    causal = attention.causal_mask(6)
    return [
        case(settings(16, 4, 32), randn(2, 5, 16), None, "post-norm, no mask"),
        case(settings(16, 4, 32), randn(3, 4, 16), padding, "post-norm, padding mask"),
        case(
            settings(16, 2, 48, activation="gelu", norm_first=True),
            randn(3, 4, 16),
            padding,
            "pre-norm, GELU, padding mask",
        ),
        case(
            settings(24, 8, 40, norm_first=True),
            randn(2, 5, 24),
            left[:, None, None, :],
            "pre-norm, 8 heads of 3, left padding",
        ),
        case(
            settings(12, 3, 20, eps=0.1),
            randn(2, 6, 12) * 0.3,
            causal,
            "post-norm, eps=0.1, causal mask",
        ),
        case(
            settings(12, 3, 20, eps=0.1, norm_first=True),
            randn(1, 6, 12) * 0.3,
            None,
            "pre-norm, eps=0.1, batch 1",
        ),
        case(
            settings(16, 4, 32, dropout=0.3),
            randn(2, 6, 16),
            None,
            "post-norm in training mode, dropout=0.3",
            train=True,
        ),
        case(
            settings(16, 2, 24, dropout=0.2, norm_first=True),
            randn(3, 4, 16),
            padding,
            "pre-norm in training mode, dropout=0.2, padding mask",
            train=True,
        ),
    ]


class _StubBlock(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, activation="relu", **kwargs):
        super().__init__()
        raise NotImplementedError("Exercise not done yet: replace this line with your code.")


class _CrashBlock(encoder.EncoderBlock):
    def forward(self, x, mask=None):
        return self.feed_forward(self.self_attn(x, mask=mask))  # forgot [0]: a tuple


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
        layout="build linear1 = nn.Linear(d_model, d_ff), linear2 = nn.Linear(d_ff, d_model) "
        "and dropout = nn.Dropout(dropout).",
        mistakes=FEED_FORWARD_MISTAKES,
        stub=_StubFeedForward,
        crash=_CrashFeedForward,
        success="the same two linear maps on every token, ReLU and GELU, dropout in place.",
    ),
    module_exercise(
        "4.3",
        encoder.EncoderBlock,
        _block_cases,
        layout=BLOCK_LAYOUT,
        mistakes=BLOCK_MISTAKES,
        stub=_StubBlock,
        crash=_CrashBlock,
        success="post-norm and pre-norm, masks, eps, several head sizes, dropout in training.",
    ),
)
