"""Lesson 01 references: tokens, vocabulary, Word2Vec, similarity, softmax, attention, patches."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

from course_utils import embeddings as E
from course_utils.data import lee_sentences

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def lee_vectors():
    """Small real word vectors: the lesson's Word2Vec settings on gensim's Lee news corpus."""
    return E.train_word2vec(lee_sentences(), vector_size=32, min_count=3, epochs=10)


def test_tokenize_words_splits_words_numbers_and_punctuation():
    assert E.tokenize_words("The bank's river-side, 3.5 miles!") == [
        "the", "bank's", "river", "-", "side", ",", "3.5", "miles", "!",
    ]  # fmt: skip


def test_vocabulary_ids_by_frequency_with_unknown_first():
    vocabulary = E.build_vocabulary("b a c a b a d".split(), min_count=2)
    assert vocabulary == {E.UNKNOWN: 0, "a": 1, "b": 2}
    assert E.encode(["a", "zebra", "b"], vocabulary) == [1, 0, 2]
    with pytest.raises(ValueError, match="min_count"):
        E.build_vocabulary([], min_count=0)


def test_one_hot_rows_are_orthogonal_unit_vectors():
    rows = E.one_hot([2, 0, 2], vocab_size=4)
    assert rows.shape == (3, 4) and rows.dtype == torch.float32
    assert torch.equal(rows.sum(dim=1), torch.ones(3))
    assert E.cosine_similarity(rows[0], rows[1]) == 0 and E.cosine_similarity(rows[0], rows[2]) == 1


def test_subword_tokenizer_splits_rare_words_into_known_pieces():
    texts = ["the river banks and the bank of the river", "banking on rivers by a rabbit"] * 50
    tokenizer = E.train_subword_tokenizer(texts, vocab_size=60)
    tokens = tokenizer.encode("riverbank").tokens
    assert len(tokens) > 1 and "[UNK]" not in tokens
    assert tokens[0] == "river" and all(t.startswith("##") for t in tokens[1:])
    assert tokenizer.decode(tokenizer.encode("riverbank").ids) == "riverbank"


def test_word2vec_is_reproducible_with_one_worker(lee_vectors):
    again = E.train_word2vec(lee_sentences(), vector_size=32, min_count=3, epochs=10)
    assert np.array_equal(again.vectors, lee_vectors.vectors)
    assert lee_vectors.vector_size == 32 and "police" in lee_vectors


def test_cosine_similarity_against_torch():
    a, b = torch.randn(7, 5), torch.randn(7, 5)
    torch.testing.assert_close(
        E.cosine_similarity(a, b), torch.nn.functional.cosine_similarity(a, b)
    )
    assert E.cosine_similarity(a[0], 3 * a[0]).item() == pytest.approx(1.0)
    assert E.cosine_similarity(a[0], -a[0]).item() == pytest.approx(-1.0)


def test_nearest_neighbours_are_sorted_and_ignore_length():
    table = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0], [0.7, 0.7]])
    similarities, indices = E.nearest_neighbours(torch.tensor([1.0, 0.0]), table, k=3)
    assert indices.tolist() == [0, 1, 4]  # the long vector [10, 1] does not win
    assert similarities[0] == 1 and torch.all(similarities[:-1] >= similarities[1:])


def test_neighbours_of_match_gensim_and_skip_the_word(lee_vectors):
    ours = E.neighbours_of("police", lee_vectors, k=5)
    theirs = lee_vectors.most_similar("police", topn=5)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], abs=1e-5)
    with pytest.raises(KeyError, match="'zzzz'"):
        E.neighbours_of("zzzz", lee_vectors)


def test_softmax_is_stable_and_matches_torch():
    x = torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, 0.0, 1.0]])
    torch.testing.assert_close(E.softmax(x), torch.softmax(x, dim=-1))
    y = torch.randn(3, 4, 5)
    torch.testing.assert_close(E.softmax(y, dim=1), torch.softmax(y, dim=1))
    assert torch.isnan(torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)).any()  # the naive one


def test_attention_weights_formula_and_shapes():
    query, keys = torch.randn(8), torch.randn(5, 8)
    weights = E.attention_weights(query, keys)
    assert weights.shape == (5,) and weights.sum().item() == pytest.approx(1.0)
    expected = torch.softmax(torch.stack([query @ k for k in keys]) / math.sqrt(8), dim=0)
    torch.testing.assert_close(weights, expected)
    both = E.attention_weights(torch.stack([query, -query]), keys)
    assert both.shape == (2, 5)
    torch.testing.assert_close(both[0], weights)
    with pytest.raises(ValueError, match="same vector size"):
        E.attention_weights(torch.randn(4), keys)


def test_word_attention_weights_and_unknown_words(lee_vectors):
    result = E.word_attention(lee_vectors, "police", ["arrested", "man", "fire"])
    assert result.weights.shape == (3,) and result.weights.sum().item() == pytest.approx(1.0)
    assert len(result.output_neighbours) == 5
    with pytest.raises(KeyError, match="zzzz"):
        E.word_attention(lee_vectors, "police", ["zzzz", "man"])
    with pytest.raises(ValueError, match="at least one key"):
        E.word_attention(lee_vectors, "police", [])


def test_pca_2d_finds_the_main_directions():
    generator = torch.Generator().manual_seed(0)
    spread = torch.randn(200, 3, generator=generator) * torch.tensor([10.0, 3.0, 0.1])
    rotation, _ = torch.linalg.qr(torch.randn(3, 3, generator=generator))
    points = E.pca_2d(spread @ rotation.T + 5)
    assert points.shape == (200, 2)
    assert points[:, 0].std().item() == pytest.approx(spread[:, 0].std().item(), rel=0.05)
    assert points[:, 1].std().item() == pytest.approx(spread[:, 1].std().item(), rel=0.05)
    torch.testing.assert_close(E.pca_2d(-spread), E.pca_2d(spread))  # signs are fixed


def test_image_to_patches_orders_patches_row_by_row():
    image = torch.arange(4 * 6 * 2, dtype=torch.float32).reshape(4, 6, 2)
    patches = E.image_to_patches(image, 2)
    assert patches.shape == (6, 2 * 2 * 2)
    torch.testing.assert_close(patches[1], image[0:2, 2:4].reshape(-1))
    torch.testing.assert_close(patches[3], image[2:4, 0:2].reshape(-1))
    with pytest.raises(ValueError, match="not a multiple"):
        E.image_to_patches(image, 4)


def test_sample_image_is_a_square_rgb_photo():
    image = E.sample_image(64)
    assert image.shape == (64, 64, 3) and 0 <= image.min() and image.max() <= 1
    assert image.std() > 0.1  # a photograph, not a blank


def test_plots_draw_words_and_patches():
    from course_utils.plots import patch_grid, word_map

    ax = word_map(torch.randn(3, 2), ["a", "b", "c"], ["x", "x", "y"])
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    main, shown = patch_grid(E.sample_image(64), 16, num_shown=4)
    assert len(shown) == 4 and "16×16" in main.get_title()
    with pytest.raises(ValueError, match="shape"):
        word_map(torch.randn(3, 3), ["a", "b", "c"])
    matplotlib.pyplot.close("all")


def test_word_map_labels_do_not_overlap_when_points_crowd():
    from course_utils.plots import word_map

    points = torch.tensor([[0.0, 0.0], [0.02, 0.01], [0.01, -0.02], [0.03, 0.0], [5.0, 5.0]])
    words = ["shore", "lake", "hills", "valley", "river"]
    ax = word_map(points, words)
    renderer = ax.figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert [t.get_text() for t in ax.texts] == words
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            assert not first.overlaps(second), "two labels overlap"
    matplotlib.pyplot.close("all")


def test_known_words_keeps_order_and_names_what_it_leaves_out(lee_vectors, capsys):
    assert E.known_words(["police", "zyzzyva", "said"], lee_vectors) == ["police", "said"]
    assert "zyzzyva" in capsys.readouterr().out
    assert E.known_words(["police"], lee_vectors) == ["police"]
    assert capsys.readouterr().out == ""


def test_word2vec_runs_two_epochs_under_course_quick(monkeypatch):
    sentences = [["a", "b", "c", "a"], ["b", "c", "a", "b"]] * 20
    monkeypatch.setenv("COURSE_QUICK", "1")
    quick = E.train_word2vec(sentences, vector_size=8, min_count=1, epochs=20)
    two = E.train_word2vec(sentences, vector_size=8, min_count=1, epochs=2)
    monkeypatch.setenv("COURSE_QUICK", "0")
    full = E.train_word2vec(sentences, vector_size=8, min_count=1, epochs=20)
    assert np.array_equal(quick.vectors, two.vectors)
    assert not np.array_equal(quick.vectors, full.vectors)
    with pytest.raises(ValueError, match="epochs"):
        E.train_word2vec(sentences, epochs=0)
