"""Chapter 5: knowledge distillation (softened targets, the T-squared distillation loss computed with
log_softmax, cosine alignment), students from alternate layers of Chapter 4's classifier, and the
distillation objective for bertbook.training.train_classifier.

Generated from book/05_distilbert.ipynb by `python -m bertbook.maint sync`: edit the notebook, not
this file."""

import copy

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

    Log-probabilities from log_softmax: a teacher probability that underflows to 0 adds 0, not
    0 * log 0 = NaN.

    Defined in Chapter 5, section “The distillation loss”.
    """
    log_p = F.log_softmax(teacher_logits / T, dim=-1)  # (B, n): the teacher, the target
    log_q = F.log_softmax(student_logits / T, dim=-1)  # (B, n): the student
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)  # (B,)
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
    """A copy of a classifier (a SentimentClassifier: .encoder is a BertEncoder) whose encoder
    keeps only the layers in keep, in that order; embeddings and head are copied too.

    Defined in Chapter 5, section “Building the student”.
    """
    student = copy.deepcopy(teacher)
    student.encoder.layers = nn.ModuleList([student.encoder.layers[i] for i in keep])
    return student


def n_parameters(model):
    """The number of numbers in the model's parameters.

    Defined in Chapter 5, section “Building the student”.
    """
    return sum(p.numel() for p in model.parameters())


def kd_loss_fn(teacher_logits, labels, T=2.0, alpha=0.5):
    """loss_fn(logits, batch) for bertbook.training.train_classifier: alpha * distillation +
    (1 - alpha) * cross-entropy on the labelled examples of the batch (label -1: unlabelled).

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
