"""Finding and reading a class folder that is hostile input: links, FIFOs, devices, deep
nesting, names that are not UTF-8. Each one is a status for its path; none stops the search."""

import os
import threading
from pathlib import Path

import pytest

from bertbook import submissions
from bertbook.grade import MAX_NOTEBOOK_BYTES, _expand, snapshot
from bertbook.maint import ROOT

SOLUTION = ROOT / "solutions" / "00_intro.ipynb"


def _statuses(folder: Path, into: Path) -> dict[str, tuple[str, str]]:
    """relative path -> (student, problem) for every path the grader finds under ``folder``."""
    into.mkdir()
    subs = snapshot(_expand([str(folder)]), into)
    return {os.path.relpath(s.path, folder): (s.student, s.problem or s.flag or "ok") for s in subs}


def _in_thread(fn, timeout: float = 30):
    """fn's result, or a failure if it does not return in time (a hang is a failure)."""
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("v", fn()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "hung"
    return out["v"]


def test_links_fifos_devices_and_folders_are_refused_never_read(tmp_path):
    cls = tmp_path / "class"
    (cls / "alice").mkdir(parents=True)
    (cls / "alice" / "00_intro.ipynb").write_bytes(SOLUTION.read_bytes())
    (cls / "mallory").mkdir()
    # A link to a classmate's notebook, to the instructor's solution, to /dev/zero.
    (cls / "mallory" / "00_intro.ipynb").symlink_to(cls / "alice" / "00_intro.ipynb")
    (cls / "trudy").mkdir()
    (cls / "trudy" / "00_intro.ipynb").symlink_to(SOLUTION)
    (cls / "zero").mkdir()
    (cls / "zero" / "00_intro.ipynb").symlink_to("/dev/zero")
    os.mkfifo(cls / "fifo_00_intro.ipynb")  # a FIFO: opening it for reading would block
    (cls / "folder").mkdir()
    (cls / "folder" / "00_intro.ipynb").mkdir()  # a folder named like a notebook
    (cls / "erin").symlink_to(cls / "alice")  # a whole student folder as a link
    got = _in_thread(lambda: _statuses(cls, tmp_path / "private"))
    assert got == {
        "alice/00_intro.ipynb": ("alice", "ok"),
        "erin": ("erin", "refused: a symbolic link"),
        "fifo_00_intro.ipynb": ("fifo", "refused: not a regular file"),
        "folder/00_intro.ipynb": ("folder", "refused: not a regular file"),
        "mallory/00_intro.ipynb": ("mallory", "refused: a symbolic link"),
        "trudy/00_intro.ipynb": ("trudy", "refused: a symbolic link"),
        "zero/00_intro.ipynb": ("zero", "refused: a symbolic link"),
    }


def test_a_link_in_the_middle_of_a_path_is_not_followed(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "00_intro.ipynb").write_bytes(SOLUTION.read_bytes())
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "bob").symlink_to(tmp_path / "real")
    with pytest.raises(submissions.Refused, match="symbolic link"):
        submissions.read(tmp_path / "class" / "bob" / "00_intro.ipynb", tmp_path / "class")


def test_a_file_argument_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "sub.ipynb").symlink_to(SOLUTION)
    with pytest.raises(submissions.Refused, match="symbolic link"):
        submissions.read(tmp_path / "sub.ipynb", None)


def test_at_most_the_limit_plus_one_byte_is_read(tmp_path):
    big = tmp_path / "big.ipynb"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(submissions.Refused, match="larger than"):
        submissions.read(big, None, limit=4999)
    assert len(submissions.read(big, None, limit=5000)) == 5000


def _remove_chain(top: Path) -> None:
    """Remove top/d/d/.../d without recursion (pytest's own cleanup would recurse too deep)."""
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    while True:
        try:
            fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        except FileNotFoundError:
            break
    for name in os.listdir(fds[-1]):
        os.unlink(name, dir_fd=fds[-1])
    while len(fds) > 1:
        os.close(fds.pop())
        os.rmdir("d", dir_fd=fds[-1])
    os.close(fds[0])


@pytest.fixture
def deep(tmp_path):
    folder = tmp_path / "class" / "mallory"
    folder.mkdir(parents=True)
    yield folder
    _remove_chain(folder)


def test_a_thousand_nested_folders_are_searched_without_recursion(tmp_path, deep):
    cls = tmp_path / "class"
    (cls / "alice").mkdir(parents=True)
    (cls / "alice" / "00_intro.ipynb").write_bytes(SOLUTION.read_bytes())
    fd = os.open(deep, os.O_RDONLY)
    for _ in range(1100):  # by descriptor: the whole path is longer than PATH_MAX
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    with open(os.open("00_intro.ipynb", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "wb") as f:
        f.write(SOLUTION.read_bytes())
    os.close(fd)
    (cls / "mallory" / "erin").mkdir()  # mallory/erin/00_intro.ipynb: not erin's
    (cls / "mallory" / "erin" / "00_intro.ipynb").write_bytes(SOLUTION.read_bytes())
    got = _in_thread(lambda: _statuses(cls, tmp_path / "private"))
    assert got.pop("alice/00_intro.ipynb") == ("alice", "ok")
    assert got.pop("mallory/erin/00_intro.ipynb") == (
        "mallory",
        "refused: nested 2 folders deep (a notebook is <folder>/<student>/<exercise>.ipynb "
        "or <folder>/<student>_<exercise>.ipynb)",
    )
    [(path, (student, problem))] = got.items()  # the deep folder, reported once, unsearched
    assert student == "mallory" and path.startswith("mallory/d/d/")
    assert problem.startswith(f"refused: nested {submissions.MAX_SEARCH_DEPTH - 1} folders deep")


def test_a_name_that_is_not_utf8_is_graded_under_an_escaped_id(tmp_path):
    cls = tmp_path / "class"
    cls.mkdir()
    raw = os.fsencode(str(cls)) + b"/\xffbob"
    os.mkdir(raw)
    with open(raw + b"/00_intro.ipynb", "wb") as f:
        f.write(SOLUTION.read_bytes())
    got = _statuses(cls, tmp_path / "private")
    [(student, problem)] = got.values()
    assert problem == "ok" and student == "\udcffbob"  # shown everywhere as \xffbob


def test_two_notebooks_for_one_student_and_exercise_are_both_marked(tmp_path):
    cls = tmp_path / "class"
    (cls / "alice").mkdir(parents=True)
    (cls / "alice" / "00_intro.ipynb").write_bytes(SOLUTION.read_bytes())
    (cls / "alice" / "00_intro (1).ipynb").write_bytes(SOLUTION.read_bytes())
    (cls / "alice_00_intro.ipynb").write_bytes(SOLUTION.read_bytes())
    got = _statuses(cls, tmp_path / "private")
    assert len(got) == 3
    for student, problem in got.values():
        assert student == "alice" and problem.startswith("duplicate: 3 notebooks for alice")


def test_the_size_limit_counts_the_notebook_without_its_outputs(tmp_path):
    import nbformat

    nb = nbformat.read(str(SOLUTION), as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.outputs = [nbformat.v4.new_output("stream", text="x" * (MAX_NOTEBOOK_BYTES + 3_000_000))]
    for cell in nb.cells:
        cell.pop("id", None)
    (tmp_path / "class").mkdir()
    nbformat.write(nb, str(tmp_path / "class" / "alice_00_intro.ipynb"))
    assert (tmp_path / "class" / "alice_00_intro.ipynb").stat().st_size > MAX_NOTEBOOK_BYTES
    assert _statuses(tmp_path / "class", tmp_path / "private") == {
        "alice_00_intro.ipynb": ("alice", "ok")
    }
    first.outputs = []
    first.source += "\n# " + "y" * (MAX_NOTEBOOK_BYTES + 1000)
    nbformat.write(nb, str(tmp_path / "class" / "alice_00_intro.ipynb"))
    [(_, problem)] = _statuses(tmp_path / "class", tmp_path / "private2").values()
    assert problem == "larger than 20 MB without its outputs"
