"""Chapter 5: knowledge distillation (softened targets, the T-squared distillation loss, cosine
alignment), students from alternate teacher layers, and inference timing.

Generated from book/05_distilbert.ipynb by `python -m bertbook.maint sync`: edit the notebook, not
this file."""

import copy
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def soften(logits, T):
    """Softmax of logits / T over the last dimension: T = 1 is the softmax, larger T is flatter.

    Defined in Chapter 5, section “Softening with a temperature”.
    """
    return torch.softmax(logits / T, dim=-1)


def distillation_loss(student_logits, teacher_logits, T):
    """T^2 * KL(teacher(T) || student(T)), averaged over the batch. Logits: (B, n_classes).

    Defined in Chapter 5, section “The distillation loss”.
    """
    p_teacher = soften(teacher_logits, T)  # (B, n)
    log_p_student = torch.log_softmax(student_logits / T, dim=-1)  # (B, n)
    kl = (p_teacher * (torch.log(p_teacher) - log_p_student)).sum(-1)  # (B,)
    return T**2 * kl.mean()


def cosine_alignment_loss(student_hidden, teacher_hidden, mask):
    """DistilBERT's third loss: 1 - cosine between student and teacher hidden states, averaged
    over the real tokens. hidden: (B, T, C), mask: (B, T).

    Defined in Chapter 5, section “The distillation loss”.
    """
    cos = F.cosine_similarity(student_hidden, teacher_hidden, dim=-1)  # (B, T)
    m = mask.to(cos.dtype)
    return ((1 - cos) * m).sum() / m.sum()


def student_from(teacher, keep=(0, 2, 4)):
    """A copy of a classifier whose transformers BERT encoder keeps only the layers in keep
    (embeddings and head are copied too).

    Defined in Chapter 5, section “Building the student”.
    """
    student = copy.deepcopy(teacher)
    encoder = student.encoder
    encoder.encoder.layer = nn.ModuleList([encoder.encoder.layer[i] for i in keep])
    encoder.config.num_hidden_layers = len(keep)
    return student


def n_parameters(model):
    """Defined in Chapter 5, section “Building the student”."""
    return sum(p.numel() for p in model.parameters())


def kd_loss_fn(teacher_logits, labels, T=2.0, alpha=0.5):
    """loss_fn(logits, batch) for bertbook.bert.train_classifier: alpha * distillation + (1 - alpha) *
    cross-entropy on the labelled examples of the batch (label -1 marks an unlabelled one).

    Defined in Chapter 5, section “The experiment”.
    """

    def loss_fn(logits, batch):
        soft = distillation_loss(logits, teacher_logits[batch].to(logits.device), T)
        y = labels[batch].to(logits.device)
        labelled = y >= 0
        if not labelled.any():
            return alpha * soft
        return alpha * soft + (1 - alpha) * F.cross_entropy(logits[labelled], y[labelled])

    return loss_fn


def best_time(fn, repeats=3):
    """The fastest of repeats calls of fn(), in seconds.

    Defined in Chapter 5, section “Size and speed”.
    """
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - begin)
    return best


@torch.no_grad()
def one_at_a_time(model, encodings):
    """Classify each sentence in its own forward pass (batch size 1).

    Defined in Chapter 5, section “Size and speed”.
    """
    model.eval()
    device = next(model.parameters()).device
    for e in encodings:
        ids = torch.tensor([e], device=device)
        model(ids, torch.ones_like(ids))
