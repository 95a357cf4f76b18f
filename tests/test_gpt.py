"""Chapter 6's GPT (bertbook/gpt.py, saved from the chapter) against transformers' GPT-2."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from bertbook.gpt import GPT, GPTConfig, beam_search, generate, top_k_filter, top_p_filter


def _pair(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(
        vocab_size=300,
        n_positions=48,
        n_layer=2,
        n_head=4,
        n_embd=32,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    cfg.update(kw)
    hf = GPT2LMHeadModel(GPT2Config(**cfg)).eval()
    return hf, GPT.from_hf(hf).eval()


def test_logits_equal_gpt2lmheadmodel():
    hf, ours = _pair()
    idx = torch.randint(0, 300, (3, 17))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], hf(idx).logits, atol=1e-5, rtol=1e-4)


def test_greedy_generation_is_identical_with_and_without_cache():
    hf, ours = _pair(seed=1)
    prompt = torch.randint(0, 300, (1, 4))
    expected = hf.generate(prompt, max_new_tokens=25, do_sample=False, pad_token_id=0)
    assert torch.equal(generate(ours, prompt, 25, greedy=True), expected)
    assert torch.equal(generate(ours, prompt, 25, greedy=True, use_cache=False), expected)


def test_cache_gives_the_same_logits_as_the_full_prefix():
    _, ours = _pair(seed=2)
    idx = torch.randint(0, 300, (2, 10))
    with torch.no_grad():
        full, _ = ours(idx)
        first, caches = ours(idx[:, :6])
        rest, _ = ours(idx[:, 6:], caches)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=1e-5, rtol=1e-4)


def test_filters_equal_transformers_warpers():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(5, 400, generator=g) * 3
    for k in (1, 7, 100):
        assert torch.equal(top_k_filter(scores, k), TopKLogitsWarper(k)(None, scores.clone()))
    for p in (0.05, 0.5, 0.95):
        assert torch.equal(
            top_p_filter(scores, p).isinf(), TopPLogitsWarper(p)(None, scores.clone()).isinf()
        )


def test_sampling_is_seeded_and_beam_of_one_is_greedy():
    _, ours = _pair(seed=3)
    prompt = torch.tensor([[5, 6, 7]])
    a = generate(ours, prompt, 10, top_p=0.9, generator=torch.Generator().manual_seed(4))
    b = generate(ours, prompt, 10, top_p=0.9, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert torch.equal(beam_search(ours, prompt, 6, beam=1), generate(ours, prompt, 6, greedy=True))
    assert beam_search(ours, prompt, 6, beam=4).shape == (1, 9)


def test_untrained_model_follows_gpt2_init():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=100, n_positions=16, n_layer=2, n_head=2, n_embd=32))
    assert abs(model.wte.weight.std().item() - 0.02) < 0.003
    assert model.h[0].c_proj.weight.std().item() < 0.02
