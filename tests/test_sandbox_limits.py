"""Resources per jail: its writable places are tmpfs of a fixed size, gone with it; where the
machine offers a writable cgroup v1 (root), its memory limit counts shared memory and every child
process together. The honest notebook of the same run scores exactly as alone."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import INTRO_FULL

from bertbook import sandbox
from bertbook.maint import ROOT

pytestmark = pytest.mark.skipif(
    sandbox.unavailable_reason() is not None, reason=f"no sandbox: {sandbox.unavailable_reason()}"
)

SOLUTION = ROOT / "solutions" / "00_intro.ipynb"
FILL = "with open({path!r}, 'wb') as f:\n    for _ in range(3000):\n        f.write(b'x' * 2**20)\n"
SHARED = (
    "import mmap\nshared = mmap.mmap(-1, 1200 * 2**20)  # MAP_SHARED: not in RLIMIT_DATA\n"
    "for i in range(0, len(shared), 4096):\n    shared[i] = 1\n"
)
CHILDREN = """\
import os, time
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:  # each child's own RLIMIT_DATA would let it hold this
        held = b'x' * (350 * 2**20)
        time.sleep(20)
        os._exit(0)
    kids.append(pid)
statuses = [os.waitpid(pid, 0)[1] for pid in kids]
assert statuses == [0, 0, 0], f"children ended by signals {[s & 0x7F for s in statuses]}"
"""


def _notebook(folder: Path, student: str, cells: list[str]) -> None:
    nb = nbformat.read(str(SOLUTION), as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    for cell in nb.cells:
        cell.pop("id", None)
    (folder / student).mkdir(parents=True)
    nbformat.write(nb, str(folder / student / SOLUTION.name))


def _grade(folder: Path, out: Path) -> dict[str, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "bertbook.grade", str(folder), "--seed", "4", "-j", "2"]
        + ["--memory", "1G", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {r["student"]: r for r in json.loads(out.read_text())}


def _errors(report: dict) -> list[str]:
    return [c["error"] for c in report["cells"]]


def test_a_jail_cannot_write_more_than_its_tmpfs_and_leaves_nothing_behind(tmp_path):
    folder = tmp_path / "class"
    _notebook(folder, "alice", [])
    paths = ["big", "/tmp/big", "/dev/shm/big"]
    _notebook(folder, "filler", [FILL.format(path=p) for p in paths])
    results = _grade(folder, tmp_path / "r.json")
    assert results["alice"]["score"] == INTRO_FULL and results["alice"]["cells"] == []
    assert _errors(results["filler"]) == ["OSError: [Errno 28] No space left on device"] * 3
    assert results["filler"]["score"] == INTRO_FULL  # what it defined before still counts
    assert not list(tmp_path.rglob("big"))


def _cgroups_here() -> bool:
    made = sandbox.Cgroup.make(2**30)
    if made is not None:
        made.remove()
    return made is not None


@pytest.mark.skipif(not _cgroups_here(), reason="no writable cgroup v1 here (not root, or v2)")
def test_shared_memory_and_children_count_against_the_memory_limit(tmp_path):
    folder = tmp_path / "class"
    _notebook(folder, "alice", [])
    _notebook(folder, "shared", [SHARED])
    _notebook(folder, "children", [CHILDREN])
    results = _grade(folder, tmp_path / "r.json")
    assert results["alice"]["score"] == INTRO_FULL and results["alice"]["cells"] == []
    assert _errors(results["shared"]) == [
        "killed: its processes together used more than the memory limit"
    ]
    assert [c["status"] for c in results["shared"]["cells"]] == ["died"]
    assert len(_errors(results["children"])) == 1
    assert "children ended by signals" in _errors(results["children"])[0]
    assert "9" in _errors(results["children"])[0]  # SIGKILL: the cgroup's limit
    for name in ("shared", "children"):
        assert results[name]["score"] == INTRO_FULL  # what it defined before still counts
