"""The drawing primitives draw deterministically on a white card."""

import io

import matplotlib

matplotlib.use("Agg")

from bertbook import diagrams  # noqa: E402


def _draw() -> bytes:
    fig, ax = diagrams.canvas(6, 3)
    centres = diagrams.tokens(ax, 0.2, 2.2, ["the", "cat", "sat"])
    diagrams.box(ax, 0.2, 0.2, 2, 0.8, "encoder", color="blue")
    diagrams.arrow(ax, centres[0], (1.2, 1.0), "h")
    diagrams.matrix(ax, 3.5, 2.6, [[0.1, 0.9], [0.5, 0.5]], mask=[[True, False], [True, True]])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    matplotlib.pyplot.close(fig)
    return buf.getvalue()


def test_the_same_drawing_gives_the_same_pixels():
    assert _draw() == _draw()


def test_tint_mixes_towards_white():
    assert diagrams.tint("#000000", 1.0) == "#ffffff"
    assert diagrams.tint("#000000", 0.0) == "#000000"
    assert diagrams.tint("blue", 0.5) == "#80b8d8"


def test_chapter2_diagrams_draw_figures_and_leave_them_open():
    import numpy as np

    rng = np.random.default_rng(0)
    x, q, k, v = rng.normal(size=(3, 4)), *rng.normal(size=(3, 3, 2))
    scores = q @ k.T / np.sqrt(2)
    weights = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    mask = np.tril(np.ones((3, 3), dtype=bool))
    figures = [
        diagrams.attention_worked_example(
            ["a", "b", "c"], x, q, k, v, scores, weights, weights @ v
        ),
        diagrams.multi_head_split_merge(5, 64, 4),
        diagrams.transformer_layers(d_ff=128, n_enc=2, n_dec=2),
        diagrams.attention_masks([("causal", ["a", "b", "c"], ["a", "b", "c"], mask)]),
    ]
    for fig in figures:
        assert isinstance(fig, matplotlib.figure.Figure)
        assert matplotlib.pyplot.fignum_exists(fig.number)  # the chapter shows it, then closes
        matplotlib.pyplot.close(fig)
