"""Interactive demos built with ipywidgets; the computations live in plain functions elsewhere.

Every demo is a :class:`LiveView`: a running notebook shows the controls, and a viewer that
cannot run widgets (GitHub, nbviewer, a saved solution notebook opened without a kernel)
shows a static HTML copy of what the demo displayed when the notebook was executed.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import torch

from course_utils.embeddings import WordAttention, word_attention

if TYPE_CHECKING:
    from gensim.models import KeyedVectors
    from torch import nn
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "AttentionExplorer",
    "LiveView",
    "attention_table_html",
    "masked_lm_probe",
    "parse_words",
]

CUSTOM = "(type your own)"

PRESETS = {
    "bank among water words": ("bank", "water shore boat money"),
    "bank among money words": ("bank", "money loan cash credit"),
    "bank, money words and river": ("bank", "money loan credit river"),
    "king among people and places": ("king", "queen prince city river"),
    "river among its neighbours": ("river", "bank water boat money"),
}


def parse_words(text: str) -> list[str]:
    """Split what the learner typed into lowercase words (commas and any spacing are fine)."""
    return text.replace(",", " ").lower().split()


class LiveView(widgets.VBox):
    """A column of widgets that also carries a static HTML rendering of its current state.

    ``static_html`` is called whenever the view is displayed; its result goes into the
    display's ``text/html``, next to the widget view, so an executed notebook keeps a
    readable table where widgets cannot be rendered.
    """

    def __init__(self, children: list[widgets.Widget], static_html: Callable[[], str]):
        super().__init__(children)
        self._static_html = static_html

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        note = "<p><i>(A static copy: run the notebook to use the controls.)</i></p>"
        bundle["text/html"] = self._static_html() + note
        bundle["text/plain"] = "Interactive demo: run the notebook to use it."
        return bundle


def attention_table_html(result: WordAttention) -> str:
    """An HTML table of the key words with their attention weights as bars."""
    rows = []
    for key, weight in zip(result.keys, result.weights.tolist(), strict=True):
        bar = f'<div style="background:#4c72b0;height:0.9em;width:{200 * weight:.0f}px"></div>'
        rows.append(
            f"<tr><td>{html.escape(key)}</td><td style='text-align:right'>{weight:.3f}</td>"
            f"<td>{bar}</td></tr>"
        )
    nearest = ", ".join(f"{html.escape(w)} ({s:.2f})" for w, s in result.output_neighbours)
    return (
        f"<p>Query <b>{html.escape(result.query)}</b> attends to:</p>"
        f"<table><tr><th>key</th><th>weight</th><th></th></tr>{''.join(rows)}</table>"
        f"<p>The output (the weighted average of the key vectors) is closest to: {nearest}</p>"
    )


class AttentionExplorer:
    """Pick a query word and key words; see the query's attention weights over the keys.

    Every word's Word2Vec vector serves as its query, key and value (no learned maps):
    ``weights = softmax(q · k / √d)`` over the keys. ``weights`` holds what is shown.
    """

    def __init__(
        self, vectors: KeyedVectors, query: str = "bank", keys: str = "water shore boat money"
    ) -> None:
        self.vectors = vectors
        self.weights: torch.Tensor | None = None
        self._applying_preset = False
        self.preset = widgets.Dropdown(options=[CUSTOM, *PRESETS], description="examples")
        self.query = widgets.Text(value=query, description="query", continuous_update=False)
        self.keys = widgets.Text(
            value=keys,
            description="keys",
            placeholder="words separated by spaces",
            continuous_update=False,
            layout=widgets.Layout(width="28em"),
        )
        self.output = widgets.HTML()
        self.preset.observe(self._apply_preset, names="value")
        self.query.observe(self.update, names="value")
        self.keys.observe(self.update, names="value")
        self.view = LiveView(
            [self.preset, widgets.HBox([self.query, self.keys]), self.output], self._static_html
        )
        self.update()

    def _apply_preset(self, change: dict[str, Any] | None = None) -> None:
        if self.preset.value in PRESETS:
            self._applying_preset = True  # the dropdown follows the text only once both are set
            try:
                self.query.value, self.keys.value = PRESETS[self.preset.value]
            finally:
                self._applying_preset = False
            self.update()

    def _follow_typed_words(self, query_words: list[str], keys: list[str]) -> None:
        """Show the example that matches the typed words, or "(type your own)"."""
        typed = (query_words, keys)
        match = next(
            (name for name, (q, k) in PRESETS.items() if (parse_words(q), parse_words(k)) == typed),
            CUSTOM,
        )
        if self.preset.value != match:
            self.preset.value = match  # a matching preset sets the same words: no loop

    def _static_html(self) -> str:
        return (
            f"<p>query: <code>{html.escape(self.query.value)}</code>, "
            f"keys: <code>{html.escape(self.keys.value)}</code></p>{self.output.value}"
        )

    def update(self, change: dict[str, Any] | None = None) -> None:
        """Recompute the weights for the current query and keys, and show them."""
        if self._applying_preset:
            return
        query_words = parse_words(self.query.value)
        keys = parse_words(self.keys.value)
        self._follow_typed_words(query_words, keys)
        if len(query_words) != 1 or not keys:
            self.weights = None
            self.output.value = "<p>Type one query word and at least one key word.</p>"
            return
        try:
            result = word_attention(self.vectors, query_words[0], keys)
        except KeyError as error:
            self.weights = None
            self.output.value = (
                f"<p style='color:#b00'>{html.escape(str(error.args[0]))}. "
                "Rare words were left out of the vocabulary.</p>"
            )
            return
        self.weights = result.weights
        self.output.value = attention_table_html(result)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self.view._repr_mimebundle_(**kwargs)


def masked_lm_probe(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    text: str = "The doctor picked up ___ bag.",
    candidates: str = "his, her",
) -> LiveView:
    """Type a sentence with a blank ``___`` and candidate words; see each one's probability.

    Lesson 07. The work is done by the plain function :func:`course_utils.probing.probe_table`;
    the table updates when Enter is pressed in either box. Where widgets cannot run, the
    display shows the table as it was when the cell ran.
    """
    from course_utils.probing import probe_table

    sentence = widgets.Text(
        value=text,
        description="sentence",
        continuous_update=False,
        layout=widgets.Layout(width="36em"),
    )
    words = widgets.Text(
        value=candidates,
        description="candidates",
        placeholder="words separated by commas or /",
        continuous_update=False,
    )
    output = widgets.HTML()

    def update(change: dict[str, Any] | None = None) -> None:
        try:
            table = probe_table(model, tokenizer, sentence.value, words.value)
        except ValueError as error:  # no blank, two blanks, no candidate
            output.value = f"<p style='color:#b00'>{html.escape(str(error))}</p>"
            return
        output.value = table.to_html(
            index=False,
            formatters={"probability": "{:.3g}".format, "share": "{:.1%}".format},
        )

    def static_html() -> str:
        return (
            f"<p>sentence: <code>{html.escape(sentence.value)}</code>, "
            f"candidates: <code>{html.escape(words.value)}</code></p>{output.value}"
        )

    sentence.observe(update, names="value")
    words.observe(update, names="value")
    update()
    return LiveView([sentence, words, output], static_html)
