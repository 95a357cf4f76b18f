"""bertbook.training: batching, the training loop, the cache key of trained models, bootstrap
intervals and the one timer (medians of repeats, interleaved side-by-side rounds)."""

import sys

import numpy as np
import pytest
import torch
from conftest import module_from_source

from bertbook import training
from bertbook.training import (
    artifact_path,
    bootstrap_interval,
    code_fingerprint,
    length_batches,
    pad,
    predict,
    save_state,
    train_classifier,
    training_batches,
    warmup_linear,
    weights_id,
)

# ------------------------------------------------------------------------------------ batching


def test_length_batches_cover_every_index_once_with_little_padding():
    encodings = [[1] * n for n in torch.randint(3, 60, (500,)).tolist()]
    for generator in (None, torch.Generator().manual_seed(0)):
        batches = length_batches(encodings, 32, generator)
        assert sorted(i for b in batches for i in b) == list(range(500))
    spread = max(
        max(len(encodings[i]) for i in b) - min(len(encodings[i]) for i in b)
        for b in length_batches(encodings, 32)
    )
    assert spread <= 10
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert length_batches(encodings, 32, g1) == length_batches(encodings, 32, g2)
    assert length_batches(encodings, 32, g1) != length_batches(encodings, 32, g1)  # reshuffled


def test_pad_gives_ids_and_mask():
    ids, mask = pad([[2, 5, 6, 3], [9], [2, 7, 3]], [0, 2])
    assert ids.tolist() == [[2, 5, 6, 3], [2, 7, 3, 0]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


# ------------------------------------------------------------------------ training and inference


def test_warmup_linear_schedule():
    f = warmup_linear(100)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(99) == pytest.approx(1 / 90)
    assert warmup_linear(100, warmup=0.05)(4) == pytest.approx(1.0)


class _Bag(torch.nn.Module):
    """A tiny classifier: mean of token embeddings over the real tokens, then a linear layer."""

    def __init__(self):
        super().__init__()
        self.emb, self.out = torch.nn.Embedding(20, 8), torch.nn.Linear(8, 2)

    def forward(self, ids, mask):
        m = mask.unsqueeze(-1).float()
        return self.out((self.emb(ids) * m).sum(1) / m.sum(1))  # (B, 2)


def _task(n=200):
    g = torch.Generator().manual_seed(0)
    encodings = [
        torch.randint(1, 20, (int(k),), generator=g).tolist()
        for k in torch.randint(2, 9, (n,), generator=g)
    ]
    labels = [int(sum(e) / len(e) > 10) for e in encodings]
    return encodings, labels


def test_train_classifier_learns_and_is_reproducible():
    encodings, labels = _task()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = _Bag()
        losses = train_classifier(model, encodings, labels, steps=60, lr=0.05, batch_size=16)
        runs.append((losses, predict(model, encodings)))
    assert len(runs[0][0]) == 60 and np.mean(runs[0][0][-10:]) < np.mean(runs[0][0][:10])
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    accuracy = (runs[0][1].argmax(-1) == torch.tensor(labels)).float().mean()
    assert accuracy > 0.8


def test_training_batches_are_the_batches_train_classifier_sees():
    encodings, labels = _task(100)
    seen = []

    def loss_fn(logits, batch):
        seen.append(list(batch))
        return torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels)[batch])

    torch.manual_seed(0)
    train_classifier(_Bag(), encodings, labels, steps=15, lr=0.05, batch_size=16, loss_fn=loss_fn)
    batches = training_batches(encodings, 15, batch_size=16, seed=0)
    assert seen == batches and len(batches) == 15  # 7 batches an epoch: into a third epoch
    assert batches[:7] == length_batches(encodings, 16, torch.Generator().manual_seed(0))
    assert training_batches(encodings, 15, 16, seed=1) != batches


def test_predict_keeps_the_input_order():
    encodings, _ = _task(50)
    model = _Bag().eval()
    got = predict(model, encodings, batch_size=8)
    expected = torch.cat([model(*pad(encodings, [i])) for i in range(50)]).detach()
    torch.testing.assert_close(got, expected)


def test_predict_runs_the_longest_batch_first_each_batch_as_length_batches_makes_it():
    """Longest first, so that later batches fit in the memory the earlier ones freed; the same
    batches as length_batches, so every sentence's output is what it was in sorted order."""
    encodings, _ = _task(50)
    widths = []
    model = _Bag().eval()
    forward = model.forward
    model.forward = lambda ids, mask: widths.append(ids.shape[1]) or forward(ids, mask)
    predict(model, encodings, batch_size=8)
    batches = length_batches(encodings, 8)
    assert widths == [max(len(encodings[i]) for i in b) for b in reversed(batches)]
    assert widths[0] == max(len(e) for e in encodings) and widths != sorted(widths)


# ------------------------------------------------------------------------------------- caching


def _module(tmp_path, name, source):
    # Every version is the module "recipe_module" (as an edited file would be), from its own file.
    return module_from_source(tmp_path / f"{name}.py", source, "recipe_module")


RECIPE_CODE = '''
    class Model:
        """{doc}"""

        def forward(self, x):
            # {comment}
            return x * {factor}


    def recipe(steps=3):
        """Train it."""
        return steps
    '''


def test_code_fingerprint_ignores_docstrings_and_comments_but_not_code(tmp_path):
    def fingerprint(name, doc="A model.", comment="why", factor=2):
        m = _module(tmp_path, name, RECIPE_CODE.format(doc=doc, comment=comment, factor=factor))
        return code_fingerprint(m.Model, m.recipe)

    base = fingerprint("fp_a")
    assert fingerprint("fp_b", doc="A model, reworded at length.", comment="another why") == base
    assert fingerprint("fp_c", factor=3) != base


def test_artifact_path_follows_code_recipe_and_weights_not_docstrings(tmp_path):
    def key(name, recipe=None, weights="w", **edits):
        source = RECIPE_CODE.format(**{"doc": "A model.", "comment": "why", "factor": 2, **edits})
        m = _module(tmp_path, name, source)
        return artifact_path("model", [m.Model, m.recipe], recipe or {"steps": 1}, weights)

    base = key("ap_v1")
    assert base.parent.name == "artifacts" and base.name.startswith("model-")
    assert key("ap_v2", doc="A model, now with a longer docstring.", comment="reworded") == base
    assert key("ap_v3", factor=3) != base  # the code
    assert key("ap_v4", recipe={"steps": 2}) != base  # the recipe
    assert key("ap_v5", weights="w2") != base  # the weights


def test_weights_id_is_the_sha256_of_a_folder_and_the_name_of_a_hub_checkpoint(tmp_path):
    import hashlib

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    assert weights_id(tmp_path) == hashlib.sha256(b"weights").hexdigest()
    assert weights_id("bert-base-uncased") == "bert-base-uncased"


def test_save_state_writes_atomically_and_loads_back(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = save_state(model, tmp_path / "sub" / "m.pt")
    assert path.exists() and not list(path.parent.glob("*.tmp*"))
    for name, value in torch.load(path).items():
        assert torch.equal(value, model.state_dict()[name])


def test_the_plumbing_names_no_model():
    """training.py sits below the chapters' modules: it imports none of them (no import circle)."""
    import ast
    import inspect

    chapters = {"attention", "bert", "distill", "gpt", "seq2seq", "tokenization"}
    for node in ast.walk(ast.parse(inspect.getsource(training))):
        if isinstance(node, ast.ImportFrom):
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            assert not (parts[0] == "bertbook" and chapters & set(parts[1:2])), ast.unparse(node)


def test_release_memory_gives_freed_memory_back(tmp_path):
    """In a fresh process (so that other tests' memory does not count): scattered blocks freed
    after a loop of mid-sized tensors stay resident until release_memory trims them."""
    import subprocess

    script = """
import sys, torch
from bertbook.training import release_memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
keep, drop = [], []
for i in range(4000):
    (keep if i % 8 == 0 else drop).append(torch.ones(64 * 1024))  # 256 KB each
del drop
before = rss()
release_memory()
print(before - rss())
"""
    if not sys.platform.startswith("linux"):
        pytest.skip("malloc_trim is glibc's")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 200 * 2**20  # most of the 875 MB freed comes back


@pytest.mark.parametrize("mapped", [True, False])
def test_large_blocks_mapped_returns_freed_tensors_at_once(mapped):
    """In a fresh process: once a large block has been freed, glibc serves 2 MB tensors from its
    heap, where freeing every other one gives nothing back; in large_blocks_mapped each has its
    own pages, and the same frees return about half of what they hold (the control run shows
    that the difference is the call's)."""
    import subprocess

    script = f"""
import torch
import contextlib
from bertbook.training import large_blocks_mapped
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
block = large_blocks_mapped() if {mapped} else contextlib.nullcontext(True)
block.__enter__()
big = torch.ones(4 * 2**20)  # 16 MB: freeing it raises glibc's own threshold to 16 MB
del big
blocks = [torch.ones(512 * 1024) for _ in range(100)]  # 2 MB each, 200 MB
before = rss()
del blocks[::2]  # 100 MB freed, in holes between live blocks
print(before - rss())
"""
    if not sys.platform.startswith("linux"):
        pytest.skip("mallopt is glibc's")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    returned = int(out.stdout)
    if mapped:
        assert returned > 90 * 2**20
    else:
        assert returned < 20 * 2**20  # the control: without the call the holes stay resident


def test_large_blocks_mapped_blocks_nest():
    """An inner block leaves the outer one's threshold in force: a loop inside a mapped load
    (a caller may wrap a whole fine-tuning, whose train_classifier opens its own block)."""
    from bertbook import training

    with training.large_blocks_mapped(1 << 20):
        with training.large_blocks_mapped(1 << 21):
            assert training._mapped_threshold == [1 << 20, 1 << 21]
        assert training._mapped_threshold == [1 << 20]
    assert training._mapped_threshold == []


# ---------------------------------------------------------------------------------- statistics


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small, large = rng.random(200) < 0.8, rng.random(5000) < 0.8
    m, lo, hi = bootstrap_interval(small)
    assert lo < m < hi and 0.7 < m < 0.9
    _, lo2, hi2 = bootstrap_interval(large)
    assert hi2 - lo2 < (hi - lo) / 3
    diff, dlo, dhi = bootstrap_interval(np.zeros(300))  # identical methods: no difference
    assert diff == dlo == dhi == 0


# -------------------------------------------------------------------------------------- timing


def test_median_time_is_the_median_of_the_repeats(monkeypatch):
    clock = iter([0.0, 1.0, 1.0, 4.0, 4.0, 6.0])  # three calls: 1 s, 3 s, 2 s
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    assert training.median_time(lambda: None, repeats=3, warmup=0) == 2.0


def test_side_by_side_interleaves_and_takes_medians(monkeypatch):
    calls = []
    ticks = iter(range(100))
    monkeypatch.setattr(training.time, "perf_counter", lambda: float(next(ticks)))
    result = training.side_by_side(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=2, warmup=1
    )
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert result == {"a": 1.0, "b": 1.0}


def test_repeats_must_be_positive():
    with pytest.raises(ValueError):
        training.median_time(lambda: None, repeats=0)
