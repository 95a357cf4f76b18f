"""A bubblewrap jail for one student's kernel: what it may see, touch and use.

Inside, the kernel sees the system folders, the Python installation, the course package and its
assets, all read-only; one writable scratch folder holding only its own notebook copy (its home
and working directory); a private /tmp; no network (its own network namespace: it talks to the
grader over IPC sockets in a folder bound in for that alone); an environment reduced to what a
kernel needs; its own PID namespace, so every process it starts dies with it; no capabilities.
Resource limits are set by ``python -m bertbook.sandbox limit`` just before the kernel starts:
a limit on the memory the kernel allocates (``memory``), and, where the grader runs as root, an unprivileged uid of
its own with a cap on processes (RLIMIT_NPROC counts per uid and root is exempt from it; without
root the PID namespace is what ends every process).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
HOME = "/home/student"  # where the scratch folder appears inside
CACHE = "/opt/bertbook-cache"  # where the asset cache appears inside
FIRST_UID = 61000  # kernels run as FIRST_UID + slot when the grader is root
MAX_PROCESSES = 512  # threads count too: torch and ipykernel start dozens


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


def _readable_roots() -> list[str]:
    """The Python installation and the course package: the folders a kernel must read."""
    import bertbook

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable)}
    roots.add(str(Path(bertbook.__file__).resolve().parent))  # not the repository around it
    for entry in sys.path:
        if entry and "site-packages" in entry and os.path.isdir(entry):
            roots.add(entry)
    out = []
    for root in sorted(os.path.realpath(r) for r in roots):
        if os.path.exists(root) and not root.startswith(SYSTEM_DIRS):
            out.append(root)
    # sys.prefix of a venv holds a symlink to the real interpreter: keep both, drop nested ones.
    return [r for r in out if not any(r != o and r.startswith(o + os.sep) for o in out)]


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
    }
    package_parent = str(Path(bertbook.__file__).resolve().parent.parent)
    if any(os.path.realpath(p) == package_parent for p in sys.path[1:] if p):
        env["PYTHONPATH"] = package_parent  # the package comes from a PYTHONPATH entry
    env.update(extra or {})
    return env


def bwrap_command(
    scratch: str, sockdir: str, memory: int, uid: int | None, env: dict[str, str]
) -> list[str]:
    """The command prefix that runs a kernel command inside the jail."""
    from bertbook import assets

    cmd = ["bwrap", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    cmd += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup"]
    made: set[str] = set()

    def bind(option: str, source: str, dest: str) -> None:
        # bwrap makes missing parent folders 0700, which the kernel's uid could not cross.
        for parent in reversed(Path(dest).parents):
            if str(parent) not in made and str(parent) != "/":
                made.add(str(parent))
                if not str(parent).startswith(tuple(d + "/" for d in SYSTEM_DIRS)):
                    cmd.extend(["--perms", "0755", "--dir", str(parent)])
        cmd.extend([option, source, dest])

    for d in SYSTEM_DIRS:
        if os.path.isdir(d):
            bind("--ro-bind", d, d)
    for root in _readable_roots():
        bind("--ro-bind", root, root)
    cache = assets.cache_dir()
    if cache.is_dir():
        bind("--ro-bind", str(cache), CACHE)
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    bind("--bind", scratch, HOME)  # the limit step enters it
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["limit"]:
        _limit(sys.argv[2:])
    else:
        print(unavailable_reason() or "the sandbox works here")
