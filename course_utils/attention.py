"""Reference attention: scaled dot-product attention and its masks (lesson 02), and
multi-head attention (lesson 03).

Convention used throughout the course: a boolean mask is True where a query **may
attend** to a key, exactly as in ``torch.nn.functional.scaled_dot_product_attention``
and Hugging Face. Tensors are batch-first and may carry any leading dimensions.
"""

from __future__ import annotations

import inspect
import math
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = [
    "MultiHeadAttention",
    "TensorMemory",
    "attend",
    "causal_mask",
    "load_from_torch",
    "measure_attention_cost",
    "merge_heads",
    "padding_mask",
    "scaled_dot_product_attention",
    "split_heads",
]


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attend from each query to every key; return ``(output, weights)``.

    Shapes: query ``(..., seq_q, d_k)``, key ``(..., seq_k, d_k)``, value
    ``(..., seq_k, d_v)``; ``mask`` is boolean and broadcastable to
    ``(..., seq_q, seq_k)``, True = may attend. Returns output ``(..., seq_q, d_v)``
    and weights ``(..., seq_q, seq_k)``, each row of weights summing to 1 over the keys.
    A query whose every key is masked has no defined output (its row is NaN).

    ``dropout`` (e.g. an ``nn.Dropout``), when given, drops some weights before they mix
    the values, as in training; the returned weights are the ones before dropout.
    """
    if query.size(-1) != key.size(-1):
        raise ValueError(
            "query and key must share their last dimension d_k; "
            f"got {query.size(-1)} and {key.size(-1)}"
        )
    if key.size(-2) != value.size(-2):
        raise ValueError(
            "key and value must have the same number of positions; "
            f"got {key.size(-2)} and {value.size(-2)}"
        )
    # d_k is the size the dot products sum over: the queries' (and keys') feature size,
    # not the values'. Dividing by its square root keeps the scores' variance near 1.
    d_k = query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (..., seq_q, seq_k)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = may attend); got {mask.dtype}")
        # -inf, not 0: exp(-inf) = 0, so a masked key gets exactly zero weight.
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # over the keys: each query's row sums to 1
    mixing = weights if dropout is None else dropout(weights)
    output = mixing @ value  # (..., seq_q, d_v)
    return output, weights


def causal_mask(seq: int, device: torch.device | str | None = None) -> torch.Tensor:
    """A ``(seq, seq)`` bool mask where position i may attend to positions 0..i only."""
    if seq < 1:
        raise ValueError(f"seq must be at least 1, got {seq}")
    return torch.ones(seq, seq, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, seq: int) -> torch.Tensor:
    """A ``(batch, seq)`` bool mask, True at the real tokens of each sequence.

    ``lengths`` holds each sequence's number of real tokens, shape ``(batch,)``;
    positions at and after a sequence's length are padding (False). To use it as an
    attention mask over keys, add the query axis: ``mask[:, None, :]``.
    """
    if lengths.dim() != 1:
        raise ValueError(f"lengths must have shape (batch,), got {tuple(lengths.shape)}")
    if bool((lengths > seq).any()) or bool((lengths < 0).any()):
        raise ValueError(f"every length must lie in 0..{seq}; got {lengths.tolist()}")
    positions = torch.arange(seq, device=lengths.device)  # (seq,)
    return positions[None, :] < lengths[:, None]  # (batch, seq)


class TensorMemory(TorchDispatchMode):
    """Measures the memory of the tensors PyTorch allocates while it is active.

    ``with TensorMemory() as memory: ...``, then ``memory.peak`` is the largest number of
    bytes held at once by tensors created inside the block, and ``memory.live`` those still
    held. Every operation passes through it: a result with new storage adds its bytes, and
    they are given back when the last tensor using that storage is deleted. Views and
    in-place results reuse their input's storage, so they add nothing. It counts tensors
    only, not the allocator's own overhead, on any device.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: dict[int, list[int]] = {}  # data pointer -> [bytes, tensors using it]

    def _release(self, pointer: int) -> None:
        entry = self._storages.get(pointer)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._storages[pointer]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None) -> Any:
        tensors_in = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        inputs = {t.untyped_storage().data_ptr() for t in tensors_in}
        result = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(result)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            pointer = storage.data_ptr()
            if pointer in self._storages:  # a view of a tensor created here
                self._storages[pointer][1] += 1
            elif pointer in inputs or storage.nbytes() == 0:  # a view, or in place
                continue
            else:
                self._storages[pointer] = [storage.nbytes(), 1]
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
            weakref.finalize(tensor, self._release, pointer)
        return result


def measure_attention_cost(
    seq_lengths: list[int],
    d_k: int = 64,
    *,
    batch: int = 1,
    repeats: int = 20,
    threads: int = 1,
    device: torch.device | str = "cpu",
) -> list[dict]:
    """Time one self-attention call for each length, and measure its memory.

    Returns one dict per length: ``seq``; ``seconds``, the fastest of ``repeats`` calls on a
    ``(batch, seq, d_k)`` input after one warm-up call, with ``threads`` CPU threads (on a
    CPU this is the thread's CPU time, which leaves out moments when other programs hold
    the processor; on a GPU it is wall-clock time); ``peak_megabytes``, the most memory
    its tensors held at once during one more call (measured by :class:`TensorMemory`);
    and ``megabytes``, the bytes of the ``(batch, seq, seq)`` scores and weights, computed
    from their number of elements.
    """
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    clock = time.perf_counter if on_gpu else time.thread_time
    generator = torch.Generator().manual_seed(0)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    results = []
    try:
        for seq in seq_lengths:
            x = torch.randn(batch, seq, d_k, generator=generator).to(device)
            scaled_dot_product_attention(x, x, x)  # warm-up: first calls pay one-off costs
            timings = []
            for _ in range(repeats):
                if on_gpu:
                    torch.cuda.synchronize()
                start = clock()
                _, weights = scaled_dot_product_attention(x, x, x)
                if on_gpu:
                    torch.cuda.synchronize()
                timings.append(clock() - start)
            del weights
            with TensorMemory() as memory:  # one more call, untimed: the mode slows it down
                scaled_dot_product_attention(x, x, x)
            # The scores and the weights are both (batch, seq, seq): what grows with seq².
            matrix_bytes = 2 * batch * seq * seq * x.element_size()
            results.append(
                {
                    "seq": seq,
                    "seconds": min(timings),
                    "peak_megabytes": memory.peak / 1e6,
                    "megabytes": matrix_bytes / 1e6,
                }
            )
    finally:
        torch.set_num_threads(previous_threads)
    return results


def attend(
    attention: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    dropout: Callable[[torch.Tensor], torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Call an attention function, with weight dropout even if it has no ``dropout`` argument.

    Lesson 02's exercise writes ``attention(query, key, value, mask)`` without dropout; for
    such a function the dropped weights mix the values here instead.
    """
    if dropout is None:
        return attention(query, key, value, mask)
    if "dropout" in inspect.signature(attention).parameters:
        return attention(query, key, value, mask, dropout=dropout)
    _, weights = attention(query, key, value, mask)
    return dropout(weights) @ value, weights  # (..., seq_q, d_v)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Cut ``(batch, seq, d_model)`` into heads: ``(batch, num_heads, seq, d_head)``.

    Head h gets features ``h * d_head`` to ``(h + 1) * d_head - 1`` of every token, where
    ``d_head = d_model // num_heads``.
    """
    if x.dim() != 3:
        raise ValueError(f"x must be (batch, seq, d_model); got shape {tuple(x.shape)}")
    batch, seq, d_model = x.shape
    if num_heads < 1 or d_model % num_heads != 0:
        raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
    # Reshape first, while seq is still next to batch; only then move the head axis forward.
    x = x.reshape(batch, seq, num_heads, d_model // num_heads)  # (batch, seq, num_heads, d_head)
    return x.transpose(1, 2)  # (batch, num_heads, seq, d_head)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Glue the heads back together (the inverse of :func:`split_heads`).

    ``(batch, num_heads, seq, d_head)`` to ``(batch, seq, d_model)``.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be (batch, num_heads, seq, d_head); got shape {tuple(x.shape)}")
    batch, num_heads, seq, d_head = x.shape
    # The head axis must sit next to d_head before the reshape glues them together; a reshape
    # straight from (batch, num_heads, seq, d_head) would mix tokens from different positions.
    x = x.transpose(1, 2)  # (batch, seq, num_heads, d_head)
    return x.reshape(batch, seq, num_heads * d_head)  # (batch, seq, d_model)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj``.

    ``forward(query, key=None, value=None, mask=None)`` returns ``(output, weights)``:
    output ``(batch, seq_q, d_model)`` and per-head weights ``(batch, num_heads, seq_q,
    seq_k)``. Without ``key`` and ``value`` it is self-attention (both default to the
    query; a ``value`` left out defaults to the ``key``); with another sequence as key and
    value it is cross-attention.

    ``mask`` is boolean, **True = may attend**, broadcastable to ``(batch, num_heads,
    seq_q, seq_k)``: a causal ``(seq_q, seq_k)`` mask, or a padding mask
    ``padding_mask(lengths, seq_k)[:, None, None, :]`` of shape ``(batch, 1, 1, seq_k)``.
    PyTorch's ``nn.MultiheadAttention`` uses the opposite polarity (True = blocked) for
    both ``attn_mask`` and ``key_padding_mask``: pass it ``~mask``.

    ``dropout`` (default 0) drops attention weights in training, as PyTorch's layer does.
    ``attention`` is the function every head runs, :func:`scaled_dot_product_attention` by
    default; :mod:`course_utils.parts` passes the learner's own (lesson 02) instead.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dropout: float = 0.0,
        *,
        attention: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None,
    ):
        super().__init__()
        if num_heads < 1 or d_model % num_heads != 0:
            raise ValueError(
                f"num_heads={num_heads} must divide d_model={d_model} so every head gets "
                "d_model // num_heads features"
            )
        self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.attention = attention or scaled_dot_product_attention

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from every query position to every key position, in each head at once."""
        key = query if key is None else key
        value = key if value is None else value
        for name, tensor in (("query", query), ("key", key), ("value", value)):
            if tensor.dim() != 3 or tensor.size(-1) != self.d_model:
                raise ValueError(
                    f"{name} must be (batch, seq, d_model={self.d_model}); "
                    f"got shape {tuple(tensor.shape)}"
                )
        # 1. Project, then give each head its own d_head slice of the features.
        q = split_heads(self.q_proj(query), self.num_heads)  # (batch, num_heads, seq_q, d_head)
        k = split_heads(self.k_proj(key), self.num_heads)  # (batch, num_heads, seq_k, d_head)
        v = split_heads(self.v_proj(value), self.num_heads)  # (batch, num_heads, seq_k, d_head)
        # 2. Every head attends independently: the head axis is just another batch axis here,
        #    and the scale is √d_head, the size each head's dot products sum over.
        dropout = self.dropout if self.training and self.dropout.p > 0 else None
        heads, weights = attend(self.attention, q, k, v, mask, dropout)
        # 3. Put the heads side by side again and let out_proj mix what they found.
        return self.out_proj(merge_heads(heads)), weights

    @classmethod
    def from_torch(cls, layer: nn.MultiheadAttention) -> MultiHeadAttention:
        """A copy of a PyTorch ``nn.MultiheadAttention``, its packed ``in_proj`` split in three."""
        if not isinstance(layer, nn.MultiheadAttention):
            raise TypeError(f"expected nn.MultiheadAttention, got {type(layer).__name__}")
        copy = cls(layer.embed_dim, layer.num_heads, dropout=layer.dropout)
        return load_from_torch(copy, layer).to(layer.out_proj.weight.device)


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def load_from_torch(mha: ModuleT, layer: nn.MultiheadAttention) -> ModuleT:
    """Copy ``layer``'s weights into ``mha`` (a module with ``q_proj`` ... ``out_proj``); return it.

    ``layer.in_proj_weight`` stacks the three input projections, rows ``[q; k; v]``, each
    ``(d_model, d_model)``, and ``in_proj_bias`` their biases. Values are copied, so the two
    modules share no memory and can be trained apart. (Exercise 3.4.)
    """
    if not isinstance(layer, nn.MultiheadAttention):
        raise TypeError(f"expected nn.MultiheadAttention, got {type(layer).__name__}")
    if not layer._qkv_same_embed_dim or layer.in_proj_bias is None or layer.bias_k is not None:
        raise ValueError(
            "only layers with kdim = vdim = embed_dim, bias=True and add_bias_kv=False "
            "have the same parameters as the course's multi-head attention"
        )
    q_w, k_w, v_w = layer.in_proj_weight.detach().chunk(3)  # each (d_model, d_model)
    q_b, k_b, v_b = layer.in_proj_bias.detach().chunk(3)
    with torch.no_grad():
        for name, weight, bias in (
            ("q_proj", q_w, q_b),
            ("k_proj", k_w, k_b),
            ("v_proj", v_w, v_b),
            ("out_proj", layer.out_proj.weight, layer.out_proj.bias),
        ):
            proj = cast(nn.Linear, mha.get_submodule(name))
            proj.weight.copy_(weight)
            proj.bias.copy_(bias)
    return mha
