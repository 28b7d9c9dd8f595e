"""Train the small masked language model of lesson 07 on the Brown corpus, once, and cache it.

:func:`small_masked_lm` is the one call a notebook makes: it returns a folder written
with ``save_pretrained`` (model and tokenizer), training it the first time (a few CPU
minutes) and reusing it afterwards, so ``load_masked_lm(folder)`` loads it exactly like
``bert-base-uncased``. Under ``COURSE_QUICK=1`` it trains a tiny smoke-test model instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.cache import atomic_write, cache_key
from course_utils.encoder import EncoderBlock
from course_utils.mlm import MaskedLanguageModel, mask_tokens, to_huggingface, train_wordpiece
from course_utils.settings import quick
from course_utils.training import IGNORE_INDEX, adamw, batches_forever, pad_batch, warmup_then_decay

if TYPE_CHECKING:  # transformers is imported when a tokenizer is made
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "LOSS_EVERY",
    "MLMConfig",
    "brown_texts",
    "evaluate_masked_lm",
    "small_masked_lm",
    "small_masked_lm_config",
    "train_masked_lm",
]


LOSS_EVERY = 50  # training steps averaged into each recorded loss


@dataclass(frozen=True)
class MLMConfig:
    """Everything that decides the small model: its size, its data and its training."""

    vocab_size: int = 8000
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    d_ff: int = 512
    max_len: int = 128
    dropout: float = 0.0  # one pass over the data underfits: dropout would only slow learning
    max_sentences: int | None = None  # None: all 57,340 Brown sentences
    held_out: int = 1000  # sentences kept aside to measure the model
    steps: int = 2000
    batch_size: int = 32  # for a fixed time budget, more small steps beat fewer large ones
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    seed: int = 0

    def key(self) -> str:
        """A short hash naming this configuration's cache folder."""
        return cache_key(dataclasses.asdict(self), length=10)


def small_masked_lm_config() -> MLMConfig:
    """The configuration used by default: full size, or a tiny one under ``COURSE_QUICK=1``."""
    if quick():
        return MLMConfig(
            vocab_size=2000,
            d_model=32,
            num_heads=2,
            num_layers=2,
            d_ff=64,
            max_sentences=5000,
            held_out=200,
            steps=40,
            batch_size=32,
            warmup_steps=5,
        )
    return MLMConfig()


def brown_texts(max_sentences: int | None) -> list[str]:
    """The Brown corpus's sentences as text (the first ``max_sentences``, or all)."""
    from course_utils.data import brown_token_sentences

    sentences = brown_token_sentences(max_sentences=max_sentences)
    # Brown writes quotation marks as `` and ''; the CrowS-Pairs sentences use ".
    return [" ".join(words).replace("``", '"').replace("''", '"') for words in sentences]


def _collate(
    sequences: list[list[int]], pad_id: int, special_ids: set[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded ids, where attention may look (real tokens), and which tokens may be masked."""
    input_ids = pad_batch(sequences, pad_id)  # (batch, seq)
    attention_mask = input_ids != pad_id
    maskable = attention_mask & ~torch.isin(input_ids, torch.tensor(sorted(special_ids)))
    return input_ids, attention_mask, maskable


def _masked_loss(model, tokenizer, sequences, config: MLMConfig, generator, device):
    """Cross-entropy over the chosen tokens only, the head applied at those positions alone."""
    input_ids, attention_mask, maskable = _collate(
        sequences, tokenizer.pad_token_id, set(tokenizer.all_special_ids)
    )
    inputs, labels = mask_tokens(
        input_ids,
        maskable,
        mask_id=tokenizer.mask_token_id,
        vocab_size=len(tokenizer),
        generator=generator,
        mask_prob=config.mask_prob,
    )
    inputs, labels, attention_mask = inputs.to(device), labels.to(device), attention_mask.to(device)
    hidden = model.encode(inputs, attention_mask)  # (batch, seq, d_model)
    chosen = labels != IGNORE_INDEX
    logits = model.predict(hidden[chosen])  # (num_chosen, vocab_size)
    return F.cross_entropy(logits, labels[chosen], reduction="sum"), logits, labels[chosen]


@torch.no_grad()
def evaluate_masked_lm(
    model: MaskedLanguageModel,
    tokenizer: PreTrainedTokenizerBase,
    sequences: Sequence[list[int]],
    config: MLMConfig,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Loss and accuracy at masked positions of ``sequences`` (token id lists), fixed masks."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(config.seed + 1)
    total_loss, correct, count = 0.0, 0, 0
    for start in range(0, len(sequences), 256):
        loss, logits, labels = _masked_loss(
            model, tokenizer, sequences[start : start + 256], config, generator, device
        )
        total_loss += loss.item()
        correct += int((logits.argmax(-1) == labels).sum())
        count += labels.numel()
    model.train(was_training)
    return {"loss": total_loss / count, "accuracy": correct / count, "tokens": count}


def train_masked_lm(
    texts: list[str],
    tokenizer: PreTrainedTokenizerBase,
    config: MLMConfig,
    device: torch.device | str | None = None,
    progress: bool = True,
    *,
    block_factory: Callable[..., nn.Module] = EncoderBlock,
) -> tuple[MaskedLanguageModel, list[float]]:
    """Train a :class:`MaskedLanguageModel` on ``texts``; return ``(model, losses)``.

    AdamW with linear warm-up then linear decay; ``losses`` is the mean training loss of
    every ``LOSS_EVERY`` steps. The random masks come from a generator seeded with ``config.seed``.
    ``block_factory`` builds the encoder blocks (e.g. :func:`course_utils.parts.encoder_block`).
    """
    from tqdm.auto import tqdm

    device = torch.device(device or "cpu")
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(config.seed)
        model = MaskedLanguageModel(
            len(tokenizer),
            config.d_model,
            config.num_heads,
            config.num_layers,
            config.d_ff,
            config.max_len,
            config.dropout,
            block_factory=block_factory,
        ).to(device)
    sequences = tokenizer(texts, truncation=True, max_length=config.max_len)["input_ids"]
    optimizer = adamw(model, config.learning_rate, config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_then_decay(step, config.warmup_steps, config.steps)
    )
    batches = batches_forever(sequences, config.batch_size, seed=config.seed)
    model.train()
    losses, window = [], []
    bar = tqdm(range(config.steps), desc="training the masked LM", disable=not progress)
    for step in bar:
        batch = [sequences[i] for i in next(batches)]
        loss_sum, _, labels = _masked_loss(model, tokenizer, batch, config, generator, device)
        loss = loss_sum / max(1, labels.numel())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        window.append(loss.item())
        if len(window) == LOSS_EVERY or step == config.steps - 1:
            losses.append(sum(window) / len(window))
            bar.set_postfix(loss=f"{losses[-1]:.2f}")
            window = []
    return model.eval(), losses


def small_masked_lm(
    directory: str | os.PathLike | None = None,
    config: MLMConfig | None = None,
    *,
    retrain: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    block_factory: Callable[..., nn.Module] = EncoderBlock,
) -> Path:
    """The folder of the small Brown-corpus masked LM, training and saving it the first time.

    ``directory`` defaults to ``<cache>/models/brown-mlm-<config hash>`` (see
    :func:`~course_utils.download.cache_dir`); a folder already holding a trained model is
    reused unless ``retrain``. The folder holds what ``save_pretrained`` writes for the
    model and the tokenizer, plus ``training.json`` (configuration, time, held-out scores,
    and whose blocks were trained: ``block_factory``'s name).
    """
    from course_utils.download import cache_dir

    config = config or small_masked_lm_config()
    folder = Path(directory) if directory else cache_dir() / "models" / f"brown-mlm-{config.key()}"
    if (folder / "training.json").is_file() and not retrain:
        print(f"Reusing the small masked LM trained earlier ({folder}).")
        return folder
    start = time.perf_counter()
    texts = brown_texts(config.max_sentences)
    shuffled = torch.randperm(len(texts), generator=torch.Generator().manual_seed(config.seed))
    held_out = [texts[i] for i in shuffled[: config.held_out].tolist()]
    train_texts = [texts[i] for i in shuffled[config.held_out :].tolist()]
    tokenizer = train_wordpiece(train_texts, config.vocab_size, config.max_len)
    model, losses = train_masked_lm(
        train_texts, tokenizer, config, device, progress, block_factory=block_factory
    )
    held_ids = tokenizer(held_out, truncation=True, max_length=config.max_len)["input_ids"]
    scores = evaluate_masked_lm(model, tokenizer, held_ids, config)
    seconds = time.perf_counter() - start
    record = {
        "config": dataclasses.asdict(config),
        "corpus": f"Brown, {len(train_texts)} training and {len(held_out)} held-out sentences",
        "seconds": round(seconds, 1),
        "blocks": f"{block_factory.__module__}.{block_factory.__qualname__}",
        # the last step of each window whose mean loss is recorded (the last may be shorter)
        "loss_steps": [min(LOSS_EVERY * (i + 1), config.steps) for i in range(len(losses))],
        "losses": [round(x, 4) for x in losses],
        "held_out": {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
        "held_out_perplexity": round(math.exp(scores["loss"]), 2),
    }
    from transformers.utils import logging as hf_logging

    # Written to a temporary folder and renamed, so an interrupted run leaves nothing half-saved.
    with atomic_write(folder) as partial:
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Writing model shards" bar for one small file
        try:
            to_huggingface(model, tokenizer).save_pretrained(partial)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        tokenizer.save_pretrained(partial)
        (partial / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    print(
        f"Trained the small masked LM in {seconds:.0f} s; held-out masked-token accuracy "
        f"{scores['accuracy']:.1%}, perplexity {record['held_out_perplexity']}. Saved in {folder}."
    )
    return folder
