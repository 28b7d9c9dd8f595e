"""Reference code for lesson 01: text and images as vectors, similarity, and a first attention.

Tensors hold one vector per row and the vector axis last: ``(..., d)``. Functions
written in the exercises (``cosine_similarity``, ``nearest_neighbours``, ``softmax``,
``attention_weights``) take and return ``torch`` tensors; the Word2Vec helpers take
gensim ``KeyedVectors`` (``model.wv``), which behave like a dict from word to vector.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from course_utils.settings import sized

if TYPE_CHECKING:  # both are heavy to import; the functions import them when called
    from gensim.models import KeyedVectors
    from tokenizers import Tokenizer

__all__ = [
    "UNKNOWN",
    "WordAttention",
    "attention_weights",
    "build_vocabulary",
    "cosine_similarity",
    "encode",
    "image_to_patches",
    "known_words",
    "nearest_neighbours",
    "neighbours_of",
    "one_hot",
    "pca_2d",
    "sample_image",
    "softmax",
    "tokenize_words",
    "train_subword_tokenizer",
    "train_word2vec",
    "word_attention",
]

UNKNOWN = "<unk>"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*|[^\sa-z\d]")


def tokenize_words(text: str) -> list[str]:
    """Split text into lowercase word tokens; numbers and punctuation marks become tokens too."""
    return _WORD.findall(text.lower())


def build_vocabulary(tokens: Iterable[str], min_count: int = 1) -> dict[str, int]:
    """Map each token seen at least ``min_count`` times to an id, most frequent first.

    Id 0 is :data:`UNKNOWN`, which stands for every token left out; ties are broken
    alphabetically so the ids are reproducible.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    counts = Counter(tokens)
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return {UNKNOWN: 0, **{token: i for i, token in enumerate(kept, start=1)}}


def encode(tokens: Iterable[str], vocabulary: dict[str, int]) -> list[int]:
    """The ids of ``tokens``; tokens missing from ``vocabulary`` get the id of :data:`UNKNOWN`."""
    unknown = vocabulary[UNKNOWN]
    return [vocabulary.get(token, unknown) for token in tokens]


def one_hot(ids: Sequence[int] | torch.Tensor, vocab_size: int) -> torch.Tensor:
    """One-hot rows: ``(seq,)`` ids become a ``(seq, vocab_size)`` float tensor of 0s and 1s."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    return torch.nn.functional.one_hot(ids, vocab_size).float()


def train_subword_tokenizer(texts: Iterable[str], vocab_size: int = 2000) -> Tokenizer:
    """Train a byte-pair-encoding (BPE) tokenizer on ``texts`` in a few seconds.

    Returns a ``tokenizers.Tokenizer``: ``tokenizer.encode(text).tokens`` lists the
    subwords; pieces that continue a word start with ``##``. Lowercases its input.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["[UNK]"],
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def train_word2vec(
    sentences: Sequence[Sequence[str]],
    *,
    vector_size: int = 100,
    window: int = 5,
    min_count: int = 5,
    epochs: int = 20,
    seed: int = 0,
    workers: int = 1,
) -> KeyedVectors:
    """Train CBOW Word2Vec with gensim and return its word vectors (``KeyedVectors``).

    With ``workers=1`` (the default) the result depends only on ``seed``: every run
    prints the same neighbours. More worker threads train faster on several cores, but
    the order in which they update the vectors, and so the vectors, changes run to run.
    Under ``COURSE_QUICK=1`` (smoke tests) at most 2 epochs are run.
    """
    from gensim.models import Word2Vec

    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    epochs = sized(epochs, min(epochs, 2))

    model = Word2Vec(
        sentences,
        vector_size=vector_size,
        window=window,
        min_count=min_count,
        epochs=epochs,
        seed=seed,
        workers=workers,
        sg=0,
    )
    return model.wv


def known_words(words: Sequence[str], vectors: KeyedVectors) -> list[str]:
    """The words that have a vector, in order; prints one line naming any left out.

    Lets a demo run on whatever corpus was available (the Brown corpus or its fallback).
    """
    missing = [w for w in words if w not in vectors]
    if missing:
        print(f"(left out, not in this corpus's vocabulary: {', '.join(missing)})")
    return [w for w in words if w in vectors]


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine of the angle between vectors along the last axis: ``(..., d), (..., d) -> (...)``."""
    return (a * b).sum(dim=-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def nearest_neighbours(
    query: torch.Tensor, embeddings: torch.Tensor, k: int = 5
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` rows of ``embeddings`` most cosine-similar to ``query``, most similar first.

    Shapes: query ``(d,)``, embeddings ``(vocab_size, d)``; returns
    ``(similarities, indices)``, each of shape ``(k,)``.
    """
    similarities = cosine_similarity(query[None, :], embeddings)  # (vocab_size,)
    return torch.topk(similarities, k)


def neighbours_of(word: str, vectors: KeyedVectors, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` words closest to ``word`` by cosine similarity, leaving out the word itself."""
    if word not in vectors:
        raise KeyError(f"{word!r} is not in the vocabulary of these word vectors")
    matrix = torch.from_numpy(vectors.vectors)
    similarities, indices = nearest_neighbours(matrix[vectors.key_to_index[word]], matrix, k + 1)
    pairs = [
        (vectors.index_to_key[int(i)], float(s)) for s, i in zip(similarities, indices, strict=True)
    ]
    return [pair for pair in pairs if pair[0] != word][:k]


def pca_2d(vectors: torch.Tensor) -> torch.Tensor:
    """Project ``(num_words, d)`` vectors onto their two directions of largest variance.

    Returns ``(num_words, 2)``. Each axis's sign is fixed (its largest coordinate is
    positive) so the map looks the same on every run.
    """
    centred = vectors - vectors.mean(dim=0)
    _, _, directions = torch.linalg.svd(centred.double(), full_matrices=False)
    points = centred.double() @ directions[:2].T  # (num_words, 2)
    signs = torch.sign(points.gather(0, points.abs().argmax(dim=0, keepdim=True)))
    return (points * signs).float()


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax along ``dim``, safe for large inputs.

    Subtracting each slice's maximum first changes nothing mathematically (the factor
    ``exp(-max)`` cancels) but keeps ``exp`` from overflowing: ``exp(1000.0)`` is ``inf``
    in float32, and ``inf / inf`` is NaN.
    """
    shifted = x - x.max(dim=dim, keepdim=True).values
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


def attention_weights(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """How much ``query`` attends to each key: ``softmax(query · key / √d)`` over the keys.

    Shapes: query ``(d,)`` or ``(seq_q, d)``, keys ``(seq_k, d)``; returns ``(seq_k,)`` or
    ``(seq_q, seq_k)``, each query's weights summing to 1.
    """
    if query.size(-1) != keys.size(-1):
        raise ValueError(
            "query and keys must have the same vector size; "
            f"got {query.size(-1)} and {keys.size(-1)}"
        )
    scores = query @ keys.T / math.sqrt(keys.size(-1))  # (seq_k,) or (seq_q, seq_k)
    return torch.softmax(scores, dim=-1)


@dataclass(frozen=True)
class WordAttention:
    """One query word attending over key words: the weights and what the output resembles."""

    query: str
    keys: tuple[str, ...]
    weights: torch.Tensor  # (seq_k,), sums to 1
    output_neighbours: tuple[tuple[str, float], ...]  # words nearest the weighted average


def word_attention(
    vectors: KeyedVectors, query: str, keys: Sequence[str], k: int = 5
) -> WordAttention:
    """Attention of ``query`` over ``keys``, using each word's vector as query, key and value.

    Raises ``KeyError`` naming every word that has no vector.
    """
    keys = tuple(keys)
    if not keys:
        raise ValueError("give at least one key word")
    unknown = [w for w in (query, *keys) if w not in vectors]
    if unknown:
        raise KeyError(f"no vector for {sorted(set(unknown))}: pick words the corpus knows")
    key_vectors = torch.tensor(vectors[list(keys)])  # (seq_k, d)
    weights = attention_weights(torch.tensor(vectors[query]), key_vectors)
    output = weights @ key_vectors  # (d,): the keys' vectors serve as values too
    matrix = torch.from_numpy(vectors.vectors)
    similarities, indices = nearest_neighbours(output, matrix, k)
    neighbours = tuple(
        (vectors.index_to_key[int(i)], round(float(s), 4))
        for s, i in zip(similarities, indices, strict=True)
    )
    return WordAttention(query, keys, weights, neighbours)


def sample_image(size: int = 224) -> torch.Tensor:
    """A real photograph as a ``(size, size, 3)`` float tensor in [0, 1] (no download needed).

    Grace Hopper's portrait, which ships with matplotlib, cropped to a square and resized.
    """
    import matplotlib.cbook
    import matplotlib.image

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    pixels = torch.from_numpy(matplotlib.image.imread(path).copy())
    side = min(pixels.shape[:2])
    square = pixels[:side, :side].permute(2, 0, 1)[None].float() / 255  # (1, 3, side, side)
    resized = torch.nn.functional.interpolate(square, size=(size, size), mode="area")
    return resized[0].permute(1, 2, 0).contiguous()


def image_to_patches(image: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut a ``(height, width, channels)`` image into ``patch_size``² squares, one per row.

    Returns ``(num_patches, patch_size * patch_size * channels)``; patches are ordered
    row by row, left to right, as a Vision Transformer reads them.
    """
    if image.dim() != 3:
        raise ValueError(f"image must be (height, width, channels); got shape {tuple(image.shape)}")
    height, width, channels = image.shape
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"image size {height}×{width} is not a multiple of patch_size={patch_size}; "
            "crop it first"
        )
    grid = image.unfold(0, patch_size, patch_size).unfold(1, patch_size, patch_size)
    # (rows, cols, channels, patch, patch) -> (rows, cols, patch, patch, channels)
    grid = grid.permute(0, 1, 3, 4, 2)
    return grid.reshape(-1, patch_size * patch_size * channels)  # (num_patches, p*p*channels)
