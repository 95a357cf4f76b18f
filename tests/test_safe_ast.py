"""bertbook.safe_ast: the grader's parses run one thread at a time (CPython 3.11's AST
conversion fails with a SystemError when two threads parse at once)."""

import ast
import threading
import time

from bertbook import checks, safe_ast


def _most_at_once(monkeypatch, call) -> int:
    """The most threads inside ast.parse at the same moment while 4 threads make ``call``."""
    inside, most, lock = [0], [0], threading.Lock()
    real = ast.parse

    def slow_parse(*args, **kwargs):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.02)  # long enough for the other threads to arrive
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(ast, "parse", slow_parse)
    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return most[0]


def test_parses_run_one_at_a_time(monkeypatch):
    assert _most_at_once(monkeypatch, lambda: ast.parse("x + 1")) > 1  # the probe sees overlap
    assert _most_at_once(monkeypatch, lambda: safe_ast.parse("x + 1")) == 1
    assert _most_at_once(monkeypatch, lambda: safe_ast.literal_eval("[1, {'a': 2}]")) == 1


def test_the_graders_parses_go_through_it(monkeypatch):
    source = "def f(x):\n    return F.softmax(x, -1)\n"
    call = lambda: checks.forbidden_calls(source, ("F.softmax",))  # noqa: E731
    assert _most_at_once(monkeypatch, call) == 1
    assert checks.forbidden_calls(source, ("F.softmax",)) == ["F.softmax"]
    assert safe_ast.literal_eval("[1, {'a': 2}]") == [1, {"a": 2}]
