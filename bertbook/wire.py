"""A JSON wire format for the values that pass between the grader and a student's kernel.

Only plain data crosses: numbers, strings, lists, dicts and arrays (numpy or torch), never
pickles, so nothing a notebook returns can run code in the grader's process."""

from __future__ import annotations

import json
import math

# The same source runs in the student's kernel (see KERNEL_HELPERS) and here.
_CODEC = r"""
def _bb_encode(x, _depth=0):
    import math
    if _depth > 20:
        raise ValueError("value nested too deeply")
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else {"__float__": repr(x)}
    if isinstance(x, (list, tuple)):
        return {"__seq__": type(x).__name__, "items": [_bb_encode(v, _depth + 1) for v in x]}
    if isinstance(x, dict):
        return {"__dict__": [[_bb_encode(k, _depth + 1), _bb_encode(v, _depth + 1)] for k, v in x.items()]}
    mod = type(x).__module__.split(".")[0]
    if mod in ("torch", "numpy") and hasattr(x, "tolist") and hasattr(x, "shape"):
        kind = "torch" if mod == "torch" else "numpy"
        if kind == "torch":
            x = x.detach().cpu()
        dtype = str(x.dtype).replace("torch.", "")
        flat = [_bb_encode(v) for v in x.reshape(-1).tolist()]
        return {"__array__": kind, "dtype": dtype, "shape": list(x.shape), "data": flat}
    if mod == "numpy" and hasattr(x, "item"):
        return _bb_encode(x.item(), _depth + 1)
    raise TypeError(f"cannot grade a value of type {type(x).__name__}")


def _bb_decode(x):
    if isinstance(x, list):
        return [_bb_decode(v) for v in x]
    if not isinstance(x, dict):
        return x
    if "__float__" in x:
        return float(x["__float__"])
    if "__seq__" in x:
        items = [_bb_decode(v) for v in x["items"]]
        return tuple(items) if x["__seq__"] == "tuple" else items
    if "__dict__" in x:
        return {_bb_decode(k): _bb_decode(v) for k, v in x["__dict__"]}
    if "__array__" in x:
        import numpy
        data = [_bb_decode(v) for v in x["data"]]
        arr = numpy.array(data, dtype=x["dtype"]).reshape(x["shape"])
        if x["__array__"] == "torch":
            import torch
            return torch.from_numpy(arr.copy())
        return arr
    return {k: _bb_decode(v) for k, v in x.items()}
"""

exec(_CODEC)  # defines _bb_encode and _bb_decode here


def encode(value) -> str:
    """Value -> JSON text (arrays keep their dtype and shape)."""
    return json.dumps(_bb_encode(value))  # noqa: F821 (defined by exec above)


def decode(text: str):
    """JSON text -> value (torch arrays come back as CPU tensors)."""
    return _bb_decode(json.loads(text))  # noqa: F821


# What the grader defines in a student's kernel before calling anything: the codec, and a
# caller that returns the result as JSON (or the error), never raising.
KERNEL_HELPERS = (
    _CODEC
    + r"""

def _bb_call(_name, _payload):
    import json, traceback
    try:
        fn = globals().get(_name)
        if fn is None:
            return json.dumps({"status": "missing"})
        if not callable(fn):
            return json.dumps({"status": "error", "error": f"{_name} is not a function"})
        args = _bb_decode(json.loads(_payload))
        return json.dumps({"status": "ok", "value": _bb_encode(fn(*args))})
    except BaseException as err:
        tb = traceback.extract_tb(err.__traceback__)
        where = f" (line {tb[-1].lineno})" if len(tb) > 1 else ""
        return json.dumps({"status": "error", "error": f"{type(err).__name__}: {err}"[:500] + where})
"""
)

__all__ = ["encode", "decode", "KERNEL_HELPERS", "math"]
