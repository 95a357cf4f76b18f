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
