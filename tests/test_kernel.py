"""bertbook.kernel: the grader's kernel runs every cell it is sent, whatever the one before did,
and says so when its own helpers fail to load."""

import pytest

from bertbook.kernel import Kernel


def test_a_cell_that_raises_does_not_abort_the_next_request():
    # ipykernel 6 aborted requests arriving just after an error (stop_on_error): the grader's
    # helpers were then never defined and every question failed with a NameError.
    with Kernel() as box:
        for i in range(20):
            assert box.run_cell(0, "raise ValueError('student bug')", 30).status == "error"
            box.define(f"helper_{i} = {i}")
            assert box.run_cell(1, f"assert helper_{i} == {i}", 30).status == "ok"


def test_helpers_that_fail_to_load_say_so():
    with Kernel() as box:
        with pytest.raises(RuntimeError, match="helpers did not load.*ZeroDivisionError"):
            box.define("1 / 0")
