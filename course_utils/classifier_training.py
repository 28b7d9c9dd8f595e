"""Training the lesson-06 classifier: a loop short enough to read, sized for a laptop CPU.

The loop is the standard recipe for transformers: AdamW, a learning rate that warms up
linearly and then decays linearly to zero, gradient clipping, and an evaluation on the whole
test set after every epoch. Batches group reviews of similar length (less padding, less
work). A finished run is saved as a checkpoint keyed by its recipe and its data, so running
the notebook again loads it instead of training again.
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from course_utils.cache import atomic_write, cache_key
from course_utils.device import set_seed
from course_utils.training import length_batches, pad_batch, warmup_then_decay

__all__ = [
    "History",
    "Recipe",
    "default_recipe",
    "evaluate",
    "train_classifier",
    "train_or_load",
    "word2vec_init",
]


@dataclass(frozen=True)
class Recipe:
    """Every size and setting of one training run: tokenizer, model and optimiser."""

    vocab_size: int = 8000
    max_len: int = 512
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    num_layers: int = 1
    dropout: float = 0.1
    pooling: str = "mean"
    epochs: int = 4
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    clip_norm: float = 1.0
    label_smoothing: float = 0.0
    word2vec_epochs: int = 15  # 0: random initial embeddings
    seed: int = 0

    def model_sizes(self) -> dict:
        """The keyword arguments for :func:`~course_utils.classifier.build_classifier`."""
        names = ("d_model", "num_heads", "d_ff", "num_layers", "dropout", "pooling")
        return {name: getattr(self, name) for name in names}


def default_recipe(device: torch.device | str = "cpu", *, quick: bool = False) -> Recipe:
    """The course's defaults: a few minutes on a 2-core CPU, a bigger model on a GPU.

    ``quick`` gives a smoke-test size (a few seconds) for CI.
    """
    if quick:
        return Recipe(vocab_size=2000, max_len=64, d_model=32, d_ff=64, epochs=2)
    if torch.device(device).type == "cuda":
        # Not measured on the course's CPU: a wider, deeper model for the same few epochs
        # (more epochs over-fit 8,000 reviews whatever the hardware).
        return Recipe(vocab_size=16000, d_model=128, d_ff=256, num_layers=2, batch_size=32)
    return Recipe()


def _stable_hash(text: str) -> int:
    # gensim seeds each word's starting vector with hash(word); Python's str hash changes
    # from one process to the next, so use one that does not.
    return zlib.crc32(text.encode())


def word2vec_init(
    model: nn.Module, sequences: Sequence[Sequence[int]], *, epochs: int = 5, seed: int = 0
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


@torch.no_grad()
def evaluate(
    model: nn.Module,
    sequences: Sequence[Sequence[int]],
    labels: Sequence[int],
    device: torch.device | str = "cpu",
    batch_size: int = 128,
) -> tuple[float, torch.Tensor]:
    """Mean cross-entropy loss and the predicted class of every review, in the input order."""
    model.eval()
    labels = torch.as_tensor(list(labels), dtype=torch.long)
    predictions = torch.empty(len(sequences), dtype=torch.long)
    total_loss = 0.0
    for batch in length_batches(sequences, batch_size, shuffle=False):
        ids = pad_batch([sequences[i] for i in batch], model.pad_id).to(device)
        logits = model(ids)  # (batch, num_classes)
        total_loss += nn.functional.cross_entropy(
            logits, labels[batch].to(device), reduction="sum"
        ).item()
        predictions[batch] = logits.argmax(dim=-1).cpu()
    return total_loss / len(sequences), predictions


@dataclass
class History:
    """What happened during training: per step, and per epoch on the test set."""

    step_loss: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    predictions: list[int] = field(default_factory=list)  # on the test set, after the last epoch


def train_classifier(
    model: nn.Module,
    train: tuple[Sequence[Sequence[int]], Sequence[int]],
    test: tuple[Sequence[Sequence[int]], Sequence[int]],
    recipe: Recipe,
    device: torch.device | str = "cpu",
    *,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``train = (token id lists, labels)``; evaluate on ``test`` each epoch."""
    from tqdm.auto import tqdm

    if recipe.epochs < 1:
        raise ValueError(f"recipe.epochs must be at least 1, got {recipe.epochs}")
    set_seed(recipe.seed)
    sequences, labels = train
    labels = torch.as_tensor(list(labels), dtype=torch.long)
    start = time.perf_counter()
    if recipe.word2vec_epochs > 0:  # part of training, so its seconds are counted
        word2vec_init(model, sequences, epochs=recipe.word2vec_epochs, seed=recipe.seed)
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
    )
    total_steps = recipe.epochs * math.ceil(len(sequences) / recipe.batch_size)
    warmup_steps = max(1, int(recipe.warmup_fraction * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_then_decay(step, warmup_steps, total_steps)
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    history = History()
    bar = tqdm(total=total_steps, desc="training", disable=not progress)
    for epoch in range(recipe.epochs):
        model.train()
        epoch_loss = 0.0
        for batch in length_batches(sequences, recipe.batch_size, shuffle=True, seed=epoch):
            ids = pad_batch([sequences[i] for i in batch], model.pad_id).to(device)
            loss = loss_fn(model(ids), labels[batch].to(device))
            optimizer.zero_grad()
            loss.backward()
            # Clipping caps the size of one update when a batch's gradient is unusually large.
            nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_norm)
            optimizer.step()
            scheduler.step()
            history.step_loss.append(loss.item())
            epoch_loss += loss.item() * len(batch)
            bar.update(1)
        test_loss, predictions = evaluate(model, *test, device)
        accuracy = (predictions == torch.as_tensor(list(test[1]))).float().mean().item()
        history.train_loss.append(epoch_loss / len(sequences))
        history.test_loss.append(test_loss)
        history.test_accuracy.append(accuracy)
        bar.set_postfix(epoch=epoch + 1, test_accuracy=f"{accuracy:.3f}")
    bar.close()
    history.seconds = time.perf_counter() - start
    history.predictions = predictions.tolist()
    return history


def _fingerprint(recipe: Recipe, train, test) -> str:
    return cache_key(
        asdict(recipe),
        *(
            [[list(map(int, s)) for s in sequences], [int(y) for y in labels]]
            for sequences, labels in (train, test)
        ),
    )


def train_or_load(
    model: nn.Module,
    train: tuple[Sequence[Sequence[int]], Sequence[int]],
    test: tuple[Sequence[Sequence[int]], Sequence[int]],
    recipe: Recipe,
    device: torch.device | str = "cpu",
    *,
    folder: str | os.PathLike,
    progress: bool = True,
) -> History:
    """Load the checkpoint of this exact run (same recipe, same data) if saved, else train.

    The checkpoint is ``folder/classifier-<fingerprint>.pt``; a training run saves it.
    """
    path = Path(folder) / f"classifier-{_fingerprint(recipe, train, test)}.pt"
    if path.is_file():
        saved = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        model.to(device)
        if progress:
            print(f"Loaded the trained model from {path} (delete the file to train again).")
        return History(**saved["history"])
    history = train_classifier(model, train, test, recipe, device, progress=progress)
    with atomic_write(path) as temporary:  # never leaves a half-written checkpoint behind
        torch.save({"model": model.state_dict(), "history": asdict(history)}, temporary)
    return history
