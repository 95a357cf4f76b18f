"""The course's plumbing, apart from its models: batching, training loops, caching of trained
models, statistics and timing. The chapters' modules hold the models; this one, written by hand,
holds what every model needs around it (as nanoGPT keeps ``train.py`` apart from ``model.py``).

- **Batching**: ``encode_sentences`` (token ids), ``length_batches`` (batches of similar lengths),
  ``pad`` (ids and padding mask of one batch).
- **Training and inference**: ``warmup_linear`` (BERT's learning-rate schedule),
  ``training_batches`` (the batches of a run, known in advance), ``train_classifier`` (a fixed
  number of AdamW steps), ``predict`` (outputs in input order).
- **Caching**: ``code_fingerprint`` and ``artifact_path`` key a trained model by everything that
  made it (the code, without its docstrings and comments; the recipe; the weights it started
  from, ``weights_id``; the library versions); ``save_state`` writes it. Which code and recipe
  make a model is the model's chapter's to say: Chapter 4 keys its fine-tuned classifier
  (``bertbook.bert.teacher_path``) for Chapter 5. This module names no model.
- **Memory**: ``release_memory`` gives freed memory back to the operating system;
  ``large_blocks_mapped`` makes glibc give back every large tensor as soon as it is freed.
- **Statistics**: ``bootstrap_interval`` (percentile bootstrap, paired when given differences).
- **Timing**: one timer for every chapter. ``median_time`` reports the median of repeated calls;
  ``side_by_side`` times several functions interleaved in one run, so that a load that comes and
  goes on the machine hits every contender alike. Prose states timings as ratios of such runs.

Shapes follow minGPT's notation: ``B`` batch, ``T`` sequence length, ``C`` width, ``V`` vocabulary.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import os
import statistics
import textwrap
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------- batching


def encode_sentences(tokenizer, sentences, max_length=64):
    """Token ids of each sentence, with [CLS] and [SEP], cut at ``max_length``."""
    return [tokenizer(s, truncation=True, max_length=max_length)["input_ids"] for s in sentences]


def length_batches(encodings, batch_size, generator=None):
    """Lists of indices into ``encodings``, each a batch of sentences of similar lengths.

    Without a generator: sorted by length (for inference). With one: shuffled, sorted only within
    chunks of 50 batches, then the batches shuffled: random, yet with little padding."""
    if generator is None:
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]))
    else:
        order, chunk = torch.randperm(len(encodings), generator=generator).tolist(), 50 * batch_size
        order = [
            i
            for c in range(0, len(order), chunk)
            for i in sorted(order[c : c + chunk], key=lambda i: len(encodings[i]))
        ]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if generator is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


def pad(encodings, batch, pad_id=0, device="cpu"):
    """(ids, mask), both (B, T) with B = len(batch) and T its longest sentence; mask is 1 at
    real tokens and 0 at padding."""
    lengths = torch.tensor([len(encodings[i]) for i in batch])  # (B,)
    ids = torch.full((len(batch), int(lengths.max())), pad_id, dtype=torch.long)  # (B, T)
    for row, i in enumerate(batch):
        ids[row, : len(encodings[i])] = torch.tensor(encodings[i])
    mask = torch.arange(ids.shape[1])[None, :] < lengths[:, None]  # (B, T)
    return ids.to(device), mask.long().to(device)


# ---------------------------------------------------------------------- training and inference


def warmup_linear(steps, warmup=0.1):
    """Learning-rate multiplier for step s (0-based): a linear warm-up over the first ``warmup``
    share of ``steps``, then a linear decay to zero at the end (BERT's schedule)."""
    return lambda s: min((s + 1) / (warmup * steps), (steps - s) / ((1 - warmup) * steps))


def training_batches(encodings, steps, batch_size=32, seed=0):
    """The ``steps`` batches (lists of indices into ``encodings``) that ``train_classifier`` trains
    on: epochs of ``length_batches`` drawn from a generator seeded with ``seed``, cut at ``steps``.
    They depend on the seed and the lengths only, so a caller can tell in advance which sentences
    a run will see."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    while len(batches) < steps:  # epochs, until the step budget ends
        batches += length_batches(encodings, batch_size, g)[: steps - len(batches)]
    return batches


def train_classifier(model, encodings, labels, steps, lr, batch_size=32, seed=0, loss_fn=None):
    """Train ``model(ids, mask) -> logits (B, n_classes)`` for ``steps`` AdamW steps on
    length-bucketed batches, with warm-up and linear decay and gradients clipped at norm 1.
    Returns the training losses.

    ``loss_fn(logits, batch)`` (``batch``: the indices of the batch's sentences) defaults to the
    cross-entropy with ``labels``; Chapter 5 passes a distillation loss. The batches
    (``training_batches``) depend on ``seed`` only, so two runs with the same seed see the same
    sentences in the same order."""
    device = next(model.parameters()).device
    labels = torch.as_tensor(labels)
    loss_fn = loss_fn or (lambda logits, batch: F.cross_entropy(logits, labels[batch].to(device)))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_linear(steps))
    losses = []
    model.train()
    with large_blocks_mapped():  # batches of every length: no scattered holes left resident
        for batch in training_batches(encodings, steps, batch_size, seed):
            loss = loss_fn(model(*pad(encodings, batch, device=device)), batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def predict(model, encodings, batch_size=128):
    """(N, ...) outputs of ``model(ids, mask)`` in eval mode, in the order of ``encodings``
    (batches of similar lengths, so little padding). The longest batch runs first: each later
    batch's tensors are no larger, so they fit in the memory the earlier ones freed."""
    model.eval()
    device = next(model.parameters()).device
    out = None
    for batch in reversed(length_batches(encodings, batch_size)):
        y = model(*pad(encodings, batch, device=device)).cpu()  # (B, ...)
        if out is None:
            out = torch.zeros(len(encodings), *y.shape[1:], dtype=y.dtype)
        out[batch] = y
    return out


# ----------------------------------------------------------------------------------- caching


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def code_fingerprint(*objects) -> str:
    """sha256 of the code of functions and classes, as Python sees it: comments, docstrings and
    layout are left out, so rewording them changes nothing, while any change to what the code
    does (a line, a default, a name) changes the fingerprint."""
    parts = []
    for obj in objects:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
        parts.append(
            f"{obj.__module__}.{obj.__qualname__}\n{ast.unparse(_without_docstrings(tree))}"
        )
    return hashlib.sha256("\n\n".join(parts).encode()).hexdigest()


def weights_id(checkpoint) -> str:
    """What a checkpoint's weights are: the sha256 of its ``model.safetensors`` when it is a local
    folder, else its name (a hub name names fixed weights only as far as the hub keeps them)."""
    from bertbook import assets

    weights = Path(checkpoint) / "model.safetensors"
    return assets.sha256_of(weights) if weights.exists() else str(checkpoint)


def artifact_path(name: str, code: Sequence, recipe: dict, weights: str) -> Path:
    """Cache file for a model trained by ``code`` (functions and classes) with ``recipe`` from
    the weights ``weights`` (see ``weights_id``): its name is a hash of all of them and of the
    torch and transformers versions, so any change that could change the result makes a new
    file, and a change that cannot (a docstring) does not."""
    import transformers

    from bertbook import assets

    key = json.dumps(
        {
            "code": code_fingerprint(*code),
            "recipe": recipe,
            "weights": weights,
            "versions": [torch.__version__, transformers.__version__],
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return assets.cache_dir() / "artifacts" / f"{name}-{digest}.pt"


def save_state(model, path: Path) -> Path:
    """Write ``model.state_dict()`` to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return path


def release_memory() -> None:
    """Hand the memory that Python and torch have freed back to the operating system.

    glibc's malloc keeps freed blocks for reuse, and after a training loop of many mid-sized
    tensors those blocks are scattered: the process's resident size stays at its high-water mark
    (measured: 0.30 GB kept after 100 steps of Chapter 4's tiny BERT), and Binder's 2 GB limit
    counts it. ``malloc_trim`` returns them, where the C library has it (Linux with glibc);
    elsewhere only the garbage collector runs. Returns nothing: a chapter cell that ends with it
    prints nothing."""
    import gc

    gc.collect()
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


@functools.cache
def _libc():
    """The C library, looked up once (``find_library`` runs ``ldconfig`` in a child process, and
    ``release_memory`` runs after every heavy section), or None where it cannot be loaded."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _glibc(name: str):
    """The C library's function ``name``, or None where it has none (not glibc)."""
    return getattr(_libc(), name, None)


def _mallopt(mmap_threshold: int) -> bool:
    """Set glibc's mmap threshold (blocks of at least this many bytes get pages of their own)
    and its trim threshold (twice it, glibc's own rule). False where there is no ``mallopt``."""
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(M_TRIM_THRESHOLD, 2 * mmap_threshold)
    )


@contextmanager
def large_blocks_mapped(threshold: int = 1 << 20):
    """Within the block, glibc's malloc serves every block of ``threshold`` bytes or more with
    pages of its own, which go back to the operating system the moment the block is freed.

    By default glibc raises that threshold each time a large block is freed (up to 32 MB), so a
    training loop's activations and gradients, whose sizes change with every batch of another
    length, end up in one heap whose freed holes stay resident (Chapter 4's fine-tuning, measured
    in the chapter's kernel: 1.86 GB at its peak without this, 1.54 GB with it around the loop).
    The price is a page fault per fresh page: nothing measurable in that fine-tuning, but 30-70%
    more time for loops of small tensors or for inference, so only the classifier loops use it.
    Entering trims the heap first (``release_memory``). Blocks nest; on leaving the outermost,
    the threshold stays at glibc's ceiling of 32 MB.
    Yields True where the C library has ``mallopt`` (Linux with glibc); elsewhere nothing
    changes."""
    previous = _mapped_threshold[-1] if _mapped_threshold else 32 << 20
    mapped = _mallopt(threshold)
    if mapped:
        release_memory()  # first hand back what is free now (e.g. what loading a model left)
    _mapped_threshold.append(threshold)
    try:
        yield mapped
    finally:
        _mapped_threshold.pop()
        if mapped:
            _mallopt(previous)


_mapped_threshold: list[int] = []  # the thresholds of the blocks now open, innermost last


# -------------------------------------------------------------------------------- statistics


def bootstrap_interval(correct, n_resamples=10_000, seed=0, level=0.95):
    """(mean, low, high): the mean of ``correct`` and its percentile bootstrap interval.

    ``correct``: (N,) booleans (an accuracy), or (N,) differences of two methods' correctness on
    the same examples (a paired bootstrap: examples easy or hard for both cancel out)."""
    correct = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), (n_resamples, len(correct)))].mean(1)
    tail = (1 - level) / 2
    return (
        float(correct.mean()),
        float(np.quantile(means, tail)),
        float(np.quantile(means, 1 - tail)),
    )


# ------------------------------------------------------------------------------------ timing


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """The median wall-clock seconds of ``repeats`` calls of ``fn()``, after ``warmup`` calls."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def side_by_side(fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1):
    """Median seconds of each function in ``fns``, timed in interleaved rounds.

    Round r calls every function once (in turn), so a slow spell of the machine costs every
    function about equally; returns ``{name: median seconds}``."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            begin = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - begin)
    return {name: statistics.median(ts) for name, ts in times.items()}
