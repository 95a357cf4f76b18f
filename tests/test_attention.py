"""Chapter 2's code (bertbook/attention.py, saved from the chapter) against PyTorch and transformers."""

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bertbook.attention import (
    MultiHeadAttention,
    Transformer,
    causal_mask,
    merge_heads,
    padding_mask,
    positional_encoding,
    scaled_dot_product_attention,
    split_heads,
)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("shape", [(5, 8), (2, 5, 8), (2, 3, 5, 8)])
def test_sdpa_equals_torch_with_and_without_masks(dtype, tol, shape):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(*shape[:-2], 4, shape[-1], generator=g, dtype=dtype)
    k, v = (torch.randn(*shape, generator=g, dtype=dtype) for _ in range(2))
    mask = torch.rand(*shape[:-2], 4, shape[-2], generator=g) > 0.4
    mask[..., 0, :] = False  # a fully masked query row
    for m in (None, mask, mask[(0,) * (mask.dim() - 2)]):  # none, full, broadcast
        out, weights = scaled_dot_product_attention(q, k, v, m)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        assert (out - ref).abs().max().item() < tol
        assert not torch.isnan(weights).any()
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.all(out[..., 0, :] == 0) and torch.all(weights[..., 0, :] == 0)


def test_multi_head_attention_equals_nn_multihead_attention():
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(24, 6, batch_first=True)
    ours = MultiHeadAttention.from_torch(theirs)
    x = torch.randn(3, 4, 24)
    pad = torch.tensor([[False] * 4, [False, False, True, True], [False, True, True, True]])
    ref, ref_w = theirs(x, x, x, key_padding_mask=pad, average_attn_weights=False)
    out = ours(x, x, ~pad[:, None, None, :])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.weights, ref_w, atol=1e-5, rtol=1e-4)


def test_split_and_merge_heads_are_inverse_and_match_torch_layout():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1], x[..., 4:8])
    torch.testing.assert_close(merge_heads(heads), x)


def test_positional_encoding_equals_marian_table():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding
    pe = positional_encoding(50, 16)
    marian = MarianSinusoidalPositionalEmbedding(50, 16).create_weight()
    torch.testing.assert_close(torch.cat([pe[:, 0::2], pe[:, 1::2]], 1), marian, atol=1e-5, rtol=0)


def test_masks():
    assert causal_mask(3).tolist() == [
        [True, False, False],
        [True, True, False],
        [True, True, True],
    ]
    assert padding_mask(torch.tensor([[4, 5, 0]])).shape == (1, 1, 1, 3)


def test_transformer_equals_nn_transformer_with_copied_weights():
    torch.manual_seed(0)
    theirs = nn.Transformer(
        d_model=32,
        nhead=4,
        num_encoder_layers=2,
        num_decoder_layers=3,
        dim_feedforward=64,
        dropout=0.0,
        batch_first=True,
    ).train()
    ours = Transformer.from_torch(theirs, 30, 30)
    assert (len(ours.encoder), len(ours.decoder), ours.d_model) == (2, 3, 32)
    src = torch.tensor([[5, 6, 7, 2], [8, 2, 0, 0]])
    tgt = torch.tensor([[1, 9, 10], [1, 11, 0]])
    memory, m = ours.encode(src)
    out = ours.decode(tgt, memory, m)
    ref = theirs(
        ours.embed(ours.src_emb, src),
        ours.embed(ours.tgt_emb, tgt),
        tgt_mask=~causal_mask(3),
        src_key_padding_mask=src == 0,
        tgt_key_padding_mask=tgt == 0,
        memory_key_padding_mask=src == 0,
    )
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_decoder_is_causal_and_greedy_stops_at_eos():
    torch.manual_seed(0)
    model = Transformer(12, 12).eval()
    src = torch.tensor([[5, 6, 2]])
    memory, m = model.encode(src)
    a = model.decode(torch.tensor([[1, 7, 8]]), memory, m)
    b = model.decode(torch.tensor([[1, 7, 9]]), memory, m)
    torch.testing.assert_close(a[:, :2], b[:, :2])  # later tokens do not change earlier outputs
    with torch.no_grad():
        model.out.bias.fill_(-1e4)
        model.out.bias[model.eos_id] = 1e4  # always predicts </s>
    ids, _ = model.greedy(src)
    assert ids.tolist() == [[model.eos_id]]
