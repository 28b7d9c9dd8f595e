"""The attention explorer: its callbacks recompute and show the weights the learner asks for."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors

from course_utils.embeddings import word_attention
from course_utils.widgets import PRESETS, AttentionExplorer, parse_words

WORDS = sorted({w for query, keys in PRESETS.values() for w in [query, *keys.split()]})


@pytest.fixture
def vectors():
    """Made-up 6-d vectors for the presets' words, long enough for clearly uneven weights."""
    table = KeyedVectors(6)
    rng = np.random.default_rng(0)
    table.add_vectors(WORDS, (rng.normal(size=(len(WORDS), 6)) * 2).astype(np.float32))
    return table


def shown_weights(explorer: AttentionExplorer) -> list[float]:
    """The weights as printed in the widget's HTML table."""
    return [float(w) for w in re.findall(r"text-align:right'>([0-9.]+)<", explorer.output.value)]


def test_initial_view_shows_the_plain_function_result(vectors):
    explorer = AttentionExplorer(vectors, query="bank", keys="river money")
    expected = word_attention(vectors, "bank", ["river", "money"]).weights
    torch.testing.assert_close(explorer.weights, expected)
    assert shown_weights(explorer) == pytest.approx(expected.tolist(), abs=1e-3)


def test_changing_the_query_changes_the_weights_shown(vectors):
    explorer = AttentionExplorer(vectors, query="bank", keys="river water money loan")
    before = shown_weights(explorer)
    explorer.query.value = "queen"  # what typing a word and pressing Enter does
    after = shown_weights(explorer)
    assert after != pytest.approx(before, abs=1e-3)
    expected = word_attention(vectors, "queen", ["river", "water", "money", "loan"]).weights
    assert after == pytest.approx(expected.tolist(), abs=1e-3)
    assert "<b>queen</b>" in explorer.output.value


def test_changing_the_keys_and_picking_a_preset(vectors):
    explorer = AttentionExplorer(vectors)
    explorer.keys.value = "king,  queen   prince"
    assert len(shown_weights(explorer)) == 3
    name = next(iter(PRESETS))
    explorer.preset.value = name
    query, keys = PRESETS[name]
    assert (explorer.query.value, explorer.keys.value) == (query, keys)
    expected = word_attention(vectors, query, parse_words(keys)).weights
    assert shown_weights(explorer) == pytest.approx(expected.tolist(), abs=1e-3)


def test_unknown_or_missing_words_give_a_message_not_an_error(vectors):
    explorer = AttentionExplorer(vectors)
    explorer.keys.value = "river xyzzy"
    assert explorer.weights is None and "xyzzy" in explorer.output.value
    explorer.keys.value = "river"
    explorer.query.value = "  "
    assert explorer.weights is None and "one query word" in explorer.output.value


def test_parse_words_accepts_commas_and_any_spacing():
    assert parse_words(" River,bank   Water ") == ["river", "bank", "water"]
