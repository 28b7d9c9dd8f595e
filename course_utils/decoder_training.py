"""Training lesson 08's word-level language model on the Brown corpus, once, and caching it.

:func:`trained_decoder` is the one call the notebook makes: it returns the vocabulary, the
held-out sentences, the unigram baseline and a :class:`~course_utils.decoder.DecoderLM`,
training the model the first time (for 150 seconds, on any machine) and loading it from
the course cache afterwards. Under ``COURSE_QUICK=1`` everything is tiny (seconds).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from course_utils.cache import atomic_write, cache_key
from course_utils.decoder import DecoderLM, next_token_loss
from course_utils.settings import quick
from course_utils.training import adamw, batches_forever, pad_batch, warmup_then_decay

__all__ = [
    "DecoderConfig",
    "TrainedDecoder",
    "UnigramModel",
    "Vocabulary",
    "brown_word_sentences",
    "decoder_config",
    "evaluate_loss",
    "train_decoder",
    "trained_decoder",
]

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")  # ids 0-3: padding, unknown, start, end
# The learner's parts a DecoderLM runs: its blocks and what they are made of, its positions.
DECODER_PARTS = (
    "attention",
    "multi_head_attention",
    "layer_norm",
    "feed_forward",
    "encoder_block",
    "positional_encoding",
)


@dataclass(frozen=True)
class DecoderConfig:
    """Everything that decides the model: vocabulary, sizes, data and training."""

    vocab_size: int = 5000  # 88% of Brown's words; the output layer dominates the cost
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 256
    max_len: int = 48  # tokens per sentence with <s> and </s>; 95% of Brown's are shorter
    dropout: float = 0.0  # a few passes over 1 M words: the model underfits, dropout only slows it
    max_sentences: int | None = None  # None: all 57,340 sentences
    held_out: int = 2000
    seconds: float = 150.0  # training time; the schedule adapts its length in steps to it
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    seed: int = 0


def decoder_config() -> DecoderConfig:
    """The configuration the lesson uses: full size, or tiny under ``COURSE_QUICK=1``."""
    if quick():
        return DecoderConfig(
            vocab_size=500,
            d_model=32,
            num_heads=2,
            num_layers=1,
            d_ff=64,
            max_len=24,
            max_sentences=3000,
            held_out=200,
            seconds=2.0,
            batch_size=32,
            learning_rate=3e-3,
            warmup_steps=5,
        )
    return DecoderConfig()


def brown_word_sentences(max_sentences: int | None = None) -> list[list[str]]:
    """Brown's sentences as lowercased words and punctuation (its `` and '' quotes become ")."""
    from course_utils.data import brown_token_sentences

    quotes = {"``": '"', "''": '"'}
    return [
        [quotes.get(w, w).lower() for w in sentence]
        for sentence in brown_token_sentences(max_sentences=max_sentences)
    ]


class Vocabulary:
    """Word ids: the four specials (``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2, ``</s>`` 3), then words."""

    def __init__(self, words: Sequence[str]):
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}; got {list(words[:4])}")
        self.words = list(words)
        self.ids = {word: index for index, word in enumerate(self.words)}
        self.pad_id, self.unk_id, self.start_id, self.end_id = range(4)

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], size: int) -> Vocabulary:
        """The ``size - 4`` most frequent words of ``sentences`` (ties broken alphabetically)."""
        counts = Counter(word for sentence in sentences for word in sentence)
        ranked = sorted(counts, key=lambda word: (-counts[word], word))
        return cls([*SPECIALS, *ranked[: size - len(SPECIALS)]])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, words: Sequence[str] | str, *, end: bool = True) -> list[int]:
        """``<s>``, the words' ids (``<unk>`` if unknown), then ``</s>`` unless ``end=False``."""
        if isinstance(words, str):
            words = tokenize(words)
        ids = [self.start_id, *(self.ids.get(w.lower(), self.unk_id) for w in words)]
        return [*ids, self.end_id] if end else ids

    def decode(self, ids: Sequence[int]) -> str:
        """Readable text: special tokens dropped (``<unk>`` kept), punctuation re-attached."""
        skip = {self.pad_id, self.start_id, self.end_id}
        text = " ".join(self.words[i] for i in ids if i not in skip)
        return re.sub(r" ([,.;:?!)'])", r"\1", text).replace("( ", "(")


def tokenize(text: str) -> list[str]:
    """Split typed text roughly as Brown is split: words, and punctuation on its own."""
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*|[^\sa-z0-9]", text.lower())


class UnigramModel:
    """The baseline: every next word drawn from the words' overall frequencies, ignoring context.

    Fitted on what a language model must predict (every token after ``<s>``, ``</s>``
    included), with add-one smoothing so an unseen id does not cost infinitely much.
    """

    def __init__(self, sequences: Sequence[Sequence[int]], vocab_size: int):
        counts = torch.ones(vocab_size)
        for ids in sequences:
            counts += torch.bincount(torch.as_tensor(ids[1:]), minlength=vocab_size)
        counts[0] = 0.0  # padding is never a target
        self.probabilities = counts / counts.sum()

    def loss(self, sequences: Sequence[Sequence[int]]) -> float:
        """Mean cross-entropy (nats per token) of the targets of ``sequences``."""
        targets = torch.as_tensor([t for ids in sequences for t in ids[1:]])
        return float(-self.probabilities[targets].log().mean())

    def sample(
        self,
        max_tokens: int,
        generator: torch.Generator,
        *,
        stop_id: int,
        banned: Iterable[int] = (),
    ) -> list[int]:
        """Draw ids independently until ``stop_id`` or ``max_tokens``."""
        probabilities = self.probabilities.clone()
        probabilities[list(banned)] = 0.0
        ids: list[int] = []
        while len(ids) < max_tokens:
            ids.append(int(torch.multinomial(probabilities, 1, generator=generator)))
            if ids[-1] == stop_id:
                break
        return ids


@torch.no_grad()
def evaluate_loss(
    model: DecoderLM, sequences: Sequence[Sequence[int]], batch_size: int = 256
) -> float:
    """Mean next-token cross-entropy (nats per target token) over all of ``sequences``."""
    was_training = model.training
    model.eval()
    device = model.embedding.weight.device
    total, count = 0.0, 0
    for start in range(0, len(sequences), batch_size):
        ids = pad_batch(sequences[start : start + batch_size], model.pad_id).to(device)
        targets = int((ids[:, 1:] != model.pad_id).sum())
        total += float(next_token_loss(model(ids), ids, model.pad_id)) * targets
        count += targets
    model.train(was_training)
    return total / count


def train_decoder(
    model: DecoderLM,
    sequences: Sequence[Sequence[int]],
    held_out: Sequence[Sequence[int]],
    config: DecoderConfig,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` for ``config.seconds`` of wall-clock time; return curves and counts.

    AdamW, gradient clipping at 1, and the toolkit's warm-up-then-linear-decay schedule,
    whose length in steps is re-estimated at every step from the time left, so the rate
    reaches zero as the time runs out on any machine. The held-out loss (on up to 200
    sentences) is measured ten times along the way.
    """
    from tqdm.auto import tqdm

    device = model.embedding.weight.device
    optimizer = adamw(model, config.learning_rate, config.weight_decay)
    batches = batches_forever(sequences, config.batch_size, seed=config.seed)
    record: dict[str, Any] = {"seconds_at": [], "steps": [], "train_loss": [], "held_out_loss": []}
    window: list[float] = []
    start = time.perf_counter()
    next_report, step = config.seconds / 10, 0
    model.train()
    bar = tqdm(total=round(config.seconds), desc="training (seconds)", disable=not progress)
    while (elapsed := time.perf_counter() - start) < config.seconds:
        # Steps this run will take in all: those done, plus the time left at the recent pace.
        total_steps = step + max(
            1, round((config.seconds - elapsed) / max(elapsed / max(step, 1), 1e-6))
        )
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * warmup_then_decay(
                step, config.warmup_steps, max(total_steps, config.warmup_steps + 1)
            )
        ids = pad_batch([sequences[i] for i in next(batches)], model.pad_id).to(device)
        loss = model.loss(ids)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} at step {step}: a block produced NaN or inf. "
                "If one of your parts is in the model, check it again or fall back to the "
                "reference."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        window.append(loss.item())
        now = time.perf_counter() - start
        bar.update(min(round(now), round(config.seconds)) - bar.n)
        if now >= next_report or now >= config.seconds:
            record["seconds_at"].append(round(now, 1))
            record["steps"].append(step)
            record["train_loss"].append(sum(window) / len(window))
            record["held_out_loss"].append(evaluate_loss(model, held_out[:200]))
            bar.set_postfix(step=step, held_out=f"{record['held_out_loss'][-1]:.2f}")
            window, next_report = [], next_report + config.seconds / 10
    bar.close()
    record["seconds"] = time.perf_counter() - start
    record["total_steps"] = step
    model.eval()
    return record


@dataclass
class TrainedDecoder:
    """What the lesson needs: the model, its words, its held-out data and the baseline."""

    model: DecoderLM
    vocab: Vocabulary
    held_out: list[list[int]]
    unigram: UnigramModel
    record: dict


def _split(config: DecoderConfig):
    sentences = brown_word_sentences(config.max_sentences)
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(config.seed))
    held_out = [sentences[i] for i in order[: config.held_out].tolist()]
    train = [sentences[i] for i in order[config.held_out :].tolist()]
    vocab = Vocabulary.build(train, config.vocab_size)

    def encode(group):  # long sentences are cut to the model's length
        return [vocab.encode(s)[: config.max_len] for s in group]

    return vocab, encode(train), encode(held_out)


def trained_decoder(
    config: DecoderConfig | None = None,
    device: torch.device | str = "cpu",
    *,
    retrain: bool = False,
    progress: bool = True,
) -> TrainedDecoder:
    """The lesson's language model: loaded from the course cache, or trained and saved there.

    The cache file is named by the configuration, the model's parameter names and shapes,
    and whose parts built it (:func:`course_utils.parts.provenance`), so changed settings,
    blocks with other parameters, or parts passed anew never load weights trained otherwise.
    """
    from course_utils.download import cache_dir

    config = config or decoder_config()
    vocab, train, held_out = _split(config)
    with torch.random.fork_rng(devices=[]):  # seeded initial weights; the caller's RNG untouched
        torch.manual_seed(config.seed)
        model = DecoderLM(
            len(vocab),
            config.d_model,
            config.num_heads,
            config.num_layers,
            config.d_ff,
            config.max_len,
            dropout=config.dropout,
            pad_id=vocab.pad_id,
        ).to(device)
    from course_utils import parts

    layout = [[name, list(p.shape)] for name, p in model.state_dict().items()]
    built_from = parts.provenance(DECODER_PARTS)
    key = cache_key(dataclasses.asdict(config), layout, built_from)
    path = cache_dir() / "models" / f"brown-decoder-{key}.pt"
    unigram = UnigramModel(train, len(vocab))
    model.start_from_unigram(unigram.probabilities.to(device))
    if path.is_file() and not retrain:
        saved = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        print(f"Loaded the decoder trained earlier ({path.name}; retrain=True trains it again).")
        return TrainedDecoder(model.eval(), vocab, held_out, unigram, saved["record"])
    try:
        record = train_decoder(model, train, held_out, config, progress=progress)
    except Exception as error:
        name = parts.culprit(error)  # the learner's part whose code raised, if any
        if name is None:
            raise
        raise RuntimeError(parts.broken(name, error)) from error
    record["held_out_loss_final"] = evaluate_loss(model, held_out)
    record["unigram_loss"] = unigram.loss(held_out)
    record["train_tokens"] = sum(len(s) - 1 for s in train)
    with atomic_write(path) as temporary:
        torch.save({"model": model.state_dict(), "record": record}, temporary)
    print(
        f"Trained in {record['seconds']:.0f} s: held-out loss {record['held_out_loss_final']:.2f} "
        f"(perplexity {math.exp(record['held_out_loss_final']):.0f}); unigram baseline "
        f"{record['unigram_loss']:.2f} (perplexity {math.exp(record['unigram_loss']):.0f})."
    )
    return TrainedDecoder(model.eval(), vocab, held_out, unigram, record)
