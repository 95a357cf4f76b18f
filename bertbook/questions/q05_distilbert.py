"""Chapter 5 questions: the distillation loss, the combined objective, a student's weights from
alternate teacher layers (exercises/05_distilbert.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Question, randn


def kd_cases(rng: random.Random) -> list[Case]:
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
    from transformers import BertConfig, BertModel

    cases = []
    for name, (n_layers, keep) in [
        ("6 layers, keep 0, 2, 4", (6, [0, 2, 4])),
        ("4 layers, keep 1, 3", (4, [1, 3])),
        ("keep the last layer only", (3, [2])),
    ]:
        torch.manual_seed(rng.randrange(2**31))
        teacher = BertModel(
            BertConfig(
                vocab_size=20,
                hidden_size=8,
                num_hidden_layers=n_layers,
                num_attention_heads=2,
                intermediate_size=16,
                max_position_embeddings=16,
            )
        )
        state = {k: v.clone() for k, v in teacher.state_dict().items()}
        teacher.encoder.layer = torch.nn.ModuleList([teacher.encoder.layer[i] for i in keep])
        cases.append(
            Case(name, (state, keep), dict(teacher.state_dict()))
        )  # the library's renumbering
    return cases


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "distillation_loss",
            3,
            "p = softmax(teacher / T), log q = log_softmax(student / T); KL = (p * (log p - log q)).sum(-1); "
            "average over the batch and multiply by T ** 2. Return a float or a 0-dim tensor.",
            kd_cases,
            "The distillation loss",
        ),
        Question(
            "q2",
            "kd_objective",
            3,
            "alpha * distillation_loss(...) + (1 - alpha) * cross-entropy over the rows whose label is "
            ">= 0 only; with no labelled row, the soft term alone.",
            objective_cases,
            "Soft and hard targets together",
        ),
        Question(
            "q3",
            "student_state_dict",
            4,
            "Keys look like 'encoder.layer.4.attention.self.query.weight'. Keep every key that is not "
            "in a layer; for kept layer keep[j], rename 'encoder.layer.{keep[j]}.' to 'encoder.layer.{j}.'; "
            "drop the other layers.",
            student_cases,
            "A student from alternate teacher layers",
        ),
    ]
