"""The small news word vectors of lessons 02 and 03: trained once, then read from the cache."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import wordvectors

pytestmark = pytest.mark.slow  # trains Word2Vec on the Lee corpus three times (seconds each)


def test_trained_once_then_read_back_exactly_and_retrained_if_damaged(monkeypatch, tmp_path):
    import gensim.models

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    vectors = wordvectors.news_word_vectors
    vectors.cache_clear()
    try:
        trained = vectors(vector_size=8)
        (saved,) = (tmp_path / "wordvectors").iterdir()

        def read_back():
            vectors.cache_clear()
            with monkeypatch.context() as refuse:  # any training now is a failure
                refuse.setattr(gensim.models, "Word2Vec", _no_training)
                return vectors(vector_size=8)

        loaded = read_back()
        assert loaded.index_to_key == trained.index_to_key
        np.testing.assert_array_equal(loaded.vectors, trained.vectors)
        assert loaded.most_similar("police", topn=3) == trained.most_similar("police", topn=3)

        saved.write_bytes(b"not a pickle")  # damaged: trained again, and the file replaced
        vectors.cache_clear()
        np.testing.assert_array_equal(vectors(vector_size=8).vectors, trained.vectors)
        np.testing.assert_array_equal(read_back().vectors, trained.vectors)

        vectors(vector_size=8, seed=1)  # other settings, another file
        assert len(list(saved.parent.iterdir())) == 2
    finally:
        vectors.cache_clear()


def _no_training(*args, **kwargs):
    raise AssertionError("trained again instead of reading the cache")
