"""A transformer that classifies reviews (lesson 06), built only from the course's own parts.

token ids ─► embedding × √d_model ─► + sinusoidal positions ─► encoder blocks (padding
masked) ─► pooling (masked mean, or the [CLS] token) ─► linear head ─► one logit per class

Padding is recognised from the token ids (``pad_id``), so a review's logits do not depend
on how much padding its batch needed. The number of classes, the vocabulary size and the
longest sequence come from the data and the tokenizer (see :func:`build_classifier`), never
from the shape of a batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from course_utils.encoder import Encoder, EncoderBlock
from course_utils.positional import add_positional_encoding, sinusoidal_positional_encoding

__all__ = [
    "POOLINGS",
    "BrokenPart",
    "PositionalTable",
    "TransformerClassifier",
    "build_classifier",
    "classifier_forward",
    "count_parameters",
    "guarded_loss",
    "learner_parts",
    "masked_mean_pool",
    "part_failure",
    "set_attention_dropout",
    "token_vectors",
]

POOLINGS = ("mean", "cls")


def masked_mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average each sequence's vectors over its real tokens only.

    ``hidden`` is ``(batch, seq, d_model)``; ``mask`` is a bool ``(batch, seq)``, True at real
    tokens (the course's polarity). Returns ``(batch, d_model)``. A sequence without any real
    token averages nothing and gets zeros.
    """
    if hidden.dim() != 3 or mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"hidden must be (batch, seq, d_model) and mask (batch, seq); got "
            f"{tuple(hidden.shape)} and {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = real token); got {mask.dtype}")
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1): 1 at real tokens
    total = (hidden * weights).sum(dim=1)  # (batch, d_model): padding contributes nothing
    count = weights.sum(dim=1).clamp(min=1.0)  # (batch, 1): how many real tokens
    return total / count


class TransformerClassifier(nn.Module):
    """Embedding, positions, an :class:`~course_utils.encoder.Encoder`, pooling and a head.

    ``forward(input_ids)`` maps ``(batch, seq)`` token ids to ``(batch, num_classes)`` logits;
    ids equal to ``pad_id`` are padding. ``pooling`` is ``"mean"`` (masked mean over the real
    tokens) or ``"cls"`` (the vector of the first token, which must then be ``[CLS]``).

    The parts default to the course's reference; :func:`build_classifier` with
    ``parts="yours"`` passes the learner's instead (see :func:`learner_parts`):
    ``block_factory`` builds each encoder block as ``block_factory(d_model, num_heads, d_ff,
    dropout=..., norm_first=...)``, ``positional_table`` is the ``(max_len, d_model)`` table,
    ``add_positions(x, table)`` adds it along the sequence axis and ``pool(hidden, mask)`` is
    the masked mean pooling. ``attention_dropout``, when given, replaces ``dropout`` for the
    attention weights only (see :func:`set_attention_dropout`).
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        max_len: int,
        *,
        d_model: int = 64,
        num_heads: int = 4,
        d_ff: int = 256,
        num_layers: int = 1,
        dropout: float = 0.1,
        attention_dropout: float | None = None,
        pooling: str = "mean",
        pad_id: int = 0,
        norm_first: bool = True,
        block_factory: Callable[..., nn.Module] = EncoderBlock,
        positional_table: torch.Tensor | None = None,
        add_positions: Callable[
            [torch.Tensor, torch.Tensor], torch.Tensor
        ] = add_positional_encoding,
        pool: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = masked_mean_pool,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if not 0 <= pad_id < vocab_size:
            raise ValueError(
                f"pad_id={pad_id} is not a token id of a {vocab_size}-token vocabulary"
            )
        self.d_model, self.pooling, self.pad_id = d_model, pooling, pad_id
        self.num_classes, self.max_len = num_classes, max_len
        self.pool = pool
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        # Entries of size 1/√d_model, so that after the × √d_model of the forward pass a
        # token vector has entries of size 1, like the positional encoding added to it.
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()
        if positional_table is None:
            positional_table = sinusoidal_positional_encoding(max_len, d_model)
        self.positional = PositionalTable(positional_table, add_positions)
        self.dropout = nn.Dropout(dropout)
        self.encoder = Encoder(
            num_layers,
            d_model,
            num_heads,
            d_ff,
            block_factory=block_factory,
            dropout=dropout,
            norm_first=norm_first,
        )
        if attention_dropout is not None:
            set_attention_dropout(self.encoder, attention_dropout)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)`` for a batch of token ids ``(batch, seq)``."""
        return classifier_forward(self, input_ids)


class PositionalTable(nn.Module):
    """Adds a fixed ``(max_len, d_model)`` table to ``(batch, seq, d_model)`` inputs.

    ``add(x, table)`` does the adding (row ``t`` to ``x[:, t]``); nothing is learned.
    """

    table: torch.Tensor  # a buffer, registered in __init__

    def __init__(
        self,
        table: torch.Tensor,
        add: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = add_positional_encoding,
    ):
        super().__init__()
        if table.dim() != 2:
            raise ValueError(f"table must be (max_len, d_model); got shape {tuple(table.shape)}")
        # A buffer follows the module to the GPU, but is neither trained nor saved.
        self.register_buffer("table", table.detach().clone().float(), persistent=False)
        self.add = add

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` plus the encoding of each position."""
        return self.add(x, self.table)


def token_vectors(
    model: TransformerClassifier, input_ids: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """The encoder's output ``(batch, seq, d_model)``: steps 1 and 2 of :func:`classifier_forward`.

    ``keep`` is bool ``(batch, seq)``, True at real tokens. Pretraining
    (:mod:`course_utils.classifier_pretraining`) uses these vectors without the head.
    """
    x = model.embedding(input_ids) * math.sqrt(model.d_model)  # (batch, seq, d_model)
    x = model.dropout(model.positional(x))
    return model.encoder(x, mask=keep[:, None, None, :])  # mask (batch, 1, 1, seq)


def classifier_forward(model: TransformerClassifier, input_ids: torch.Tensor) -> torch.Tensor:
    """The forward pass of :class:`TransformerClassifier`, written out (exercise 6.2)."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, seq); got shape {tuple(input_ids.shape)}")
    keep = input_ids != model.pad_id  # (batch, seq): True at real tokens
    # 1. Token vectors, scaled up by √d_model, plus the position of each token (axis 1).
    # 2. The encoder; no real token may attend to padding. One mask row serves every query.
    x = token_vectors(model, input_ids, keep)  # (batch, seq, d_model)
    # 3. One vector per review, then one score per class.
    pool = getattr(model, "pool", masked_mean_pool)
    pooled = x[:, 0] if model.pooling == "cls" else pool(x, keep)  # (batch, d_model)
    return model.head(model.dropout(pooled))  # (batch, num_classes)


def learner_parts(max_len: int, d_model: int) -> dict[str, Any]:
    """The learner's recorded parts as :class:`TransformerClassifier` arguments.

    Each part is the learner's where its check passed and the reference otherwise (see
    :mod:`course_utils.parts`): the encoder block (4.3, or the reference block around the
    learner's attention, layer norm and feed-forward), the positional table (5.1) and its
    addition (5.2), and the pooling (6.1).
    """
    from course_utils import parts

    return {
        "block_factory": parts.encoder_block,
        "positional_table": parts.positional_encoding(max_len, d_model),
        "add_positions": parts.get("add_positional_encoding").impl,
        "pool": parts.pooling(),
    }


def set_attention_dropout(encoder: nn.Module, p: float) -> None:
    """Set the rate of every dropout inside each block's ``self_attn`` to ``p``.

    The blocks take one ``dropout`` for everything; this overrides the rate at which the
    attention weights are dropped (whoever wrote the attention), leaving the residual and
    feed-forward dropout alone.
    """
    if not 0 <= p < 1:
        raise ValueError(f"attention_dropout must lie in [0, 1); got {p}")
    for block in getattr(encoder, "layers", []):
        attention = getattr(block, "self_attn", None)
        if attention is None:
            raise ValueError(
                f"{type(block).__name__} has no self_attn, so its attention dropout cannot be "
                "set: name the block's attention self_attn, as in lesson 04"
            )
        for module in attention.modules():
            if isinstance(module, nn.Dropout):
                module.p = p


def build_classifier(
    vocab_size: int,
    labels: Sequence[int],
    max_len: int,
    *,
    parts: Literal["reference", "yours"] = "reference",
    **sizes: Any,
) -> TransformerClassifier:
    """A :class:`TransformerClassifier` sized from the data: one output per class in ``labels``.

    ``labels`` are the training labels (0 to num_classes - 1); ``vocab_size`` comes from the
    tokenizer and ``max_len`` is the length reviews are truncated to. ``parts="yours"``
    builds it from the learner's recorded parts (:func:`learner_parts`), ``"reference"``
    from the course's. Other keyword arguments (``d_model``, ``num_layers``, ...) go to
    the model.
    """
    labels = [int(label) for label in labels]
    if not labels or min(labels) < 0:
        raise ValueError("labels must be a non-empty sequence of class numbers 0, 1, 2, ...")
    if parts not in ("reference", "yours"):
        raise ValueError(f"parts must be 'reference' or 'yours'; got {parts!r}")
    if parts == "yours":
        sizes = {**learner_parts(max_len, sizes.get("d_model", 64)), **sizes}
    return TransformerClassifier(vocab_size, max(labels) + 1, max_len, **sizes)


class BrokenPart(RuntimeError):
    """Training failed inside (or because of) one of the learner's parts; the message names it."""


def _yours(name: str) -> bool:
    from course_utils import parts

    return parts.get(name).origin == "yours"


def _first_nonfinite_part(model: TransformerClassifier, ids: torch.Tensor) -> str | None:
    """Run ``model`` on ``ids`` and name the learner's part whose output first is not finite."""
    from course_utils.attention import MultiHeadAttention

    suspects: dict[nn.Module, str] = {model.positional: "add_positional_encoding"}
    for block in getattr(model.encoder, "layers", []):
        attention = getattr(block, "self_attn", None)
        if attention is not None:
            reference = type(attention) is MultiHeadAttention
            suspects[attention] = "attention" if reference else "multi_head_attention"
        for name in ("norm1", "norm2"):
            if hasattr(block, name):
                suspects[getattr(block, name)] = "layer_norm"
        if hasattr(block, "feed_forward"):
            suspects[block.feed_forward] = "feed_forward"
        suspects[block] = "encoder_block"
    found: list[str] = []

    def hook(module, inputs, output):
        first = output[0] if isinstance(output, tuple) else output
        if not found and isinstance(first, torch.Tensor) and not torch.isfinite(first).all():
            found.append(suspects[module])

    handles = [module.register_forward_hook(hook) for module in suspects]
    try:
        with torch.no_grad():
            logits = model(ids)
    finally:
        for handle in handles:
            handle.remove()
    if not torch.isfinite(model.positional.table).all():
        found.insert(0, "positional_encoding")
    if not found and not torch.isfinite(logits).all():
        found.append("pooling")
    mine = [name for name in found if _yours(name)]
    return mine[0] if mine else None


def part_failure(
    model: TransformerClassifier, ids: torch.Tensor, error: BaseException | None = None
) -> BrokenPart | None:
    """A :class:`BrokenPart` naming the learner's part behind a failed step, or None.

    With ``error``, the part whose code raised it; without, the part whose output first
    stopped being finite on ``ids`` (the loss was NaN). None when no part of the learner's
    is to blame. The part is marked broken, so the next model built uses the reference.
    """
    from course_utils import parts

    name = parts.culprit(error) if error is not None else _first_nonfinite_part(model, ids)
    if name is None:
        return None
    why = error if error is not None else "the loss became NaN or infinite"
    return BrokenPart(
        parts.broken(name, why).replace("run this cell again", "build the model again")
    )


def guarded_loss(
    model: TransformerClassifier, ids: torch.Tensor, compute: Callable[[], torch.Tensor], hint: str
) -> torch.Tensor:
    """``compute()`` the loss of a batch; if it fails, name the learner's part to blame.

    An error inside a learner's part, or a loss that is not finite because of one, raises
    :class:`BrokenPart` (see :func:`part_failure`). A non-finite loss with no part to blame
    raises ``FloatingPointError`` followed by ``hint`` (what to try instead).
    """
    try:
        loss = compute()
    except Exception as error:  # a learner's part may fail only on real batches
        failure = part_failure(model, ids, error)
        if failure is None:
            raise
        raise failure from error
    if not torch.isfinite(loss):
        raise part_failure(model, ids) or FloatingPointError(
            f"the loss became {loss.item()}; {hint}"
        )
    return loss


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
