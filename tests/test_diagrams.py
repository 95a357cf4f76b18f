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


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    matplotlib.pyplot.close(fig)
    return buf.getvalue()


def test_chapter_1_diagrams_draw_the_given_words():
    src, tgt = ["quatre", "vingt", "dix", "sept"], ["ninety", "seven"]
    fig = diagrams.seq2seq_bottleneck(src, tgt)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert set(src + tgt) <= texts and isinstance(fig, matplotlib.figure.Figure)
    _png(fig)
    symbolic = diagrams.attention_average(src)
    assert {"α1", "α4"} <= {t.get_text() for t in symbolic.axes[0].texts}
    _png(symbolic)
    weighted = diagrams.attention_average(src, [0.1, 0.7, 0.15, 0.05], output="ninety")
    assert "0.70" in {t.get_text() for t in weighted.axes[0].texts}
    _png(weighted)


def test_chapter_3_diagrams_draw_the_given_segmentations():
    words, counts = ["low", "lowest"], [3, 1]
    merges = [("l", "o"), ("lo", "w")]
    segs = [[list("low"), list("lowest")], [["lo", "w"], ["lo", *"west"]],
            [["low"], ["low", *"est"]]]  # fmt: skip
    fig = diagrams.bpe_merges(words, counts, merges, segs)
    assert "2: lo + w" in {t.get_text() for t in fig.axes[0].texts}
    _png(fig)
    steps = [[("tokens", False), ("token", True)], [("##s", True)]]
    fig = diagrams.wordpiece_search("tokens", steps)
    assert "tokens  →  token  ##s" in {t.get_text() for t in fig.axes[0].texts}
    _png(fig)


def test_chapter6_diagrams_draw_from_real_inputs():
    import numpy as np
    import torch

    words = ["To", " be", ",", " or"]
    fig = diagrams.causal_mask_grid(words, torch.ones(4, 4, dtype=torch.bool).tril())
    assert isinstance(fig, matplotlib.figure.Figure)
    assert isinstance(diagrams.kv_cache(words, n_prompt=2), matplotlib.figure.Figure)
    probs = np.sort(np.random.default_rng(0).dirichlet(np.ones(50)))[::-1]
    fig = diagrams.sampling_filters(probs, [f"t{i}" for i in range(12)], k=5, p=0.9)
    assert len(fig.axes) == 4  # three panels and the cumulative-probability axis
    assert any(f"{np.searchsorted(np.cumsum(probs) - probs, 0.9)} tokens" in ax.get_title(loc="left")
               for ax in fig.axes)  # fmt: skip
    matplotlib.pyplot.close("all")


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
