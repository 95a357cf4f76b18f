"""An attention viewer that needs no kernel, no network and no JavaScript library.

``attention_html(tokens, attentions)`` returns one self-contained HTML fragment: the weights as
JSON plus a small script that draws them as token-to-token lines or as a heatmap, with a layer and
a head selector. It works wherever HTML output runs scripts: the static HTML book, JupyterLab,
classic Jupyter and Colab. Element ids are derived from the data, so two executions of a
notebook produce the same output (random ids would make nbval and the determinism check fail).
"""

from __future__ import annotations

import hashlib
import html
import json

_SCRIPT = r"""
(function () {
  const root = document.getElementById("%(id)s");
  const data = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  const layerSel = root.querySelector(".bb-layer"), headSel = root.querySelector(".bb-head");
  const modeSel = root.querySelector(".bb-mode"), svg = root.querySelector("svg");
  const NS = "http://www.w3.org/2000/svg", T = data.tokens.length, ROW = 18, W = 420;
  let focus = null;
  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function weights() {   // (T, T) rows = queries; head -1 averages the heads
    const layer = data.attentions[+layerSel.value], h = +headSel.value;
    if (h >= 0) return layer[h];
    return layer[0].map((row, i) => row.map((_, j) =>
      layer.reduce((s, head) => s + head[i][j], 0) / layer.length));
  }
  function drawLines(w) {
    svg.setAttribute("width", W); svg.setAttribute("height", T * ROW + 10);
    data.tokens.forEach((t, i) => {
      for (const [x, anchor] of [[110, "end"], [W - 110, "start"]]) {
        const label = el("text", {x: x + (anchor === "end" ? -6 : 6), y: i * ROW + 17,
          "text-anchor": anchor, "font-size": 13, "class": "bb-token", "data-i": i,
          "font-weight": focus === i ? "bold" : "normal", style: "cursor:pointer"}, t);
        label.addEventListener("mouseenter", () => { focus = i; draw(); });
        svg.appendChild(label);
      }
    });
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      if (focus !== null && focus !== i) continue;
      const a = w[i][j];
      if (a < 0.02) continue;
      svg.appendChild(el("line", {x1: 110, y1: i * ROW + 12, x2: W - 110, y2: j * ROW + 12,
        stroke: "#1f77b4", "stroke-width": 2, "stroke-opacity": a.toFixed(3), "class": "bb-line"}));
    }
  }
  function drawHeatmap(w) {
    const C = 16, L = 90;
    svg.setAttribute("width", L + T * C + 10); svg.setAttribute("height", L + T * C + 10);
    data.tokens.forEach((t, i) => {
      svg.appendChild(el("text", {x: L - 4, y: L + i * C + 12, "text-anchor": "end", "font-size": 11}, t));
      svg.appendChild(el("text", {x: 0, y: 0, "font-size": 11, "text-anchor": "start",
        transform: "translate(" + (L + i * C + 12) + "," + (L - 4) + ") rotate(-60)"}, t));
    });
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      const cell = el("rect", {x: L + j * C, y: L + i * C, width: C - 1, height: C - 1,
        fill: "#1f77b4", "fill-opacity": w[i][j].toFixed(3), "class": "bb-cell"});
      cell.appendChild(el("title", {}, data.tokens[i] + " \u2192 " + data.tokens[j] + ": " + w[i][j].toFixed(2)));
      svg.appendChild(cell);
    }
  }
  function describe(w) {   // the text alternative: each token's strongest target
    const head = +headSel.value < 0 ? "mean of the heads" : "head " + headSel.value;
    return "Layer " + layerSel.value + ", " + head + ": " + data.tokens.map((t, i) => {
      const j = w[i].indexOf(Math.max(...w[i]));
      return t + " \u2192 " + data.tokens[j] + " " + w[i][j].toFixed(2);
    }).join("; ");
  }
  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const w = weights();
    if (modeSel.value === "lines") drawLines(w); else drawHeatmap(w);
    const text = describe(w);
    svg.setAttribute("aria-label", text);
    root.querySelector(".bb-describe").textContent = text;
  }
  svg.addEventListener("mouseleave", () => { focus = null; draw(); });
  [layerSel, headSel, modeSel].forEach(s => s.addEventListener("change", draw));
  draw();
})();
"""


LEGEND = (
    "Lines: each token on the left (a query) is joined to the tokens on the right (the keys) it "
    "attends to; the darker the line, the larger the weight (weights under 0.02 are not drawn). "
    "Hover over a token on the left to see its lines alone. Heatmap: row i, column j is the "
    "weight that token i gives token j; each row sums to 1."
)


def describe(tokens: list[str], weights) -> str:
    """Each token's strongest target in ``weights`` (T, T): the viewer's text alternative."""
    parts = []
    for t, row in zip(tokens, weights):
        j = max(range(len(row)), key=row.__getitem__)
        parts.append(f"{t} \u2192 {tokens[j]} {row[j]:.2f}")
    return "; ".join(parts)


def attention_html(
    tokens: list[str],
    attentions,
    layer: int = 0,
    head: int = 0,
    precision: int = 3,
    caption: str = "",
) -> str:
    """HTML of an interactive viewer for ``attentions``: a nested list or tensor (layers, heads, T,
    T), in a figure with ``caption``, a legend, and a text alternative (each token's strongest
    target in the layer and head shown) that the script keeps in step with the selectors."""
    att = attentions.tolist() if hasattr(attentions, "tolist") else attentions
    n_layers, n_heads, T = len(att), len(att[0]), len(att[0][0])
    if len(tokens) != T:
        raise ValueError(f"{len(tokens)} tokens but attention over {T} positions")
    att = [[[[round(a, precision) for a in row] for row in h] for h in lay] for lay in att]
    payload = json.dumps({"tokens": tokens, "attentions": att}, separators=(",", ":"))
    uid = "bb-attn-" + hashlib.sha256(payload.encode()).hexdigest()[:12]

    def options(n, selected, extra=()):
        opts = [
            f'<option value="{v}"{" selected" if v == selected else ""}>{html.escape(label)}</option>'
            for v, label in [*extra, *((i, str(i)) for i in range(n))]
        ]
        return "".join(opts)

    text = f"Layer {layer}, head {head}: " + describe(tokens, att[layer][head])
    return (
        f'<figure id="{uid}" class="bb-attention" style="font-family:sans-serif;margin:0">'
        f'<label>layer <select class="bb-layer">{options(n_layers, layer)}</select></label> '
        f'<label>head <select class="bb-head">{options(n_heads, head, [(-1, "mean")])}</select></label> '
        '<label>view <select class="bb-mode"><option value="lines">lines</option>'
        '<option value="heatmap">heatmap</option></select></label>'
        f'<div><svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(text)}">'
        "</svg></div>"
        f'<p class="bb-legend" style="font-size:0.9em">{html.escape(LEGEND)}</p>'
        "<details><summary>The weights in words: each token's strongest target</summary>"
        f'<p class="bb-describe">{html.escape(text)}</p></details>'
        + (f"<figcaption>{html.escape(caption)}</figcaption>" if caption else "")
        +
        # "</" inside the JSON cannot close the script element: escape it.
        f'<script type="application/json">{payload.replace("</", "<" + chr(92) + "/")}</script>'
        f"<script>{_SCRIPT % {'id': uid}}</script></figure>"
    )


def show_attention(tokens: list[str], attentions, layer: int = 0, head: int = 0, caption: str = ""):
    """Display the viewer in a notebook (IPython's HTML display)."""
    from IPython.display import HTML, display

    display(HTML(attention_html(tokens, attentions, layer, head, caption=caption)))
