"""Plots shared by the lessons: attention heatmaps, cost curves and friends.

Every function draws on a new figure (or the ``ax`` given) and returns the axes, so a
notebook cell can add a title or save the figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["attention_heatmap", "cost_curves", "saturation_curves"]


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=float)


def attention_heatmap(
    weights,
    queries: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    *,
    ax=None,
    title: str | None = None,
    annotate: bool | None = None,
    colorbar: bool = True,
):
    """Draw a ``(seq_q, seq_k)`` matrix of attention weights: rows are queries, columns keys."""
    matrix = _as_numpy(weights)
    if matrix.ndim != 2:
        raise ValueError(f"weights must be 2-D (seq_q, seq_k); got shape {matrix.shape}")
    if ax is None:
        side = max(3.0, 0.45 * max(matrix.shape) + 1.5)
        _, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=max(1e-9, float(np.nanmax(matrix))))
    ax.set_xticks(
        range(matrix.shape[1]),
        keys if keys is not None else range(matrix.shape[1]),
        rotation=60,
        ha="right",
    )
    ax.set_yticks(
        range(matrix.shape[0]), queries if queries is not None else range(matrix.shape[0])
    )
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if annotate is None:
        annotate = max(matrix.shape) <= 10
    if annotate:
        for (row, col), value in np.ndenumerate(matrix):
            ax.text(
                col,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value < 0.6 * np.nanmax(matrix) else "black",
            )
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    return ax


def saturation_curves(dims, unscaled, scaled, *, ylabel: str, ax=None):
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


def cost_curves(seq_lengths, seconds, megabytes, *, axes=None):
    """Plot attention's time and memory against sequence length (log-log, slope-2 guide)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    seq = np.asarray(seq_lengths, dtype=float)
    labels = ("time (ms)", "memory of the weights (MB)")
    for ax, values, label in zip(axes, (seconds, megabytes), labels, strict=True):
        values = np.asarray(values, dtype=float) * (1000.0 if label.startswith("time") else 1.0)
        ax.loglog(seq, values, "o-", label="measured")
        guide = values[-1] * (seq / seq[-1]) ** 2  # a line of slope 2 through the last point
        ax.loglog(seq, guide, "--", color="gray", label="∝ seq² (slope 2)")
        ax.set_xlabel("sequence length")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3, which="both")
    return axes
