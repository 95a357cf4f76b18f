"""Chapter 6: GPT-2 from scratch (loads transformers GPT2LMHeadModel weights), generation, sampling
filters, beam search and a data-parallel step.

Generated from book/06_gpt2.ipynb by `python -m bertbook.maint sync`: edit the notebook, not this
file."""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from bertbook.attention import merge_heads, scaled_dot_product_attention, split_heads


@dataclass
class GPTConfig:
    """GPT-2's sizes; the defaults are GPT-2 small's.

    Defined in Chapter 6, section “The architecture”.
    """

    vocab_size: int = 50257  # V
    n_positions: int = 1024  # the longest context
    n_layer: int = 12
    n_head: int = 12  # nh
    n_embd: int = 768  # C


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees itself and earlier positions only.

    ``cache`` is None or the (keys, values) of earlier positions, each (B, nh, T_past, hs).

    Defined in Chapter 6, section “The architecture”.
    """

    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # queries, keys, values at once
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x, cache=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (B, nh, T, hs)
        if cache is not None:  # earlier positions' keys and values are not recomputed
            k = torch.cat([cache[0], k], 2)  # (B, nh, T_past + T, hs)
            v = torch.cat([cache[1], v], 2)
        T_all = k.shape[2]
        mask = torch.ones(T, T_all, dtype=torch.bool).tril(T_all - T)  # query t sees keys <= t
        y, _ = scaled_dot_product_attention(q, k, v, mask)  # (B, nh, T, hs)
        return self.c_proj(merge_heads(y)), (k, v)  # (B, T, C), the cache for the next step


class Block(nn.Module):
    """One GPT-2 block: pre-norm causal self-attention, then a pre-norm MLP, each added back.

    Defined in Chapter 6, section “The architecture”.
    """

    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)  # the MLP: C -> 4C -> C
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x, cache=None):
        a, cache = self.attn(self.ln_1(x), cache)
        x = x + a  # (B, T, C)
        x = x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))  # (B, T, C)
        return x, cache


class GPT(nn.Module):
    """GPT-2: token and position embeddings, n_layer blocks, a final layer norm, tied output.

    Defined in Chapter 6, section “The architecture”.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)

    def forward(self, idx, caches=None):  # idx (B, T) -> logits (B, T, V), a cache per block
        B, T = idx.shape
        past = 0 if caches is None else caches[0][0].shape[2]
        pos = torch.arange(past, past + T)  # (T,)
        x = self.wte(idx) + self.wpe(pos)  # (B, T, C)
        new_caches = []
        for i, block in enumerate(self.h):
            x, cache = block(x, None if caches is None else caches[i])
            new_caches.append(cache)
        logits = self.ln_f(x) @ self.wte.weight.T  # (B, T, V): tied weights
        return logits, new_caches


def _gpt_from_hf(cls, hf_model):
    """Our GPT with the weights of a transformers GPT2LMHeadModel: ``GPT.from_hf(hf_model)``.

    Defined in Chapter 6, section “The architecture”.
    """
    c = hf_model.config
    model = cls(GPTConfig(c.vocab_size, c.n_positions, c.n_layer, c.n_head, c.n_embd))
    ours = {}
    for name, t in hf_model.state_dict().items():
        if not name.startswith("transformer.") or name.endswith((".attn.bias", "masked_bias")):
            continue  # lm_head is tied to wte; the other two are stored masks, not weights
        key = name.removeprefix("transformer.").replace("mlp.", "")
        if key.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            t = t.T  # Conv1D stores (in, out)
        ours[key] = t
    model.load_state_dict(ours)
    return model


GPT.from_hf = classmethod(_gpt_from_hf)


def top_k_filter(logits, k):
    """Keep the k largest logits of each row; the others become -inf.

    Defined in Chapter 6, section “Making it write”.
    """
    kth = logits.topk(k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits, p):
    """Keep the smallest set of top tokens whose probabilities add up to at least p (the nucleus).

    Defined in Chapter 6, section “Making it write”.
    """
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cum = torch.softmax(sorted_logits, -1).cumsum(-1)
    remove_sorted = cum - torch.softmax(sorted_logits, -1) >= p  # mass before it already >= p
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def filter_logits(logits, top_k=None, top_p=None):
    """Apply top-k, then top-p, to logits (B, V); either may be None (no filtering).

    Defined in Chapter 6, section “Making it write”.
    """
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return logits


@torch.inference_mode()  # no gradients, no autograd bookkeeping
def generate(
    model,
    idx,
    n_new,
    temperature=1.0,
    top_k=None,
    top_p=None,
    greedy=False,
    generator=None,
    use_cache=True,
):
    """Append n_new tokens to idx (B, T): greedy, or sampled with temperature / top-k / top-p.

    Defined in Chapter 6, section “Making it write”.
    """
    caches, step_input = None, idx
    for _ in range(n_new):
        if use_cache:
            logits, caches = model(step_input, caches)
        else:
            logits, _ = model(idx)
        logits = logits[:, -1, :]  # (B, V)
        if greedy:
            next_id = logits.argmax(-1, keepdim=True)
        else:
            probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
            next_id = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        idx = torch.cat([idx, next_id], 1)
        step_input = next_id
    return idx


@torch.inference_mode()
def beam_search(model, idx, n_new, beam=4):
    """The highest-probability continuation found keeping `beam` candidates (idx is (1, T)).

    Defined in Chapter 6, section “Making it write”.
    """
    beams = [(0.0, idx)]
    for _ in range(n_new):
        candidates = []
        for score, seq in beams:
            logprobs = torch.log_softmax(model(seq)[0][0, -1], -1)  # (vocab,)
            top = logprobs.topk(beam)
            candidates += [
                (score + lp.item(), torch.cat([seq, i.view(1, 1)], 1))
                for lp, i in zip(top.values, top.indices)
            ]
        beams = sorted(candidates, key=lambda c: c[0], reverse=True)[:beam]
    return beams[0][1]


def data_parallel_worker(rank, world_size, init_file, cfg, x, y, out):
    """One process of a data-parallel step: half the batch, gradients averaged by all-reduce.

    Defined in Chapter 6, section “Where next: more than one machine”.
    """
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    torch.manual_seed(0)
    model = GPT(cfg)  # the same initial weights everywhere
    shard = slice(rank * len(x) // world_size, (rank + 1) * len(x) // world_size)
    F.cross_entropy(model(x[shard])[0].flatten(0, 1), y[shard].flatten()).backward()
    for p in model.parameters():
        dist.all_reduce(p.grad)  # sum over processes...
        p.grad /= world_size  # ...then the mean
    if rank == 0:
        # As NumPy arrays, which travel by value: a tensor would travel as a handle to this
        # process's shared memory, and vanish if the process exits before it is read.
        out.put([p.grad.numpy().copy() for p in model.parameters()])
    dist.destroy_process_group()
