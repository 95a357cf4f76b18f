"""Run untrusted notebook code in a Jupyter kernel that can hang, die or flood, and survive it.

``Kernel`` executes cells one at a time with a time limit each. A cell past its limit is
interrupted (and the kernel restarted if the interrupt does not take). A kernel that dies is
restarted and the cells that had succeeded are run again, skipping the cell that killed it, so
what was defined before still counts. Output is counted, never stored, so a notebook that
prints gigabytes costs time, not memory. With a ``Jail`` the kernel runs inside
``bertbook.sandbox``'s bubblewrap jail and talks to us over IPC sockets, never TCP.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# jupyter_client finds the kernel spec through ipykernel, which (6.x) imports debugpy, which
# warns on stderr about Python's frozen modules: noise in the grader's one-line errors.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

import zmq  # noqa: E402
from jupyter_client import KernelManager  # noqa: E402

from . import safe_ast, sandbox

MAX_REPLY_CHARS = 64_000_000  # a reply longer than this is refused unread
# Past this, zmq drops a message (and reconnects) before any of it is decoded: a notebook that
# displays gigabytes costs the grader nothing.
MAX_MESSAGE_BYTES = 48 * 1024**2


@dataclass
class CellRun:
    index: int
    status: str = "ok"  # ok | error | timeout | died | skipped
    error: str = ""
    output_bytes: int = 0


@dataclass
class _Reply:
    status: str  # ok | error | timeout | died
    error: str = ""
    output_bytes: int = 0
    expressions: dict = field(default_factory=dict)


@dataclass
class Jail:
    """How to confine a kernel: a memory limit, the uid to run as (None: our own), and the
    folders to hide should they lie inside one the kernel reads (the grader's own)."""

    memory: int = 2 * 1024**3
    uid: int | None = None
    hide: tuple[str, ...] = ()
    # What builds the command prefix (``sandbox.bwrap_command``'s arguments): None is bubblewrap;
    # Gradescope's fallback, where a container forbids namespaces, runs the kernel as a uid.
    launcher: Callable[..., list[str]] | None = None


class StartError(RuntimeError):
    """The kernel did not start: the jail's or the installation's fault, never the notebook's.
    The message ends with what bwrap and the kernel wrote on their stderr."""


def _socket_folder() -> str:
    """A new folder for the kernel's ipc sockets: in TMPDIR where their paths fit a socket
    address (108 bytes on Linux), else in /tmp (a deep TMPDIR, e.g. a CI runner's)."""
    folder = os.path.realpath(tempfile.mkdtemp(prefix="bertbook-k-"))
    if len(os.fsencode(folder)) + len("/kernel-999.json") < 100:
        return folder
    os.rmdir(folder)
    return os.path.realpath(tempfile.mkdtemp(prefix="bertbook-k-", dir="/tmp"))


class _Tail:
    """Drains a pipe in a thread, keeping only its last bytes: the kernel's and bwrap's stderr,
    read for the reason when a kernel does not start (a notebook cannot flood the grader)."""

    def __init__(self, keep: int = 4000):
        read, self.write = os.pipe()
        self.keep = keep
        self.data = b""
        self._thread = threading.Thread(target=self._drain, args=(read,), daemon=True)
        self._thread.start()

    def _drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as f:
            while chunk := f.read(65536):
                self.data = (self.data + chunk)[-self.keep :]

    def close_writer(self) -> None:
        if self.write is not None:
            os.close(self.write)
            self.write = None

    def text(self, wait: float = 1.0) -> str:
        self._thread.join(wait)  # the writer is gone when the kernel is: read to its end
        lines = self.data.decode("utf-8", "replace").strip().splitlines()
        useful = [ln.strip() for ln in lines if ln.strip()]
        return " / ".join(useful[-3:])[-600:]


class _JailedKernelManager(KernelManager):
    """A KernelManager whose kernel command runs inside the bubblewrap jail."""

    jail_prefix: list[str] = []
    jail_uid: int | None = None

    def format_kernel_cmd(self, extra_arguments=None):
        # jupyter_client 8 ignores kernel_cmd; this is the hook that builds the command.
        return self.jail_prefix + super().format_kernel_cmd(extra_arguments)

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        if self.jail_uid is not None:  # the kernel reads it as its own uid
            os.chown(self.connection_file, self.jail_uid, self.jail_uid)


class Kernel:
    """A kernel in a scratch folder, jailed when given a ``Jail``. Use as a context manager."""

    def __init__(
        self,
        cwd: str | None = None,
        max_restarts: int = 3,
        startup_timeout: float = 60,
        jail: Jail | None = None,
    ):
        self._tmp = None if cwd else tempfile.TemporaryDirectory(prefix="bertbook-grade-")
        self.cwd = cwd or self._tmp.name
        self.jail = jail
        self.sockdir: str | None = None
        self.max_restarts = max_restarts
        self.restarts = 0
        self.startup_timeout = startup_timeout
        self.km: KernelManager | None = None
        self.kc = None
        self.good_cells: list[str] = []  # sources that ran without error, to replay after a death
        self.preamble: list[str] = []  # code the grader defines in every new kernel
        # time.monotonic() past which no cell runs, replays included (None: no deadline)
        self.deadline: float | None = None
        self.cgroup: sandbox.Cgroup | None = None
        self.context = zmq.Context()
        self.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # every socket made from it

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Kernel:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop()
        if self.cgroup is not None:
            self.cgroup.remove()
        self.context.destroy(linger=100)
        if self._tmp is not None:
            self._tmp.cleanup()
        if self.sockdir is not None:
            shutil.rmtree(self.sockdir, ignore_errors=True)

    def _manager(self) -> KernelManager:
        if self.jail is None:
            return KernelManager(kernel_name="python3", context=self.context)
        if self.sockdir is None:
            # Its real path: jupyter resolves the connection file's folder, which the jail binds.
            self.sockdir = _socket_folder()
            if self.jail.uid is not None:
                os.chown(self.sockdir, self.jail.uid, self.jail.uid)
                os.chown(self.cwd, self.jail.uid, self.jail.uid)
                for f in os.listdir(self.cwd):
                    os.chown(os.path.join(self.cwd, f), self.jail.uid, self.jail.uid)
            self.cgroup = sandbox.Cgroup.make(self.jail.memory)
        km = _JailedKernelManager(
            kernel_name="python3", transport="ipc", ip=f"{self.sockdir}/k", context=self.context
        )
        km.connection_file = f"{self.sockdir}/kernel-{self.restarts}.json"
        km.jail_uid = self.jail.uid
        km.jail_prefix = [] if self.cgroup is None else self.cgroup.prefix()
        km.jail_prefix += (self.jail.launcher or sandbox.bwrap_command)(
            self.cwd,
            self.sockdir,
            self.jail.memory,
            self.jail.uid,
            sandbox.environment(),
            hide=self.jail.hide,
        )
        # A signal from outside does not reach a kernel in its own PID namespace (and can kill
        # it): interrupt it with a message on its control channel instead.
        km.kernel_spec.interrupt_mode = "message"
        return km

    def _start(self) -> None:
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0", BERTBOOK_GRADING="1")
        env["OMP_NUM_THREADS"] = "1"  # as in the sandbox: several kernels share the cores
        env.pop("BERTBOOK_GLUE_LOG", None)
        self.km = self._manager()
        tail = _Tail()
        try:
            try:
                self.km.start_kernel(
                    cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=tail.write
                )
            finally:
                tail.close_writer()
            self.kc = self.km.client(context=self.context)
            self.kc.allow_stdin = False
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=self.startup_timeout)
        except Exception as err:
            alive = self.km is not None and self.km.has_kernel and self.km.is_alive()
            self._stop()
            why = tail.text(wait=0 if alive else 2) or f"{type(err).__name__}: {err}"
            where = "in the jail" if self.jail is not None else ""
            raise StartError(
                f"the kernel did not start {where}: {why}".replace("  ", " ")
            ) from None
        for code in self.preamble:
            self._load(code)

    def _stop(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:
                pass
        self.km = self.kc = None

    def alive(self) -> bool:
        return self.km is not None and self.km.is_alive()

    def restart(self, replay: bool = True, replay_timeout: float = 60) -> bool:
        """A fresh kernel with the good cells run again. False when out of restarts."""
        self._stop()
        if self.restarts >= self.max_restarts:
            return False
        self.restarts += 1
        self._start()
        if replay:
            for code in self.good_cells:
                left = self._left(replay_timeout)
                if left <= 0 or self._execute(code, left).status != "ok":
                    break
        return True

    def _left(self, timeout: float) -> float:
        """``timeout``, cut to what is left before the deadline."""
        if self.deadline is None:
            return timeout
        return min(timeout, self.deadline - time.monotonic())

    def define(self, code: str) -> None:
        """Code run now and again in every restarted kernel (the grader's helpers); an error
        says so rather than leave every later call failing with a NameError."""
        self.preamble.append(code)
        self._load(code)

    def _load(self, code: str) -> None:
        r = self._execute(code, timeout=60)
        if r.status != "ok":
            raise RuntimeError(f"the grader's helpers did not load in this kernel: {r.error}")

    # -- execution -------------------------------------------------------------------------------
    def _execute(self, code: str, timeout: float, expressions: dict | None = None) -> _Reply:
        msg_id = self.kc.execute(
            code,
            silent=False,
            store_history=False,
            user_expressions=expressions or {},
            allow_stdin=False,
            # ipykernel aborts the requests that reach it just after a cell raised (ipykernel 6
            # did so for the grader's next request, the helpers); every cell is run regardless.
            stop_on_error=False,
        )
        deadline = time.monotonic() + timeout
        reply: dict | None = None
        idle = False
        out_bytes = 0
        interrupted = False
        # The reply is what counts; the idle status after it can be lost when zmq dropped an
        # oversized output message and was reconnecting (MAX_MESSAGE_BYTES): wait for it briefly.
        idle_by = float("inf")
        while reply is None or not (idle or time.monotonic() > idle_by):
            if time.monotonic() > deadline:
                if interrupted or not self.alive():
                    return _Reply("timeout" if self.alive() else "died", "time limit", out_bytes)
                self.km.interrupt_kernel()
                interrupted = True
                deadline = time.monotonic() + 5  # grace for the interrupt to take
            if not self.alive():
                return _Reply("died", "the kernel died", out_bytes)
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
                if msg["parent_header"].get("msg_id") == msg_id:
                    kind = msg["msg_type"]
                    if kind == "status" and msg["content"]["execution_state"] == "idle":
                        idle = True
                    elif kind in ("stream", "display_data", "execute_result", "error"):
                        out_bytes += len(str(msg["content"]))  # counted, not kept
            except queue.Empty:
                pass
            except Exception:  # a message the kernel garbled (it is the student's process)
                continue
            if reply is None:
                try:
                    msg = self.kc.get_shell_msg(timeout=0)
                    if msg["parent_header"].get("msg_id") == msg_id:
                        reply = msg["content"] if isinstance(msg["content"], dict) else {}
                        idle_by = time.monotonic() + 2
                except queue.Empty:
                    pass
                except Exception:
                    continue
        if interrupted:
            return _Reply("timeout", "time limit", out_bytes)
        if reply.get("status") != "ok":
            err = f"{reply.get('ename', 'Error')}: {reply.get('evalue', '')}"[:300]
            return _Reply("error", err, out_bytes)
        return _Reply("ok", "", out_bytes, reply.get("user_expressions", {}))

    def run_cell(self, index: int, code: str, timeout: float) -> CellRun:
        """Run one cell; after a death or a stuck interrupt, restart and replay the good cells."""
        if not self.alive() and not self.restart():
            return CellRun(index, "skipped", "the kernel could not be restarted")
        if self._left(timeout) <= 0:
            return CellRun(index, "skipped", "past the notebook's time limit")
        killed = self.cgroup.oom_kills() if self.cgroup else 0
        r = self._execute(code, self._left(timeout))
        run = CellRun(index, r.status, r.error, r.output_bytes)
        if r.status == "ok":
            self.good_cells.append(code)
        elif r.status == "died" or (r.status == "timeout" and not self._responsive()):
            run.status = "died" if r.status == "died" else "timeout"
            if self.cgroup is not None and self.cgroup.oom_kills() > killed:
                run.error = "killed: its processes together used more than the memory limit"
            self.restart()
        return run

    def _responsive(self) -> bool:
        return self.alive() and self._execute("pass", timeout=5).status == "ok"

    def evaluate(self, expression: str, timeout: float) -> tuple[str, str]:
        """Evaluate an expression whose value is a str; return (status, that str or an error).

        The value comes back in the execute reply of this request alone (``user_expressions``),
        so nothing the notebook prints can pose as it."""
        if not self.alive() and not self.restart():
            return "died", "the kernel died and could not be restarted"
        r = self._execute("", timeout, {"value": expression})
        if r.status != "ok":
            if r.status in ("died", "timeout") and not self._responsive():
                self.restart()
            return r.status, r.error
        value = r.expressions.get("value", {})
        if value.get("status") != "ok":
            return "error", f"{value.get('ename', 'Error')}: {value.get('evalue', '')}"[:300]
        try:
            text = value["data"]["text/plain"]
            if not isinstance(text, str) or len(text) > MAX_REPLY_CHARS:
                return "error", "the kernel returned a value too large to read"
            return "ok", safe_ast.literal_eval(text)  # threads grade side by side
        except Exception:  # deep nesting (RecursionError), memory, junk: one bad value only
            return "error", "the kernel returned an unreadable value"
