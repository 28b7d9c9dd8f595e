"""Reference encoder block (lesson 04): LayerNorm, the feed-forward sublayer, residuals.

Built only from the course's own pieces (:class:`~course_utils.attention.MultiHeadAttention`,
:class:`LayerNorm`, :class:`FeedForward`), with PyTorch's parameter names, so
:meth:`EncoderBlock.from_torch` can copy an ``nn.TransformerEncoderLayer`` and compute the
same function.

Masks follow the course convention: bool, **True = may attend**. PyTorch's
``src_key_padding_mask`` means the opposite (True = padding, blocked), so::

    keep = padding_mask(lengths, seq)                    # (batch, seq), True at real tokens
    block(x, mask=keep[:, None, None, :])                # the course
    layer(x, src_key_padding_mask=~keep)                 # PyTorch: invert it
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from course_utils.attention import ModuleT, MultiHeadAttention, causal_mask, load_from_torch

__all__ = [
    "DecoderBlock",
    "Encoder",
    "EncoderBlock",
    "FeedForward",
    "LayerNorm",
    "layer_norm",
    "load_encoder_layer",
    "residual",
    "torch_block_settings",
]

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def layer_norm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """Normalise each token's features to mean 0 and variance 1, then scale and shift.

    Statistics run over the last (feature) axis only, one mean and one variance per token;
    the variance is the biased one (divide by d_model) and ``eps`` sits inside the square
    root, exactly as in ``nn.LayerNorm``. ``weight`` and ``bias`` have shape ``(d_model,)``.
    """
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    variance = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1)
    return (x - mean) / torch.sqrt(variance + eps) * weight + bias


class LayerNorm(nn.Module):
    """:func:`layer_norm` with a learned ``weight`` and ``bias``, like ``nn.LayerNorm``.

    ``function`` is the normalising function, ``layer_norm`` by default;
    :mod:`course_utils.parts` passes the learner's own (exercise 4.1).
    """

    def __init__(
        self,
        d_model: int,
        eps: float = 1e-5,
        *,
        function: Callable[..., torch.Tensor] | None = None,
    ):
        super().__init__()
        self.eps = eps
        self.function = function or layer_norm
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the last axis of ``x``."""
        return self.function(x, self.weight, self.bias, self.eps)


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name]()


class FeedForward(nn.Module):
    """The position-wise feed-forward sublayer: ``linear2(dropout(activation(linear1(x))))``.

    The same two linear maps are applied to every token on its own: ``(batch, seq, d_model)``
    in, the same shape out, through a hidden width ``d_ff`` (usually 4 × d_model).
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.activation = _activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Transform each token's features independently."""
        hidden = self.dropout(self.activation(self.linear1(x)))  # (batch, seq, d_ff)
        return self.linear2(hidden)  # (batch, seq, d_model)


def residual(
    x: torch.Tensor,
    sublayer: Callable[[torch.Tensor], torch.Tensor],
    norm: nn.Module,
    dropout: nn.Module,
    norm_first: bool,
) -> torch.Tensor:
    """One sublayer with its residual connection, the same for every encoder and decoder block.

    Post-norm (the original paper): ``norm(x + dropout(sublayer(x)))``. Pre-norm:
    ``x + dropout(sublayer(norm(x)))``. Dropout hits the sublayer's output before the
    residual is added, so the residual path itself is never dropped.
    """
    if norm_first:
        return x + dropout(sublayer(norm(x)))
    return norm(x + dropout(sublayer(x)))


class EncoderBlock(nn.Module):
    """One transformer encoder block: self-attention and feed-forward, each with a residual.

    ``forward(x, mask=None)`` maps ``(batch, seq, d_model)`` to the same shape; ``mask`` is
    bool, True = may attend, broadcastable to ``(batch, num_heads, seq, seq)`` (for padding:
    ``padding_mask(lengths, seq)[:, None, None, :]``). ``norm_first=False`` is the original
    post-norm block, ``True`` the pre-norm one most modern models use. Parameters carry the
    names of ``nn.TransformerEncoderLayer``'s where the layouts agree.

    ``attention`` (a class called as ``attention(d_model, num_heads, dropout=...)``),
    ``feed_forward`` (called as ``feed_forward(d_model, d_ff, dropout=..., activation=...)``)
    and ``layer_norm`` (a function ``layer_norm(x, weight, bias, eps)``) choose the parts the
    block is built from; :mod:`course_utils.parts` passes the learner's own. ``layer_norm_eps``
    is PyTorch's name for ``eps``.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str = "relu",
        norm_first: bool = False,
        eps: float = 1e-5,
        *,
        layer_norm_eps: float | None = None,
        attention: Callable[..., nn.Module] = MultiHeadAttention,
        feed_forward: Callable[..., nn.Module] = FeedForward,
        layer_norm: Callable[..., torch.Tensor] | None = None,
    ):
        super().__init__()
        eps = eps if layer_norm_eps is None else layer_norm_eps
        self.norm_first = norm_first
        self.self_attn = attention(d_model, num_heads, dropout=dropout)
        self.feed_forward = feed_forward(d_model, d_ff, dropout=dropout, activation=activation)
        self.norm1 = LayerNorm(d_model, eps, function=layer_norm)
        self.norm2 = LayerNorm(d_model, eps, function=layer_norm)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention, then feed-forward, each inside :func:`residual`."""
        x = residual(
            x,
            lambda h: self.self_attn(h, mask=mask)[0],
            self.norm1,
            self.dropout1,
            self.norm_first,
        )
        return residual(x, self.feed_forward, self.norm2, self.dropout2, self.norm_first)

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> EncoderBlock:
        """A block computing the same function as a batch-first ``nn.TransformerEncoderLayer``."""
        return load_encoder_layer(cls(**torch_block_settings(layer)), layer)


def torch_block_settings(layer: nn.Module) -> dict:
    """The constructor arguments of the course's block that match a PyTorch encoder layer.

    ``d_model``, ``num_heads``, ``d_ff``, ``dropout``, ``activation``, ``norm_first`` and
    ``eps``: build any block with the course's signature (the learner's too) from them.
    """
    if not isinstance(layer, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        raise TypeError(f"expected a PyTorch transformer layer, got {type(layer).__name__}")
    if not layer.self_attn.batch_first:
        raise ValueError("the layer must be batch_first=True, as every tensor in the course")
    return {
        "d_model": layer.self_attn.embed_dim,
        "num_heads": layer.self_attn.num_heads,
        "d_ff": layer.linear1.out_features,
        "dropout": layer.dropout.p,
        "activation": _torch_activation_name(layer),
        "norm_first": layer.norm_first,
        "eps": layer.norm1.eps,
    }


def load_encoder_layer(block: ModuleT, layer: nn.TransformerEncoderLayer) -> ModuleT:
    """Copy a PyTorch encoder layer's weights into ``block`` (the course's layout); return it.

    ``block`` needs ``self_attn`` (with ``q_proj`` ... ``out_proj``), ``feed_forward``
    (``linear1``, ``linear2``), ``norm1`` and ``norm2``; the learner's ``EncoderBlock`` has
    them. Values are copied, never shared.
    """
    if not isinstance(layer, nn.TransformerEncoderLayer):
        raise TypeError(f"expected nn.TransformerEncoderLayer, got {type(layer).__name__}")
    load_from_torch(block.get_submodule("self_attn"), layer.self_attn)
    _copy_linear_and_norms(block, layer, ("linear1", "linear2"), ("norm1", "norm2"))
    return block.to(layer.linear1.weight.device)


def _torch_activation_name(layer: nn.Module) -> str:
    # PyTorch stores the activation as a function (F.relu, F.gelu) or as a module.
    activation = layer.activation
    if activation is nn.functional.relu or isinstance(activation, nn.ReLU):
        return "relu"
    if activation is nn.functional.gelu or (
        isinstance(activation, nn.GELU) and activation.approximate == "none"
    ):
        return "gelu"
    raise ValueError(f"only ReLU and exact GELU layers can be copied; got {activation!r}")


def _copy_linear_and_norms(
    block: nn.Module, layer: nn.Module, linears: Iterable[str], norms: Iterable[str]
) -> None:
    with torch.no_grad():
        for name in linears:
            target = getattr(block.feed_forward, name)
            target.weight.copy_(getattr(layer, name).weight)
            target.bias.copy_(getattr(layer, name).bias)
        for name in norms:
            getattr(block, name).weight.copy_(getattr(layer, name).weight)
            getattr(block, name).bias.copy_(getattr(layer, name).bias)


class Encoder(nn.Module):
    """A stack of ``num_layers`` blocks (plus a final norm when pre-norm).

    Pre-norm blocks leave their output un-normalised, so a pre-norm stack ends with one
    more LayerNorm; a post-norm stack already ends in one. ``block_factory`` builds each
    block from ``(d_model, num_heads, d_ff, **block_kwargs)``: :class:`EncoderBlock` by
    default, or e.g. :func:`course_utils.parts.encoder_block` for the learner's.
    """

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        d_ff: int,
        *,
        block_factory: Callable[..., nn.Module] = EncoderBlock,
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        self.layers = nn.ModuleList(
            block_factory(d_model, num_heads, d_ff, **block_kwargs) for _ in range(num_layers)
        )
        norm_first = block_kwargs.get("norm_first", False)
        eps = block_kwargs.get("eps", block_kwargs.get("layer_norm_eps", 1e-5))
        self.final_norm = LayerNorm(d_model, eps) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Run every block in turn, each with the same mask."""
        for layer in self.layers:
            x = layer(x, mask)
        return self.final_norm(x)


class DecoderBlock(nn.Module):
    """A decoder block: causal self-attention, cross-attention to the encoder, feed-forward.

    ``forward(x, memory, memory_mask=None)``: ``x`` is ``(batch, seq, d_model)``, the target
    so far; ``memory`` is the encoder's output ``(batch, seq_k, d_model)``. Self-attention is
    always causal (position i sees 0..i); ``memory_mask`` (True = may attend, e.g.
    ``padding_mask(lengths, seq_k)[:, None, None, :]``) hides the source's padding.
    Copies a batch-first ``nn.TransformerDecoderLayer`` with :meth:`from_torch`.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str = "relu",
        norm_first: bool = False,
        eps: float = 1e-5,
    ):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = LayerNorm(d_model, eps)
        self.norm2 = LayerNorm(d_model, eps)
        self.norm3 = LayerNorm(d_model, eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Run the three sublayers, each with its residual."""
        causal = causal_mask(x.size(1), device=x.device)  # (seq, seq)
        x = residual(
            x,
            lambda h: self.self_attn(h, mask=causal)[0],
            self.norm1,
            self.dropout1,
            self.norm_first,
        )
        x = residual(
            x,
            lambda h: self.cross_attn(h, memory, mask=memory_mask)[0],
            self.norm2,
            self.dropout2,
            self.norm_first,
        )
        return residual(x, self.feed_forward, self.norm3, self.dropout3, self.norm_first)

    @classmethod
    def from_torch(cls, layer: nn.TransformerDecoderLayer) -> DecoderBlock:
        """A block computing the same function as a batch-first ``nn.TransformerDecoderLayer``."""
        if not isinstance(layer, nn.TransformerDecoderLayer):
            raise TypeError(f"expected nn.TransformerDecoderLayer, got {type(layer).__name__}")
        block = cls(**torch_block_settings(layer))
        load_from_torch(block.self_attn, layer.self_attn)
        load_from_torch(block.cross_attn, layer.multihead_attn)
        _copy_linear_and_norms(block, layer, ("linear1", "linear2"), ("norm1", "norm2", "norm3"))
        return block.to(layer.linear1.weight.device)
