"""Two grader runs at once (two sections graded side by side) never share a jail uid: a notebook
holding hundreds of threads in one run cannot stop the other run's honest notebook from starting
(the process limit counts per uid)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import INTRO_FULL

from bertbook import sandbox
from bertbook.maint import ROOT

pytestmark = [
    pytest.mark.skipif(
        sandbox.unavailable_reason() is not None,
        reason=f"no sandbox: {sandbox.unavailable_reason()}",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="jail uids are given only when grading as root"),
]

SOLUTION = ROOT / "solutions" / "00_intro.ipynb"
HOLD = """\
import threading, time
threading.stack_size(256 * 1024)  # small stacks: the memory limit is not what stops it
held = []
try:
    for _ in range(5000):
        t = threading.Thread(target=time.sleep, args=(120,), daemon=True)
        t.start()
        held.append(t)
except RuntimeError:
    pass  # the uid's process limit: every thread it may have is taken
# Hold them until the test has graded the other run: it appends to this notebook's copy.
import glob, os
copy = glob.glob("*.ipynb")[0]  # the grader's copy of this notebook, whatever it names it
size, start = os.path.getsize(copy), time.monotonic()
while os.path.getsize(copy) == size and time.monotonic() - start < 240:
    time.sleep(0.5)
"""


def _class(folder: Path, student: str, extra: str = "") -> Path:
    nb = nbformat.read(str(SOLUTION), as_version=4)
    if extra:
        nb.cells.append(nbformat.v4.new_code_cell(extra))
    for cell in nb.cells:
        cell.pop("id", None)
    (folder / student).mkdir(parents=True)
    nbformat.write(nb, str(folder / student / SOLUTION.name))
    return folder


def _grade(folder: Path, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "bertbook.grade", str(folder), "--seed", "2", "-j", "1"]
    return cmd + ["--json", str(out), "--cell-timeout", "300"]


def _threads_of_jail_uids(run: int) -> int:
    """The most threads any process of a jail uid has now, among the descendants of the grading
    run ``run`` (another run on the machine, such as a second CI job, is not counted)."""
    parents, fields_of = {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(pid)] = int(fields["PPid"])
        fields_of[int(pid)] = fields
    most = 0
    for pid, fields in fields_of.items():
        ancestor = parents.get(pid)
        while ancestor not in (None, 0, 1, run):
            ancestor = parents.get(ancestor)
        uid = int(fields["Uid"].split()[0])
        if ancestor == run and sandbox.FIRST_UID <= uid < sandbox.FIRST_UID + sandbox.UID_RANGE:
            most = max(most, int(fields["Threads"]))
    return most


def test_a_run_holding_every_thread_of_its_uid_does_not_stop_another_run(tmp_path):
    (tmp_path / "hog-tmp").mkdir()
    hog = subprocess.Popen(
        _grade(_class(tmp_path / "a", "hog", HOLD), tmp_path / "a.json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TMPDIR=str(tmp_path / "hog-tmp")),
    )
    try:
        deadline = time.monotonic() + 120
        while _threads_of_jail_uids(hog.pid) < 400:
            assert hog.poll() is None, hog.communicate()
            assert time.monotonic() < deadline, "the hog never held its threads"
            time.sleep(0.5)
        honest = subprocess.run(
            _grade(_class(tmp_path / "b", "alice"), tmp_path / "b.json"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert _threads_of_jail_uids(hog.pid) >= 400, "the hog ended before the honest run did"
    finally:  # the hog's copy grows by a byte (the same file, bound into its jail): it stops
        for copy in (tmp_path / "hog-tmp").glob("bertbook-grade-*/*/*.ipynb"):
            with open(copy, "ab") as f:
                f.write(b" ")
        hog_out, hog_err = hog.communicate(timeout=300)
    assert honest.returncode == 0, honest.stdout[-2000:] + honest.stderr[-2000:]
    alice = json.loads((tmp_path / "b.json").read_text())
    assert [(r["student"], r["status"], r["score"]) for r in alice] == [
        ("alice", "graded", INTRO_FULL)
    ]
    assert hog.returncode == 0, hog_err[-2000:]
    assert json.loads((tmp_path / "a.json").read_text())[0]["score"] == INTRO_FULL
