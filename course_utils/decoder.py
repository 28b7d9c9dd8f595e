"""A decoder-only language model from the course's blocks, and how it writes (lesson 08).

The model is lesson 04's encoder block run with a causal mask (position t attends to
positions 0..t only), between a token embedding with lesson 05's positional table and a
linear head over the vocabulary. It is trained on the Brown corpus to predict the next
word. Generation draws one token at a time; :meth:`DecoderLM.step` does it with a cache of
keys and values, so each new token costs one position's work instead of the whole prefix.

The references of exercises 8.1 to 8.3 are :func:`next_token_loss`,
:func:`sample_next_token` and :func:`attend_with_cache`. Training, the vocabulary and the
unigram baseline are in :mod:`course_utils.decoder_training`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.attention import causal_mask, merge_heads, split_heads

__all__ = [
    "DecoderLM",
    "attend_with_cache",
    "decoder_parts",
    "generate",
    "next_token_loss",
    "sample_next_token",
    "time_per_token",
]

KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # one (keys, values) pair per block


class _CachedAttention(Protocol):
    """The projections :meth:`DecoderLM.step` reads from a block's attention."""

    q_proj: nn.Module
    k_proj: nn.Module
    v_proj: nn.Module
    out_proj: nn.Module


class _CachedBlock(Protocol):
    """The sublayers :meth:`DecoderLM.step` reads from a block (the course's names)."""

    norm1: nn.Module
    norm2: nn.Module
    feed_forward: nn.Module
    self_attn: _CachedAttention


def next_token_loss(logits: torch.Tensor, token_ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean cross-entropy of predicting token t + 1 from position t (exercise 8.1).

    ``logits`` ``(batch, seq, vocab_size)`` is the model's output for ``token_ids``
    ``(batch, seq)``. Position t's logits are scored against token t + 1, so the last
    position has no target; targets equal to ``pad_id`` are skipped, and the mean runs over
    every remaining target of the batch. Returns a 0-dim tensor.
    """
    predictions = logits[:, :-1]  # (batch, seq - 1, vocab_size): positions 0 .. seq - 2
    targets = token_ids[:, 1:]  # (batch, seq - 1): tokens 1 .. seq - 1, one step ahead
    return F.cross_entropy(
        predictions.reshape(-1, predictions.size(-1)), targets.reshape(-1), ignore_index=pad_id
    )


def sample_next_token(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Draw one token id per row of ``logits`` ``(batch, vocab_size)`` (exercise 8.2).

    The logits are divided by ``temperature`` (below 1 sharpens, above 1 flattens), all but
    the ``top_k`` largest are set to -inf (``None``: keep all), and the softmax of what is
    left is sampled with ``generator``. Returns a long tensor of shape ``(batch,)``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive (use argmax for greedy); got {temperature}")
    scaled = logits / temperature  # (batch, vocab_size)
    if top_k is not None:
        kth_largest = torch.topk(scaled, top_k, dim=-1).values[:, -1:]  # (batch, 1)
        scaled = scaled.masked_fill(scaled < kth_largest, float("-inf"))
    probabilities = torch.softmax(scaled, dim=-1)  # (batch, vocab_size), rows sum to 1
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)  # (batch,)


def attend_with_cache(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attention of one new token over the cached positions and itself (exercise 8.3).

    ``query``, ``key``, ``value``: the new token's, ``(batch, num_heads, 1, d_head)``;
    ``key_cache``, ``value_cache``: every earlier position's, ``(batch, num_heads, seq_past,
    d_head)``. Returns ``(output, key_cache, value_cache)``: output ``(batch, num_heads, 1,
    d_head)`` and the caches grown by one position. The new token is the last one, so it
    may see every key: no mask is needed, and the output equals the last row of full causal
    attention over all ``seq_past + 1`` positions.
    """
    key_cache = torch.cat([key_cache, key], dim=-2)  # (batch, num_heads, seq_past + 1, d_head)
    value_cache = torch.cat([value_cache, value], dim=-2)
    scores = query @ key_cache.transpose(-2, -1) / math.sqrt(query.size(-1))  # (..., 1, seq)
    output = torch.softmax(scores, dim=-1) @ value_cache  # (batch, num_heads, 1, d_head)
    return output, key_cache, value_cache


def decoder_parts() -> dict:
    """Where the decoder's blocks and positions come from, through :mod:`course_utils.parts`.

    Returns ``{"block": parts.encoder_block, "positions": parts.positional_encoding}``:
    your encoder block and positional table once their checks passed, each missing part
    replaced by the reference (``parts.show()`` prints which is which).
    """
    from course_utils import parts

    return {"block": parts.encoder_block, "positions": parts.positional_encoding}


class DecoderLM(nn.Module):
    """A GPT-style language model: embeddings, causally masked blocks, a linear output head.

    ``forward(token_ids)`` maps ``(batch, seq)`` ids to next-token logits ``(batch, seq,
    vocab_size)``; position t sees tokens 0..t only. The blocks are pre-norm encoder blocks
    (``parts.encoder_block``) given a causal mask; a final LayerNorm follows them.
    """

    positions: torch.Tensor  # a buffer, registered in __init__

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        num_heads: int = 4,
        num_layers: int = 2,
        d_ff: int = 512,
        max_len: int = 64,
        *,
        dropout: float = 0.0,
        pad_id: int = 0,
    ):
        super().__init__()
        if vocab_size < 2 or max_len < 1:
            raise ValueError(f"need vocab_size >= 2 and max_len >= 1; got {vocab_size}, {max_len}")
        made = decoder_parts()
        self.d_model, self.num_heads = d_model, num_heads
        self.pad_id, self.max_len = pad_id, max_len
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.embedding.weight[pad_id] = 0.0
        # Not a parameter and not saved: the table is rebuilt from (max_len, d_model).
        table = made["positions"](max_len, d_model)
        self.register_buffer("positions", torch.as_tensor(table).float(), persistent=False)
        self.blocks = nn.ModuleList(
            made["block"](
                d_model, num_heads, d_ff, dropout=dropout, activation="gelu", norm_first=True
            )
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(d_model)  # pre-norm blocks leave their output un-normalised
        # Not tied to the embedding: a tied head starts out predicting the current token
        # again (its own vector scores highest), far worse than word counts. Small weights
        # plus :meth:`start_from_unigram` make the untrained model the unigram baseline.
        self.head = nn.Linear(d_model, vocab_size)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def start_from_unigram(self, probabilities: torch.Tensor) -> None:
        """Set the head's bias to the log of each token's frequency.

        With small initial weights the model then starts out predicting the unigram
        distribution, so training spends its first steps on context, not on word counts.
        """
        if probabilities.shape != self.head.bias.shape:
            raise ValueError(
                f"need one probability per token, {tuple(self.head.bias.shape)}; "
                f"got {tuple(probabilities.shape)}"
            )
        with torch.no_grad():
            self.head.bias.copy_(probabilities.clamp(min=1e-12).log())

    def embed(self, token_ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token vectors (scaled by √d_model) plus the positional rows ``start..start+seq-1``."""
        seq = token_ids.size(1)
        if start + seq > self.max_len:
            raise ValueError(
                f"this model has {self.max_len} positions; positions up to {start + seq} were asked"
            )
        x = self.embedding(token_ids) * math.sqrt(self.d_model)  # (batch, seq, d_model)
        return x + self.positions[start : start + seq]

    def features(self, token_ids: torch.Tensor) -> torch.Tensor:
        """The final normalised vectors ``(batch, seq, d_model)``, before the head."""
        x = self.embed(token_ids)
        mask = causal_mask(token_ids.size(1), device=token_ids.device)  # (seq, seq)
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits at every position, ``(batch, seq, vocab_size)``."""
        return self.head(self.features(token_ids))

    def loss(self, token_ids: torch.Tensor) -> torch.Tensor:
        """The next-token loss of a padded batch ``(batch, seq)`` (see :func:`next_token_loss`)."""
        return next_token_loss(self(token_ids), token_ids, self.pad_id)

    def supports_cache(self) -> bool:
        """True when every block exposes the sublayers :meth:`step` needs (the course's names)."""
        needed = ("norm1", "norm2", "feed_forward", "self_attn")
        projections = ("q_proj", "k_proj", "v_proj", "out_proj")
        return all(
            all(hasattr(block, name) for name in needed)
            and all(hasattr(block.self_attn, name) for name in projections)
            for block in self.blocks
        )

    def step(
        self,
        token_ids: torch.Tensor,
        cache: KVCache | None,
        attend: Callable = attend_with_cache,
    ) -> tuple[torch.Tensor, KVCache]:
        """Feed one new token per row, ``(batch,)``, reusing the cached keys and values.

        Returns the next-token logits ``(batch, vocab_size)`` and the cache grown by one
        position. Start with ``cache=None``. Each block computes queries, keys and values for
        the new token only; ``attend`` (exercise 8.3) joins them with the cache.
        """
        if not self.supports_cache():
            raise AttributeError(
                "this model's blocks lack the sublayers a cached step reads (norm1, norm2, "
                "feed_forward, self_attn with q_proj, k_proj, v_proj, out_proj); "
                "generate(..., use_cache=False) still works"
            )
        batch, num_heads = token_ids.size(0), self.num_heads
        d_head = self.d_model // num_heads
        start = 0 if not cache else cache[0][0].size(-2)
        x = self.embed(token_ids[:, None], start)  # (batch, 1, d_model)
        new_cache = []
        for index, module in enumerate(self.blocks):
            # supports_cache() checked that these sublayers exist.
            block = cast(_CachedBlock, module)
            attn = block.self_attn
            if cache:
                past_k, past_v = cache[index]
            else:
                past_k = past_v = x.new_zeros(batch, num_heads, 0, d_head)
            pre_norm = getattr(block, "norm_first", True)
            h = block.norm1(x) if pre_norm else x
            q = split_heads(attn.q_proj(h), num_heads)  # (batch, num_heads, 1, d_head)
            k = split_heads(attn.k_proj(h), num_heads)
            v = split_heads(attn.v_proj(h), num_heads)
            heads, past_k, past_v = attend(q, k, v, past_k, past_v)
            attended = attn.out_proj(merge_heads(heads))  # (batch, 1, d_model)
            if pre_norm:
                x = x + attended
                x = x + block.feed_forward(block.norm2(x))
            else:
                x = block.norm1(x + attended)
                x = block.norm2(x + block.feed_forward(x))
            new_cache.append((past_k, past_v))
        return self.head(self.final_norm(x))[:, -1], new_cache


def _pick(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
    sampler: Callable,
) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(dim=-1)  # greedy: always the likeliest token
    return sampler(logits, temperature, top_k, generator)


@torch.no_grad()
def generate(
    model: DecoderLM,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    stop_id: int | None = None,
    banned_ids: Sequence[int] = (),
    sampler: Callable = sample_next_token,
    attend: Callable = attend_with_cache,
) -> list[int]:
    """Continue ``prompt_ids`` one token at a time; return only the new ids.

    ``temperature=0`` is greedy decoding, otherwise ``sampler`` (exercise 8.2's
    :func:`sample_next_token` by default) with ``top_k``. Stops after ``max_new_tokens``, at
    ``stop_id``, or at the model's last position. ``banned_ids`` (say, the unknown-word
    token) are never chosen. With the cache, ``attend`` (exercise 8.3) joins each new
    token's keys and values with the cached ones.
    """
    if not prompt_ids:
        raise ValueError("the prompt needs at least one token (start with the start token)")
    if len(prompt_ids) >= model.max_len:
        raise ValueError(f"the prompt has {len(prompt_ids)} tokens; the model has {model.max_len}")
    model.eval()
    device = model.embedding.weight.device
    ids = torch.tensor([list(prompt_ids)], device=device)  # (1, seq)
    use_cache = use_cache and model.supports_cache()
    cache = None
    if use_cache:
        for position in range(ids.size(1)):  # the prompt fills the cache, one token at a time
            logits, cache = model.step(ids[:, position], cache, attend)
    new_ids: list[int] = []
    while len(new_ids) < max_new_tokens and ids.size(1) < model.max_len:
        if not use_cache:
            logits = model.head(model.features(ids)[:, -1])  # the whole prefix, again
        if banned_ids:
            logits = logits.clone()
            logits[:, list(banned_ids)] = float("-inf")
        token = _pick(logits.float(), temperature, top_k, generator, sampler)  # (1,)
        new_ids.append(int(token))
        if stop_id is not None and int(token) == stop_id:
            break
        ids = torch.cat([ids, token[:, None]], dim=1)
        more = len(new_ids) < max_new_tokens and ids.size(1) < model.max_len
        if use_cache and more:  # (the last token is never fed back)
            logits, cache = model.step(token, cache, attend)
    return new_ids


@torch.no_grad()
def time_per_token(
    model: DecoderLM,
    num_tokens: int,
    *,
    use_cache: bool,
    repeats: int = 3,
    attend: Callable = attend_with_cache,
) -> list[float]:
    """Seconds spent producing each of ``num_tokens`` greedy tokens from a one-token prompt.

    Entry t is the time of the step that produces token t + 1, whose prefix is t + 1 tokens
    long: the fastest of ``repeats`` runs, since on a busy computer a step is only ever
    slowed down by other work. Without the cache each step runs the model over the whole
    prefix; with it, over the one new token, joined to the cache by ``attend``.
    """
    if num_tokens >= model.max_len:
        raise ValueError(f"num_tokens must be below the model's {model.max_len} positions")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    model.eval()
    device = model.embedding.weight.device
    fastest = [math.inf] * num_tokens
    for _ in range(repeats):
        ids = torch.zeros(1, 1, dtype=torch.long, device=device)
        cache = None
        for t in range(num_tokens):
            start = time.perf_counter()
            if use_cache:
                logits, cache = model.step(ids[:, -1], cache, attend)
            else:
                logits = model.head(model.features(ids)[:, -1])
            token = logits.argmax(dim=-1)  # (1,)
            if device.type == "cuda":
                torch.cuda.synchronize()
            fastest[t] = min(fastest[t], time.perf_counter() - start)
            ids = torch.cat([ids, token[:, None]], dim=1)
    return fastest
