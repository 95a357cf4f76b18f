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


# The widest figure the book shows at its natural size (its content column is 720 CSS px;
# bertbook.figure_text): a diagram no wider keeps its texts' sizes on the page, and every text
# is at least MIN_FONT pt. A wider figure would be scaled down, and its texts with it.
MAX_WIDTH_IN = 7.2
MIN_FONT = 8


def canvas(width: float, height: float, scale: float = 0.9):
    """A figure and axes for a diagram: no axes drawn, equal aspect, a white card, at most
    ``MAX_WIDTH_IN`` wide (``scale`` inches per unit, less for a wide diagram)."""
    scale = min(scale, MAX_WIDTH_IN / width)
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


# ------------------------------------------------------------------ Chapters 4 and 5 (BERT)


def bert_input_embeddings(tokens, segments):
    """Chapter 4: BERT's input for one sequence, one row per position; each row is the sum of a
    token, a segment and a position embedding. ``tokens``: the token strings, ``segments``: 0 or 1
    for each. Rows, not columns, so that the labels stay readable at the page's width."""
    n, row, w = len(tokens), 0.62, 1.7
    fig, ax = canvas(11.6, n * row + 1.55, scale=0.62)
    cols = [("token", 1.9), ("segment", 4.3), ("position", 6.7)]
    for name, x in cols:
        label(ax, x + w / 2, n * row + 1.1, name, fontsize=10, weight="bold")
    label(ax, 10.35, n * row + 1.1, "input", fontsize=10, weight="bold")
    for i, word in enumerate(tokens):
        y = (n - 1 - i) * row + 0.55
        label(ax, 1.75, y + 0.24, word, ha="right", fontsize=10, weight="bold")
        texts = [f"E[{word}]", f"E_{'AB'[segments[i]]}", f"E_{i}"]
        colors = ["orange", "green" if segments[i] == 0 else "sky", "grey"]
        for (_, x), text, color in zip(cols, texts, colors):
            box(ax, x, y, w, 0.48, text, color=color, fontsize=9)
        for x in (3.6, 6.0):
            label(ax, x + 0.35, y + 0.24, "+", fontsize=11, color=MUTED)
        arrow(ax, (8.45, y + 0.24), (9.55, y + 0.24), color=MUTED, width=1.0)
        box(ax, 9.6, y, 1.5, 0.48, f"x_{i}", color="blue", fontsize=9)
    label(ax, 9.0, n * row + 1.1, "LayerNorm", fontsize=9, color=MUTED)
    label(ax, 5.8, 0.05, "one vector of width C per position: the input of layer 1", fontsize=9,
          va="bottom")  # fmt: skip
    return fig


def mlm_masking(tokens, chosen, replaced):
    """Chapter 4: BERT's masking on one sentence. ``chosen``: the positions picked (15%),
    ``replaced``: {position: what the model reads there} ([MASK] or a random token; a chosen
    position not in it is left unchanged). Labels hold the original token at chosen positions."""
    n, w, step, left = len(tokens), 0.95, 1.05, 2.3
    fig, ax = canvas(left + n * step + 0.2, 5.6, scale=0.6)
    for i, word in enumerate(tokens):
        x = left + i * step
        special = word.startswith("[") and word.endswith("]")
        box(ax, x, 4.5, w, 0.55, word, color="grey" if special else "sky", fontsize=9)
        picked = i in chosen
        seen = replaced.get(i, word)
        color = (
            ("orange" if seen == "[MASK]" else "purple" if seen != word else "green")
            if picked
            else "grey"
        )
        box(ax, x, 3.15, w, 0.55, seen, color=color, fontsize=9, bold=picked)
        box(ax, x, 1.8, w, 0.55, word if picked else "–", color="yellow" if picked else "grey",
            fontsize=9, dashed=not picked)  # fmt: skip
        if picked:
            arrow(ax, (x + w / 2, 4.48), (x + w / 2, 3.72), color=INK, width=1.0)
    for y, name in [(4.77, "text"), (3.42, "model reads"), (2.07, "labels")]:
        label(ax, left - 0.15, y, name, ha="right", fontsize=10)
    label(ax, 0.2, 1.2, "15% of the positions are chosen (never [CLS], [SEP], [PAD]); of those:",
          ha="left", fontsize=9)  # fmt: skip
    for k, (text, color) in enumerate([("80%: [MASK]", "orange"), ("10%: a random token", "purple"),
                                       ("10%: left unchanged", "green")]):  # fmt: skip
        box(ax, 0.4 + k * 4.6, 0.45, 0.35, 0.35, "", color=color)
        label(ax, 0.9 + k * 4.6, 0.62, text, ha="left", fontsize=9)
    label(ax, 0.2, 0.05, "the loss looks only where a label is given (– is ignored)", ha="left",
          va="bottom", fontsize=9)  # fmt: skip
    return fig


def classification_heads():
    """Chapter 4: two ways to turn an encoder's output into class logits: BERT's [CLS] vector
    through the pooler, and the mean of the token vectors used in the chapter."""
    fig, ax = canvas(12.4, 5.2, scale=0.6)
    for col, title in [(0.2, "BERT's classifier (the paper)"), (6.5, "this chapter's classifier")]:
        mid = col + 2.9
        label(ax, mid, 4.95, title, fontsize=11, weight="bold")
        label(ax, mid, 4.6, "encoder output: one vector per token, (B, T, C)", fontsize=8,
              color=MUTED)  # fmt: skip
        centres = tokens(ax, col, 3.85, ["[CLS]", "the", "film", "…", "[SEP]"], w=1.0, h=0.5,
                         gap=0.15, color="blue", fontsize=9)  # fmt: skip
        if col < 1:
            box(ax, mid - 1.3, 2.55, 2.6, 0.6, "pooler: tanh(W h + b)", color="orange", fontsize=9)
            arrow(ax, (centres[0][0], 3.83), (mid - 0.6, 3.17))
            label(ax, col + 0.1, 3.35, "[CLS] only", ha="left", fontsize=8)
            pooled = "(B, C)"
        else:
            box(ax, mid - 1.3, 2.55, 2.6, 0.6, "mean over real tokens", color="green", fontsize=9)
            for c in centres:
                arrow(ax, (c[0], 3.83), (mid, 3.17), color=MUTED, width=0.9)
            pooled = "(B, C), padding excluded"
        box(ax, mid - 1.3, 1.4, 2.6, 0.6, "dropout, linear C → 2", color="sky", fontsize=9)
        box(ax, mid - 1.3, 0.25, 2.6, 0.6, "logits (B, 2)", color="yellow", fontsize=9)
        arrow(ax, (mid, 2.53), (mid, 2.02))
        label(ax, mid + 0.12, 2.27, pooled, ha="left", fontsize=8)
        arrow(ax, (mid, 1.38), (mid, 0.87))
    return fig


def distillation(T=2.0, alpha=0.5):
    """Chapter 5: offline distillation. The teacher's logits, softened by the temperature T,
    are the soft target; the label is the hard target; the student's loss mixes the two."""
    fig, ax = canvas(14.9, 7.3, scale=0.5)
    o = 1.0  # room below for the gradient's path
    box(ax, 0.2, 2.95 + o, 2.0, 0.8, "a sentence", color="grey", fontsize=10)
    box(ax, 3.0, 4.6 + o, 2.8, 1.0, "teacher (6 layers)\nfine-tuned, frozen", color="blue",
        fontsize=9)  # fmt: skip
    box(ax, 3.0, 1.4 + o, 2.8, 1.0, "student (3 layers)\nfrom teacher's 0, 2, 4", color="green",
        fontsize=9)  # fmt: skip
    arrow(ax, (2.2, 3.55 + o), (3.0, 5.1 + o))
    arrow(ax, (2.2, 3.15 + o), (3.0, 1.9 + o))
    for y, text in [(4.7, f"softmax(z / T)\nT = {T:g}"), (2.7, f"softmax(z / T)\nT = {T:g}"),
                    (0.7, "softmax(z)\nT = 1")]:  # fmt: skip
        box(ax, 6.6, y + o, 2.0, 0.8, text, color="sky", fontsize=9)
    arrow(ax, (5.8, 5.1 + o), (6.6, 5.1 + o))
    label(ax, 6.2, 5.9 + o, "logits z", fontsize=8)
    arrow(ax, (5.8, 2.1 + o), (6.6, 3.1 + o))
    arrow(ax, (5.8, 1.7 + o), (6.6, 1.1 + o))
    box(ax, 9.3, 3.5 + o, 2.7, 1.1, "soft loss: T² ·\nKL(teacher ‖ student)", color="orange",
        fontsize=8)  # fmt: skip
    box(ax, 9.3, 0.6 + o, 2.7, 1.1, "hard loss\ncross-entropy with\nthe label y",
        color="purple", fontsize=8)  # fmt: skip
    arrow(ax, (8.6, 5.1 + o), (9.3, 4.3 + o))
    label(ax, 9.35, 4.95 + o, "soft target", ha="left", fontsize=8)
    arrow(ax, (8.6, 3.1 + o), (9.3, 3.8 + o))
    arrow(ax, (8.6, 1.1 + o), (9.3, 1.15 + o))
    box(ax, 12.4, 1.9 + o, 2.4, 1.8, f"loss =\nα · soft\n+ (1 − α) · hard\nα = {alpha:g}",
        color="red", fontsize=8, bold=True)  # fmt: skip
    arrow(ax, (12.0, 4.05 + o), (12.4, 3.4 + o))
    arrow(ax, (12.0, 1.15 + o), (12.4, 2.2 + o))
    arrow(ax, (13.5, 2.03 + o), (4.4, 1.38 + o), color="red", rad=-0.45)
    label(ax, 8.7, 0.25, "the gradient reaches the student only", fontsize=8, color="red")
    return fig


def task_heads(qa_tokens, start, end, tag_tokens, tags):
    """Chapter 4: two of the BERT paper's task heads (its Figure 4c and 4d) on one encoder.
    Above, question answering: a linear map C -> 2 at every token gives a start and an end
    logit (``start``, ``end``: one number per token of ``qa_tokens``, drawn as a heat row).
    Below, tagging: a linear map C -> n_tags at every token gives a tag (``tags``, one per token
    of ``tag_tokens``; "–" where nothing is predicted)."""
    fig, ax = canvas(12.0, 9.35, scale=0.6)
    step, w, left = 0.92, 0.84, 1.75

    def stack(y, words, head_text):
        """Token row at y, the encoder above it, the head above that; returns the x centres."""
        xs = [left + i * step + w / 2 for i in range(len(words))]
        for x, word in zip(xs, words):
            special = word.startswith("[") and word.endswith("]")
            box(ax, x - w / 2, y, w, 0.5, word, color="grey" if special else "sky", fontsize=8)
        right = xs[-1] + w / 2
        box(ax, left, y + 0.85, right - left, 0.6, "our BertEncoder (MiniLM's 6 layers)",
            color="blue", fontsize=9)  # fmt: skip
        box(ax, left, y + 1.8, right - left, 0.55, head_text, color="orange", fontsize=9)
        for x in xs:
            arrow(ax, (x, y + 0.52), (x, y + 0.83), color=MUTED, width=0.8)
            arrow(ax, (x, y + 1.47), (x, y + 1.78), color=MUTED, width=0.8)
        label(ax, 0.1, y + 0.25, "input", ha="left", fontsize=9)
        label(ax, 0.1, y + 1.15, "(B, T, C)", ha="left", fontsize=8, color=MUTED)
        return xs

    # Question answering (Figure 4c): question, then passage; start and end logits per token.
    label(ax, 0.1, 9.05, "question answering: a span head", ha="left", fontsize=10,
          weight="bold")  # fmt: skip
    xs = stack(4.9, qa_tokens, "linear C → 2 at every token")
    s, e = (max(range(len(v)), key=lambda i: v[i]) for v in (start, end))  # the two argmaxes
    for row, (name, values, best) in enumerate([("start", start, s), ("end", end, e)]):
        y = 7.6 + (1 - row) * 0.55
        label(ax, 0.1, y + 0.25, f"{name} (B, T)", ha="left", fontsize=8)
        lo, hi = min(values), max(values)
        for x, v in zip(xs, values):
            share = 0.0 if hi == lo else (v - lo) / (hi - lo)
            face = plt.get_cmap("Oranges")(0.05 + 0.75 * share)
            ax.add_patch(plt.Rectangle((x - w / 2, y), w, 0.5, facecolor=face, edgecolor=PAPER))
            ax.text(x, y + 0.25, f"{v:.1f}", ha="center", va="center", fontsize=8,
                    color=PAPER if share > 0.6 else INK)  # fmt: skip
        ax.add_patch(plt.Rectangle((xs[best] - w / 2, y), w, 0.5, fill=False,
                                   edgecolor=INK, linewidth=1.6))  # fmt: skip
    for x in xs:
        arrow(ax, (x, 7.27), (x, 7.58), color=MUTED, width=0.8)
    answer = " ".join(qa_tokens[s : e + 1]) if s <= e else "(none: end before start)"
    label(ax, 0.1, 4.55, f"answer: argmax of start to argmax of end = “{answer}”", ha="left",
          fontsize=9)  # fmt: skip

    # Tagging (Figure 4d): one tag per token.
    label(ax, 0.1, 3.95, "tagging: a token-classification head", ha="left", fontsize=10,
          weight="bold")  # fmt: skip
    xs = stack(0.35, tag_tokens, "dropout, linear C → n_tags")
    for x, tag in zip(xs, tags):
        box(ax, x - w / 2, 3.05, w, 0.5, tag, color="green" if tag != "–" else "grey",
            fontsize=8, dashed=tag == "–")  # fmt: skip
        arrow(ax, (x, 2.72), (x, 3.03), color=MUTED, width=0.8)
    label(ax, 0.1, 3.3, "tags (B, T)", ha="left", fontsize=8)
    return fig


# ---- Chapter 1 (sequence-to-sequence models and attention)


def seq2seq_bottleneck(source, target):
    """Chapter 1: an encoder-decoder without attention. The encoder reads ``source`` (words),
    its final state is one fixed vector, and the decoder writes ``target`` from that vector.
    Encoder above, decoder below, so that the figure fits the page with readable text."""
    step, w, up = 1.12, 0.98, 4.2  # column pitch, box width, the encoder row's lift
    n_enc, n_dec = len(source), len(target) + 1
    left_dec = 1.7
    mid = 0.3 + n_enc * step + 0.35  # the fixed vector sits right of the encoder
    fig, ax = canvas(max(mid + 3.6, left_dec + n_dec * step + 0.2), 7.3, scale=0.62)
    for i, word in enumerate(source):
        x = 0.3 + i * step
        box(ax, x, 0.35 + up, w, 0.5, word, color="sky", fontsize=9)
        box(ax, x, 1.55 + up, w, 0.6, "GRU", color="blue", fontsize=9)
        arrow(ax, (x + w / 2, 0.87 + up), (x + w / 2, 1.53 + up), color=MUTED, width=1.0)
        if i:
            arrow(ax, (x - step + w, 1.85 + up), (x, 1.85 + up), color=INK, width=1.0)
    label(ax, 0.3 + n_enc * step / 2, 2.6 + up, "encoder: reads the French words", fontsize=10)
    box(ax, mid, 1.35 + up, 1.3, 1.0, "one fixed\nvector", color="red", fontsize=10, bold=True)
    arrow(ax, (mid - 0.35 - step + w + 0.1, 1.85 + up), (mid, 1.85 + up), color="red", width=1.8)
    label(ax, mid + 1.45, 1.85 + up, "all the decoder\never sees of\nthe source", fontsize=9,
          color="red", ha="left")  # fmt: skip
    # the only path to the decoder: down from the vector, left, and into its first step
    path_y = 3.75
    ax.plot([mid + 0.65, mid + 0.65, left_dec - 0.45, left_dec - 0.45],
            [1.33 + up, path_y, path_y, 1.85], color=COLORS["red"], lw=1.8)  # fmt: skip
    arrow(ax, (left_dec - 0.46, 1.85), (left_dec, 1.85), color="red", width=1.8)
    inputs, outputs = ["<s>", *target], [*target, "</s>"]
    for i in range(n_dec):
        x = left_dec + i * step
        box(ax, x, 1.55, w, 0.6, "GRU", color="green", fontsize=9)
        box(ax, x, 0.35, w, 0.5, inputs[i], color="grey", fontsize=9)
        box(ax, x, 2.85, w, 0.5, outputs[i], color="yellow", fontsize=9)
        arrow(ax, (x + w / 2, 0.87), (x + w / 2, 1.53), color=MUTED, width=1.0)
        arrow(ax, (x + w / 2, 2.17), (x + w / 2, 2.83), color=MUTED, width=1.0)
        if i:
            arrow(ax, (x - step + w, 1.85), (x, 1.85), color=INK, width=1.0)
    label(ax, left_dec + n_dec * step / 2, 3.95, "decoder: writes English, one word a step",
          fontsize=10, va="bottom")  # fmt: skip
    label(ax, left_dec - 0.1, 0.6, "previous\nword", ha="right", fontsize=9, color=MUTED)
    return fig


def attention_average(source, weights=None, output=None):
    """Chapter 1: one decoder step of additive attention over the encoder states of ``source``.
    The decoder state scores every encoder state, a softmax turns the scores into weights, and the
    context is the weighted average. ``weights`` (one per source word, from a trained model)
    sets the bars and arrows; without them the weights are drawn as symbols. ``output``: the
    word this step writes."""
    n, step, w, left = len(source), 1.12, 0.98, 2.3
    right = left + n * step
    fig, ax = canvas(right + 3.4, 6.4, scale=0.55)  # fits the page: no text under 8 pt there
    centres = [left + i * step + w / 2 for i in range(n)]
    mid = left + n * step / 2
    for i, word in enumerate(source):
        x = left + i * step
        box(ax, x, 0.25, w, 0.45, word, color="sky", fontsize=8)
        box(ax, x, 1.05, w, 0.5, f"h{i + 1}", color="blue", fontsize=9)
        box(ax, x, 2.2, w, 0.5, f"e{i + 1}", color="orange", fontsize=9)
        arrow(ax, (centres[i], 0.72), (centres[i], 1.03), color=MUTED, width=0.9)
        arrow(ax, (centres[i], 1.57), (centres[i], 2.18), color=MUTED, width=0.9)
        arrow(ax, (centres[i], 2.72), (centres[i], 3.23), color=MUTED, width=0.9)
        if weights is None:
            box(ax, x, 3.25, w, 0.5, f"α{i + 1}", color="purple", fontsize=9)
            top, share = 3.77, 1.0
        else:
            share = float(weights[i])
            height = 0.04 + share
            ax.add_patch(plt.Rectangle((x + 0.2, 3.25), w - 0.4, height, color=COLORS["purple"]))
            label(ax, centres[i], 3.25 + height + 0.14, f"{share:.2f}", fontsize=9)
            top = 3.25 + height + 0.3
        arrow(ax, (centres[i], top), (mid, 5.3), color="purple", width=0.4 + 2.6 * share)
    box(ax, 0.15, 2.85, 1.9, 0.7, "decoder state\ns (step i − 1)", color="green",
        fontsize=9)  # fmt: skip
    ax.plot([2.05, right - 0.1], [2.95, 2.95], color=COLORS["green"], lw=1.2)
    for c in centres:
        arrow(ax, (c, 2.95), (c, 2.72), color="green", width=1.0)
    label(ax, 0.15, 0.47, "source words", ha="left", fontsize=9)
    label(ax, 0.15, 1.3, "encoder\nstates", ha="left", fontsize=9)
    notes = [(2.45, "scores:\ne = v · tanh(W s + U h)"), (3.5, "weights: α = softmax(e),\nthey sum to 1"),
             (5.6, "the weighted average\nof the encoder states")]  # fmt: skip
    for y, text in notes:
        label(ax, right + 0.15, y, text, ha="left", fontsize=9, color=MUTED)
    text = "context c = Σ α h" + (f"   →  writes “{output}”" if output else "")
    box(ax, mid - 2.6, 5.3, 5.2, 0.6, text, color="purple", fontsize=9, bold=True)
    return fig


def decoder_step():
    """Chapter 1: one step of the decoder with attention, as ``Seq2Seq.step`` computes it. The
    previous state is the query; attention over the encoder states gives the context c(i), which
    goes to two places: the GRU cell's input, beside the previous word's embedding, and the
    output layer, beside the new state."""
    fig, ax = canvas(12.0, 6.6, scale=0.6)  # 7.2 in wide: 9-pt text stays above 8 pt
    for i, name in enumerate(["h1", "h2", "…", "hS"]):
        box(ax, 0.3 + i * 0.85, 0.35, 0.75, 0.55, name, color="blue", fontsize=9)
    label(ax, 1.9, 1.25, "encoder states\n(keys and values)", fontsize=9, color=MUTED)
    box(ax, 0.3, 3.65, 2.3, 0.85, "state s(i − 1)\n(the query)", color="green", fontsize=9)
    box(ax, 3.9, 1.5, 2.6, 1.0, "attention: scores,\nsoftmax, average", color="purple",
        fontsize=9)  # fmt: skip
    arrow(ax, (3.65, 0.65), (3.95, 1.55), color=MUTED)
    arrow(ax, (1.45, 3.63), (4.4, 2.52), color="green")
    box(ax, 7.0, 1.62, 1.9, 0.75, "context c(i)", color="purple", fontsize=9, bold=True)
    arrow(ax, (6.5, 2.0), (7.0, 2.0), color="purple")
    box(ax, 3.7, 5.45, 2.6, 0.8, "previous word\n(its embedding)", color="grey", fontsize=9)
    box(ax, 7.0, 3.65, 1.9, 0.85, "GRU cell", color="green", fontsize=10, bold=True)
    arrow(ax, (6.3, 5.85), (7.6, 4.52), color=INK)
    arrow(ax, (2.6, 4.07), (7.0, 4.07), color="green")
    arrow(ax, (7.95, 2.39), (7.95, 3.63), color="red", width=2.2)
    label(ax, 7.8, 3.05, "cell input:\n[embedding ; c(i)]", ha="right", fontsize=9, color="red")
    box(ax, 9.7, 3.65, 2.0, 0.85, "state s(i)", color="green", fontsize=9)
    arrow(ax, (8.9, 4.07), (9.7, 4.07), color="green")
    label(ax, 10.7, 4.85, "to the next step", fontsize=9, color=MUTED)
    box(ax, 9.7, 1.62, 2.0, 0.75, "linear →\nlogits (V)", color="orange", fontsize=9)
    arrow(ax, (10.7, 3.63), (10.7, 2.39), color="green")
    arrow(ax, (8.9, 2.0), (9.7, 2.0), color="red", width=2.2)
    label(ax, 9.15, 2.85, "output layer\nreads [s(i) ; c(i)]", fontsize=9, color="red")
    box(ax, 9.7, 0.3, 2.0, 0.6, "next word", color="yellow", fontsize=9)
    arrow(ax, (10.7, 1.6), (10.7, 0.92), color=MUTED)
    return fig


# ---- Chapter 3 (tokenizers)


def bpe_merges(words, counts, merges, segmentations):
    """Chapter 3: BPE on a tiny corpus. ``words`` and their ``counts``; ``merges``, the pairs
    learned in order; ``segmentations[k]``: each word's symbols after the first k merges (k = 0:
    characters). The symbol a merge creates is highlighted in the row of that merge."""
    rows, char_w, gap, left = len(segmentations), 0.34, 0.55, 2.6
    widths = [len(w) * (char_w + 0.06) + 0.2 for w in words]
    fig, ax = canvas(left + sum(widths) + gap * len(words), 1.0 + 0.72 * rows, scale=0.7)
    top = 0.72 * rows + 0.3
    x = left
    starts = []
    for word, count, width in zip(words, counts, widths):
        starts.append(x)
        label(ax, x + width / 2, top + 0.35, f"{word} ×{count}", fontsize=9, weight="bold")
        x += width + gap
    for k, segmentation in enumerate(segmentations):
        y = top - 0.72 * (k + 1) + 0.12
        new = "".join(merges[k - 1]) if k else None
        name = "characters" if k == 0 else f"{k}: {merges[k - 1][0]} + {merges[k - 1][1]}"
        label(ax, left - 0.25, y + 0.25, name, ha="right", fontsize=9)
        for start, symbols in zip(starts, segmentation):
            x = start
            for symbol in symbols:
                w = len(symbol) * (char_w + 0.06) - 0.06
                box(ax, x, y, w, 0.5, symbol, color="orange" if symbol == new else "sky",
                    fontsize=9, bold=symbol == new)  # fmt: skip
                x += w + 0.06
    label(ax, left - 0.25, top + 0.35, "merge", ha="right", fontsize=9, color=MUTED)
    return fig


def wordpiece_search(word, steps):
    """Chapter 3: WordPiece's greedy longest-match-first split of ``word``. ``steps``: one list
    per piece found, of (candidate, in the vocabulary?) in the order tried, longest first."""
    cols, col_w = len(steps), max(2.3, 0.3 * len(word) + 0.6)
    height = max(len(s) for s in steps)
    fig, ax = canvas(0.3 + cols * (col_w + 0.5), 2.4 + 0.6 * height, scale=0.7)
    top = 1.6 + 0.6 * height
    pieces = []
    for j, tried in enumerate(steps):
        x = 0.3 + j * (col_w + 0.5)
        rest = tried[0][0].removeprefix("##")
        label(ax, x + col_w / 2, top + 0.4, f"step {j + 1}: longest vocabulary\npiece at the start of “{rest}”",
              fontsize=8)  # fmt: skip
        for k, (candidate, found) in enumerate(tried):
            y = top - 0.6 * (k + 1)
            box(ax, x, y, col_w, 0.45, candidate + ("  ✓" if found else "  ✗"),
                color="green" if found else "grey", fontsize=9, bold=found, dashed=not found)  # fmt: skip
            if found:
                pieces.append(candidate)
                if j + 1 < cols:
                    arrow(ax, (x + col_w, y + 0.22), (x + col_w + 0.5, top - 0.38), color=INK)
    label(ax, 0.3, 0.95, "✗ not in the vocabulary (grey, dashed)    ✓ in the vocabulary: kept",
          ha="left", fontsize=8, color=MUTED)  # fmt: skip
    label(ax, 0.3, 0.4, f"{word}  →  " + "  ".join(pieces), ha="left", fontsize=10,
          weight="bold")  # fmt: skip
    return fig


# ---------------------------------------------------------------------- Chapter 6 (GPT-2)


def causal_mask_grid(words, mask):
    """Chapter 6: the causal mask as a T×T grid. ``words``: the T tokens, ``mask``: T×T booleans
    (True where query position t may attend to key position s), e.g. a ``tril`` tensor."""
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    n, cell, left = len(words), 0.6, 2.1
    top = n * cell + 0.2
    fig, ax = canvas(left + n * cell + 3.9, top + 1.55, scale=0.8)
    names = [f"{i}: {w!r}" for i, w in enumerate(words)]
    matrix(ax, left, top, mask.astype(float), cell=cell, vmin=0, vmax=1, fmt=None,
           row_labels=names, col_labels=names, fontsize=8, mask=mask)  # fmt: skip
    label(ax, left + n * cell / 2, top + 1.35, "key position s (what may be read)", fontsize=9)
    label(ax, 0.25, top - n * cell / 2, "query position t", fontsize=9, rotation=90)
    right = left + n * cell + 0.35
    for k, (face, text) in enumerate([(plt.get_cmap("Blues")(0.8), "allowed: s ≤ t"),
                                      (tint("grey", 0.3), "masked: s > t (the future)")]):  # fmt: skip
        y = top - 0.6 - k * 0.55
        ax.add_patch(plt.Rectangle((right, y), 0.35, 0.35, facecolor=face, edgecolor=PAPER))
        label(ax, right + 0.5, y + 0.17, text, ha="left", fontsize=9)
    label(ax, right, top - 2.1, f"row {n - 1} reads {int(mask[-1].sum())} positions,\n"
          f"row 0 reads {int(mask[0].sum())}", ha="left", fontsize=9)  # fmt: skip
    return fig


def kv_cache(words, n_prompt):
    """Chapter 6: generation with a key-value cache. Step 1 reads the ``n_prompt`` first tokens of
    ``words``; each later step reads one new token and computes only its query, key and value,
    while the keys and values of all earlier tokens come from the cache."""
    n, cw, left = len(words), 1.25, 2.6
    steps = n - n_prompt + 1
    height = 1.25 + steps * 0.95 + 1.0
    fig, ax = canvas(left + n * cw + 2.9, height, scale=0.72)
    top = height - 0.45
    for j, word in enumerate(words):
        label(ax, left + j * cw + cw / 2, top, repr(word), fontsize=9, weight="bold")
    for s in range(steps):
        y = top - 0.95 - s * 0.95
        seen, new = n_prompt + s, (range(n_prompt) if s == 0 else [n_prompt + s - 1])
        label(ax, left - 0.15, y + 0.2, f"step {s + 1}", ha="right", fontsize=9)
        for j in range(seen):
            x, computed = left + j * cw + 0.05, j in new
            for slot, name in enumerate("qkv"):
                if name == "q" and not computed:
                    continue  # a past query is never needed again
                color = {"q": "orange", "k": "green", "v": "sky"}[name] if computed else "grey"
                box(ax, x + slot * 0.38, y, 0.34, 0.4, name, color=color, fontsize=8,
                    dashed=not computed)  # fmt: skip
        n_new = len(new)
        label(ax, left + n * cw + 0.2, y + 0.2,
              f"computes {n_new} token{'s' if n_new > 1 else ''},\nreads {seen - n_new} from cache"
              if s else f"computes the\nprompt's {n_new} tokens", ha="left", fontsize=8)  # fmt: skip
    y, x = 0.35, 0.3
    for text, color, dashed in [("query, computed this step", "orange", False),
                                ("key and value, computed", "green", False),
                                ("key and value, from the cache", "grey", True)]:  # fmt: skip
        box(ax, x, y, 0.34, 0.34, "", color=color, dashed=dashed)
        label(ax, x + 0.45, y + 0.17, text, ha="left", fontsize=8)
        x += 1.0 + 0.17 * len(text)  # room for the 8-pt text
    return fig


def _prenorm_stack(ax, x, y, w, blocks):
    """Pre-norm sublayers from the bottom up at (x, y): a LayerNorm, the block, then the sum with
    the block's input (the residual), which leaves the main path before the LayerNorm and so
    skips it. ``blocks``: (text, colour, LayerNorm label). Returns the y of the stack's top."""
    h, norm_h, add_h, step = 0.75, 0.45, 0.45, 0.3
    for text, color, norm in blocks:
        arrow(ax, (x + w / 2, y), (x + w / 2, y + step))
        start = y + 0.12  # where the residual leaves the main path: before the LayerNorm
        y += step
        box(ax, x, y, w, norm_h, norm, color="yellow", fontsize=9)
        arrow(ax, (x + w / 2, y + norm_h), (x + w / 2, y + norm_h + step))
        y += norm_h + step
        box(ax, x, y, w, h, text, color=color, fontsize=9)
        arrow(ax, (x + w / 2, y + h), (x + w / 2, y + h + step))
        y += h + step
        box(ax, x, y, w, add_h, "add:  x + block", color="grey", fontsize=9)
        side = x + w + 0.35  # the residual: around the LayerNorm and the block into the add
        ax.plot([x + w / 2, side, side], [start, start, y + add_h / 2], color=INK, lw=1.2)
        arrow(ax, (side, y + add_h / 2), (x + w + 0.02, y + add_h / 2))
        y += add_h
    return y


def pre_and_post_norm(n_layer=12, d_ff_post=128):
    """Chapter 6: Chapter 2's post-norm layer beside GPT-2's pre-norm block. Post-norm puts a
    LayerNorm on the main path after every sum; pre-norm puts it at the start of each branch, so
    the residual path from the embeddings to the last block passes through no LayerNorm, and
    GPT-2 adds one final LayerNorm (``ln_f``) before the tied output layer."""
    fig, ax = canvas(12.6, 9.3, scale=0.6)
    w, px, gx = 3.9, 0.3, 6.9  # box width, the post-norm column, the GPT-2 column
    for x, title, rule, note in [
        (px, "Chapter 2's layer: post-norm", "x = LayerNorm(x + block(x))",
         "a LayerNorm on the main path\nafter every sum"),
        (gx, "GPT-2's block: pre-norm", "x = x + block(LayerNorm(x))",
         "the main path meets no\nLayerNorm until ln_f"),
    ]:  # fmt: skip
        label(ax, x + w / 2, 9.0, title, fontsize=11, weight="bold")
        label(ax, x + w / 2, 8.55, rule, fontsize=9)
        label(ax, x + w / 2, 7.95, note, fontsize=9, color="red")
    box(ax, px, 0.2, w, 0.55, "embeddings + positions", color="grey", fontsize=9)
    top, _ = _sublayer_stack(ax, px, 0.75, w, [("self-attention", "sky"),
                             (f"feed-forward\nC → {d_ff_post} → C, ReLU", "orange")])  # fmt: skip
    arrow(ax, (px + w / 2, top), (px + w / 2, top + 0.4))
    label(ax, px + w / 2, top + 0.65, "to the next layer", fontsize=9)
    box(ax, gx, 0.2, w, 0.55, "wte[token] + wpe[position]", color="grey", fontsize=9)
    blocks = [("causal self-attention (attn)", "sky", "ln_1: LayerNorm"),
              ("MLP (c_fc, c_proj)\nC → 4C → C, GELU (tanh)", "orange", "ln_2: LayerNorm")]  # fmt: skip
    top = _prenorm_stack(ax, gx, 0.75, w, blocks)
    bracket = gx + w + 0.75  # the blocks repeat n_layer times
    ax.plot([bracket - 0.12, bracket, bracket, bracket - 0.12], [0.85, 0.85, top, top],
            color=MUTED, lw=1.2)  # fmt: skip
    label(ax, bracket + 0.12, (0.85 + top) / 2, f"× {n_layer}", ha="left", fontsize=10)
    arrow(ax, (gx + w / 2, top), (gx + w / 2, top + 0.3))
    box(ax, gx, top + 0.3, w, 0.45, "ln_f: final LayerNorm", color="yellow", fontsize=9)
    arrow(ax, (gx + w / 2, top + 0.75), (gx + w / 2, top + 1.05))
    box(ax, gx, top + 1.05, w, 0.55, "logits = x · wteᵀ (tied)", color="blue", fontsize=9)
    return fig


def sampling_filters(probs, words, temperature=1.5, k=10, p=0.9):
    """Chapter 6: what temperature, top-k and top-p do to one next-token distribution.

    ``probs``: the whole distribution sorted from most to least likely (sums to 1), ``words``:
    the strings of the first tokens, as many as are drawn. Temperature τ gives each token
    probability proportional to ``probs ** (1 / τ)`` (the same as dividing the logits by τ)."""
    import numpy as np

    probs = np.asarray(probs, dtype=float)
    n = len(words)
    hot = probs ** (1 / temperature)
    hot /= hot.sum()
    cum = np.cumsum(probs)
    nucleus = int(np.searchsorted(cum - probs, p, side="left"))  # mass before a token < p
    x = np.arange(n)
    fig, axes = plt.subplots(3, 1, figsize=(MAX_WIDTH_IN, 7.2), sharex=True)
    fig.patch.set_facecolor(PAPER)
    top, mid, bottom = axes
    top.bar(x - 0.2, probs[:n], 0.4, color=COLORS["blue"], label="τ = 1 (the model)")
    top.bar(x + 0.2, hot[:n], 0.4, color=COLORS["orange"], label=f"τ = {temperature:g}")
    top.set_title(f"temperature τ = {temperature:g}: the likely tokens lose probability, "
                  "the rest gain it", fontsize=10, loc="left")  # fmt: skip
    top.legend(fontsize=9, frameon=False)
    for ax, keep, title in [
        (mid, k, f"top-k (k = {k}): keep the {k} most likely tokens"),
        (bottom, nucleus, f"top-p (p = {p:g}): keep the most likely tokens until their "
                          f"probabilities add up to p: {nucleus} tokens"),
    ]:  # fmt: skip
        colors = [COLORS["blue"] if i < keep else COLORS["grey"] for i in range(n)]
        ax.bar(x, probs[:n], 0.7, color=colors)
        ax.set_title(title, fontsize=10, loc="left")
        if keep < n:
            ax.axvline(keep - 0.5, color=COLORS["red"], ls="--", lw=1.3)
        else:
            ax.text(0.98, 0.25, f"the cut comes after token {keep}: further right", ha="right",
                    transform=ax.transAxes, fontsize=9, color=COLORS["red"])  # fmt: skip
    twin = bottom.twinx()
    twin.step(x, cum[:n], where="mid", color=COLORS["green"], lw=1.5)
    twin.axhline(p, color=COLORS["green"], ls=":", lw=1)
    twin.set_ylim(0, 1.02)
    twin.set_ylabel("cumulative probability", fontsize=9, color=COLORS["green"])
    twin.tick_params(labelsize=9)
    for ax in axes:
        ax.set_ylabel("probability", fontsize=9)
        ax.tick_params(labelsize=9)
        ax.set_facecolor(PAPER)
        ax.spines[["top", "right"]].set_visible(False)
    bottom.set_xticks(x, [repr(w)[1:-1] for w in words], rotation=90, fontsize=9)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ Chapter 2 (Transformer)


def attention_worked_example(words, x, q, k, v, scores, weights, out):
    """Chapter 2: one attention step on a few tokens, every number computed by the chapter.

    ``x`` (T, C): the tokens' vectors; ``q``, ``k``, ``v`` (T, hs): their learned projections;
    ``scores`` (T, T): q k^T / sqrt(hs); ``weights`` (T, T): the row-wise softmax; ``out``
    (T, hs): weights @ v. Rows are the tokens, in order."""
    import numpy as np

    x, q, k, v, scores, weights, out = (np.asarray(a, dtype=float)
                                        for a in (x, q, k, v, scores, weights, out))  # fmt: skip
    T, C = x.shape
    hs, cell = q.shape[1], 0.8
    # Two rows, so that the numbers are 8 pt on the page: x and its projections q, k, v above;
    # scores, weights and the output below.
    y1, y2 = 8.2, 4.0  # the top edges of the two rows of grids
    xx, qx = 1.0, 1.0 + C * cell + 1.4
    kx, vx = qx + hs * cell + 0.7, qx + 2 * (hs * cell + 0.7)
    fig, ax = canvas(vx + hs * cell + 0.4, 9.0, scale=0.62)

    def grid(gx, gy, values, title, cmap, lift=0.35, **kw):
        label(ax, gx + values.shape[1] * cell / 2, gy + lift, title, fontsize=9, weight="bold")
        return matrix(ax, gx, gy, values, cell=cell, cmap=cmap, fontsize=8, **kw)

    grid(xx, y1, x, f"x: {T} tokens, C = {C}", "Greys", row_labels=words)
    for (name, values), gx, cmap in zip(
        [("q", q), ("k", k), ("v", v)], [qx, kx, vx], ["Oranges", "Greens", "Purples"]
    ):
        grid(gx, y1, values, f"{name} = x W_{name.upper()}", cmap)
    row1 = y1 - T * cell / 2
    arrow(ax, (xx + C * cell + 0.05, row1), (qx - 0.1, row1))
    label(ax, (xx + C * cell + qx) / 2, row1 + 0.45, "three\nprojections", fontsize=8)
    sx, wx = xx, xx + T * cell + 1.6
    ox = wx + T * cell + 1.5
    grid(sx, y2, scores, "scores = q kᵀ / √hs", "Greys", lift=1.15, row_labels=words,
         col_labels=words)  # fmt: skip
    low = y1 - T * cell - 0.05  # the bottom edge of the first row
    arrow(ax, (qx + hs * cell / 2, low), (sx + T * cell * 0.7, y2 + 1.5), color=COLORS["orange"])
    arrow(ax, (kx + hs * cell / 2, low), (sx + T * cell, y2 + 1.5), color=COLORS["green"])
    grid(wx, y2, weights, "weights", "Blues", lift=1.15, vmin=0, vmax=1, col_labels=words)
    row2 = y2 - T * cell / 2
    arrow(ax, (sx + T * cell + 0.05, row2), (wx - 0.05, row2), "softmax\nof each\nrow",
          fontsize=8)  # fmt: skip
    label(ax, wx + T * cell / 2, y2 - T * cell - 0.35, "each row sums to 1", fontsize=8,
          color=MUTED)  # fmt: skip
    grid(ox, y2, out, "output =\nweights v", "Purples", lift=0.55)
    arrow(ax, (wx + T * cell + 0.05, row2), (ox - 0.05, row2), color=COLORS["blue"])
    arrow(ax, (vx + hs * cell / 2, low), (ox + hs * cell / 2, y2 + 1.05), color=COLORS["purple"])
    label(ax, ox + hs * cell / 2, y2 - T * cell - 0.75, "row i: the average\nof v's rows, "
          "weighted\nby row i of weights", fontsize=8, color=MUTED)  # fmt: skip
    return fig


def multi_head_split_merge(T, C, nh):
    """Chapter 2: multi-head attention's reshapes for a sequence of length ``T``, width ``C`` and
    ``nh`` heads of size hs = C / nh: split the projected (B, T, C) into (B, nh, T, hs), attend in
    each head, concatenate back to (B, T, C) and mix the heads with the output projection."""
    hs = C // nh
    palette = ["orange", "sky", "green", "purple", "yellow", "blue", "red", "grey"]
    colors = [palette[h % len(palette)] for h in range(nh)]
    row, band, gap = 0.22, 0.45, 0.32
    stack = nh * T * row + (nh - 1) * gap
    height = stack + 1.6
    height += 0.6  # room for the two rows of labels above
    hx, ax_, ox, cx, px, rx = 3.2, 5.2, 7.4, 9.2, 11.5, 13.6  # the columns, left to right
    fig, ax = canvas(rx + nh * band + 0.3, height, scale=0.66)
    top = height - 1.5
    mid = top - stack / 2

    def wide(gx, title, fill=None):
        gy = mid + T * row / 2  # a (T, C) block: nh bands of hs columns side by side
        for h in range(nh):
            box(ax, gx + h * band, gy - T * row, band, T * row, "", color=fill or colors[h])
        label(ax, gx + nh * band / 2, gy + 0.5, title, fontsize=9)

    wide(0.3, "q, k or v\n(B, T, C)")
    label(ax, 0.3 + nh * band / 2, mid - T * row / 2 - 0.3, f"C = {C} = {nh} × {hs}", fontsize=8)
    for h in range(nh):
        gy = top - h * (T * row + gap)
        cy = gy - T * row / 2
        box(ax, hx, gy - T * row, band, T * row, "", color=colors[h])
        label(ax, hx + band + 0.1, cy, f"head {h + 1}\n(T, hs)", ha="left", fontsize=8)
        arrow(ax, (0.3 + (h + 0.5) * band, mid), (hx - 0.05, cy), color=COLORS[colors[h]],
              width=1.0)  # fmt: skip
        box(ax, ax_, cy - 0.28, 1.8, 0.56, "attention", color=colors[h], fontsize=9)
        box(ax, ox, gy - T * row, band, T * row, "", color=colors[h])
        arrow(ax, (ax_ + 1.8, cy), (ox - 0.05, cy))
        arrow(ax, (ox + band, cy), (cx - 0.05, mid), color=COLORS[colors[h]], width=1.0)
    label(ax, (0.3 + nh * band + hx) / 2, top + 0.45, "split_heads:\nview, transpose(1, 2)",
          fontsize=8)  # fmt: skip
    label(ax, ax_ + 0.9, top + 1.15, f"(B, nh, T, hs) = (B, {nh}, T, {hs})", fontsize=8)
    label(ax, (ox + band + cx) / 2 + 0.3, top + 0.45, "merge_heads:\ntranspose, reshape",
          fontsize=8)  # fmt: skip
    wide(cx, "concatenated\n(B, T, C)")
    box(ax, px, mid - 0.4, 1.6, 0.8, "out_proj\nC → C", color="blue", fontsize=9)
    arrow(ax, (cx + nh * band, mid), (px - 0.05, mid))
    wide(rx, "output\n(B, T, C)", fill="blue")
    arrow(ax, (px + 1.6, mid), (rx - 0.05, mid))
    label(ax, px + 0.8, mid - 0.75, "mixes the heads", fontsize=8, color=MUTED)
    return fig


def _sublayer_stack(ax, x, y, w, blocks):
    """Post-norm sublayers from the bottom up at (x, y): each block, then "add & LayerNorm" with
    a residual path around the block. ``blocks``: (text, colour, side input or None). Returns
    the y of the stack's top and the centre of every block (for side inputs)."""
    h, norm_h, step = 0.75, 0.45, 0.35
    centres = []
    for text, color in blocks:
        arrow(ax, (x + w / 2, y), (x + w / 2, y + step))
        start = y + 0.12  # where the residual leaves the main path
        y += step
        box(ax, x, y, w, h, text, color=color, fontsize=9)
        centres.append((x, y + h / 2))
        arrow(ax, (x + w / 2, y + h), (x + w / 2, y + h + step))
        y += h + step
        box(ax, x, y, w, norm_h, "add & LayerNorm", color="yellow", fontsize=9)
        side = x + w + 0.35  # the residual: around the block's right side into the add
        ax.plot([x + w / 2, side, side], [start, start, y + norm_h / 2], color=INK, lw=1.2)
        arrow(ax, (side, y + norm_h / 2), (x + w + 0.02, y + norm_h / 2))
        y += norm_h
    return y, centres


def transformer_layers(d_ff=128, n_enc=2, n_dec=2):
    """Chapter 2: one encoder layer and one decoder layer, post-norm as in Vaswani et al.: every
    block is followed by the sum with its input (the residual) and a LayerNorm."""
    fig, ax = canvas(13.2, 9.2, scale=0.62)
    w = 4.0
    ex, dx = 0.6, 8.3
    ff = f"feed-forward, each position\nC → {d_ff} → C, ReLU"
    top, _ = _sublayer_stack(ax, ex, 1.0, w, [("self-attention\n(padding mask)", "sky"),
                                            (ff, "orange")])  # fmt: skip
    dtop, centres = _sublayer_stack(ax, dx, 1.0, w, [
        ("masked self-attention\n(causal & padding mask)", "sky"),
        ("cross-attention: q from here,\nk and v from the encoder", "green"),
        (ff, "orange")])  # fmt: skip
    box(ax, ex, 0.2, w, 0.55, "source embeddings + positions", color="grey", fontsize=9)
    box(ax, dx, 0.2, w, 0.55, "target embeddings + positions", color="grey", fontsize=9)
    arrow(ax, (ex + w / 2, 0.75), (ex + w / 2, 1.0))
    arrow(ax, (dx + w / 2, 0.75), (dx + w / 2, 1.0))
    arrow(ax, (ex + w / 2, top), (ex + w / 2, top + 0.45))
    label(ax, ex + w / 2, top + 0.85, "encoder output\n(memory), (B, S, C)", fontsize=9)
    arrow(ax, (dx + w / 2, dtop), (dx + w / 2, dtop + 0.45))
    label(ax, dx + w / 2, dtop + 0.7, "to the next layer, then the output layer", fontsize=9)
    cy, turn = centres[1][1], ex + w + 1.4  # the encoder's output feeds every cross-attention
    ax.plot([ex + w - 0.6, turn, turn], [top + 0.7, top + 0.7, cy], color=COLORS["green"], lw=1.4)
    arrow(ax, (turn, cy), (dx - 0.02, cy), color=COLORS["green"])
    label(ax, ex + w / 2, top + 1.65, f"encoder layer (× {n_enc})", fontsize=11, weight="bold")
    label(ax, dx + w / 2, dtop + 1.05, f"decoder layer (× {n_dec})", fontsize=11, weight="bold")
    label(ax, 0.3, top + 2.7, "post-norm (this chapter):  x = LayerNorm(x + block(x))\n"
          "pre-norm (GPT-2, Chapter 6):  x = x + block(LayerNorm(x))", fontsize=9, color=MUTED,
          ha="left")  # fmt: skip
    return fig


def attention_masks(panels):
    """Chapter 2: attention masks as matrices, queries down, keys across; a coloured cell is
    allowed (True), a grey one blocked. ``panels``: (title, query tokens, key tokens, mask)."""
    cell, gap = 0.5, 1.6
    widths = [len(keys) * cell for _, _, keys, _ in panels]
    tallest = max(len(queries) for _, queries, _, _ in panels) * cell
    fig, ax = canvas(sum(widths) + gap * len(panels) + 0.4, tallest + 2.9, scale=0.72)
    x, top = 1.4, tallest + 1.3
    for (title, queries, keys, mask), width in zip(panels, widths):
        mask = [[bool(m) for m in row] for row in mask]
        matrix(ax, x, top, [[1.0] * len(keys) for _ in queries], cell=cell, cmap="Blues",
               vmin=0, vmax=2, fmt=None, row_labels=queries, col_labels=keys, mask=mask)  # fmt: skip
        label(ax, x + width / 2, top + 1.25, title, fontsize=9, weight="bold")
        x += width + gap
    label(ax, 1.4, 0.35, "rows: queries; columns: keys.  blue: may attend (True)   grey: blocked "
          "(False)", fontsize=9, ha="left", color=MUTED)  # fmt: skip
    return fig
