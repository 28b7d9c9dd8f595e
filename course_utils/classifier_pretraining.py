"""Pretraining lesson 06's model on unlabelled reviews: Word2Vec, then a masked language model.

8,000 labelled reviews are too few to learn English and the task at once, which is why a
transformer trained from scratch on them loses to a bag of words. BERT's answer is to
pretrain: hide 15% of the tokens of unlabelled text and train the encoder to guess them
(lesson 07 explains the masking recipe), so it learns what words mean and how they combine
before it ever sees a star rating. Here the classifier's own embedding and encoder are
pretrained with a small prediction head on top (:class:`MaskedTokenHead`); fine-tuning then
starts from those weights and throws the head away. On a CPU budget the embedding, most of
the model's numbers, learns fastest from Word2Vec (lesson 01, optimised C code), so it
starts from Word2Vec vectors of the same reviews.

Reviews are cut into windows of ``pretrain_len`` tokens: short windows are cheap (attention
grows with the square of the length), and masked-token prediction needs little context.
"""

from __future__ import annotations

import hashlib
import os
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from course_utils.cache import atomic_write, cache_key
from course_utils.classifier import TransformerClassifier, guarded_loss, token_vectors
from course_utils.classifier_tokenizer import MASK, SPECIAL_TOKENS
from course_utils.device import set_seed
from course_utils.encoder import LayerNorm
from course_utils.mlm import mask_tokens
from course_utils.training import IGNORE_INDEX, batches_forever, pad_batch, warmup_then_decay

__all__ = [
    "MaskedTokenHead",
    "PretrainHistory",
    "PretrainSettings",
    "load_or_train",
    "mask_token_id",
    "pretrain_encoder",
    "pretrain_or_load",
    "weights_digest",
    "windows",
    "word2vec_init",
]


@dataclass(frozen=True)
class PretrainSettings:
    """How long and how the encoder is pretrained (part of a lesson-06 ``Recipe``)."""

    steps: int = 1500
    length: int = 64  # tokens per window
    batch_size: int = 64
    lr: float = 2e-3
    warmup_fraction: float = 0.06
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    word2vec_epochs: int = 0  # > 0: first start the embeddings from Word2Vec vectors
    seed: int = 0


@dataclass
class PretrainHistory:
    """The masked-token loss of every pretraining step, and the time it took."""

    step_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    windows: int = 0


class MaskedTokenHead(nn.Module):
    """BERT's prediction head: dense, GELU, LayerNorm, then scores against every token vector.

    The output layer is the embedding matrix itself (tied weights, as in BERT), so the head
    adds only ``d_model² + 2·d_model + vocab_size`` numbers.
    """

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        vocab_size, d_model = embedding.weight.shape
        self.dense = nn.Linear(d_model, d_model)
        self.activation = nn.GELU()
        self.norm = LayerNorm(d_model)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self._embedding = [embedding]  # a list, so the embedding is not registered twice

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., vocab_size)`` for hidden vectors ``(..., d_model)``."""
        hidden = self.norm(self.activation(self.dense(hidden)))
        return hidden @ self._embedding[0].weight.T + self.bias


def windows(
    sequences: Iterable[Sequence[int]], length: int, *, min_tokens: int = 8
) -> list[list[int]]:
    """Cut each token-id list into consecutive windows of ``length`` ids (the last may be shorter).

    Windows shorter than ``min_tokens`` are dropped: they hold too little to guess from.
    """
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    cut = []
    for ids in sequences:
        ids = list(ids)
        cut += [ids[s : s + length] for s in range(0, len(ids), length)]
    return [window for window in cut if len(window) >= min_tokens]


def _stable_hash(text: str) -> int:
    # gensim seeds each word's starting vector with hash(word); Python's str hash changes
    # from one process to the next, so use one that does not.
    return zlib.crc32(text.encode())


def word2vec_init(
    model: TransformerClassifier,
    sequences: Sequence[Sequence[int]],
    *,
    epochs: int = 5,
    seed: int = 0,
) -> int:
    """Start ``model.embedding`` from Word2Vec vectors trained on the token ids of ``sequences``.

    Skip-gram with a window of 5 (lesson 01), one vector per token id that occurs; each is
    rescaled to the embedding's initial size, 1/√d_model per entry. Tokens that never occur
    keep their random vectors and padding stays zero. Returns how many rows were set.
    """
    from gensim.models import Word2Vec

    sentences = [[str(token) for token in ids] for ids in sequences]
    word2vec = Word2Vec(
        sentences,
        vector_size=model.d_model,
        window=5,
        min_count=1,
        sg=1,
        epochs=epochs,
        seed=seed,
        workers=1,  # one thread: the same vectors on every run
        hashfxn=_stable_hash,
    )
    rows = torch.tensor([int(token) for token in word2vec.wv.index_to_key], dtype=torch.long)
    vectors = torch.tensor(word2vec.wv.vectors)  # (tokens seen, d_model)
    vectors = vectors / vectors.std(dim=1, keepdim=True) * model.d_model**-0.5
    with torch.no_grad():
        weight = model.embedding.weight
        weight[rows.to(weight.device)] = vectors.to(weight.device, weight.dtype)
        weight[model.pad_id] = 0.0
    return len(rows)


def _masked_token_loss(
    model: TransformerClassifier,
    head: MaskedTokenHead,
    inputs: torch.Tensor,
    keep: torch.Tensor,
    targets: torch.Tensor,
) -> torch.Tensor:
    hidden = token_vectors(model, inputs, keep)  # (batch, seq, d_model)
    chosen = targets != IGNORE_INDEX
    # The vocabulary projection runs at the chosen positions only: 15% of the work.
    return nn.functional.cross_entropy(head(hidden[chosen]), targets[chosen])


def pretrain_encoder(
    model: TransformerClassifier,
    sequences: Sequence[Sequence[int]],
    settings: PretrainSettings,
    *,
    mask_id: int,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> PretrainHistory:
    """Pretrain ``model``'s embedding and encoder on ``sequences`` (windows of token ids).

    First, with ``settings.word2vec_epochs``, the embedding starts from Word2Vec vectors of
    the windows (:func:`word2vec_init`); then ``settings.steps`` steps of masked-token
    prediction, AdamW with warm-up and linear decay. Dropout is off: a few minutes of
    pretraining see each window about once, so there is nothing to over-fit.
    """
    from tqdm.auto import tqdm

    if settings.steps < 0 or settings.word2vec_epochs < 0:
        raise ValueError(f"steps and word2vec_epochs must be 0 or more; got {settings}")
    if not sequences:
        raise ValueError("pretraining needs at least one window of tokens")
    set_seed(settings.seed)
    start = time.perf_counter()
    if settings.word2vec_epochs > 0:
        word2vec_init(model, sequences, epochs=settings.word2vec_epochs, seed=settings.seed)
    model.to(device).eval()  # eval mode turns dropout off; gradients still flow
    head = MaskedTokenHead(model.embedding).to(device)
    parameters = [*model.embedding.parameters(), *model.encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=settings.weight_decay)
    warmup = max(1, int(settings.warmup_fraction * settings.steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_then_decay(step, warmup, settings.steps)
    )
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    vocab_size = model.embedding.num_embeddings
    history = PretrainHistory(windows=len(sequences))
    batches = batches_forever(sequences, settings.batch_size, seed=settings.seed)
    with tqdm(total=settings.steps, desc="pretraining", disable=not progress) as bar:
        for _, batch in zip(range(settings.steps), batches, strict=False):
            ids = pad_batch([sequences[i] for i in batch], model.pad_id).to(device)
            maskable = ids >= len(SPECIAL_TOKENS)  # never padding or a special token
            inputs, targets = mask_tokens(
                ids,
                maskable,
                mask_id=mask_id,
                vocab_size=vocab_size,
                generator=generator,
                mask_prob=settings.mask_prob,
                first_ordinary_id=len(SPECIAL_TOKENS),
            )
            compute = partial(_masked_token_loss, model, head, inputs, ids != model.pad_id, targets)
            loss = guarded_loss(model, inputs, compute, "try a lower settings.lr")
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            history.step_loss.append(loss.item())
            bar.update(1)
            if len(history.step_loss) % 50 == 0:
                recent = history.step_loss[-50:]
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.2f}")
    history.seconds = time.perf_counter() - start
    return history


def pretrain_or_load(
    model: TransformerClassifier,
    sequences: Sequence[Sequence[int]],
    settings: PretrainSettings,
    *,
    mask_id: int,
    folder: str | os.PathLike,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> PretrainHistory:
    """:func:`pretrain_encoder`, or load its result if this exact run was saved before.

    The file ``folder/pretrained-<key>.pt`` is keyed by the settings, the windows and the
    model's starting weights, so any change trains again.
    """
    key = cache_key(
        asdict(settings), mask_id, [list(map(int, s)) for s in sequences], weights_digest(model)
    )
    path = Path(folder) / f"pretrained-{key}.pt"
    return load_or_train(
        path,
        model,
        lambda: pretrain_encoder(
            model, sequences, settings, mask_id=mask_id, device=device, progress=progress
        ),
        PretrainHistory,
        device=device,
        progress=progress,
    )


def load_or_train(
    path: Path,
    model: nn.Module,
    train: Callable[[], Any],
    history_type: type,
    *,
    device: torch.device | str,
    progress: bool,
) -> Any:
    """Load ``model``'s weights and the history saved at ``path``, or ``train()`` and save them.

    The file is written atomically, so an interrupted run never leaves half a checkpoint.
    """
    if path.is_file():
        saved = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        model.to(device)
        if progress:
            print(f"Loaded the trained weights from {path} (delete the file to train again).")
        return history_type(**saved["history"])
    history = train()
    with atomic_write(path) as temporary:
        torch.save({"model": model.state_dict(), "history": asdict(history)}, temporary)
    return history


def weights_digest(model: nn.Module) -> str:
    """A digest of every tensor in ``model.state_dict()``: equal weights, equal digest."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def mask_token_id(tokenizer: Tokenizer) -> int:
    """The id of ``[MASK]`` in a lesson-06 tokenizer."""
    mask_id = tokenizer.token_to_id(MASK)
    if mask_id is None:
        raise ValueError(f"the tokenizer has no {MASK} token; train it with this course's version")
    return mask_id
