"""Chapter 5's distillation pieces (bertbook/distill.py, saved from the chapter) against PyTorch,
on Chapter 4's encoder."""

import pytest
import torch
import torch.nn.functional as F

from bertbook.bert import BertEncoder, SentimentClassifier
from bertbook.distill import (
    cosine_alignment_loss,
    distillation_loss,
    kd_loss_fn,
    n_parameters,
    soften,
    student_from,
)
from bertbook.training import predict, train_classifier


def _library(s, t, T):
    return F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean") * T**2


@pytest.mark.parametrize("T", [1.0, 2.0, 7.5])
def test_distillation_loss_is_kl_div_times_t_squared(T):
    s, t = torch.randn(9, 4), 3 * torch.randn(9, 4)
    torch.testing.assert_close(distillation_loss(s, t, T), _library(s, t, T))
    assert distillation_loss(t, t, T).abs() < 1e-5


def test_distillation_loss_stays_finite_when_a_teacher_probability_underflows():
    teacher = torch.tensor([[0.0, 50.0, 120.0], [3.0, 1.0, -200.0]])
    student = torch.tensor([[0.0, 1.0, 2.0], [0.5, 0.0, 1.0]])
    assert (torch.softmax(teacher, -1) == 0).any()  # log(softmax) would be -inf there: NaN
    for T in (1.0, 2.0):
        loss = distillation_loss(student, teacher, T)
        assert torch.isfinite(loss)
        torch.testing.assert_close(loss, _library(student, teacher, T))
    x = student.clone().requires_grad_()
    distillation_loss(x, teacher, 1.0).backward()
    assert torch.isfinite(x.grad).all()


def test_t_squared_keeps_the_gradient_scale():
    s, t = torch.randn(16, 5), 3 * torch.randn(16, 5)
    norms = []
    for T in (4.0, 16.0):
        x = s.clone().requires_grad_()
        distillation_loss(x, t, T).backward()
        norms.append(x.grad.norm().item())
    assert 0.5 < norms[1] / norms[0] < 2  # unscaled, it would fall about 16x


def test_soften_is_a_flatter_softmax():
    z = torch.tensor([3.0, 1.0, 0.0])
    torch.testing.assert_close(soften(z, 1.0), torch.softmax(z, -1))
    assert soften(z, 5.0).max() < soften(z, 1.0).max()


def test_cosine_alignment_equals_cosine_embedding_loss_over_real_tokens():
    a, b = torch.randn(3, 6, 8), torch.randn(3, 6, 8)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[2, 4:] = False
    expected = torch.nn.CosineEmbeddingLoss()(a[mask], b[mask], torch.ones(int(mask.sum())))
    torch.testing.assert_close(cosine_alignment_loss(a, b, mask), expected)


def test_kd_loss_fn_mixes_soft_and_hard_and_skips_unlabelled():
    logits, teacher = torch.randn(6, 2), torch.randn(6, 2)
    labels = torch.tensor([0, 1, -1, 1, -1, 0])
    batch = [0, 2, 4, 5]
    got = kd_loss_fn(teacher, labels, T=2.0, alpha=0.3)(logits[batch], batch)
    labelled = torch.tensor([True, False, False, True])
    expected = 0.3 * distillation_loss(logits[batch], teacher[batch], 2.0) + 0.7 * F.cross_entropy(
        logits[batch][labelled], labels[batch][labelled]
    )
    torch.testing.assert_close(got, expected)
    only_unlabelled = kd_loss_fn(teacher, labels, T=2.0, alpha=0.3)(logits[[2, 4]], [2, 4])
    torch.testing.assert_close(
        only_unlabelled, 0.3 * distillation_loss(logits[[2, 4]], teacher[[2, 4]], 2.0)
    )


def _classifier():
    torch.manual_seed(0)
    encoder = BertEncoder(50, d_model=16, n_layers=6, n_heads=2, d_ff=32, max_len=32)
    return SentimentClassifier(encoder).eval()


def test_student_from_keeps_the_chosen_layers_and_leaves_the_teacher_alone():
    teacher = _classifier()
    student = student_from(teacher, keep=(0, 2, 4))
    assert len(student.encoder.layers) == 3 and len(teacher.encoder.layers) == 6
    for j, i in enumerate((0, 2, 4)):
        for (_, a), (_, b) in zip(
            student.encoder.layers[j].named_parameters(),
            teacher.encoder.layers[i].named_parameters(),
        ):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()  # copied, not shared
    assert n_parameters(student) < n_parameters(teacher)
    # The student is exactly the teacher run through layers 0, 2 and 4 only.
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    with torch.no_grad():
        expected = student(ids, mask)
        teacher.encoder.layers = torch.nn.ModuleList([teacher.encoder.layers[i] for i in (0, 2, 4)])
        torch.testing.assert_close(expected, teacher(ids, mask))


def test_distilled_training_moves_the_student_towards_the_teacher():
    teacher = _classifier()
    encodings = [[2] + torch.randint(5, 50, (n,)).tolist() + [3] for n in range(3, 23)]
    teacher_logits = predict(teacher, encodings) * 4
    student = student_from(teacher, keep=(0,))
    before = distillation_loss(predict(student, encodings), teacher_logits, 2.0).item()
    labels = torch.full((len(encodings),), -1)  # unlabelled: teacher only
    loss_fn = kd_loss_fn(teacher_logits, labels)
    train_classifier(student, encodings, labels, steps=30, lr=3e-3, batch_size=8, loss_fn=loss_fn)
    after = distillation_loss(predict(student, encodings), teacher_logits, 2.0).item()
    assert after < 0.5 * before


def test_the_distillation_diagram_draws_the_same_pixels_every_time():
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bertbook import diagrams

    def png():
        fig = diagrams.distillation(T=2.0, alpha=0.5)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        plt.close(fig)
        return buf.getvalue()

    assert png() == png()


def test_the_distillation_diagram_is_readable_at_the_page_width():
    """Every text at least 8 pt when the figure is shown 7.5 in wide (the book's content width)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.text

    from bertbook import diagrams

    fig = diagrams.distillation(T=2.0, alpha=0.5)
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
    assert min(sizes) * 7.5 / fig.get_figwidth() >= 8
    plt.close(fig)
