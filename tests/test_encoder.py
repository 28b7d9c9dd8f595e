"""The encoder block (lesson 04): LayerNorm and blocks equal to PyTorch's, and the checkers."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from course_utils.attention import padding_mask
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


# The checkers accept other correct ways of writing the same thing.


def _layer_norm_with_rsqrt(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    variance = x.var(-1, keepdim=True, unbiased=False)
    return (x - mean) * torch.rsqrt(variance + eps) * weight + bias


def _layer_norm_with_torch(x, weight, bias, eps=1e-5):
    return nn.functional.layer_norm(x, x.shape[-1:], weight, bias, eps)


class FunctionalFeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.act = nn.functional.gelu if activation == "gelu" else nn.functional.relu

    def forward(self, x):
        return self.linear2(self.act(self.linear1(x)))


def _block_with_named_steps(block, x, mask=None):
    if block.norm_first:
        h = block.norm1(x)
        attended, _ = block.self_attn(h, h, h, mask)
        x = x + block.dropout1(attended)
        return x + block.dropout2(block.feed_forward(block.norm2(x)))
    x_residual = x
    attended, _ = block.self_attn(x, mask=mask)
    x = block.norm1(x_residual + block.dropout1(attended))
    return block.norm2(x + block.dropout2(block.feed_forward(x)))


def test_checkers_accept_other_correct_code(capsys):
    check("4.1", _layer_norm_with_rsqrt)
    check("4.1", _layer_norm_with_torch)
    check("4.2", FunctionalFeedForward)
    check("4.3", _block_with_named_steps)
    assert capsys.readouterr().out.count("✓") == 4


def test_block_checker_leaves_the_global_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check("4.3", _block_with_named_steps)
    check("4.2", FeedForward)
    torch.testing.assert_close(torch.rand(3), expected)
