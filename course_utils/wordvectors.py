"""Small real word vectors that need no download, for attention demos over real words.

Lesson 01 trains Word2Vec on the Brown corpus; later lessons only need *some* real
vectors to show attention between words, so they use this quicker model trained on
the Lee news corpus (about 58,000 words of Australian news) that ships inside gensim.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import torch

from course_utils.cache import atomic_write, cache_key
from course_utils.download import cache_dir

if TYPE_CHECKING:  # gensim is heavy to import; news_word_vectors imports it when called
    from gensim.models import KeyedVectors

__all__ = ["news_word_vectors", "sentence_vectors"]


@lru_cache(maxsize=2)
def news_word_vectors(vector_size: int = 48, seed: int = 0) -> KeyedVectors:
    """Word2Vec vectors (gensim ``KeyedVectors``) trained in a few seconds on the Lee corpus.

    Deterministic for a given ``seed`` (one worker thread). Kept for the process, and saved
    in the course cache (``<cache>/wordvectors``), so lessons 02 and 03 and every restart
    after the first train nothing.
    """
    import gensim
    from gensim.models import KeyedVectors, Word2Vec
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    key = cache_key("lee-word2vec", vector_size, seed, gensim.__version__)
    path = cache_dir() / "wordvectors" / f"lee-{key}.kv"
    if path.is_file():
        try:
            return KeyedVectors.load(str(path))
        except Exception:  # unreadable (another gensim, a damaged disk): train it again
            pass
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
    with atomic_write(path) as temporary, open(temporary, "wb") as handle:
        model.wv.save(handle)  # one pickle: given a handle, gensim writes no side files
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
