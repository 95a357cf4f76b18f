"""``ast.parse`` and ``ast.literal_eval`` for the grader, whose threads grade several notebooks at
once. CPython 3.11's AST conversion keeps its recursion depth in state that the threads share:
two parses at once can fail with ``SystemError: AST constructor recursion depth mismatch`` (seen
in CI, grading a class), which cost a student a question. Every parse here takes one lock."""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str) -> ast.AST:
    """``ast.parse(source)``, one thread at a time."""
    with _LOCK:
        return ast.parse(source)


def literal_eval(text: str):
    """``ast.literal_eval(text)``, one thread at a time."""
    with _LOCK:
        return ast.literal_eval(text)
