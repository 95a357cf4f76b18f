"""Find a class's notebooks and read each one safely, before any sandbox exists.

The grader reads submissions with its own rights (root, often), so a class folder is hostile
input: a link to a classmate's notebook or to ``/dev/zero``, a FIFO named ``*.ipynb``, folders
nested a thousand deep, names that are not UTF-8. Here:
- folders are walked with a list, not recursion, never through a link, at most
  ``MAX_SEARCH_DEPTH`` levels down;
- every path is opened one component at a time, each with ``O_NOFOLLOW`` (a link anywhere in it
  is refused, not followed), the file itself with ``O_NONBLOCK`` (a FIFO cannot block), and
  ``S_ISREG`` is checked on the open descriptor (what was checked is what is read);
- at most ``MAX_FILE_BYTES + 1`` bytes are read;
- a problem with one path is a status for that path (``Refused``), never the run's end.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_FILE_BYTES = 100_000_000  # the file as handed in, saved outputs included
MAX_SEARCH_DEPTH = 8  # folders below a folder argument that are searched for notebooks
SKIP = {".ipynb_checkpoints"}  # Jupyter's autosaves, never a submission


class Refused(Exception):
    """One path that cannot be graded; the message is its status (``refused: ...``)."""


def find(folder: Path) -> list[Path]:
    """Every ``*.ipynb`` under ``folder`` (never through a link), sorted; links (to a file or a
    folder) and entries that are not regular files are listed too, so that each is reported;
    a folder deeper than ``MAX_SEARCH_DEPTH`` is listed itself, unsearched (it is refused)."""
    out: list[Path] = []
    todo: list[tuple[Path, int]] = [(folder, 0)]
    while todo:
        here, depth = todo.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            if depth:  # reported when it is read (a folder that cannot be read)
                out.append(here)
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.name in SKIP:
                continue
            try:
                is_link = entry.is_symlink()
                is_dir = not is_link and entry.is_dir(follow_symlinks=False)
            except OSError:
                out.append(path)
                continue
            if is_dir and not entry.name.endswith(".ipynb"):
                if depth + 1 >= MAX_SEARCH_DEPTH:
                    out.append(path)  # too deep to search: refused as a whole
                else:
                    todo.append((path, depth + 1))
            elif entry.name.endswith(".ipynb") or (is_link and depth == 0):
                out.append(path)  # a link at the top may stand for a whole student folder
    return sorted(out, key=lambda p: os.fsencode(str(p)))


def parts_under(path: Path, root: Path | None) -> tuple[str, ...]:
    """The path's components below its folder argument (just its name for a file argument)."""
    if root is None:
        return (path.name,)
    return path.relative_to(root).parts


def read(path: Path, root: Path | None, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, opened without following any link below ``root`` (or the file itself,
    for a file argument): ``Refused`` with the reason for a link, a FIFO, a device, a folder, a
    file over ``limit`` bytes, or one that cannot be read."""
    start = str(root) if root is not None else str(path.parent)
    names = parts_under(path, root)
    fds: list[int] = []
    try:
        try:
            fds.append(os.open(start, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError as err:
            raise Refused(f"refused: its folder cannot be read ({_why(err)})") from None
        for i, name in enumerate(names):
            last = i == len(names) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            flags |= os.O_NONBLOCK if last else os.O_DIRECTORY
            try:
                fd = os.open(name, flags, dir_fd=fds[-1])
            except OSError as err:
                if _is_link(name, fds[-1]):
                    raise Refused("refused: a symbolic link") from None
                if not last and err.errno == 20:  # ENOTDIR: a file where a folder should be
                    raise Refused("refused: not a regular file") from None
                raise Refused(f"refused: cannot be read ({_why(err)})") from None
            fds.append(fd)
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            raise Refused("refused: not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fds[-1], min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Refused(f"refused: larger than {limit // 10**6} MB as handed in")
        return b"".join(chunks)
    except OSError as err:
        raise Refused(f"refused: cannot be read ({_why(err)})") from None
    finally:
        for fd in fds:
            os.close(fd)


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _why(err: OSError) -> str:
    return err.strerror or type(err).__name__
