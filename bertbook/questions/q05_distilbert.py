"""Chapter 5 questions: the distillation loss, the combined objective, a student's weights from
alternate teacher layers, the loss's gradient and the T² factor, distillation over padded
sequences (exercises/05_distilbert.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Mistake, Question, randn

# Typical wrong answers, as code: feedback names the one a student's result equals.


def _kl(student_logits, teacher_logits, T, reduce="batchmean", factor=None, log=None):
    """Per-row KL(p || q) of the softened distributions, reduced; the factor defaults to T**2."""
    import torch

    log = log or (lambda x: torch.log_softmax(x, dim=-1))
    log_p, log_q = log(teacher_logits / T), log(student_logits / T)
    terms = log_p.exp() * (log_p - log_q)  # (B, n)
    loss = {"batchmean": terms.sum(-1).mean(), "sum": terms.sum(), "mean": terms.mean()}[reduce]
    return loss * (T**2 if factor is None else factor)


def _mistake_kl_reversed(student_logits, teacher_logits, T):
    return _kl(teacher_logits, student_logits, T)


def _mistake_no_t_squared(student_logits, teacher_logits, T):
    return _kl(student_logits, teacher_logits, T, factor=1.0)


def _mistake_t_not_squared(student_logits, teacher_logits, T):
    return _kl(student_logits, teacher_logits, T, factor=T)


def _mistake_summed_over_batch(student_logits, teacher_logits, T):
    return _kl(student_logits, teacher_logits, T, reduce="sum")


def _mistake_mean_over_classes(student_logits, teacher_logits, T):
    return _kl(student_logits, teacher_logits, T, reduce="mean")


def _mistake_log_of_softmax(student_logits, teacher_logits, T):
    import torch

    return _kl(student_logits, teacher_logits, T, log=lambda x: torch.log(torch.softmax(x, -1)))


def _mistake_soft_cross_entropy(student_logits, teacher_logits, T):
    import torch

    p = torch.softmax(teacher_logits / T, dim=-1)
    return -(p * torch.log_softmax(student_logits / T, dim=-1)).sum(-1).mean() * T**2


def _objective(s, t, labels, T, alpha, soft_factor=None, weights="right", hard_T=1.0, empty=True):
    import torch.nn.functional as F

    soft = _kl(s, t, T, factor=soft_factor)
    a_soft, a_hard = (alpha, 1 - alpha) if weights == "right" else (1 - alpha, alpha)
    labelled = labels >= 0
    if empty and not labelled.any():
        return a_soft * soft
    return a_soft * soft + a_hard * F.cross_entropy(s[labelled] / hard_T, labels[labelled])


def _mistake_alpha_swapped(student_logits, teacher_logits, labels, T, alpha):
    return _objective(student_logits, teacher_logits, labels, T, alpha, weights="swapped")


def _mistake_unlabelled_rows_used(student_logits, teacher_logits, labels, T, alpha):
    import torch.nn.functional as F

    soft = _kl(student_logits, teacher_logits, T)
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)  # -1 is no class


def _mistake_hard_term_softened(student_logits, teacher_logits, labels, T, alpha):
    return _objective(student_logits, teacher_logits, labels, T, alpha, hard_T=T)


def _mistake_no_labels_nan(student_logits, teacher_logits, labels, T, alpha):
    return _objective(student_logits, teacher_logits, labels, T, alpha, empty=False)


def _mistake_soft_term_without_t_squared(student_logits, teacher_logits, labels, T, alpha):
    return _objective(student_logits, teacher_logits, labels, T, alpha, soft_factor=1.0)


def _renamed(teacher_state, keep, new_number, drop_others=True, keep_outside=True):
    out = {}
    for key, value in teacher_state.items():
        parts = key.split(".")
        if not key.startswith("encoder.layer."):
            if keep_outside:
                out[key] = value
        elif int(parts[2]) in keep:
            out[".".join([*parts[:2], str(new_number(int(parts[2]))), *parts[3:]])] = value
        elif not drop_others:
            out[key] = value
    return out


def _mistake_prefix_without_dot(teacher_state, keep):
    student = {k: v for k, v in teacher_state.items() if not k.startswith("encoder.layer.")}
    for j, i in enumerate(keep):
        for key, value in teacher_state.items():
            if key.startswith(f"encoder.layer.{i}"):  # also matches layers 10 to 19 when i is 1
                student[key.replace(f"encoder.layer.{i}", f"encoder.layer.{j}", 1)] = value
    return student


def _mistake_not_renumbered(teacher_state, keep):
    return _renamed(teacher_state, keep, lambda i: i)


def _mistake_others_kept(teacher_state, keep):
    return _renamed(teacher_state, keep, keep.index, drop_others=False)


def _mistake_outside_dropped(teacher_state, keep):
    return _renamed(teacher_state, keep, keep.index, keep_outside=False)


def _mistake_half_the_number(teacher_state, keep):
    return _renamed(teacher_state, keep, lambda i: i // 2)


def _grad(
    student_logits, teacher_logits, T, factor=None, inner=None, sign=1.0, batch=True, soft=True
):
    """The gradient of factor * KL(p || q) at the student logits, in closed form: factor / T
    times (q - p), over B when averaged over the batch (factor defaults to T**2)."""
    import torch

    t = T if soft else 1.0
    p = torch.softmax(teacher_logits / t, dim=-1)
    q = torch.softmax(student_logits / t, dim=-1)
    factor = T**2 if factor is None else factor
    inner = 1 / T if inner is None else inner  # d(z / T) / dz
    return sign * factor * inner * (q - p) / (student_logits.shape[0] if batch else 1)


def _mistake_grad_no_t_squared(student_logits, teacher_logits, T):
    return _grad(student_logits, teacher_logits, T, factor=1.0)


def _mistake_grad_chain_rule_forgotten(student_logits, teacher_logits, T):
    return _grad(student_logits, teacher_logits, T, inner=1.0)


def _mistake_grad_t_not_squared(student_logits, teacher_logits, T):
    return _grad(student_logits, teacher_logits, T, factor=T)


def _mistake_grad_sign_flipped(student_logits, teacher_logits, T):
    return _grad(student_logits, teacher_logits, T, sign=-1.0)


def _mistake_grad_not_averaged(student_logits, teacher_logits, T):
    return _grad(student_logits, teacher_logits, T, batch=False)


def _mistake_grad_unsoftened(student_logits, teacher_logits, T):
    return _grad(student_logits, teacher_logits, T, soft=False)


def _token_kd(s, t, mask, T, over="tokens", factor=None):
    """T**2 * KL per position (B, L), averaged as ``over`` says."""
    import torch

    log_p, log_q = torch.log_softmax(t / T, dim=-1), torch.log_softmax(s / T, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)  # (B, L)
    m = mask.to(kl.dtype)
    loss = {
        "tokens": lambda: (kl * m).sum() / m.sum(),
        "all": lambda: kl.mean(),
        "zeroed": lambda: (kl * m).sum() / m.numel(),
        "sequences": lambda: (kl * m).sum() / kl.shape[0],
        "per sequence": lambda: ((kl * m).sum(1) / m.sum(1)).mean(),
        "pads": lambda: (kl * (1 - m)).sum() / (1 - m).sum(),
    }[over]()
    return loss * (T**2 if factor is None else factor)


def _mistake_padding_counted(student_logits, teacher_logits, mask, T):
    return _token_kd(student_logits, teacher_logits, mask, T, over="all")


def _mistake_padding_in_the_count(student_logits, teacher_logits, mask, T):
    return _token_kd(student_logits, teacher_logits, mask, T, over="zeroed")


def _mistake_over_sequences(student_logits, teacher_logits, mask, T):
    return _token_kd(student_logits, teacher_logits, mask, T, over="sequences")


def _mistake_mean_of_sequence_means(student_logits, teacher_logits, mask, T):
    return _token_kd(student_logits, teacher_logits, mask, T, over="per sequence")


def _mistake_mask_inverted(student_logits, teacher_logits, mask, T):
    return _token_kd(student_logits, teacher_logits, mask, T, over="pads")


def _mistake_token_kd_no_t_squared(student_logits, teacher_logits, mask, T):
    return _token_kd(student_logits, teacher_logits, mask, T, factor=1.0)


def kd_cases(rng: random.Random) -> list[Case]:
    import torch
    import torch.nn.functional as F

    cases = []
    for name, (B, n, T) in [
        ("T = 1", (4, 3, 1.0)),
        ("T = 2", (8, 2, 2.0)),
        ("T = 5, many classes", (6, 10, 5.0)),
    ]:
        s, t = randn(rng, B, n, scale=2.0), randn(rng, B, n, scale=3.0)
        expected = (
            F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean") * T**2
        ).item()
        cases.append(Case(name, (s, t, T), expected, atol=1e-5, rtol=1e-4))
    s = randn(rng, 3, 4)
    cases.append(
        Case("a student equal to its teacher has loss 0", (s, s.clone(), 3.0), 0.0, atol=1e-5)
    )
    # exp(-120) is 0 in float32: log(softmax) gives 0 * -inf = NaN where log_softmax does not
    big_s = torch.tensor([[120.0, 50.0, 0.0], [0.0, 50.0, 120.0]])
    big_t = torch.tensor([[0.0, 50.0, 120.0], [0.0, 50.0, 120.0]])
    expected = F.kl_div(F.log_softmax(big_s, -1), F.softmax(big_t, -1), reduction="batchmean")
    cases.append(
        Case("large logits (0, 50, 120) give no NaN", (big_s, big_t, 1.0), expected.item())
    )
    return cases


def objective_cases(rng: random.Random) -> list[Case]:
    import torch
    import torch.nn.functional as F

    def reference(s, t, labels, T, alpha):
        soft = (
            F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean") * T**2
        )
        labelled = labels >= 0
        if not labelled.any():
            return (alpha * soft).item()
        return (alpha * soft + (1 - alpha) * F.cross_entropy(s[labelled], labels[labelled])).item()

    cases = []
    for name, labels, alpha in [
        ("all labelled", [0, 1, 1, 0, 1], 0.5),
        ("alpha = 0.9", [1, 0, 0, 1, 1], 0.9),
        ("some unlabelled (-1)", [0, -1, 1, -1, 1], 0.5),
        ("none labelled", [-1] * 5, 0.5),
    ]:
        s, t = randn(rng, 5, 2, scale=2.0), randn(rng, 5, 2, scale=3.0)
        y = torch.tensor(labels)
        cases.append(Case(name, (s, t, y, 2.0, alpha), reference(s, t, y, 2.0, alpha)))
    return cases


def student_cases(rng: random.Random) -> list[Case]:
    import torch

    cases = []
    for name, (n_layers, keep) in [
        ("6 layers, keep 0, 2, 4", (6, [0, 2, 4])),
        ("4 layers, keep 1, 3", (4, [1, 3])),
        ("keep the last layer only", (3, [2])),
        ("12 layers (BERT-base), keep 1, 3, 5, 7, 9, 11", (12, [1, 3, 5, 7, 9, 11])),
    ]:
        with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
            torch.manual_seed(rng.randrange(2**31))
            teacher = _teacher(n_layers)
        state = {k: v.clone() for k, v in teacher.state_dict().items()}
        teacher.encoder.layer = torch.nn.ModuleList([teacher.encoder.layer[i] for i in keep])
        # the library's renumbering
        cases.append(Case(name, (state, keep), dict(teacher.state_dict())))
    return cases


def grad_cases(rng: random.Random) -> list[Case]:
    import torch
    import torch.nn.functional as F

    def reference(s, t, T):  # autograd through the library's KL
        s = s.clone().requires_grad_()
        loss = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
        (loss * T**2).backward()
        return s.grad

    cases = []
    for name, (B, n, T) in [
        ("T = 1", (4, 3, 1.0)),
        ("T = 2", (8, 5, 2.0)),
        ("T = 10, many classes", (6, 20, 10.0)),
    ]:
        s, t = randn(rng, B, n, scale=2.0), randn(rng, B, n, scale=3.0)
        cases.append(Case(name, (s, t, T), reference(s, t, T), atol=1e-6, rtol=1e-4))
    s = randn(rng, 3, 4)
    cases.append(
        Case(
            "a student equal to its teacher gets no gradient",
            (s, s.clone(), 4.0),
            torch.zeros(3, 4),
            atol=1e-6,
            edge="a student that already matches its teacher",
        )
    )
    return cases


def token_kd_cases(rng: random.Random) -> list[Case]:
    import torch
    import torch.nn.functional as F

    cases = []
    for name, lengths, L, V, T in [
        ("no padding", [5, 5], 5, 7, 2.0),
        ("a padded batch, T = 2", [5, 2, 4], 5, 10, 2.0),
        ("one real token per sequence, T = 4", [1, 1], 6, 8, 4.0),
        ("uneven lengths, T = 1", [6, 1, 3, 6], 6, 5, 1.0),
    ]:
        s, t = randn(rng, len(lengths), L, V, scale=2.0), randn(rng, len(lengths), L, V, scale=3.0)
        mask = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]  # (B, L)
        expected = F.kl_div(
            F.log_softmax(s[mask] / T, -1), F.softmax(t[mask] / T, -1), reduction="batchmean"
        )
        cases.append(Case(name, (s, t, mask, T), (expected * T**2).item()))
    return cases


def _teacher(n_layers: int):
    from transformers import BertConfig, BertModel

    return BertModel(
        BertConfig(
            vocab_size=20,
            hidden_size=8,
            num_hidden_layers=n_layers,
            num_attention_heads=2,
            intermediate_size=16,
            max_position_embeddings=16,
        )
    )


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "distillation_loss",
            3,
            "Soften both logits by dividing by T. The teacher's distribution p comes first in "
            "KL(p || q): the sum over classes of p times (log p - log q). Take both logs with "
            "log_softmax, never log of a softmax: a probability that underflows to 0 gives "
            "0 * -inf = NaN. Sum over the classes, average over the batch (rows), then multiply "
            "by T squared. A float or a 0-dim tensor is fine.",
            kd_cases,
            "The distillation loss",
            nudge="Check the direction of the KL, the T² factor, and what log(0) does on large "
            "logits.",
            mistakes=[
                Mistake(
                    "KL reversed",
                    "KL in the wrong direction (student || teacher)",
                    _mistake_kl_reversed,
                ),
                Mistake("no T²", "the loss without the T² factor", _mistake_no_t_squared),
                Mistake("T not squared", "multiplying by T instead of T²", _mistake_t_not_squared),
                Mistake(
                    "summed over the batch",
                    "summing over the batch instead of averaging",
                    _mistake_summed_over_batch,
                ),
                Mistake(
                    "mean over classes",
                    "averaging over classes and rows alike (F.kl_div's reduction='mean')",
                    _mistake_mean_over_classes,
                ),
                Mistake(
                    "log of softmax",
                    "log(softmax(...)) instead of log_softmax (NaN once a probability underflows)",
                    _mistake_log_of_softmax,
                ),
                Mistake(
                    "soft cross-entropy",
                    "the soft cross-entropy (the KL plus the teacher's entropy)",
                    _mistake_soft_cross_entropy,
                ),
            ],
            forbidden=("kl_div", "KLDivLoss"),
        ),
        Question(
            "q2",
            "kd_objective",
            3,
            "The soft term is your distillation loss, weighted by alpha. The hard term, weighted "
            "by 1 - alpha, is the ordinary cross-entropy of the unsoftened student logits, on the "
            "rows whose label is not -1 only: select them with a boolean mask. When that mask "
            "selects nothing, a mean over no rows is NaN, so return the soft term alone.",
            objective_cases,
            "Soft and hard targets together",
            nudge="Which rows have a label, which logits does the cross-entropy see, and what is a "
            "mean over no rows?",
            mistakes=[
                Mistake(
                    "alpha swapped",
                    "alpha on the cross-entropy and 1 - alpha on the soft term",
                    _mistake_alpha_swapped,
                ),
                Mistake(
                    "unlabelled rows used",
                    "the cross-entropy over every row (-1 labels included)",
                    _mistake_unlabelled_rows_used,
                ),
                Mistake(
                    "hard term softened",
                    "the cross-entropy of the softened logits (divided by T)",
                    _mistake_hard_term_softened,
                ),
                Mistake(
                    "NaN without labels",
                    "the cross-entropy over no labelled rows (NaN)",
                    _mistake_no_labels_nan,
                ),
                Mistake(
                    "soft term without T²",
                    "a soft term without its T² factor",
                    _mistake_soft_term_without_t_squared,
                ),
            ],
            uses={
                # The KL written out (as F.kl_div's 'batchmean'), not F.kl_div: the reference
                # obeys q1's "do not call kl_div", which the grader checks at run time.
                "distillation_loss": "lambda student_logits, teacher_logits, T: ("
                "F.softmax(teacher_logits / T, dim=-1) * (F.log_softmax(teacher_logits / T, "
                "dim=-1) - F.log_softmax(student_logits / T, dim=-1))).sum() "
                "/ student_logits.shape[0] * T**2",
            },
        ),
        Question(
            "q3",
            "student_state_dict",
            4,
            "Keys look like 'encoder.layer.4.attention.self.query.weight'. A key outside the "
            "layers is copied as it is. For a layer key, read its layer number as an int (split on "
            "the dots, or a regular expression) and look it up in keep: its position j there is "
            "the new number; a layer not in keep is dropped. A prefix test must end with the dot, "
            "or layer 1 also matches layers 10 and 11 of a 12-layer BERT.",
            student_cases,
            "A student from alternate teacher layers",
            nudge="Renumber by position in keep, and compare layer numbers as numbers, not as "
            "string prefixes.",
            mistakes=[
                Mistake(
                    "prefix without the dot",
                    "startswith(f'encoder.layer.{i}') without the trailing dot (layer 1 also "
                    "takes layers 10 and 11)",
                    _mistake_prefix_without_dot,
                ),
                Mistake(
                    "not renumbered",
                    "keeping the layers' old numbers",
                    _mistake_not_renumbered,
                ),
                Mistake(
                    "others kept",
                    "renaming the kept layers but not dropping the others",
                    _mistake_others_kept,
                ),
                Mistake(
                    "outside dropped",
                    "dropping the keys outside the layers (embeddings, pooler)",
                    _mistake_outside_dropped,
                ),
                Mistake(
                    "half the number",
                    "renumbering layer i as i // 2 (right only for every other layer from 0 or 1)",
                    _mistake_half_the_number,
                ),
            ],
        ),
        Question(
            "q4",
            "distillation_grad",
            3,
            "Write u = z / T for the student's softened logits. The gradient of the sum over "
            "classes of p (log p - log q) with respect to u is q - p (the soft cross-entropy's "
            "gradient: the teacher's entropy does not depend on u). The chain rule through "
            "u = z / T multiplies by 1/T; the loss's T² factor multiplies by T²; the mean over "
            "the batch divides every row by B. Softmax both at temperature T.",
            grad_cases,
            "The T² factor and the size of the gradients",
            nudge="Three factors meet here: T² from the loss, one from the chain rule through "
            "z / T, and one from the mean over the batch.",
            mistakes=[
                Mistake(
                    "no T²",
                    "the gradient of the KL without the T² factor (it shrinks as 1/T)",
                    _mistake_grad_no_t_squared,
                ),
                Mistake(
                    "chain rule forgotten",
                    "T² (q - p) without the 1/T of the chain rule through z / T",
                    _mistake_grad_chain_rule_forgotten,
                ),
                Mistake(
                    "T not squared",
                    "the gradient of T times the KL (T not squared)",
                    _mistake_grad_t_not_squared,
                ),
                Mistake(
                    "sign flipped", "p - q instead of q - p (uphill)", _mistake_grad_sign_flipped
                ),
                Mistake(
                    "not averaged",
                    "the gradient of the summed loss (not divided by the batch size)",
                    _mistake_grad_not_averaged,
                ),
                Mistake(
                    "unsoftened",
                    "the probabilities at temperature 1 instead of T",
                    _mistake_grad_unsoftened,
                ),
            ],
            forbidden=("backward", "autograd"),
        ),
        Question(
            "q5",
            "token_distillation_loss",
            3,
            "Every real token is one example: select the positions where the mask is True (a "
            "boolean (B, L) mask indexes a (B, L, V) tensor into (N, V) rows, N the number of "
            "real tokens), then average the per-token KL over those N rows and multiply by T². "
            "Your distillation loss of Question 1 does exactly that to (N, V) rows.",
            token_kd_cases,
            "Distillation over the tokens of padded sequences",
            nudge="What is one example here: a sequence, or a real token? Padding is neither.",
            mistakes=[
                Mistake(
                    "padding counted",
                    "the KL averaged over every position, padding included (the chapter's loss "
                    "applied to (B, L, V) logits as they are)",
                    _mistake_padding_counted,
                ),
                Mistake(
                    "padding in the count",
                    "the padding's KL zeroed but its positions still counted in the mean",
                    _mistake_padding_in_the_count,
                ),
                Mistake(
                    "averaged over sequences",
                    "the real tokens' KL summed and divided by the number of sequences "
                    "(F.kl_div's 'batchmean' on (B, L, V) logits)",
                    _mistake_over_sequences,
                ),
                Mistake(
                    "mean of sequence means",
                    "the mean over sequences of each sequence's mean (a short sequence's "
                    "tokens weigh more)",
                    _mistake_mean_of_sequence_means,
                ),
                Mistake(
                    "mask inverted",
                    "the KL averaged over the padding instead of the real tokens",
                    _mistake_mask_inverted,
                ),
                Mistake("no T²", "the loss without the T² factor", _mistake_token_kd_no_t_squared),
            ],
            uses={
                "distillation_loss": "lambda student_logits, teacher_logits, T: ("
                "F.softmax(teacher_logits / T, dim=-1) * (F.log_softmax(teacher_logits / T, "
                "dim=-1) - F.log_softmax(student_logits / T, dim=-1))).sum() "
                "/ student_logits.shape[0] * T**2",
            },
        ),
    ]
