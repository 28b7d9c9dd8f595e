"""The small news word vectors of lessons 02 and 03: trained once, then read from the cache."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import wordvectors

pytestmark = pytest.mark.slow  # trains Word2Vec on the Lee corpus (a few seconds)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    wordvectors.news_word_vectors.cache_clear()
    yield tmp_path / "wordvectors"
    wordvectors.news_word_vectors.cache_clear()


def _no_training(monkeypatch):
    import gensim.models

    def refuse(*args, **kwargs):
        raise AssertionError("trained again instead of reading the cache")

    monkeypatch.setattr(gensim.models, "Word2Vec", refuse)


def test_trained_once_then_read_back_exactly(cache, monkeypatch):
    trained = wordvectors.news_word_vectors()
    assert [p.suffix for p in cache.iterdir()] == [".kv"]
    wordvectors.news_word_vectors.cache_clear()
    _no_training(monkeypatch)
    loaded = wordvectors.news_word_vectors()
    assert loaded.index_to_key == trained.index_to_key
    np.testing.assert_array_equal(loaded.vectors, trained.vectors)
    assert loaded.most_similar("police", topn=3) == trained.most_similar("police", topn=3)


def test_a_damaged_cache_file_is_trained_again_and_replaced(cache):
    trained = wordvectors.news_word_vectors()
    (saved,) = cache.iterdir()
    saved.write_bytes(b"not a pickle")
    wordvectors.news_word_vectors.cache_clear()
    again = wordvectors.news_word_vectors()
    np.testing.assert_array_equal(again.vectors, trained.vectors)
    assert saved.stat().st_size > 1000 and list(cache.iterdir()) == [saved]


def test_another_size_is_another_file(cache):
    assert wordvectors.news_word_vectors(vector_size=8).vector_size == 8
    assert wordvectors.news_word_vectors(vector_size=8, seed=1).vector_size == 8
    assert len(list(cache.iterdir())) == 2
