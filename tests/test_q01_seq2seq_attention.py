"""The references of exercise 1's Luong questions (bertbook/questions/q01_seq2seq_attention.py)
against the formula written out and against torch's attention kernel."""

import random

import torch
import torch.nn.functional as F

from bertbook.questions import q01_seq2seq_attention as q01


def test_luong_scores_are_h_w_e_for_every_pair():
    for case in q01.luong_cases(random.Random(0)):
        h, enc, W = case.args
        W = torch.eye(h.shape[1]) if W is None else W  # the dot score is the general one with I
        for b in range(h.shape[0]):
            for j in range(enc.shape[1]):
                want = h[b] @ W @ enc[b, j]
                torch.testing.assert_close(case.expected[b, j], want, atol=1e-5, rtol=1e-5)


def test_luong_attention_of_all_steps_is_torchs_kernel_with_the_padding_mask():
    for case in q01.all_steps_cases(random.Random(0)):
        dec, enc, lengths, W = case.args
        context, weights = case.expected
        mask = torch.arange(enc.shape[1])[None, :] < lengths[:, None]  # (B, S), True = attend
        want = F.scaled_dot_product_attention(
            dec @ W, enc, enc, attn_mask=mask[:, None, :], scale=1.0
        )
        torch.testing.assert_close(context, want, atol=1e-5, rtol=1e-4)
        assert torch.all(weights.masked_select(~mask[:, None, :]) == 0)
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))


def test_every_case_of_all_steps_is_one_step_of_q4_at_a_time():
    """q5 is q4's general score and a masked softmax, for each decoder step."""
    for case in q01.all_steps_cases(random.Random(1)):
        dec, enc, lengths, W = case.args
        context, weights = case.expected
        mask = torch.arange(enc.shape[1])[None, :] < lengths[:, None]
        for t in range(dec.shape[1]):
            alpha = q01._masked_softmax(q01._luong(dec[:, t], enc, W), mask)  # (B, S)
            torch.testing.assert_close(weights[:, t], alpha, atol=1e-5, rtol=1e-4)
