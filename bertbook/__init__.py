"""Shared code, data loaders and graders of the course "How to Understand BERT"."""

import os

# oneDNN, one of PyTorch's CPU kernel libraries, keeps a compiled kernel (with its own copy of the
# weights, repacked) for every input shape it meets, up to 1024 of them. Length-bucketed batches
# come in dozens of shapes, so that cache held 0.1 GB after a pass over a test set, for no
# measurable speed. Read when torch first needs a kernel; a value set before, by you, wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")

__version__ = "0.1.0"
