"""Drawing primitives for the chapters' diagrams: boxes, arrows, token rows and matrices.

Every diagram is drawn by code on a white card with dark ink and the Okabe-Ito palette (safe
for colour-blind readers), so it reads the same in the book's light and dark modes and
renders identically on every run. A chapter draws its diagram in a cell whose input the book
hides (tag ``remove-input``) and whose metadata gives the figure a caption and alt text::

    {"tags": ["remove-input"],
     "mystnb": {"figure": {"caption": "...", "name": "fig-..."}, "image": {"alt": "..."}}}

Coordinates are in data units of a canvas ``width`` by ``height``; (0, 0) is bottom left.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

INK = "#1a1a1a"
MUTED = "#6b6b6b"
PAPER = "#ffffff"
# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
COLORS = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "red": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#BBBBBB",
}


def tint(color: str, amount: float = 0.75) -> str:
    """``color`` mixed with white (amount 0 keeps it, 1 gives white): fills that text reads on."""
    color = COLORS.get(color, color).lstrip("#")
    rgb = [int(color[i : i + 2], 16) for i in (0, 2, 4)]
    mixed = [round(c + (255 - c) * amount) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def canvas(width: float, height: float, scale: float = 0.9):
    """A figure and axes for a diagram: no axes drawn, equal aspect, a white card."""
    fig, ax = plt.subplots(figsize=(width * scale, height * scale))
    fig.patch.set_facecolor(PAPER)
    ax.set_facecolor(PAPER)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.99)
    return fig, ax


def box(ax, x, y, w, h, text="", color="grey", fontsize=10, bold=False, dashed=False):
    """A rounded box with its lower left corner at (x, y) and centred text; returns the patch."""
    patch = FancyBboxPatch(
        (x, y),
        w,
        h,
        boxstyle="round,pad=0.02,rounding_size=0.08",
        facecolor=tint(color),
        edgecolor=COLORS.get(color, color) if color != "grey" else MUTED,
        linewidth=1.4,
        linestyle="--" if dashed else "-",
    )
    ax.add_patch(patch)
    if text:
        weight = "bold" if bold else "normal"
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
                color=INK, weight=weight)  # fmt: skip
    return patch


def arrow(ax, start, end, text="", color=INK, width=1.3, style="-|>", rad=0.0, fontsize=9):
    """An arrow from ``start`` to ``end`` (x, y), optionally curved (``rad``) and labelled."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=12,
            color=COLORS.get(color, color),
            linewidth=width,
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=2,
            shrinkB=2,
        )
    )
    if text:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        ax.text(mx, my, text, ha="center", va="center", fontsize=fontsize, color=INK,
                bbox={"facecolor": PAPER, "edgecolor": "none", "pad": 1})  # fmt: skip


def label(ax, x, y, text, fontsize=10, color=INK, ha="center", va="center", **kwargs):
    """Plain text at (x, y)."""
    ax.text(x, y, text, ha=ha, va=va, fontsize=fontsize, color=COLORS.get(color, color), **kwargs)


def tokens(ax, x, y, words, w=0.9, h=0.5, gap=0.1, color="sky", fontsize=10):
    """A row of token boxes starting at (x, y); returns the centre (x, y) of each box."""
    centres = []
    for i, word in enumerate(words):
        left = x + i * (w + gap)
        box(ax, left, y, w, h, word, color=color, fontsize=fontsize)
        centres.append((left + w / 2, y + h / 2))
    return centres


def matrix(ax, x, y, values, cell=0.45, cmap="Blues", vmin=None, vmax=None, fmt="{:.2f}",
           row_labels=None, col_labels=None, fontsize=8, mask=None):  # fmt: skip
    """A grid of numbers (a list of rows) with its top-left corner at (x, y), coloured by value.

    ``mask`` (same shape, booleans) greys out the cells that are False. Returns the grid's
    (width, height)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    rows, cols = values.shape
    lo = np.nanmin(values) if vmin is None else vmin
    hi = np.nanmax(values) if vmax is None else vmax
    colormap = plt.get_cmap(cmap)
    for i in range(rows):
        for j in range(cols):
            left, top = x + j * cell, y - (i + 1) * cell
            blocked = mask is not None and not mask[i][j]
            share = 0.0 if hi == lo else (values[i, j] - lo) / (hi - lo)
            face = tint("grey", 0.3) if blocked else colormap(0.1 + 0.7 * share)
            ax.add_patch(plt.Rectangle((left, top), cell, cell, facecolor=face, edgecolor=PAPER))
            text = "" if blocked or fmt is None else fmt.format(values[i, j])
            ink = PAPER if share > 0.6 and not blocked else INK
            ax.text(left + cell / 2, top + cell / 2, text, ha="center", va="center",
                    fontsize=fontsize, color=ink)  # fmt: skip
    for i, name in enumerate(row_labels or []):
        ax.text(x - 0.08, y - (i + 0.5) * cell, name, ha="right", va="center",
                fontsize=fontsize + 1, color=INK)  # fmt: skip
    for j, name in enumerate(col_labels or []):
        ax.text(x + (j + 0.5) * cell, y + 0.08, name, ha="center", va="bottom", rotation=90,
                fontsize=fontsize + 1, color=INK)  # fmt: skip
    return cols * cell, rows * cell
