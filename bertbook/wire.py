"""A JSON wire format for the values that pass between the grader and a student's kernel.

Only plain data crosses: numbers, strings, lists, dicts and arrays (numpy or torch), never
pickles, so nothing a notebook returns can run code in the grader's process."""

from __future__ import annotations

import json
import math

# The same source runs in the student's kernel (see KERNEL_HELPERS) and here.
_CODEC = r"""
_BB_MAX_ITEMS = 4_000_000  # numbers in one value; past it the value is "too large" to grade


def _bb_encode(x, _depth=0, _budget=None):
    import math
    if _budget is None:
        _budget = [_BB_MAX_ITEMS]
    if _depth > 20:
        raise ValueError("value nested too deeply")
    _budget[0] -= 1
    if _budget[0] < 0:
        raise ValueError("value too large to grade")
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        return x
    if t is float:
        return x if math.isfinite(x) else {"__float__": repr(x)}
    if t is complex:
        return {"__complex__": [_bb_encode(x.real), _bb_encode(x.imag)]}
    if t in (list, tuple):
        return {"__seq__": t.__name__, "items": [_bb_encode(v, _depth + 1, _budget) for v in x]}
    if t is dict:
        pairs = [[_bb_encode(k, _depth + 1, _budget), _bb_encode(v, _depth + 1, _budget)] for k, v in x.items()]
        return {"__dict__": pairs}
    mod = t.__module__.split(".")[0]
    if mod == "torch" and t.__name__ in ("Tensor", "Parameter") or mod == "numpy" and t.__name__ == "ndarray":
        kind = "torch" if mod == "torch" else "numpy"
        if kind == "torch":
            x = x.detach().cpu()
            if x.is_sparse or x.layout is not __import__("torch").strided:
                x = x.to_dense()
        n = 1
        for s in x.shape:
            n *= int(s)
        _budget[0] -= n
        if _budget[0] < 0:
            raise ValueError(f"value too large to grade ({n} numbers)")
        dtype = str(x.dtype).replace("torch.", "")
        flat = [_bb_encode(v, 0, [2]) for v in x.reshape(-1).tolist()]
        return {"__array__": kind, "dtype": dtype, "shape": [int(s) for s in x.shape], "data": flat}
    if mod == "numpy" and hasattr(x, "item") and getattr(x, "shape", None) == ():
        return _bb_encode(x.item(), _depth + 1, _budget)
    raise TypeError(f"cannot grade a value of type {t.__name__}")


def _bb_decode(x):
    if isinstance(x, list):
        return [_bb_decode(v) for v in x]
    if not isinstance(x, dict):
        return x
    if "__float__" in x:
        return float(x["__float__"])
    if "__complex__" in x:
        return complex(*[_bb_decode(v) for v in x["__complex__"]])
    if "__seq__" in x:
        items = [_bb_decode(v) for v in x["items"]]
        return tuple(items) if x["__seq__"] == "tuple" else items
    if "__dict__" in x:
        return {_bb_decode(k): _bb_decode(v) for k, v in x["__dict__"]}
    if "__array__" in x:
        import numpy
        data = [_bb_decode(v) for v in x["data"]]
        if x["__array__"] == "torch":
            import torch
            dtype = getattr(torch, x["dtype"])
            t = torch.tensor(data, dtype=torch.complex128 if dtype.is_complex else None)
            return t.to(dtype).reshape(x["shape"]) if data else torch.zeros(x["shape"], dtype=dtype)
        return numpy.array(data, dtype=x["dtype"]).reshape(x["shape"])
    return {k: _bb_decode(v) for k, v in x.items()}
"""

# A recorder of forbidden calls, for the test calls of a question that forbids some: the same
# source runs in the student's kernel (the grader) and in the notebook's own check.
_WATCH = r"""
class _bb_watch:
    # Within the block, every call of a forbidden function is recorded in ``seen``, however it
    # is reached. Torch functions are seen through a TorchFunctionMode, which catches a call by
    # any name (an alias, getattr, a reference taken before the block, a helper, a module's
    # forward); any other function of that name in a loaded module, and any global bound to one,
    # is swapped for a recorder until the block ends. Calls still run: only the rule scores.

    def __init__(self, names, namespace=None):
        self.names = set(names or ())
        self.namespace = namespace
        self.seen = []
        self._undo = []
        self._mode = None

    def _note(self, name):
        if name not in self.seen:
            self.seen.append(name)

    def _recorder(self, name, fn):
        watch = self

        def recorder(*args, **kwargs):
            watch._note(name)
            return fn(*args, **kwargs)

        recorder.__name__ = getattr(fn, "__name__", name)
        recorder.__wrapped__ = fn
        return recorder

    def __enter__(self):
        if not self.names:
            return self
        import sys
        swapped = {}  # id(original) -> recorder
        for module in list(sys.modules.values()):
            space = getattr(module, "__dict__", None)
            if type(space) is not dict:
                continue
            for name in self.names:
                fn = space.get(name)
                if fn is None or isinstance(fn, type) or not callable(fn):
                    continue
                if id(fn) not in swapped:
                    swapped[id(fn)] = self._recorder(name, fn)
                self._undo.append((space, name, fn))
                space[name] = swapped[id(fn)]
        if type(self.namespace) is dict:
            for key, value in list(self.namespace.items()):
                if id(value) in swapped and not key.startswith("_bb_"):
                    self._undo.append((self.namespace, key, value))
                    self.namespace[key] = swapped[id(value)]
        try:
            from torch.overrides import TorchFunctionMode
        except Exception:
            return self
        watch = self

        class _Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = getattr(func, "__name__", "")
                if name in watch.names:
                    watch._note(name)
                return func(*args, **(kwargs or {}))

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None
        for space, name, value in reversed(self._undo):
            space[name] = value
        self._undo = []
        return False
"""

exec(_CODEC)  # defines _bb_encode and _bb_decode here
exec(_WATCH)  # defines _bb_watch here


def watch(names, namespace=None):
    """A context manager recording the calls of the functions named ``names`` (``.seen``)."""
    return _bb_watch(names, namespace)  # noqa: F821 (defined by exec above)


def encode(value) -> str:
    """Value -> JSON text (arrays keep their dtype and shape)."""
    return json.dumps(_bb_encode(value))  # noqa: F821 (defined by exec above)


def decode(text: str):
    """JSON text -> value (torch arrays come back as CPU tensors). Trusted input only: what
    a kernel sends goes through ``decode_untrusted``."""
    return _bb_decode(json.loads(text))  # noqa: F821


class WireError(ValueError):
    """A kernel's reply that is not a value of the wire format."""


_TORCH_DTYPES = {
    "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
    "bool", "complex64", "complex128",
}  # fmt: skip
_NUMPY_DTYPES = _TORCH_DTYPES - {"bfloat16"}
_KEYS = {
    "__float__": {"__float__"},
    "__complex__": {"__complex__"},
    "__seq__": {"__seq__", "items"},
    "__dict__": {"__dict__"},
    "__array__": {"__array__", "dtype", "shape", "data"},
}


def _check(x, depth: int = 0, budget: list | None = None) -> None:
    """Raise WireError unless x is exactly what ``_bb_encode`` makes, within the size limits."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if depth > 24 or budget[0] < 0:
        raise WireError("too deep or too large")
    if x is None or type(x) in (bool, int, float, str):
        if type(x) is str and len(x) > 100_000:
            raise WireError("a string too long")
        return
    if type(x) is not dict:
        raise WireError(f"unexpected {type(x).__name__}")
    tag = next((k for k in _KEYS if k in x), None)
    if tag is None or set(x) != _KEYS[tag]:
        raise WireError("an object the wire format does not know")
    if tag == "__float__":
        if x[tag] not in ("nan", "inf", "-inf"):
            raise WireError("a bad float")
    elif tag == "__complex__":
        if type(x[tag]) is not list or len(x[tag]) != 2:
            raise WireError("a bad complex number")
        for v in x[tag]:
            _check(v, depth + 1, budget)
    elif tag == "__seq__":
        if x[tag] not in ("list", "tuple") or type(x["items"]) is not list:
            raise WireError("a bad sequence")
        for v in x["items"]:
            _check(v, depth + 1, budget)
    elif tag == "__dict__":
        if type(x[tag]) is not list:
            raise WireError("a bad dict")
        for pair in x[tag]:
            if type(pair) is not list or len(pair) != 2:
                raise WireError("a bad dict item")
            _check(pair[0], depth + 1, budget)
            if not _plain_key(_bb_decode(pair[0])):  # noqa: F821
                raise WireError("a dict key that is not a plain value")
            _check(pair[1], depth + 1, budget)
    else:
        kind, dtype, shape, data = x["__array__"], x["dtype"], x["shape"], x["data"]
        allowed = _TORCH_DTYPES if kind == "torch" else _NUMPY_DTYPES if kind == "numpy" else ()
        if dtype not in allowed:
            raise WireError(f"an array of dtype {dtype!r}")
        if type(shape) is not list or not all(type(s) is int and 0 <= s for s in shape):
            raise WireError("a bad shape")
        if type(data) is not list or len(data) != math.prod(shape) or len(shape) > 16:
            raise WireError("array data that does not fit its shape")
        budget[0] -= len(data)
        if budget[0] < 0:
            raise WireError("too large")
        for v in data:
            if type(v) not in (bool, int, float) and not (
                type(v) is dict and set(v) <= {"__float__", "__complex__"}
            ):
                raise WireError("array data that is not numbers")
            if type(v) is dict:
                _check(v, depth + 1, budget)


MAX_ITEMS = 4_000_000


def _plain_key(k) -> bool:
    """A dict key a student may return: a plain value or a tuple of them (hashable, no code)."""
    if type(k) is tuple:
        return all(_plain_key(v) for v in k)
    return type(k) in (str, int, float, bool, complex, type(None))


def decode_untrusted(obj):
    """A reply from a student's kernel (already parsed JSON) -> value; WireError for anything
    that is not exactly the wire format, or is too large or too deep. Never runs the sender's
    code: only plain data is read."""
    _check(obj)
    try:
        return _bb_decode(obj)  # noqa: F821
    except Exception as err:  # e.g. values that do not fit the dtype
        raise WireError(f"unreadable value ({type(err).__name__})") from None


# What the grader defines in a student's kernel before calling anything: the codec, and a
# caller that returns the result as JSON (or the error), never raising.
KERNEL_HELPERS = (
    _CODEC
    + _WATCH
    + r"""

def _bb_call(_name, _payload, _uses="{}", _forbidden="[]"):
    import json, math, traceback
    _saved = {}
    _watch = _bb_watch(json.loads(_forbidden), globals())
    try:
        fn = globals().get(_name)
        if fn is None:
            return json.dumps({"status": "missing"})
        if not callable(fn):
            return json.dumps({"status": "error", "error": f"{_name} is not a function"})
        args = _bb_decode(json.loads(_payload))
        uses = json.loads(_uses)
        if uses:  # earlier answers replaced by the references: one mistake is charged once
            import numpy as np, torch, torch.nn.functional as F
            env = {"torch": torch, "F": F, "math": math, "np": np}
            for dep, expression in uses.items():
                _saved[dep] = globals().get(dep, _bb_call)
                globals()[dep] = eval(expression, env)
        with _watch:  # forbidden calls are recorded, however they are reached
            value = fn(*args)
        return json.dumps({"status": "ok", "value": _bb_encode(value), "forbidden": _watch.seen})
    except BaseException as err:
        tb = traceback.extract_tb(err.__traceback__)
        where = f" (line {tb[-1].lineno})" if len(tb) > 1 else ""
        error = f"{type(err).__name__}: {err}"[:500] + where
        return json.dumps({"status": "error", "error": error, "forbidden": _watch.seen})
    finally:
        for dep, value in _saved.items():
            if value is _bb_call:
                globals().pop(dep, None)
            else:
                globals()[dep] = value


def _bb_source(_name):
    import inspect
    try:
        return inspect.getsource(globals()[_name])[:200_000]
    except BaseException:
        return ""
"""
)

__all__ = ["encode", "decode", "watch", "KERNEL_HELPERS", "math"]
