"""The attention explorer: its callbacks recompute and show the weights the learner asks for."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from course_utils.embeddings import word_attention
from course_utils.widgets import PRESETS, AttentionExplorer, parse_words

WORDS = sorted({w for query, keys in PRESETS.values() for w in [query, *keys.split()]})


@pytest.fixture
def vectors():
    """Made-up 6-d vectors for the presets' words, long enough for clearly uneven weights."""
    from gensim.models import KeyedVectors  # here: importing gensim takes 2 s of every collection

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


def test_dropdown_follows_the_typed_words(vectors):
    explorer = AttentionExplorer(vectors, query="bank", keys="river money")
    assert explorer.preset.value == "(type your own)"
    name, (query, keys) = next(iter(PRESETS.items()))
    explorer.query.value = query.upper()
    explorer.keys.value = keys.replace(" ", ", ")
    assert explorer.preset.value == name
    explorer.keys.value = "river"
    assert explorer.preset.value == "(type your own)"


def test_display_carries_a_static_table_of_the_current_state(vectors):
    explorer = AttentionExplorer(vectors, query="bank", keys="river money")
    explorer.query.value = "queen"
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    static = bundle["text/html"]
    assert "<table>" in static and "<b>queen</b>" in static and "river" in static
    weights = [float(w) for w in re.findall(r"text-align:right'>([0-9.]+)<", static)]
    assert weights == pytest.approx(explorer.weights.tolist(), abs=1e-3)
    assert "VBox" not in bundle["text/plain"]


def test_live_view_calls_its_static_renderer_at_display_time():
    import ipywidgets as widgets

    from course_utils.widgets import LiveView

    box = widgets.HTML("<table><tr><td>1</td></tr></table>")
    view = LiveView([box], lambda: box.value)
    box.value = "<table><tr><td>2</td></tr></table>"
    assert view._repr_mimebundle_()["text/html"].startswith(box.value)
    assert isinstance(view, widgets.VBox)
