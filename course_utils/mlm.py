"""A small BERT-style masked language model built from the course's encoder blocks (lesson 07).

A BERT layer is exactly a post-norm :class:`~course_utils.encoder.EncoderBlock` with GELU,
so :class:`MaskedLanguageModel` is the course's own :class:`~course_utils.encoder.Encoder`
between BERT's embeddings (word + learned position + token type, then LayerNorm) and
BERT's prediction head (dense, GELU, LayerNorm, then a decoder tied to the word
embeddings). The blocks come from ``block_factory``: the reference
:class:`~course_utils.encoder.EncoderBlock`, or the learner's own through
:func:`course_utils.parts.encoder_block`.

:func:`from_huggingface` goes one way: it builds the model around any block and copies a
``transformers`` ``BertForMaskedLM`` into it (``bert-base-uncased``'s real weights, say), so
the learner's blocks compute BERT. :func:`to_huggingface` goes the other way, so a model
trained here is saved with ``save_pretrained`` and loaded by the code that loads
``bert-base-uncased``. Both share one table of parameter names (:func:`_hf_state_dict`).

Training it (the masking recipe, the loop, the cache) is in :mod:`course_utils.mlm_training`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.encoder import Encoder, EncoderBlock, LayerNorm
from course_utils.training import IGNORE_INDEX

if TYPE_CHECKING:  # tokenizers and transformers are imported when a function needs them
    from tokenizers import Tokenizer
    from transformers import (
        BertForMaskedLM,
        PreTrainedModel,
        PreTrainedTokenizerBase,
        PreTrainedTokenizerFast,
    )

__all__ = [
    "LAYER_NORM_EPS",
    "SPECIAL_TOKENS",
    "MaskedLMOutput",
    "MaskedLanguageModel",
    "from_huggingface",
    "mask_tokens",
    "to_huggingface",
    "train_wordpiece",
    "wordpiece_tokenizer",
]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0-4, as in BERT's order
LAYER_NORM_EPS = 1e-12  # BERT's value; nn.LayerNorm's default is 1e-5


def _wrap_tokenizer(backend: Tokenizer, model_max_length: int) -> PreTrainedTokenizerFast:
    """A ``transformers`` BERT tokenizer around a ``tokenizers`` WordPiece tokenizer."""
    from tokenizers import decoders, processors

    # transformers 5 keeps BertTokenizerFast only as a runtime alias of BertTokenizer;
    # 4.x, which the course also supports, needs this name.
    from transformers import BertTokenizerFast

    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    backend.decoder = decoders.WordPiece()
    return BertTokenizerFast(
        tokenizer_object=backend,
        do_lower_case=True,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )


def _bert_backend(vocab: dict[str, int] | None = None) -> Tokenizer:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    # Uncased, accents stripped, split on spaces and punctuation: bert-base-uncased's rules.
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return backend


def train_wordpiece(
    texts: Iterable[str], vocab_size: int = 8000, model_max_length: int = 128
) -> PreTrainedTokenizerFast:
    """Learn an uncased WordPiece vocabulary from ``texts``; return a ``BertTokenizerFast``.

    The five special tokens get ids 0-4 (``[PAD]`` is 0); words the vocabulary lacks
    split into pieces, the later ones marked ``##`` (``"cats"`` → ``cat ##s``).
    """
    from tokenizers import trainers

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens")
    backend = _bert_backend()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    backend.train_from_iterator(texts, trainer)
    # Numbered in a fixed order: specials, then the pieces sorted. (The trainer breaks ties
    # between equally frequent pieces in a run-dependent order, so two trainings on the
    # same text can still differ by a few rare pieces.)
    learned = sorted(set(backend.get_vocab()) - set(SPECIAL_TOKENS))
    return wordpiece_tokenizer([*SPECIAL_TOKENS, *learned], model_max_length)


def wordpiece_tokenizer(
    vocab: Sequence[str], model_max_length: int = 128
) -> PreTrainedTokenizerFast:
    """A ``BertTokenizerFast`` with exactly this vocabulary (which must start with the specials)."""
    if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise ValueError(f"the vocabulary must start with {SPECIAL_TOKENS}; got {vocab[:5]}")
    ids = {piece: index for index, piece in enumerate(vocab)}
    if len(ids) != len(vocab):
        raise ValueError("the vocabulary lists a piece twice")
    return _wrap_tokenizer(_bert_backend(ids), model_max_length)


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator | None = None,
    mask_prob: float = 0.15,
    first_ordinary_id: int = len(SPECIAL_TOKENS),
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking recipe; return ``(inputs, labels)``, both shaped like ``input_ids``.

    Each ``maskable`` token (bool, False at padding and special tokens) is chosen with
    probability ``mask_prob``. A chosen token becomes ``[MASK]`` 80% of the time, a random
    ordinary token 10% of the time, and stays itself 10% of the time; the model must
    predict every chosen token. ``labels`` holds the original id at chosen positions and
    -100 (ignored by ``cross_entropy``) everywhere else.
    """
    if maskable.dtype != torch.bool or maskable.shape != input_ids.shape:
        raise ValueError("maskable must be a bool tensor shaped like input_ids")
    device = input_ids.device

    def uniform() -> torch.Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=device)

    chosen = (uniform() < mask_prob) & maskable
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    roll = uniform()
    inputs = input_ids.masked_fill(chosen & (roll < 0.8), mask_id)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(
        first_ordinary_id, vocab_size, input_ids.shape, generator=generator, device=device
    )
    inputs = torch.where(swap, random_ids, inputs)
    return inputs, labels


class MaskedLMOutput(NamedTuple):
    """What :class:`MaskedLanguageModel` returns: ``.logits``, and ``.loss`` given labels."""

    logits: torch.Tensor  # (batch, seq, vocab_size)
    loss: torch.Tensor | None = None


class MaskedLanguageModel(nn.Module):
    """BERT: embeddings, post-norm GELU encoder blocks, and the masked-LM head.

    ``forward(input_ids, attention_mask=None, labels=None)`` maps ``(batch, seq)`` token ids
    to a :class:`MaskedLMOutput` whose ``logits`` are ``(batch, seq, vocab_size)``, and whose
    ``loss`` is the cross-entropy at the labelled positions (labels ``-100`` elsewhere), as a
    Hugging Face masked LM does. ``attention_mask`` is ``(batch, seq)``, 1 or True at real
    tokens and 0 at padding. :meth:`encode` and :meth:`predict` are the two halves, so the
    (large) vocabulary projection can run at the masked positions only.
    ``block_factory(d_model, num_heads, d_ff, dropout=, activation=, norm_first=, eps=)``
    builds each block (default: the reference :class:`EncoderBlock`).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        num_heads: int = 4,
        num_layers: int = 4,
        d_ff: int = 512,
        max_len: int = 128,
        dropout: float = 0.1,
        *,
        block_factory: Callable[..., nn.Module] = EncoderBlock,
    ):
        super().__init__()
        self.vocab_size, self.max_len = vocab_size, max_len
        self.num_heads, self.dropout_p = num_heads, dropout
        self.word_embeddings = nn.Embedding(vocab_size, d_model)
        self.position_embeddings = nn.Embedding(max_len, d_model)  # learned, not sinusoidal
        self.token_type_embeddings = nn.Embedding(2, d_model)  # sentence A or B; we use A only
        self.embedding_norm = LayerNorm(d_model, LAYER_NORM_EPS)
        self.embedding_dropout = nn.Dropout(dropout)
        self.encoder = Encoder(
            num_layers,
            d_model,
            num_heads,
            d_ff,
            dropout=dropout,
            activation="gelu",
            norm_first=False,  # BERT is post-norm
            eps=LAYER_NORM_EPS,
            block_factory=block_factory,
        )
        self.head_dense = nn.Linear(d_model, d_model)
        self.head_activation = nn.GELU()
        self.head_norm = LayerNorm(d_model, LAYER_NORM_EPS)
        # The decoder's weight is the word embedding matrix itself (tied); only its bias is new.
        self.head_bias = nn.Parameter(torch.zeros(vocab_size))
        self.apply(_init_bert_weights)

    @property
    def device(self) -> torch.device:
        """Where the weights are (as a Hugging Face model's ``.device``)."""
        return self.word_embeddings.weight.device

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The final hidden states ``(batch, seq, d_model)``."""
        seq = input_ids.size(1)
        if seq > self.max_len:
            raise ValueError(f"sequences of {seq} tokens exceed max_len={self.max_len}")
        positions = torch.arange(seq, device=input_ids.device)
        x = (
            self.word_embeddings(input_ids)  # (batch, seq, d_model)
            + self.position_embeddings(positions)
            + self.token_type_embeddings.weight[0]
        )
        x = self.embedding_dropout(self.embedding_norm(x))
        mask = None
        if attention_mask is not None:
            mask = attention_mask.bool()[:, None, None, :]  # (batch, 1, 1, seq): True = attend
        return self.encoder(x, mask)

    def predict(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., vocab_size)`` for hidden states ``(..., d_model)``."""
        hidden = self.head_norm(self.head_activation(self.head_dense(hidden)))
        return hidden @ self.word_embeddings.weight.T + self.head_bias

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> MaskedLMOutput:
        """Logits ``(batch, seq, vocab_size)`` for every position, and the loss given ``labels``."""
        logits = self.predict(self.encode(input_ids, attention_mask))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX
            )
        return MaskedLMOutput(logits, loss)


def _init_bert_weights(module: nn.Module) -> None:
    # BERT's initialisation: normal(0, 0.02) weights, zero biases, LayerNorms at identity.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def _hf_state_dict(model: MaskedLanguageModel) -> dict[str, torch.Tensor]:
    """The model's weights under ``BertForMaskedLM``'s parameter names (the tensors themselves)."""
    state = {
        "bert.embeddings.word_embeddings.weight": model.word_embeddings.weight,
        "bert.embeddings.position_embeddings.weight": model.position_embeddings.weight,
        "bert.embeddings.token_type_embeddings.weight": model.token_type_embeddings.weight,
        "bert.embeddings.LayerNorm.weight": model.embedding_norm.weight,
        "bert.embeddings.LayerNorm.bias": model.embedding_norm.bias,
        "cls.predictions.transform.dense.weight": model.head_dense.weight,
        "cls.predictions.transform.dense.bias": model.head_dense.bias,
        "cls.predictions.transform.LayerNorm.weight": model.head_norm.weight,
        "cls.predictions.transform.LayerNorm.bias": model.head_norm.bias,
        "cls.predictions.decoder.weight": model.word_embeddings.weight,
        "cls.predictions.decoder.bias": model.head_bias,
        "cls.predictions.bias": model.head_bias,
    }
    for index, block in enumerate(model.encoder.layers):
        layer = f"bert.encoder.layer.{index}."
        for name, path in _BLOCK_LAYOUT.items():
            module: Any = block  # the sub-layer at ``path``, looked up by name
            for attribute in path.split("."):
                if not hasattr(module, attribute):
                    raise AttributeError(
                        f"encoder block {index} ({type(block).__name__}) has no {path}: BERT's "
                        f"{name} is copied there. Name the block's parts as lesson 04 does."
                    )
                module = getattr(module, attribute)
            state[layer + name + ".weight"] = module.weight
            state[layer + name + ".bias"] = module.bias
    return state


# The decoder shares the word embeddings and cls.predictions.bias (tied).
_TIED = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")

# BERT's name for each sub-layer of a layer: where it sits in a course (or learner's) block.
_BLOCK_LAYOUT = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "norm1",  # post-norm: after attention's residual
    "intermediate.dense": "feed_forward.linear1",
    "output.dense": "feed_forward.linear2",
    "output.LayerNorm": "norm2",  # after the feed-forward's residual
}


def to_huggingface(
    model: MaskedLanguageModel, tokenizer: PreTrainedTokenizerBase | None = None
) -> BertForMaskedLM:
    """A ``transformers`` ``BertForMaskedLM`` (eval mode) computing the same logits as ``model``.

    ``tokenizer`` (optional) supplies the padding id written into the config.
    """
    from transformers import BertConfig, BertForMaskedLM

    if not isinstance(model, MaskedLanguageModel):
        raise TypeError(f"expected a MaskedLanguageModel, got {type(model).__name__}")
    first: Any = model.encoder.layers[0]  # the course's or the learner's block
    config = BertConfig(
        vocab_size=model.vocab_size,
        hidden_size=model.word_embeddings.embedding_dim,
        num_hidden_layers=len(model.encoder.layers),
        num_attention_heads=model.num_heads,
        intermediate_size=first.feed_forward.linear1.out_features,
        hidden_act="gelu",  # the exact (erf) GELU, as nn.GELU()
        hidden_dropout_prob=model.dropout_p,
        attention_probs_dropout_prob=model.dropout_p,
        max_position_embeddings=model.max_len,
        type_vocab_size=2,
        layer_norm_eps=LAYER_NORM_EPS,
        pad_token_id=tokenizer.pad_token_id if tokenizer is not None else 0,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):  # its random init is overwritten: keep the RNG
        hf_model = BertForMaskedLM(config)
    state = {name: tensor.detach().cpu().clone() for name, tensor in _hf_state_dict(model).items()}
    hf_model.load_state_dict(state, strict=True)
    return hf_model.eval()


def from_huggingface(
    hf_model: PreTrainedModel, *, block_factory: Callable[..., nn.Module] = EncoderBlock
) -> MaskedLanguageModel:
    """A :class:`MaskedLanguageModel` with ``block_factory``'s blocks and ``hf_model``'s weights.

    ``hf_model`` is a ``transformers`` ``BertForMaskedLM`` (``bert-base-uncased``, or one
    written by :func:`to_huggingface`). The result, in eval mode on the same device,
    computes the same logits: the reverse of :func:`to_huggingface`.
    """
    config = getattr(hf_model, "config", None)
    if (
        config is None
        or getattr(config, "model_type", None) != "bert"
        or not hasattr(hf_model, "cls")
    ):
        raise TypeError(f"expected a Hugging Face BertForMaskedLM, got {type(hf_model).__name__}")
    positions = getattr(config, "position_embedding_type", "absolute")
    if config.hidden_act != "gelu" or positions != "absolute":
        raise ValueError(
            "only BERTs with the exact GELU and absolute positions can be copied; got "
            f"hidden_act={config.hidden_act!r}, position_embedding_type={positions!r}"
        )
    if abs(config.layer_norm_eps - LAYER_NORM_EPS) > 1e-15:
        raise ValueError(f"expected layer_norm_eps={LAYER_NORM_EPS}, got {config.layer_norm_eps}")
    with torch.random.fork_rng(devices=[]):  # its random init is overwritten: keep the RNG
        model = MaskedLanguageModel(
            config.vocab_size,
            config.hidden_size,
            config.num_attention_heads,
            config.num_hidden_layers,
            config.intermediate_size,
            config.max_position_embeddings,
            dropout=0.0,
            block_factory=block_factory,
        )
    theirs = hf_model.state_dict()
    with torch.no_grad():
        for name, tensor in _hf_state_dict(model).items():
            if name in _TIED and name not in theirs:
                continue  # some versions list a tied weight once, under its other name
            if name not in theirs:
                raise ValueError(f"{type(hf_model).__name__} has no weight named {name!r}")
            if theirs[name].shape != tensor.shape:
                raise ValueError(
                    f"{name}: the block's weight is {tuple(tensor.shape)}, BERT's is "
                    f"{tuple(theirs[name].shape)}"
                )
            tensor.copy_(theirs[name])
    return model.to(hf_model.device).eval()
