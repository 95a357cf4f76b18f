"""Chapter 1: the French-to-English number task and a GRU encoder-decoder with additive attention.

Generated from book/01_seq2seq_attention.ipynb by `python -m bertbook.maint sync`: edit the
notebook, not this file."""

import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from num2words import num2words

PAD, BOS, EOS = 0, 1, 2


def words(text):
    """'quatre-vingt-dix-sept mille' -> ['quatre', 'vingt', 'dix', 'sept', 'mille']

    Defined in Chapter 1, section “The task: French number words to English”.
    """
    return text.replace("-", " ").replace(",", "").split()


def number_pairs(sizes=(20000, 1000, 4000), seed=0):
    """Train, validation and test lists of (French words, English words), distinct numbers.

    Defined in Chapter 1, section “The task: French number words to English”.
    """
    rng = random.Random(seed)
    seen, numbers = set(), []
    while len(numbers) < sum(sizes):
        n = int(10 ** rng.uniform(0, 9.5))  # log-uniform: every magnitude is represented
        if n not in seen:
            seen.add(n)
            numbers.append(n)
    pairs = [(words(num2words(n, lang="fr")), words(num2words(n, lang="en"))) for n in numbers]
    a, b = sizes[0], sizes[0] + sizes[1]
    return pairs[:a], pairs[a:b], pairs[b:]


class Vocab:
    """Word <-> id for one language; ids 0, 1, 2 are <pad>, <s> and </s>.

    Defined in Chapter 1, section “The task: French number words to English”.
    """

    def __init__(self, sentences):
        self.itos = ["<pad>", "<s>", "</s>"] + sorted({w for s in sentences for w in s})
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self):
        return len(self.itos)

    def encode(self, ws):
        return [self.stoi[w] for w in ws] + [EOS]

    def decode(self, ids):
        out = []
        for i in ids:
            if i == EOS:
                break
            out.append(self.itos[i])
        return out


def batchify(seqs):
    """Lists of ids -> a (B, T) tensor padded with PAD.

    Defined in Chapter 1, section “The task: French number words to English”.
    """
    T = max(len(s) for s in seqs)
    return torch.tensor([s + [PAD] * (T - len(s)) for s in seqs])


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2014): score(s, h_j) = v . tanh(W s + U h_j).

    Defined in Chapter 1, section “Additive attention”.
    """

    def __init__(self, dec_dim, enc_dim, attn_dim):
        super().__init__()
        self.W = nn.Linear(dec_dim, attn_dim, bias=False)
        self.U = nn.Linear(enc_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def scores(self, s, keys):
        # s (B, Dd), keys = U(h) (B, S, A)
        return self.v(torch.tanh(self.W(s)[:, None, :] + keys)).squeeze(-1)  # (B, S)

    def forward(self, s, keys, enc_out, mask):
        # mask (B, S): True at real source tokens, False at padding
        e = self.scores(s, keys).masked_fill(~mask, float("-inf"))  # (B, S)
        alpha = torch.softmax(e, dim=-1)  # (B, S)
        context = torch.bmm(alpha[:, None, :], enc_out).squeeze(1)  # (B, De)
        return context, alpha


class EncoderDecoder(nn.Module):
    """The layers of a GRU encoder-decoder, and its encoder; attention=False leaves out attention.

    Defined in Chapter 1, section “The encoder-decoder”.
    """

    def __init__(self, n_src, n_tgt, emb=32, hidden=64, attention=True):
        super().__init__()
        self.attention = attention
        self.src_emb = nn.Embedding(n_src, emb, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(n_tgt, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, 2 * hidden)
        ctx = 2 * hidden if attention else 0
        self.cell = nn.GRUCell(emb + ctx, 2 * hidden)
        self.attn = AdditiveAttention(2 * hidden, 2 * hidden, hidden) if attention else None
        self.out = nn.Linear(2 * hidden + ctx, n_tgt)

    def encode(self, src):
        mask = src != PAD  # (B, S)
        packed = nn.utils.rnn.pack_padded_sequence(
            self.src_emb(src), mask.sum(1), batch_first=True, enforce_sorted=False
        )
        out, h = self.encoder(packed)  # h (2, B, H)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        s0 = torch.tanh(self.bridge(torch.cat([h[0], h[1]], -1)))  # (B, 2H)
        keys = self.attn.U(out) if self.attention else None  # (B, S, A)
        return (out, keys, mask), s0


class Seq2Seq(EncoderDecoder):
    """GRU encoder-decoder; attention=False gives the decoder only the final encoder states.

    Defined in Chapter 1, section “The encoder-decoder”.
    """

    def step(self, y_prev, s, enc):
        """One decoder step: previous word (B,), state (B, 2H) -> logits (B, V), state, weights."""
        out, keys, mask = enc
        e = self.tgt_emb(y_prev)  # (B, E)
        if not self.attention:
            s = self.cell(e, s)
            return self.out(s), s, None
        context, alpha = self.attn(s, keys, out, mask)  # (B, 2H), (B, S)
        s = self.cell(torch.cat([e, context], -1), s)
        return self.out(torch.cat([s, context], -1)), s, alpha

    def forward(self, src, tgt_in):
        """Teacher forcing: logits (B, T, V) for the target shifted right by one."""
        enc, s = self.encode(src)
        logits = []
        for t in range(tgt_in.shape[1]):
            step_logits, s, _ = self.step(tgt_in[:, t], s, enc)
            logits.append(step_logits)
        return torch.stack(logits, 1)

    @torch.no_grad()
    def greedy(self, src, max_len=24):
        """Greedy decoding: ids (B, max_len) and attention weights (B, max_len, S) or None."""
        enc, s = self.encode(src)
        y = torch.full((src.shape[0],), BOS, dtype=torch.long)
        ys, alphas = [], []
        for _ in range(max_len):
            step_logits, s, alpha = self.step(y, s, enc)
            y = step_logits.argmax(-1)
            ys.append(y)
            alphas.append(alpha)
        return torch.stack(ys, 1), (torch.stack(alphas, 1) if self.attention else None)


def train_seq2seq(
    model, pairs, src_vocab, tgt_vocab, steps, batch=128, lr=3e-3, seed=0, every=0, callback=None
):
    """Train for a fixed number of steps on seeded random batches; returns the loss per step.

    With ``every`` and ``callback``, calls ``callback(step, seconds)`` every ``every`` steps, where
    ``seconds`` counts training time only (Chapter 2 evaluates there; the model is in eval mode).

    Defined in Chapter 1, section “The encoder-decoder”.
    """
    rng = random.Random(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    losses, seconds = [], 0.0
    for step in range(1, steps + 1):
        model.train()
        start = time.perf_counter()
        sample = rng.sample(pairs, batch)
        src = batchify([src_vocab.encode(s) for s, _ in sample])  # (B, S)
        tgt = batchify([tgt_vocab.encode(t) for _, t in sample])  # (B, T)
        tgt_in = torch.cat([torch.full((batch, 1), BOS), tgt[:, :-1]], 1)  # (B, T) shifted right
        logits = model(src, tgt_in)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        seconds += time.perf_counter() - start
        losses.append(loss.item())
        if callback is not None and every and step % every == 0:
            model.eval()
            callback(step, seconds)
    model.eval()
    return losses


def translate(model, pairs, src_vocab, tgt_vocab, batch=500):
    """Greedy translations (lists of words) of the sources in pairs.

    Defined in Chapter 1, section “The encoder-decoder”.
    """
    out = []
    for i in range(0, len(pairs), batch):
        src = batchify([src_vocab.encode(s) for s, _ in pairs[i : i + batch]])
        ys, _ = model.greedy(src)
        out += [tgt_vocab.decode(y.tolist()) for y in ys]
    return out
