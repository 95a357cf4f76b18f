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
