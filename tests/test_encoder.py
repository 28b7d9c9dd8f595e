"""The encoder block (lesson 04): LayerNorm and blocks equal to PyTorch's, and the checkers."""

from __future__ import annotations

import contextlib
import io
import itertools

import pytest
import torch
from torch import nn

from course_utils import encoder as encoder_module
from course_utils.attention import (
    MultiHeadAttention,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)
from course_utils.checking import CheckFailed
from course_utils.encoder import (
    DecoderBlock,
    Encoder,
    EncoderBlock,
    FeedForward,
    LayerNorm,
    layer_norm,
)
from course_utils.exercises import check

ATOL = 1e-5


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


def _randomise(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Non-default parameters everywhere (norm weights and biases included)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
            if parameter.dim() == 1 and parameter.numel() > 0:
                parameter.add_(1.0)
    return module


@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_layer_norm_equals_torch(generator, eps):
    x = torch.randn(3, 5, 16, generator=generator) * 3 + 2
    torch_norm = _randomise(nn.LayerNorm(16, eps=eps), generator)
    ours = LayerNorm(16, eps=eps)
    ours.load_state_dict(torch_norm.state_dict())
    torch.testing.assert_close(ours(x), torch_norm(x), atol=ATOL, rtol=0)
    torch.testing.assert_close(
        layer_norm(x, torch_norm.weight, torch_norm.bias, eps), torch_norm(x), atol=ATOL, rtol=0
    )


def test_layer_norm_normalises_each_token_on_its_own(generator):
    x = torch.randn(2, 4, 32, generator=generator) * 5 + 3
    out = layer_norm(x, torch.ones(32), torch.zeros(32), eps=0.0)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 4), atol=1e-4, rtol=0)
    # Changing one token leaves every other token's output unchanged.
    changed = x.clone()
    changed[1, 2] += 10
    out_changed = layer_norm(changed, torch.ones(32), torch.zeros(32))
    keep = torch.ones(2, 4, dtype=torch.bool)
    keep[1, 2] = False
    torch.testing.assert_close(
        out_changed[keep], layer_norm(x, torch.ones(32), torch.zeros(32))[keep]
    )


def _torch_layer(norm_first, activation, generator, dropout=0.1):
    with torch.random.fork_rng(devices=[]):
        layer = nn.TransformerEncoderLayer(
            16,
            4,
            40,
            dropout=dropout,
            activation=activation,
            batch_first=True,
            norm_first=norm_first,
        )
    return _randomise(layer, generator).eval()


@pytest.mark.parametrize(
    ("norm_first", "activation"), list(itertools.product([False, True], ["relu", "gelu"]))
)
def test_encoder_block_equals_torch(generator, norm_first, activation):
    layer = _torch_layer(norm_first, activation, generator)
    block = EncoderBlock.from_torch(layer).eval()
    assert block.norm_first is norm_first
    x = torch.randn(3, 6, 16, generator=generator)
    torch.testing.assert_close(block(x), layer(x), atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("norm_first", "activation"), list(itertools.product([False, True], ["relu", "gelu"]))
)
def test_encoder_block_equals_torch_with_padding_mask(generator, norm_first, activation):
    layer = _torch_layer(norm_first, activation, generator)
    block = EncoderBlock.from_torch(layer).eval()
    x = torch.randn(3, 6, 16, generator=generator)
    keep = padding_mask(torch.tensor([6, 4, 2]), 6)  # True = real token
    src_key_padding_mask = ~keep  # PyTorch: True = padding
    ours = block(x, mask=keep[:, None, None, :])
    theirs = layer(x, src_key_padding_mask=src_key_padding_mask)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    with torch.no_grad():  # PyTorch's inference fast path: real tokens must still agree
        fast = layer(x, src_key_padding_mask=src_key_padding_mask)
    torch.testing.assert_close(ours[keep], fast[keep], atol=ATOL, rtol=0)


def test_encoder_block_dropout_only_in_training(generator):
    block = EncoderBlock(16, 4, 32, dropout=0.5)
    x = torch.randn(2, 5, 16, generator=generator)
    block.eval()
    torch.testing.assert_close(block(x), block(x))
    block.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        assert not torch.allclose(block(x), block.eval()(x))


def test_from_torch_rejects_seq_first_and_other_activations():
    with pytest.raises(ValueError, match="batch_first"):
        EncoderBlock.from_torch(nn.TransformerEncoderLayer(8, 2, 16))
    with pytest.raises(ValueError, match="ReLU"):
        EncoderBlock.from_torch(
            nn.TransformerEncoderLayer(8, 2, 16, activation=nn.SiLU(), batch_first=True)
        )
    with pytest.raises(TypeError):
        EncoderBlock.from_torch(nn.Linear(8, 8))


def test_feed_forward_acts_on_each_token_alone(generator):
    ff = FeedForward(8, 32, activation="gelu")
    x = torch.randn(2, 5, 8, generator=generator)
    torch.testing.assert_close(ff(x)[1, 3], ff(x[1, 3][None, None])[0, 0])
    with pytest.raises(ValueError, match="activation"):
        FeedForward(8, 32, activation="tanh")


def test_encoder_stack_runs_its_blocks_in_order(generator):
    encoder = Encoder(3, 16, 4, 32, norm_first=True).eval()
    x = torch.randn(2, 5, 16, generator=generator)
    expected = x
    for block in encoder.layers:
        expected = block(expected)
    torch.testing.assert_close(encoder(x), encoder.final_norm(expected))
    assert isinstance(encoder.final_norm, LayerNorm)
    assert isinstance(Encoder(2, 16, 4, 32).final_norm, nn.Identity)
    with pytest.raises(ValueError):
        Encoder(0, 16, 4, 32)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_equals_torch(generator, norm_first):
    with torch.random.fork_rng(devices=[]):
        layer = nn.TransformerDecoderLayer(16, 4, 32, batch_first=True, norm_first=norm_first)
    layer = _randomise(layer, generator).eval()
    block = DecoderBlock.from_torch(layer).eval()
    target = torch.randn(2, 5, 16, generator=generator)
    memory = torch.randn(2, 7, 16, generator=generator)
    keep = padding_mask(torch.tensor([7, 3]), 7)
    theirs = layer(
        target,
        memory,
        tgt_mask=nn.Transformer.generate_square_subsequent_mask(5),
        memory_key_padding_mask=~keep,
    )
    ours = block(target, memory, memory_mask=keep[:, None, None, :])
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_decoder_block_never_looks_ahead(generator):
    block = DecoderBlock(16, 4, 32).eval()
    target = torch.randn(1, 6, 16, generator=generator)
    memory = torch.randn(1, 4, 16, generator=generator)
    changed = target.clone()
    changed[0, 4:] = 0.0  # change the future of position 3
    torch.testing.assert_close(block(target, memory)[0, :4], block(changed, memory)[0, :4])


# A catalogue of what learners write for 4.1-4.3, written independently of the checker's own
# mistake models: every wrong one must be rejected, at least 80% with a sentence naming the
# mistake (the expected words below), and every valid one accepted.

F = nn.functional


def _ln(body):
    """A layer_norm(x, weight, bias, eps) written as one expression over x, w, b, eps."""

    def layer_norm_variant(x, weight, bias, eps=1e-5):
        return body(x, weight, bias, eps)

    return layer_norm_variant


def _mean(x, dim=-1):
    return x.mean(dim=dim, keepdim=True)


def _centre_in_place(x, w, b, eps):
    x -= _mean(x)
    return x / torch.sqrt(_mean(x**2) + eps) * w + b


LAYER_NORM_WRONG = {
    "unbiased": _ln(
        lambda x, w, b, e: (x - _mean(x)) / torch.sqrt(x.var(-1, keepdim=True) + e) * w + b
    ),
    "dividing by d_model - 1": _ln(
        lambda x, w, b, e: (
            (x - _mean(x))
            / torch.sqrt(((x - _mean(x)) ** 2).sum(-1, keepdim=True) / (x.shape[-1] - 1) + e)
            * w
            + b
        )
    ),
    "outside": _ln(
        lambda x, w, b, e: (x - _mean(x)) / (x.std(-1, unbiased=False, keepdim=True) + e) * w + b
    ),
    "eps out": _ln(
        lambda x, w, b, e: (
            (x - _mean(x)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True)) * w + b
        )
    ),
    "ignores its eps": _ln(lambda x, w, b, e: F.layer_norm(x, x.shape[-1:], w, b)),
    "sequence axis": _ln(
        lambda x, w, b, e: (
            (x - _mean(x, -2)) / torch.sqrt(x.var(-2, unbiased=False, keepdim=True) + e) * w + b
        )
    ),
    "batch axis": _ln(
        lambda x, w, b, e: (
            (x - _mean(x, 0)) / torch.sqrt(x.var(0, unbiased=False, keepdim=True) + e) * w + b
        )
    ),
    "per sentence": _ln(lambda x, w, b, e: F.layer_norm(x, x.shape[-2:], None, None, e) * w + b),
    "scale and shift": _ln(lambda x, w, b, e: F.layer_norm(x, x.shape[-1:], eps=e)),
    "swapped": _ln(lambda x, w, b, e: F.layer_norm(x, x.shape[-1:], eps=e) * b + w),
    "before multiplying": _ln(lambda x, w, b, e: (F.layer_norm(x, x.shape[-1:], eps=e) + b) * w),
    "subtracting the mean": _ln(
        lambda x, w, b, e: x / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + e) * w + b
    ),
    "standard deviation": _ln(
        lambda x, w, b, e: (x - _mean(x)) / (x.var(-1, unbiased=False, keepdim=True) + e) * w + b
    ),
    "in place": _ln(_centre_in_place),
    "": _ln(lambda x, w, b, e: torch.tanh(F.layer_norm(x, x.shape[-1:], w, b, e))),
}

LAYER_NORM_VALID = [
    _ln(
        lambda x, w, b, e: (
            (x - _mean(x)) * torch.rsqrt(x.var(-1, unbiased=False, keepdim=True) + e) * w + b
        )
    ),
    _ln(lambda x, w, b, e: F.layer_norm(x, x.shape[-1:], w, b, e)),
    _ln(
        lambda x, w, b, e: torch.addcmul(
            b, (x - _mean(x)) / torch.sqrt(_mean((x - _mean(x)) ** 2) + e), w
        )
    ),
    _ln(
        lambda x, w, b, e: (
            w
            * (x - x.sum(-1, keepdim=True) / x.shape[-1])
            / (_mean((x - _mean(x)) ** 2) + e).sqrt()
            + b
        )
    ),
]


class _FF(nn.Module):
    """A learner-style FeedForward; each catalogue entry overrides one piece."""

    rate = None  # a hard-coded dropout rate, when set

    def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout if self.rate is None else self.rate)
        self.kind = activation

    def act(self, h):
        return F.gelu(h) if self.kind == "gelu" else F.relu(h)

    def forward(self, x):
        return self.linear2(self.dropout(self.act(self.linear1(x))))


def _ff(name, **methods):
    return type("FeedForward", (_FF,), {"__qualname__": name, **methods})


def _renamed_init(self, d_model, d_ff, dropout=0.0, activation="relu"):
    nn.Module.__init__(self)
    self.fc1, self.fc2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
    self.dropout, self.kind = nn.Dropout(dropout), activation


def _init_with_drop(self, d_model, d_ff, dropout=0.0, activation="relu"):
    nn.Module.__init__(self)
    self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
    self.drop, self.kind = nn.Dropout(dropout), activation


FEED_FORWARD_WRONG = {
    "collapse": _ff("none", act=lambda self, h: h),
    "after linear2": _ff(
        "both",
        forward=lambda self, x: self.act(self.linear2(self.dropout(self.act(self.linear1(x))))),
    ),
    "still uses ReLU": _ff("relu", act=lambda self, h: F.relu(h)),
    "tanh": _ff(
        "tanh",
        act=lambda self, h: F.gelu(h, approximate="tanh") if self.kind == "gelu" else F.relu(h),
    ),
    "never drops": _ff(
        "no dropout", forward=lambda self, x: self.linear2(self.act(self.linear1(x)))
    ),
    "dropped the output": _ff(
        "out", forward=lambda self, x: self.dropout(self.linear2(self.act(self.linear1(x))))
    ),
    "dropped the input": _ff(
        "in", forward=lambda self, x: self.linear2(self.act(self.linear1(self.dropout(x))))
    ),
    "p=0.1": _ff("fixed rate", rate=0.1),
    "evaluation mode": _ff(
        "always drops",
        forward=lambda self, x: self.linear2(
            F.dropout(self.act(self.linear1(x)), 0.3, training=True)
        ),
    ),
    "every call": _ff(
        "functional dropout",
        forward=lambda self, x: self.linear2(
            F.dropout(self.act(self.linear1(x)), 0.3, self.training)
        ),
    ),
    "residual belongs to the block": _ff(
        "residual", forward=lambda self, x: x + _FF.forward(self, x)
    ),
    "has no linear1": _ff(
        "renamed",
        __init__=_renamed_init,
        forward=lambda self, x: self.fc2(self.dropout(self.act(self.fc1(x)))),
    ),
    "": _ff("sigmoid", act=lambda self, h: torch.sigmoid(h)),
    "in place": _ff("input changed", forward=lambda self, x: _FF.forward(self, x.relu_())),
}

FEED_FORWARD_VALID = [
    _ff("functional activation"),
    _ff(
        "dropout named drop",
        __init__=_init_with_drop,
        forward=lambda self, x: self.linear2(self.drop(self.act(self.linear1(x)))),
    ),
    encoder_module.FeedForward,
    _ff("torch.relu", act=lambda self, h: F.gelu(h) if self.kind == "gelu" else torch.relu(h)),
    _ff("clamp", act=lambda self, h: F.gelu(h) if self.kind == "gelu" else h.clamp(min=0)),
]


class _AttentionKeepsAllWeights(MultiHeadAttention):
    """A learner's attention that builds self.dropout but never applies it."""

    def forward(self, query, key=None, value=None, mask=None):
        key = query if key is None else key
        value = key if value is None else value
        q, k, v = (
            split_heads(proj(t), self.num_heads)
            for proj, t in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))
        )
        heads, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.out_proj(merge_heads(heads)), weights


def _block_variant(name, forward=None, **init_changes):
    """A learner-style EncoderBlock built from the course's parts, with one change."""

    class Block(nn.Module):
        def __init__(
            self,
            d_model,
            num_heads,
            d_ff,
            dropout=0.0,
            activation="relu",
            norm_first=False,
            eps=1e-5,
        ):
            super().__init__()
            self.norm_first = norm_first
            attention_dropout = init_changes.get("attention_dropout", dropout)
            self.self_attn = MultiHeadAttention(d_model, num_heads, attention_dropout)
            if init_changes.get("attention_class"):  # an attention that never drops weights
                self.self_attn = _AttentionKeepsAllWeights(d_model, num_heads, dropout)
            self.feed_forward = FeedForward(d_model, d_ff, dropout, activation)
            norm_eps = init_changes.get("eps", eps)
            self.norm1, self.norm2 = LayerNorm(d_model, norm_eps), LayerNorm(d_model, norm_eps)
            rate = init_changes.get("rate", dropout)
            self.dropout1, self.dropout2 = nn.Dropout(rate), nn.Dropout(rate)

        def attend(self, h, mask):
            return self.self_attn(h, mask=mask)[0]

        def forward(self, x, mask=None):
            return (forward or _right_forward)(self, x, mask)

    Block.__qualname__ = Block.__name__ = "EncoderBlock"
    Block.label = name
    return Block


def _right_forward(self, x, mask):
    if self.norm_first:
        x = x + self.dropout1(self.attend(self.norm1(x), mask))
        return x + self.dropout2(self.feed_forward(self.norm2(x)))
    x = self.norm1(x + self.dropout1(self.attend(x, mask)))
    return self.norm2(x + self.dropout2(self.feed_forward(x)))


def _post_only(self, x, mask):
    x = self.norm1(x + self.dropout1(self.attend(x, mask)))
    return self.norm2(x + self.dropout2(self.feed_forward(x)))


def _pre_only(self, x, mask):
    x = x + self.dropout1(self.attend(self.norm1(x), mask))
    return x + self.dropout2(self.feed_forward(self.norm2(x)))


def _no_attention_residual(self, x, mask):
    if self.norm_first:
        x = self.dropout1(self.attend(self.norm1(x), mask))
        return x + self.dropout2(self.feed_forward(self.norm2(x)))
    x = self.norm1(self.dropout1(self.attend(x, mask)))
    return self.norm2(x + self.dropout2(self.feed_forward(x)))


def _no_ff_residual(self, x, mask):
    if self.norm_first:
        x = x + self.dropout1(self.attend(self.norm1(x), mask))
        return self.dropout2(self.feed_forward(self.norm2(x)))
    x = self.norm1(x + self.dropout1(self.attend(x, mask)))
    return self.norm2(self.dropout2(self.feed_forward(x)))


def _norm_then_add(self, x, mask):
    if self.norm_first:
        return _right_forward(self, x, mask)
    x = self.norm1(self.dropout1(self.attend(x, mask))) + x
    return self.norm2(self.dropout2(self.feed_forward(x))) + x


def _ff_reads_input(self, x, mask):
    if self.norm_first:
        h = x + self.dropout1(self.attend(self.norm1(x), mask))
        return h + self.dropout2(self.feed_forward(self.norm2(x)))
    h = self.norm1(x + self.dropout1(self.attend(x, mask)))
    return self.norm2(h + self.dropout2(self.feed_forward(x)))


def _residual_from_normed(self, x, mask):
    if not self.norm_first:
        return _right_forward(self, x, mask)
    h = self.norm1(x)
    x = h + self.dropout1(self.attend(h, mask))
    h = self.norm2(x)
    return h + self.dropout2(self.feed_forward(h))


def _drop_sum(self, x, mask):
    if self.norm_first:
        x = self.dropout1(x + self.attend(self.norm1(x), mask))
        return self.dropout2(x + self.feed_forward(self.norm2(x)))
    x = self.norm1(self.dropout1(x + self.attend(x, mask)))
    return self.norm2(self.dropout2(x + self.feed_forward(x)))


def _dropouts(first, second):
    """The right block, dropping the attention output with ``first``, the feed-forward's with
    ``second`` (names of dropout modules; None: not dropped)."""

    def forward(self, x, mask):
        d1, d2 = (getattr(self, name) if name else nn.Identity() for name in (first, second))
        if self.norm_first:
            x = x + d1(self.attend(self.norm1(x), mask))
            return x + d2(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + d1(self.attend(x, mask)))
        return self.norm2(x + d2(self.feed_forward(x)))

    return forward


def _with_mask(change):
    def forward(self, x, mask):
        return _right_forward(self, x, change(mask))

    return forward


def _eval_inside(self, x, mask):
    self.eval()
    return _right_forward(self, x, mask)


def _in_place_residual(self, x, mask):
    if self.norm_first:
        x += self.dropout1(self.attend(self.norm1(x), mask))
        return x + self.dropout2(self.feed_forward(self.norm2(x)))
    return _right_forward(self, x, mask)


def _one_norm(self, x, mask):
    if self.norm_first:
        x = x + self.dropout1(self.attend(self.norm1(x), mask))
        return x + self.dropout2(self.feed_forward(self.norm1(x)))
    x = self.norm1(x + self.dropout1(self.attend(x, mask)))
    return self.norm1(x + self.dropout2(self.feed_forward(x)))


BLOCK_WRONG = {
    "is always post-norm": _block_variant("post only", _post_only),
    "is always pre-norm": _block_variant("pre only", _pre_only),
    "attention sublayer has no residual": _block_variant(
        "no attention residual", _no_attention_residual
    ),
    "feed-forward sublayer has no residual": _block_variant("no ff residual", _no_ff_residual),
    "after the norm": _block_variant("norm then add", _norm_then_add),
    "original input": _block_variant("ff reads input", _ff_reads_input),
    "adds the normalised x": _block_variant("residual from normed", _residual_from_normed),
    "also drops the residual": _block_variant("dropout on the sum", _drop_sum),
    "feed-forward sublayer is never dropped": _block_variant(
        "dropout1 only", _dropouts("dropout1", None)
    ),
    "attention sublayer is never dropped": _block_variant(
        "dropout2 only", _dropouts(None, "dropout2")
    ),
    "ignores mask": _block_variant("mask ignored", _with_mask(lambda mask: None)),
    "inverted the mask": _block_variant(
        "mask inverted", _with_mask(lambda m: None if m is None else ~m)
    ),
    "ignore the eps": _block_variant("eps not passed", eps=1e-5),
    "p=0.1": _block_variant("hard-coded dropout", rate=0.1),
    "self_attn.dropout drops with p=0.0": _block_variant(
        "attention without dropout", attention_dropout=0.0
    ),
    "out of training mode": _block_variant("eval inside", _eval_inside),
    "never drops any weights": _block_variant("attention ignores dropout", attention_class=True),
    "in place": _block_variant("x += ...", _in_place_residual),
    "norm1 for both": _block_variant("one norm", _one_norm),
}


def _named_steps(self, x, mask):
    x_residual = x
    if self.norm_first:
        attended, _ = self.self_attn(self.norm1(x), self.norm1(x), self.norm1(x), mask)
        x = x_residual + self.dropout1(attended)
        return x + self.dropout2(self.feed_forward(self.norm2(x)))
    attended, _ = self.self_attn(x, mask=mask)
    x = self.norm1(x_residual + self.dropout1(attended))
    return self.norm2(x + self.dropout2(self.feed_forward(x)))


def _sublayer_helper(self, x, mask):
    def sublayer(x, norm, dropout, f):
        return x + dropout(f(norm(x))) if self.norm_first else norm(x + dropout(f(x)))

    x = sublayer(x, self.norm1, self.dropout1, lambda h: self.attend(h, mask))
    return sublayer(x, self.norm2, self.dropout2, self.feed_forward)


BLOCK_VALID = [
    _block_variant("straightforward"),
    _block_variant("one dropout for both sublayers", _dropouts("dropout1", "dropout1")),
    _block_variant("dropout1 and dropout2 swapped", _dropouts("dropout2", "dropout1")),
    _block_variant("named steps", _named_steps),
    _block_variant("one helper for both sublayers", _sublayer_helper),
    EncoderBlock,
]


def _verdict(exercise_id, submission):
    """None when the check passes; else the failure's text (CheckFailed or a learner crash)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            check(exercise_id, submission)
    except CheckFailed as failure:
        return str(failure)
    except Exception as error:  # a crash in the learner's code is a rejection too
        return f"crash: {type(error).__name__}: {error}"
    return None


@pytest.mark.parametrize(
    ("exercise_id", "wrong", "valid"),
    [
        ("4.1", LAYER_NORM_WRONG, LAYER_NORM_VALID),
        ("4.2", FEED_FORWARD_WRONG, FEED_FORWARD_VALID),
        ("4.3", BLOCK_WRONG, BLOCK_VALID),
    ],
)
def test_catalogue_of_learner_code(exercise_id, wrong, valid):
    assert len(wrong) >= 12 and len(valid) >= 4
    for submission in valid:
        assert _verdict(exercise_id, submission) is None, submission
    named, report = 0, []
    for words, submission in wrong.items():
        verdict = _verdict(exercise_id, submission)
        assert verdict is not None, f"{exercise_id}: wrong code accepted ({words or submission})"
        if words and words in verdict:
            named += 1
        else:
            report.append(f"{words!r}: {verdict}")
    assert named / len(wrong) >= 0.8, "\n".join(report)


def test_block_checker_leaves_the_global_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check("4.3", BLOCK_VALID[1])
    check("4.2", FeedForward)
    torch.testing.assert_close(torch.rand(3), expected)


def test_a_block_from_injected_parts_equals_the_default_one(generator):
    def my_layer_norm(x, weight, bias, eps=1e-5):
        return F.layer_norm(x, x.shape[-1:], weight, bias, eps)

    default = _randomise(EncoderBlock(16, 4, 32, norm_first=True), generator).eval()
    injected = EncoderBlock(16, 4, 32, norm_first=True, layer_norm=my_layer_norm).eval()
    injected.load_state_dict(default.state_dict())
    x = torch.randn(2, 5, 16, generator=generator)
    torch.testing.assert_close(injected(x), default(x))
    assert injected.norm1.function is my_layer_norm


def test_encoder_stacks_any_block_factory():
    stack = Encoder(3, 16, 4, 32, norm_first=True, block_factory=BLOCK_VALID[0])
    assert all(type(layer).__name__ == "EncoderBlock" for layer in stack.layers)
    assert isinstance(stack.final_norm, LayerNorm)
    assert stack(torch.randn(2, 3, 16)).shape == (2, 3, 16)


def test_seeded_masks_follow_the_call_order_not_the_names():
    from course_utils.checkers.modules import seed_dropouts

    class Twice(nn.Module):
        def __init__(self, names):
            super().__init__()
            self.names = names
            for name in set(names):
                setattr(self, name, nn.Dropout(0.5))

        def forward(self, x):
            return [getattr(self, name)(x) for name in self.names]

    x = torch.ones(4, 6)
    one = seed_dropouts(Twice(["a", "b"]), by_order=True).train()
    other = seed_dropouts(Twice(["drop", "drop"]), by_order=True).train()
    first, second = one(x)
    assert not torch.equal(first, second)  # two calls, two masks
    for ours, theirs in zip(one(x), other(x), strict=True):  # the count restarts per call
        torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(one(x)[0], first)


@pytest.mark.parametrize("norm_first", [False, True])
def test_dropout_strikes_where_pytorch_strikes(generator, norm_first):
    """In training mode, with the same seeded masks, the block equals PyTorch's layer.

    PyTorch drops attention weights inside a functional call, which cannot be seeded, so
    attention dropout is 0 here; the three dropout modules are seeded pairwise.
    """
    from course_utils.checkers.modules import SeededDropout

    layer = _torch_layer(norm_first, "relu", generator, dropout=0.3)
    layer.self_attn.dropout = 0.0
    block = EncoderBlock.from_torch(layer)
    block.self_attn.dropout.p = 0.0
    pairs = {"dropout": "feed_forward.dropout", "dropout1": "dropout1", "dropout2": "dropout2"}
    for seed, (theirs, ours) in enumerate(pairs.items()):
        setattr(layer, theirs, SeededDropout(0.3, seed))
        owner, _, name = ours.rpartition(".")
        setattr(block.get_submodule(owner), name, SeededDropout(0.3, seed))
    layer.train(), block.train()
    x = torch.randn(2, 5, 16, generator=generator)
    torch.testing.assert_close(block(x), layer(x), atol=ATOL, rtol=0)
    assert not torch.allclose(block(x), block.eval()(x))  # dropout did strike
