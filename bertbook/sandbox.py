"""A bubblewrap jail for one student's kernel: what it may see, touch and use.

Inside, the kernel sees the system folders, the Python installation, the course package and its
assets, all read-only; a home (its working directory) holding only its own notebook copy, and a
private /tmp and /dev/shm, each a tmpfs of bounded size gone with the jail; no network (its own
network namespace: it talks to the grader over IPC sockets in a folder bound in for that alone);
an environment reduced to what a kernel needs; its own PID namespace, so every process it starts
dies with it; no capabilities.
Resource limits are set by ``python -m bertbook.sandbox limit`` just before the kernel starts:
a limit on the memory the kernel allocates (``memory``), and, where the grader runs as root, an unprivileged uid of
its own with a cap on processes (RLIMIT_NPROC counts per uid and root is exempt from it; without
root the PID namespace is what ends every process).

Per jail, every process it starts together (measured on cgroup v1 machines, see ``Cgroup``):
where the grader can write cgroup v1's ``memory`` and ``pids`` controllers (root), the jail's
processes live in a cgroup of their own inside the grader's, capped at ``memory`` plus
``CGROUP_HEADROOM`` (shared memory, tmpfs files and children included: past it the kernel is
killed) and ``MAX_PROCESSES`` tasks. Its writable places (home, /tmp, /dev/shm) are tmpfs of a
fixed size each, gone with the jail. Without cgroups (not root, or cgroup v2) the sizes of those
tmpfs and the per-process RLIMIT_DATA are what bound it: children each get their own.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
HOME = "/home/student"  # where the scratch folder appears inside
CACHE = "/opt/bertbook-cache"  # where the asset cache appears inside
FIRST_UID = 61000  # kernels run as uids from here when the grader is root
UID_RANGE = 4000  # FIRST_UID .. FIRST_UID + UID_RANGE - 1, each held by one grader run at a time
UID_LOCKS = ("/run/bertbook-jail-uids", "/var/lock/bertbook-jail-uids")
MAX_PROCESSES = 512  # threads count too: torch and ipykernel start dozens
CGROUP_HEADROOM = 128 * 1024**2  # above --memory: one allocation past it fails (RLIMIT_DATA) first


class Unavailable(RuntimeError):
    """No sandbox on this machine; the message says why."""


def parse_size(text: str) -> int:
    """'2G', '512M', '1.5g' or bytes -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r} (e.g. 2G, 512M)")
    power = " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * 1024**power)


def unavailable_reason() -> str | None:
    """None when the sandbox works here; else one line saying why not."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux and bubblewrap; this is {sys.platform}"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"bubblewrap cannot create namespaces here ({why})"
    return None


def probe(memory: int = 2 * 1024**3, uid: int | None = None, launcher=None) -> str | None:
    """None when a kernel starts in the jail, with this memory limit and uid, and answers a
    request that imports what grading imports; else one line: the jail's own message (bwrap's
    and the kernel's stderr) and the fix. What ``grade`` runs before its first notebook.
    ``launcher``: another command prefix than bubblewrap's (``kernel.Jail.launcher``)."""
    why = unavailable_reason() if launcher is None else None
    if why is not None:
        return f"{why}; or grade with --no-sandbox"
    from . import wire
    from .kernel import Jail, Kernel, StartError

    request = "__import__('bertbook').__name__ + ' ' + str(__import__('os').getuid())"
    try:
        with Kernel(jail=Jail(memory, uid, launcher=launcher), startup_timeout=120) as box:
            box.define(wire.KERNEL_HELPERS)
            status, text = box.evaluate(request, timeout=120)
    except (StartError, RuntimeError, OSError) as err:
        status, text = "error", str(err)
    expected = f"bertbook {uid if uid is not None else os.geteuid()}"
    if status == "ok" and text == expected:
        return None
    fix = "grade with --no-sandbox (only in a container or a throwaway account)"
    if uid is not None and ("No module named" in text or "Permission denied" in text):
        fix = (
            f"the kernel runs as uid {uid}: make the Python installation, the virtualenv and the "
            f"course package readable by every user (chmod -R a+rX), or {fix}"
        )
    text = " / ".join(line.strip() for line in text.splitlines() if line.strip())  # one line
    return f"the sandbox cannot run a kernel here ({text}); {fix}"


class Uids:
    """Jail uids held by this grader run alone: a lock file per uid, shared by every run on the
    machine (two sections graded side by side never share a uid, so neither the process limit,
    which counts per uid, nor anything else ties one run's notebooks to another's). Uids of
    existing users, or owning a process, are skipped. Use as a context manager; root only."""

    def __init__(self, count: int):
        self.count = count
        self.uids: list[int] = []
        self._fds: list[int] = []

    def __enter__(self) -> list[int]:
        folder = _lock_folder()
        busy = _uids_in_use()
        for uid in range(FIRST_UID, FIRST_UID + UID_RANGE):
            if len(self.uids) == self.count:
                break
            if uid in busy:
                continue
            fd = os.open(
                os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uids.append(uid)
            self._fds.append(fd)
        if len(self.uids) < self.count:
            self.__exit__()
            raise Unavailable(f"no free jail uid in {FIRST_UID}..{FIRST_UID + UID_RANGE - 1}")
        return list(self.uids)

    def __exit__(self, *exc) -> None:
        for fd in self._fds:
            os.close(fd)  # the lock goes with it (and with the process, however it ends)
        self._fds, self.uids = [], []


def _lock_folder() -> str:
    """A folder only root can write, the same for every run on this machine."""
    for folder in UID_LOCKS:
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            st = os.lstat(folder)
        except OSError:
            continue
        if st.st_uid == 0 and not st.st_mode & 0o022 and os.path.isdir(folder):
            return folder
    raise Unavailable(f"no folder for the jail uids' locks ({', '.join(UID_LOCKS)})")


def _uids_in_use() -> set[int]:
    import pwd

    used = {u.pw_uid for u in pwd.getpwall()}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                used.add(os.stat(f"/proc/{pid}").st_uid)
            except OSError:
                pass
    return used


def _under(path: str, folders) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _readable_roots() -> tuple[list[str], list[tuple[str, str]]]:
    """The folders a kernel must read (the Python installation, the venv, the site-packages and
    the course package, never the folders around them), by their real paths; and the symlinks
    (target, link) that lead to them by the paths this process knows them by: a venv's python is
    a symlink into the base interpreter, and a venv or a folder above it may be a symlink."""
    import bertbook

    named = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    named.add(os.path.dirname(os.path.abspath(bertbook.__file__)))  # not the repository around it
    for entry in sys.path:
        if entry and "site-packages" in entry and os.path.isdir(entry):
            named.add(entry)
    named = {os.path.abspath(p) for p in named if os.path.exists(p)}
    real = {os.path.realpath(p) for p in named}
    real.add(os.path.dirname(os.path.realpath(sys.executable)))
    roots = [r for r in sorted(real) if not _under(r, SYSTEM_DIRS)]
    roots = [r for r in roots if not any(r != o and _under(r, [o]) for o in roots)]
    links: list[tuple[str, str]] = []
    for path in sorted(named):
        here = "/"
        for part in path.split("/")[1:]:
            step = os.path.join(here, part)
            if os.path.islink(step) and not _under(step, [*SYSTEM_DIRS, *roots]):
                if (os.readlink(step), step) not in links:
                    links.append((os.readlink(step), step))
                here = os.path.realpath(step)
            else:
                here = step
    return roots, links


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a sandboxed kernel (nothing of the grader's leaks in)."""
    import bertbook

    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{HOME}/.config/matplotlib",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",  # several kernels share the cores
        "BERTBOOK_GRADING": "1",
        "BERTBOOK_CACHE": CACHE,
        # ipykernel 6's debugger warns on stderr about frozen modules at every start
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    # The kernel imports the very package the grader runs (found there first), wherever this
    # process found it: an install, a PYTHONPATH entry, or the current folder.
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(bertbook.__file__)))
    env.update(extra or {})
    return env


def tmpfs_bytes(memory: int) -> int:
    """The size of each writable tmpfs of a jail (home, /tmp, /dev/shm): a quarter of its memory."""
    return max(memory // 4, 16 * 1024**2)


class Cgroup:
    """A cgroup v1 ``memory`` and ``pids`` pair for one jail, made inside the grader's own (never
    at a root the machine's limits do not cover). ``Cgroup.make`` gives None where the machine
    offers no writable cgroup v1 (not root; cgroup v2, where a child needs delegation)."""

    def __init__(self, folders: list[str]):
        self.folders = folders

    @classmethod
    def make(cls, memory: int, processes: int = MAX_PROCESSES) -> Cgroup | None:
        import uuid

        mine = {}
        try:
            for line in Path("/proc/self/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                for c in controllers.split(","):
                    mine[c] = path
        except OSError:
            return None
        if os.geteuid() != 0 or "memory" not in mine or "pids" not in mine:
            return None
        name = f"bertbook-jail-{uuid.uuid4().hex[:12]}"
        folders = [f"/sys/fs/cgroup/{c}{mine[c].rstrip('/')}/{name}" for c in ("memory", "pids")]
        made = cls([])
        try:
            for folder in folders:
                os.mkdir(folder, 0o755)
                made.folders.append(folder)
            limit = str(memory + CGROUP_HEADROOM)
            Path(folders[0], "memory.limit_in_bytes").write_text(limit)
            swap = Path(folders[0], "memory.memsw.limit_in_bytes")
            if swap.exists():
                swap.write_text(limit)
            Path(folders[1], "pids.max").write_text(str(processes))
        except OSError:
            made.remove()
            return None
        return made

    def prefix(self) -> list[str]:
        """Puts the command into the cgroup, then runs it (its children follow it there)."""
        enter = 'while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; done'
        return ["/bin/sh", "-c", enter + '; shift; exec "$@"', "sh", *self.folders, "--"]

    def oom_kills(self) -> int:
        """How many times the memory limit killed one of the jail's processes."""
        try:
            text = Path(self.folders[0], "memory.oom_control").read_text()
        except (OSError, IndexError):
            return 0
        fields = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(fields.get("oom_kill", 0))

    def remove(self) -> None:
        """Removes the cgroups once the jail's processes are gone (they end with the jail)."""
        import time

        for folder in reversed(self.folders):
            for _ in range(50):
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
        self.folders = []


def bwrap_command(
    scratch: str,
    sockdir: str,
    memory: int,
    uid: int | None,
    env: dict[str, str],
    hide: tuple[str, ...] = (),
) -> list[str]:
    """The command prefix that runs a kernel command inside the jail.

    bwrap mounts in the order of its arguments, so the empty filesystems (/tmp, /proc, /dev)
    come first and every bind after them: a venv, a package or a socket folder under /tmp stays
    visible wherever it lives. ``hide`` (the grader's private folder, the class folders) is
    covered with an empty tmpfs wherever it lies inside a folder bound in."""
    from bertbook import assets

    cmd = ["bwrap", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    cmd += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup"]
    made: set[str] = {"/"}

    def parents(dest: str) -> None:
        # bwrap makes missing parent folders 0700, which the kernel's uid could not cross.
        for parent in reversed(Path(dest).parents):
            if str(parent) not in made:
                made.add(str(parent))
                if not _under(str(parent), SYSTEM_DIRS):
                    cmd.extend(["--perms", "0755", "--dir", str(parent)])

    def bind(option: str, source: str, dest: str) -> None:
        parents(dest)
        made.add(dest)
        cmd.extend([option, source, dest])

    size = str(tmpfs_bytes(memory))
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", size]
    cmd += ["--tmpfs", "/dev/shm", "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    made.update({"/proc", "/dev", "/dev/shm", "/tmp"})
    for d in SYSTEM_DIRS:
        if os.path.isdir(d):
            bind("--ro-bind", d, d)
    roots, links = _readable_roots()
    for root in roots:
        bind("--ro-bind", root, root)
    for target, link in links:
        parents(link)
        cmd.extend(["--symlink", target, link])
    cache = assets.cache_dir()
    if cache.is_dir():
        bind("--ro-bind", str(cache.resolve()), CACHE)
    for path in {os.path.realpath(h) for h in hide}:
        if _under(path, roots) and os.path.isdir(path):
            cmd.extend(["--tmpfs", path])
    # Home: a tmpfs of its own size holding the notebook's copy, read-only; gone with the jail.
    parents(HOME)
    cmd += ["--perms", "1777", "--size", size, "--tmpfs", HOME]
    made.add(HOME)
    for name in sorted(os.listdir(scratch)):
        if os.path.isfile(os.path.join(scratch, name)) and "/" not in name:
            cmd += ["--ro-bind", os.path.join(scratch, name), f"{HOME}/{name}"]
    bind("--bind", sockdir, sockdir)
    cmd += ["--clearenv"]
    for k, v in env.items():
        cmd += ["--setenv", k, v]
    if uid is not None:  # the limit step below drops to this uid; it needs these two
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    cmd += ["--", sys.executable, "-m", "bertbook.sandbox", "limit", f"--memory={memory}"]
    if uid is not None:
        cmd += [f"--uid={uid}", f"--nproc={MAX_PROCESSES}"]
    return cmd + ["--"]


def _limit(argv: list[str]) -> None:
    """Inside the jail: set the limits, drop to the given uid, then exec the kernel."""
    import resource

    split = argv.index("--")
    opts = dict(a.lstrip("-").split("=", 1) for a in argv[:split])
    command = argv[split + 1 :]
    memory = int(opts["memory"])
    # RLIMIT_DATA bounds what the kernel allocates (heap and anonymous maps), not the address
    # space its libraries are mapped into: torch alone maps over a gigabyte of code.
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if "uid" in opts:
        uid = int(opts["uid"])
        nproc = int(opts["nproc"])
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # from root to a plain uid: every capability goes with it
    os.chdir(HOME)  # after the drop: capless root may not enter the uid's own 0700 folder
    os.execv(command[0], command)


def _main() -> int:
    """``python -m bertbook.sandbox [--memory 2G]``: start a kernel in the jail as grading
    would (as root: under a jail uid of its own) and say whether it works."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bertbook.sandbox", description=_main.__doc__)
    parser.add_argument("--memory", default="2G", help="the memory limit to try (default 2G)")
    memory = parse_size(parser.parse_args().memory)
    try:
        with Uids(1 if os.geteuid() == 0 else 0) as uids:
            why = probe(memory, uids[0] if uids else None)
    except Unavailable as err:
        why = str(err)
    print(why or "the sandbox works here: a kernel started in the jail and answered a request")
    return 1 if why else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["limit"]:
        _limit(sys.argv[2:])
    else:
        sys.exit(_main())
