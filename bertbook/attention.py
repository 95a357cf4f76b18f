"""Chapter 2: scaled dot-product and multi-head attention, positional encoding, masks, and the
encoder-decoder Transformer.

Generated from book/02_transformer.ipynb by `python -m bertbook.maint sync`: edit the notebook, not
this file."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled_dot_product_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d)) v, returning (output, weights).

    q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv); mask boolean, broadcastable to
    (..., Tq, Tk), True where attention is allowed. A fully masked row gives zeros.

    Defined in Chapter 2, section “Scaled dot-product attention”.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., Tq, Tk)
    if mask is not None:
        weights = weights.nan_to_num(0.0)  # rows with no allowed key
    return weights @ v, weights  # (..., Tq, dv)


def split_heads(x, n_heads):
    """(B, T, C) -> (B, nh, T, hs) with hs = C / nh

    Defined in Chapter 2, section “Multi-head attention”.
    """
    B, T, C = x.shape
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)


def merge_heads(x):
    """(B, nh, T, hs) -> (B, T, C)

    Defined in Chapter 2, section “Multi-head attention”.
    """
    B, nh, T, hs = x.shape
    return x.transpose(1, 2).reshape(B, T, nh * hs)


class MultiHeadAttention(nn.Module):
    """nh heads of scaled dot-product attention; keeps the last weights (B, nh, Tq, Tk) for plots.

    Defined in Chapter 2, section “Multi-head attention”.
    """

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.weights = None

    def forward(self, x, memory, mask=None):
        # x (B, Tq, C) asks; memory (B, Tk, C) answers (memory is x itself in self-attention)
        q = split_heads(self.q_proj(x), self.n_heads)  # (B, nh, Tq, hs)
        k = split_heads(self.k_proj(memory), self.n_heads)  # (B, nh, Tk, hs)
        v = split_heads(self.v_proj(memory), self.n_heads)  # (B, nh, Tk, hs)
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, nh, Tq, hs)
        self.weights = weights.detach()
        return self.out_proj(merge_heads(out))  # (B, Tq, C)


def _mha_from_torch(cls, theirs):
    """Ours with the weights of an nn.MultiheadAttention (batch_first, one stacked in_proj).

    Defined in Chapter 2, section “Multi-head attention”.
    """
    assert theirs.batch_first, "ours takes (B, T, C): build nn.MultiheadAttention(batch_first=True)"
    ours = cls(theirs.embed_dim, theirs.num_heads)
    with torch.no_grad():
        for proj, w, b in zip(
            (ours.q_proj, ours.k_proj, ours.v_proj),
            theirs.in_proj_weight.chunk(3),  # (3C, C) -> three (C, C)
            theirs.in_proj_bias.chunk(3),
        ):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.load_state_dict(theirs.out_proj.state_dict())
    return ours


# Every model of the course loads weights the same way, as a class method: Model.from_...(theirs).
MultiHeadAttention.from_torch = classmethod(_mha_from_torch)


def positional_encoding(T, d):
    """Sinusoidal encodings (T, d) of Vaswani et al.: sin on even dimensions, cos on odd.

    Defined in Chapter 2, section “Positional encoding”.
    """
    position = torch.arange(T, dtype=torch.float32)[:, None]  # (T, 1)
    frequency = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # (d/2,)
    pe = torch.zeros(T, d)
    pe[:, 0::2] = torch.sin(position * frequency)
    pe[:, 1::2] = torch.cos(position * frequency)
    return pe


def causal_mask(T):
    """(T, T) boolean, True on and below the diagonal: position t sees positions <= t.

    Defined in Chapter 2, section “Encoder and decoder layers”.
    """
    return torch.ones(T, T, dtype=torch.bool).tril()


def padding_mask(ids, pad_id=0):
    """(B, T) ids -> (B, 1, 1, T) boolean, True at real tokens: broadcasts over heads and queries.

    Defined in Chapter 2, section “Encoder and decoder layers”.
    """
    return (ids != pad_id)[:, None, None, :]


class EncoderLayer(nn.Module):
    """Defined in Chapter 2, section “Encoder and decoder layers”."""

    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x, mask):
        x = self.norm1(x + self.self_attn(x, x, mask))  # (B, S, C) residual, then norm
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))  # position-wise FFN


class DecoderLayer(nn.Module):
    """Defined in Chapter 2, section “Encoder and decoder layers”."""

    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, y, memory, self_mask, memory_mask):
        y = self.norm1(y + self.self_attn(y, y, self_mask))  # (B, T, C)
        y = self.norm2(y + self.cross_attn(y, memory, memory_mask))  # (B, T, C)
        return self.norm3(y + self.linear2(F.relu(self.linear1(y))))


class EncoderDecoder(nn.Module):
    """The Transformer's layers: embeddings with positions, encoder and decoder stacks, output.

    Defined in Chapter 2, section “The whole encoder-decoder”.
    """

    def __init__(self, n_src, n_tgt, d_model=64, n_heads=4, d_ff=128, n_enc=2, n_dec=2,
                 max_len=64, pad_id=0, bos_id=1, eos_id=2):  # fmt: skip
        super().__init__()
        self.d_model, self.pad_id, self.bos_id, self.eos_id = d_model, pad_id, bos_id, eos_id
        self.src_emb, self.tgt_emb = nn.Embedding(n_src, d_model), nn.Embedding(n_tgt, d_model)
        for emb in (self.src_emb, self.tgt_emb):
            nn.init.normal_(emb.weight, std=d_model**-0.5)  # times sqrt(d) below: unit scale
        self.register_buffer("pe", positional_encoding(max_len, d_model), persistent=False)
        self.encoder = nn.ModuleList([EncoderLayer(d_model, n_heads, d_ff) for _ in range(n_enc)])
        self.decoder = nn.ModuleList([DecoderLayer(d_model, n_heads, d_ff) for _ in range(n_dec)])
        self.enc_norm, self.dec_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, n_tgt)

    def embed(self, table, ids):
        return table(ids) * self.d_model**0.5 + self.pe[: ids.shape[1]]  # (B, T, C)

    def encode(self, src):
        mask = padding_mask(src, self.pad_id)  # (B, 1, 1, S)
        x = self.embed(self.src_emb, src)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.enc_norm(x), mask  # (B, S, C)

    def decode(self, tgt_in, memory, memory_mask):
        self_mask = causal_mask(tgt_in.shape[1]) & padding_mask(tgt_in, self.pad_id)  # (B, 1, T, T)
        y = self.embed(self.tgt_emb, tgt_in)
        for layer in self.decoder:
            y = layer(y, memory, self_mask, memory_mask)
        return self.dec_norm(y)  # (B, T, C)


class Transformer(EncoderDecoder):
    """Encoder-decoder Transformer (post-norm, as in Vaswani et al. and nn.Transformer).

    Defined in Chapter 2, section “The whole encoder-decoder”.
    """

    def forward(self, src, tgt_in):
        """Teacher forcing: logits (B, T, V), like Chapter 1's Seq2Seq."""
        memory, mask = self.encode(src)
        return self.out(self.decode(tgt_in, memory, mask))

    @torch.no_grad()
    def greedy(self, src, max_len=24):
        """Greedy decoding: ids (B, <=max_len); stops once every row has produced </s>."""
        memory, mask = self.encode(src)
        ys = torch.full((src.shape[0], 1), self.bos_id)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        for _ in range(max_len):
            next_id = self.out(self.decode(ys, memory, mask)[:, -1]).argmax(-1)  # (B,)
            ys = torch.cat([ys, next_id[:, None]], 1)
            done |= next_id == self.eos_id
            if done.all():
                break
        return ys[:, 1:], None


def _transformer_from_torch(cls, theirs, n_src, n_tgt, **kwargs):
    """Ours with the layers and final norms of an nn.Transformer (batch_first). The embeddings and
    the output layer, which nn.Transformer does not have, keep their fresh initialisation.

    Defined in Chapter 2, section “The whole encoder-decoder”.
    """
    enc, dec = theirs.encoder.layers, theirs.decoder.layers
    sizes = dict(d_model=theirs.d_model, n_heads=theirs.nhead, d_ff=enc[0].linear1.out_features)
    ours = cls(n_src, n_tgt, **sizes, n_enc=len(enc), n_dec=len(dec), **kwargs)
    for mine, torch_layer in zip([*ours.encoder, *ours.decoder], [*enc, *dec]):
        mine.self_attn = MultiHeadAttention.from_torch(torch_layer.self_attn)
        if hasattr(mine, "cross_attn"):
            mine.cross_attn = MultiHeadAttention.from_torch(torch_layer.multihead_attn)
        for name in ("linear1", "linear2", "norm1", "norm2", "norm3"):
            if hasattr(mine, name):
                getattr(mine, name).load_state_dict(getattr(torch_layer, name).state_dict())
    ours.enc_norm.load_state_dict(theirs.encoder.norm.state_dict())
    ours.dec_norm.load_state_dict(theirs.decoder.norm.state_dict())
    return ours


EncoderDecoder.from_torch = classmethod(_transformer_from_torch)  # Transformer.from_torch too
