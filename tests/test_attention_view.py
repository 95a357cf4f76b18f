"""The static attention viewer (bertbook/attention_view.py)."""

import json
import re

import pytest
import torch

from bertbook.attention_view import attention_html


def test_html_embeds_the_weights_and_is_deterministic():
    w = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    tokens = ["[CLS]", "a", "</script>", "[SEP]"]
    html = attention_html(tokens, w)
    assert html == attention_html(tokens, w)  # ids come from the data, not randomness
    payload = re.search(r'<script type="application/json">(.*?)</script>', html, re.S).group(1)
    data = json.loads(payload.replace("<\\/", "</"))
    assert data["tokens"] == tokens
    assert len(data["attentions"]) == 2 and len(data["attentions"][0]) == 3
    assert abs(data["attentions"][1][2][3][0] - w[1, 2, 3, 0].item()) < 1e-3
    assert html.count("<script") == 2 and "http" not in html.replace(
        "http://www.w3.org/2000/svg", ""
    )


def test_mismatched_tokens_are_refused():
    with pytest.raises(ValueError, match="3 tokens but attention over 4"):
        attention_html(["a", "b", "c"], torch.ones(1, 1, 4, 4) / 4)


def test_the_viewer_has_a_caption_a_legend_and_a_text_alternative():
    w = torch.zeros(1, 2, 3, 3)
    w[0, 1] = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    html = attention_html(["[CLS]", "a", "[SEP]"], w, layer=0, head=1, caption="What to see.")
    assert "<figcaption>What to see.</figcaption>" in html and 'class="bb-legend"' in html
    words = "Layer 0, head 1: [CLS] \u2192 a 0.70; a \u2192 [CLS] 0.60; [SEP] \u2192 [SEP] 0.60"
    assert f'role="img" aria-label="{words}"' in html  # the svg's text alternative
    assert f'<p class="bb-describe">{words}</p>' in html  # also readable without the script
