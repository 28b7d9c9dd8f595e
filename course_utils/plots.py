"""Plots shared by the lessons: attention heatmaps, cost curves and friends.

Every function draws on a new figure (or the ``ax`` given) and returns the axes, so a
notebook cell can add a title or save the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import NullLocator
from numpy.typing import ArrayLike

__all__ = [
    "attention_heatmap",
    "confusion_heatmap",
    "cost_curves",
    "feature_bars",
    "head_heatmaps",
    "line_chart",
    "patch_grid",
    "positional_heatmap",
    "saturation_curves",
    "training_curves",
    "word_map",
]


Values = torch.Tensor | ArrayLike  # a tensor, an array or nested lists of numbers
AxesPair = Sequence[Axes] | np.ndarray  # two panels: a list, or what plt.subplots returns


class _History(Protocol):
    """The curves :func:`training_curves` reads (a ``classifier_training.History`` has them)."""

    step_loss: Sequence[float]
    train_loss: Sequence[float]
    valid_loss: Sequence[float]
    valid_accuracy: Sequence[float]


def _as_numpy(values: Values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=float)


def _tick_labels(names: Sequence[str] | None, count: int) -> Sequence[str]:
    """``names``, or the positions 0, 1, ... as text when there are none."""
    return names if names is not None else [str(i) for i in range(count)]


def _write_in_cells(ax: Axes, texts: Sequence[Sequence[str]], dark: np.ndarray) -> None:
    """Write ``texts[row][col]`` in the middle of each heatmap cell, white on the dark ones."""
    for (row, col), is_dark in np.ndenumerate(dark):
        color = "white" if is_dark else "black"
        ax.text(col, row, texts[row][col], ha="center", va="center", fontsize=8, color=color)


def attention_heatmap(
    weights: Values,
    queries: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool | None = None,
    colorbar: bool = True,
) -> Axes:
    """Draw a ``(seq_q, seq_k)`` matrix of attention weights: rows are queries, columns keys."""
    matrix = _as_numpy(weights)
    if matrix.ndim != 2:
        raise ValueError(f"weights must be 2-D (seq_q, seq_k); got shape {matrix.shape}")
    if ax is None:
        side = max(3.0, 0.45 * max(matrix.shape) + 1.5)
        _, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=max(1e-9, float(np.nanmax(matrix))))
    ax.set_xticks(
        range(matrix.shape[1]), _tick_labels(keys, matrix.shape[1]), rotation=60, ha="right"
    )
    ax.set_yticks(range(matrix.shape[0]), _tick_labels(queries, matrix.shape[0]))
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if annotate is None:
        annotate = max(matrix.shape) <= 10
    if annotate:
        texts = [[f"{value:.2f}" for value in row] for row in matrix]
        _write_in_cells(ax, texts, dark=matrix < 0.6 * np.nanmax(matrix))  # viridis: low is dark
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    return ax


def saturation_curves(
    dims: Values, unscaled: Values, scaled: Values, *, ylabel: str, ax: Axes | None = None
) -> Axes:
    """Plot a statistic of the softmax against the dimension d, with and without √d scaling."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(dims, unscaled, "o-", label="q·k (no scaling)")
    ax.plot(dims, scaled, "s-", label="q·k / √d")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("dimension d of queries and keys")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def cost_curves(
    seq_lengths: Values,
    seconds: Values,
    megabytes: Values,
    *,
    computed_megabytes: Values | None = None,
    axes: AxesPair | None = None,
) -> AxesPair:
    """Plot attention's time and memory against sequence length (log-log, slope-2 guide).

    Each legend gives the slope fitted to the points (2 means cost ∝ seq²). ``megabytes``
    is the measured peak memory; ``computed_megabytes``, when given, is drawn beside it as
    a dotted line (the size of the scores and weights, from their number of elements).
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    seq = np.asarray(seq_lengths, dtype=float)
    panels = (
        (np.asarray(seconds, dtype=float) * 1000.0, "time per call (ms, measured)"),
        (np.asarray(megabytes, dtype=float), "peak memory of one call (MB, measured)"),
    )
    powers_of_two = [s for s in seq if s.is_integer() and int(s) & (int(s) - 1) == 0]
    ticks = powers_of_two if len(powers_of_two) >= 2 else list(seq)
    for ax, (values, label) in zip(axes, panels, strict=True):
        slope = np.polyfit(np.log(seq), np.log(values), 1)[0]
        ax.loglog(seq, values, "o-", label=f"fitted slope {slope:.2f}")
        guide = values[-1] * (seq / seq[-1]) ** 2  # a line of slope 2 through the last point
        ax.loglog(seq, guide, "--", color="gray", label="∝ seq² (slope 2)")
        if computed_megabytes is not None and ax is axes[1]:
            computed = np.asarray(computed_megabytes, dtype=float)
            ax.loglog(seq, computed, ":", color="black", label="scores + weights (computed)")
        ax.set_xticks(ticks, [f"{int(t):,}" for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())  # no crowded 3×10², 4×10², ... labels
        ax.set_xlabel("sequence length")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3, which="major")
    return axes


def head_heatmaps(
    weights: Values,
    queries: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    titles: Sequence[str] | None = None,
    suptitle: str | None = None,
) -> np.ndarray:
    """One attention heatmap per head, side by side, for ``weights`` ``(num_heads, seq_q, seq_k)``.

    Every panel shares one colour scale (0 to the largest weight), so heads can be compared.
    """
    matrix = _as_numpy(weights)
    if matrix.ndim != 3:
        raise ValueError(f"weights must be (num_heads, seq_q, seq_k); got shape {matrix.shape}")
    num_heads, seq_q, seq_k = matrix.shape
    ncols = min(ncols, num_heads)
    nrows = -(-num_heads // ncols)
    side = max(2.6, 0.32 * max(seq_q, seq_k) + 1.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(side * ncols, side * nrows), squeeze=False)
    vmax = max(1e-9, float(np.nanmax(matrix)))
    for head, ax in enumerate(axes.flat):
        if head >= num_heads:
            ax.axis("off")
            continue
        image = ax.imshow(matrix[head], cmap="viridis", vmin=0.0, vmax=vmax)
        ax.set_xticks(range(seq_k), _tick_labels(keys, seq_k), rotation=70)
        ax.set_yticks(range(seq_q), _tick_labels(queries, seq_q))
        ax.tick_params(labelsize=8)
        ax.set_title(titles[head] if titles is not None else f"head {head}", fontsize=10)
        if head % ncols:
            ax.set_yticklabels([])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="attention weight")
    return axes


def positional_heatmap(
    table: Values, *, ax: Axes | None = None, title: str = "Sinusoidal positional encoding"
) -> Axes:
    """Draw a ``(max_len, d_model)`` table of position vectors: rows positions, columns features."""
    matrix = _as_numpy(table)
    if matrix.ndim != 2:
        raise ValueError(f"table must be 2-D (max_len, d_model); got shape {matrix.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    image = ax.imshow(matrix, cmap="RdBu", vmin=-1, vmax=1, aspect="auto", interpolation="none")
    ax.set_xlabel("feature (column 2i: sine, 2i + 1: cosine)")
    ax.set_ylabel("position")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title)
    return ax


def line_chart(
    x: Values,
    series: Mapping[str, Values],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logy: bool = False,
    styles: Mapping[str, dict[str, Any]] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Plot several named curves against the same ``x`` (``series`` maps a label to values).

    ``styles`` maps a label to keyword arguments of ``ax.plot`` (default: dots joined by lines).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    for label, values in series.items():
        style = (styles or {}).get(label, {"marker": "o", "markersize": 3})
        ax.plot(_as_numpy(x), _as_numpy(values), label=label, **style)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return ax


def feature_bars(
    vectors: Mapping[str, Values], *, title: str | None = None, ax: Axes | None = None
) -> Axes:
    """Bars of a few vectors' features side by side (``vectors`` maps a label to a 1-D vector)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    values = {label: _as_numpy(v) for label, v in vectors.items()}
    width = 0.8 / len(values)
    for index, (label, vector) in enumerate(values.items()):
        positions = np.arange(len(vector)) + (index - (len(values) - 1) / 2) * width
        ax.bar(positions, vector, width=width, label=label)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("feature")
    ax.set_ylabel("value")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


# Where a label may go relative to its point, nearest first: (dx, dy) in points, alignment.
_LABEL_SPOTS = [
    ((dx, dy), align)
    for dy in (3, -11, 14, -22, 25, -33)
    for dx, align in ((4, "left"), (-4, "right"))
]


def _place_labels(ax: Axes, coords: np.ndarray, words: Sequence[str], fontsize: int = 9) -> None:
    """Label each point at the nearby spot that overlaps other labels least, then other points."""
    ax.figure.canvas.draw()  # fixes the axis limits and gives a renderer to measure text
    # The stub's FigureCanvasBase lacks get_renderer; the Agg canvases notebooks draw on have it.
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    radius = 4 * ax.figure.dpi / 72  # half a marker, in pixels
    centres = ax.transData.transform(coords)  # (num_words, 2) in pixels
    dots = [(x - radius, y - radius, x + radius, y + radius) for x, y in centres]
    labels: list[tuple[float, float, float, float]] = []
    frame = tuple(ax.get_window_extent(renderer).extents)  # the axes: x0, y0, x1, y1

    def area(box, others) -> float:
        return sum(
            max(0.0, min(box.x1, o[2]) - max(box.x0, o[0]))
            * max(0.0, min(box.y1, o[3]) - max(box.y0, o[1]))
            for o in others
        )

    for index, ((x, y), word) in enumerate(zip(coords, words, strict=True)):
        best = None
        for rank, (offset, align) in enumerate(_LABEL_SPOTS):
            far = rank >= 4  # beyond the four spots touching the dot: draw a leader line
            label = ax.annotate(
                word,
                (x, y),
                xytext=offset,
                textcoords="offset points",
                ha=align,
                fontsize=fontsize,
                arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6} if far else None,
            )
            box = label.get_window_extent(renderer)
            inside = area(box, [frame]) / (box.width * box.height)  # share within the axes
            # A label nearer another dot than its own would name the wrong point.
            gaps = np.hypot(*(centres - [(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]).T)
            misleading = gaps.argmin() != index
            # Hiding another label is worst, leaving the axes or misleading next, covering a
            # dot least.
            cost = 1000 * area(box, labels) + 10_000 * (1 - inside + misleading) + area(box, dots)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, label, box)
            else:
                label.remove()
            if cost == 0:
                break
        if best is not None:  # always: the first spot tried is kept
            box = best[2]
            labels.append((box.x0, box.y0, box.x1, box.y1))


def word_map(
    points: Values,
    words: Sequence[str],
    groups: Sequence[str] | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Scatter words at 2-D ``points`` ``(num_words, 2)`` with their labels, coloured by group."""
    coords = _as_numpy(points)
    if coords.shape != (len(words), 2):
        raise ValueError(f"points must have shape ({len(words)}, 2); got {coords.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 5.5))
    groups = list(groups) if groups is not None else ["words"] * len(words)
    for group in dict.fromkeys(groups):  # first-seen order, so colours are stable
        rows = [i for i, g in enumerate(groups) if g == group]
        ax.scatter(coords[rows, 0], coords[rows, 1], label=group, s=25)
    _place_labels(ax, coords, words)
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    if len(set(groups)) > 1:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def patch_grid(image: Values, patch_size: int, *, num_shown: int = 8) -> tuple[Axes, list[Axes]]:
    """Show an image ``(height, width, channels)`` cut into patches, and its first patches."""
    pixels = _as_numpy(image)
    height, width = pixels.shape[:2]
    half = max(1, num_shown // 2)
    fig = plt.figure(figsize=(9, 3.5))
    grid = fig.add_gridspec(2, 2 * half)
    main = fig.add_subplot(grid[:, :half])
    main.imshow(pixels)
    for x in range(0, width + 1, patch_size):
        main.axvline(x - 0.5, color="white", linewidth=0.6)
    for y in range(0, height + 1, patch_size):
        main.axhline(y - 0.5, color="white", linewidth=0.6)
    main.set_title(f"{height}×{width} image, {patch_size}×{patch_size} patches")
    main.axis("off")
    shown = []
    for index in range(min(2 * half, width // patch_size)):  # the top row, left to right
        ax = fig.add_subplot(grid[index // half, half + index % half])
        ax.imshow(pixels[:patch_size, index * patch_size : (index + 1) * patch_size])
        ax.set_title(f"patch {index}", fontsize=9)
        ax.axis("off")
        shown.append(ax)
    return main, shown


def training_curves(
    history: _History, *, baseline: float | None = None, axes: AxesPair | None = None
) -> AxesPair:
    """Loss per step and per epoch (left), validation accuracy per epoch (right) of a run.

    ``history`` has ``step_loss``, ``train_loss``, ``valid_loss`` and ``valid_accuracy`` lists
    (a :class:`~course_utils.classifier_training.History`); ``baseline`` draws a reference
    accuracy.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    loss_ax, accuracy_ax = axes
    steps = np.asarray(history.step_loss, dtype=float)
    epochs = np.arange(1, len(history.valid_accuracy) + 1)
    steps_per_epoch = len(steps) / max(1, len(epochs))
    window = max(1, int(steps_per_epoch // 10))  # a running mean, so the trend shows
    # a step without a label (only unlabelled reviews in the batch) is NaN: left out
    known = np.isfinite(steps)
    kernel = np.ones(window)
    counts = np.convolve(known, kernel, mode="valid")
    sums = np.convolve(np.where(known, steps, 0.0), kernel, mode="valid")
    shown = counts > 0
    loss_ax.plot(
        ((np.arange(len(sums)) + window) / steps_per_epoch)[shown],
        sums[shown] / counts[shown],
        alpha=0.5,
        label="training batches (running mean)",
    )
    loss_ax.plot(epochs, history.train_loss, "o-", label="training set, epoch mean")
    loss_ax.plot(epochs, history.valid_loss, "s-", label="validation set")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy loss")
    loss_ax.legend(fontsize=8)
    loss_ax.grid(alpha=0.3)
    accuracy_ax.plot(epochs, history.valid_accuracy, "o-", label="transformer")
    if baseline is not None:
        accuracy_ax.axhline(baseline, color="gray", linestyle="--", label="baseline")
    accuracy_ax.set_xlabel("epoch")
    accuracy_ax.set_ylabel("validation accuracy")
    accuracy_ax.set_xticks(epochs)
    accuracy_ax.legend(fontsize=8)
    accuracy_ax.grid(alpha=0.3)
    return axes


def confusion_heatmap(
    matrix: Values,
    labels: Sequence[str] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw a confusion matrix (row = true class, column = predicted), each row as shares."""
    counts = _as_numpy(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"matrix must be square (num_classes, num_classes); got {counts.shape}")
    shares = counts / np.maximum(1.0, counts.sum(axis=1, keepdims=True))
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.2))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = _tick_labels(labels, len(counts))
    ax.set_xticks(range(len(counts)), ticks)
    ax.set_yticks(range(len(counts)), ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    texts = [
        [f"{share:.2f}\n({int(count)})" for share, count in zip(share_row, count_row, strict=True)]
        for share_row, count_row in zip(shares, counts, strict=True)
    ]
    _write_in_cells(ax, texts, dark=shares > 0.6)  # Blues: high is dark
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if title:
        ax.set_title(title)
    return ax
