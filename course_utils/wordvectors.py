"""Small real word vectors that need no download, for attention demos over real words.

Lesson 01 trains Word2Vec on the Brown corpus; later lessons only need *some* real
vectors to show attention between words, so they use this quicker model trained on
the Lee news corpus (about 58,000 words of Australian news) that ships inside gensim.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # gensim is heavy to import; news_word_vectors imports it when called
    from gensim.models import KeyedVectors

__all__ = ["news_word_vectors", "sentence_vectors"]


@lru_cache(maxsize=2)
def news_word_vectors(vector_size: int = 48, seed: int = 0) -> KeyedVectors:
    """Word2Vec vectors (gensim ``KeyedVectors``) trained in a few seconds on the Lee corpus.

    Deterministic for a given ``seed`` (one worker thread); cached for the process.
    """
    from gensim.models import Word2Vec
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    with open(datapath("lee_background.cor"), encoding="utf-8") as file:
        documents = [simple_preprocess(line) for line in file]
    model = Word2Vec(
        documents,
        vector_size=vector_size,
        window=5,
        min_count=3,
        epochs=30,
        negative=10,
        seed=seed,
        workers=1,
    )
    return model.wv


def sentence_vectors(words: list[str], vectors: KeyedVectors | None = None) -> torch.Tensor:
    """Stack the vectors of ``words`` into a ``(seq, vector_size)`` float tensor.

    Raises ``KeyError`` naming every word the vectors do not know.
    """
    vectors = vectors if vectors is not None else news_word_vectors()
    unknown = [w for w in words if w not in vectors]
    if unknown:
        raise KeyError(f"no vector for {unknown}; pick words from the corpus vocabulary")
    return torch.tensor(vectors[words])
