"""bertbook.kernel: the grader's kernel runs every cell it is sent, whatever the one before did,
and says so when its own helpers fail to load."""

import subprocess
import sys
import time

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


def test_replays_after_restarts_cannot_extend_the_notebook_deadline(tmp_path):
    """Cells that sleep only when replayed, then three deaths: without the deadline each
    restart replays 20 s of sleep (60 s in all); with it, the notebook stops at its deadline
    (plus the interrupt's 5 s of grace and the restarts themselves)."""

    def slow_on_replay(name: str) -> str:
        marker = str(tmp_path / name)
        return (
            f"import os, time\nif os.path.exists({marker!r}):\n    time.sleep(10)\n"
            f"open({marker!r}, 'a').close()"
        )

    with Kernel() as box:
        start = time.monotonic()
        box.deadline = start + 8
        assert box.run_cell(0, slow_on_replay("a"), 30).status == "ok"
        assert box.run_cell(1, slow_on_replay("b"), 30).status == "ok"
        runs = [box.run_cell(2 + i, "import os; os._exit(1)", 30) for i in range(3)]
        elapsed = time.monotonic() - start
    assert runs[0].status == "died"
    assert runs[-1].status == "skipped" and "time limit" in runs[-1].error
    assert elapsed < 30, elapsed


HIGH_WATER = """
import sys
import bertbook.kernel as K
if sys.argv[1] == "uncapped":
    K.MAX_MESSAGE_BYTES = -1
def peak_mb():
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    return int(status.split()[0]) // 1024
with K.Kernel() as box:
    before = peak_mb()
    flood = "from IPython.display import display\\nfor _ in range(6):\\n"
    flood += "    display({'text/plain': 'x' * 80_000_000}, raw=True)\\nok = 1"
    assert box.run_cell(0, flood, 120).status == "ok"
    assert box.evaluate("str(ok)", 30) == ("ok", "1")
    print(peak_mb() - before)
"""


@pytest.mark.parametrize("cap", ["capped", "uncapped"])
def test_an_oversized_message_is_dropped_before_the_grader_decodes_it(cap):
    """Six 80 MB display messages: dropped by zmq (MAX_MESSAGE_BYTES) without costing the
    grader memory, and the cell and the next request still complete. 'uncapped' shows what the
    cap prevents (the grader's peak memory grows by hundreds of MB)."""
    done = subprocess.run(
        [sys.executable, "-c", HIGH_WATER, cap], capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-2000:]
    grew = int(done.stdout.split()[-1])
    assert grew < 50 if cap == "capped" else grew > 200, grew
