"""The wire format between the grader and a student's kernel: round trips, and replies the
grader refuses (too deep, too large, unknown objects, bad dtypes) without running any code."""

import json

import numpy as np
import pytest
import torch

from bertbook import wire


@pytest.mark.parametrize(
    "value",
    [
        torch.ones(2, 3, dtype=torch.bfloat16),
        torch.tensor([1 + 2j, 3j]),
        torch.zeros(0, 4),
        torch.tensor(True),
        np.float32(2.5),
        np.arange(6, dtype=np.int16).reshape(2, 3),
        {("a", "b"): 3, "x": [None, float("nan"), float("-inf")]},
        (1, [2.0, "s"], {"k": (True,)}),
    ],
    ids=lambda v: type(v).__name__,
)
def test_values_of_every_kind_survive_the_round_trip(value):
    back = wire.decode_untrusted(json.loads(wire.encode(value)))
    assert type(back) is (torch.Tensor if isinstance(value, torch.Tensor) else type(back))
    if isinstance(value, torch.Tensor):
        assert back.dtype == value.dtype and back.shape == value.shape
        assert torch.equal(back, value)
    elif isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and (back == value).all()


@pytest.mark.parametrize(
    "reply, why",
    [
        ("[" * 5000 + "]" * 5000, "deep"),
        ({"__array__": "torch", "dtype": "float32", "shape": [10**9], "data": []}, "fit"),
        ({"__array__": "torch", "dtype": "object", "shape": [1], "data": [1]}, "dtype"),
        ({"__array__": "numpy", "dtype": "float32", "shape": [1], "data": ["x"]}, "numbers"),
        ({"__reduce__": "os.system"}, "know"),
        ({"__float__": "__import__('os')"}, "float"),
        ({"__dict__": [[{"__seq__": "list", "items": []}, 1]]}, "key"),
    ],
)
def test_replies_that_are_not_plain_data_are_refused(reply, why):
    if isinstance(reply, str):
        with pytest.raises(RecursionError):
            json.loads(reply)  # what the grader meets first; it counts as an unreadable reply
        reply = json.loads("[" * 50 + "]" * 50)
    with pytest.raises(wire.WireError):
        wire.decode_untrusted(reply)


def test_a_value_too_large_is_refused_in_the_kernel():
    with pytest.raises(ValueError, match="too large"):
        wire.encode(torch.zeros(5_000_000))
    with pytest.raises(TypeError, match="generator"):
        wire.encode(x for x in range(3))
