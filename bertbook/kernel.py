"""Run untrusted notebook code in a Jupyter kernel that can hang, die or flood, and survive it.

``Sandbox`` executes cells one at a time with a time limit each. A cell past its limit is
interrupted (and the kernel restarted if the interrupt does not take). A kernel that dies is
restarted and the cells that had succeeded are run again, skipping the cell that killed it, so
what was defined before still counts. Output is counted, never stored, so a notebook that
prints gigabytes costs time, not memory.
"""

from __future__ import annotations

import ast
import os
import queue
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from jupyter_client import KernelManager


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


class Sandbox:
    """A kernel in a scratch folder. Use as a context manager."""

    def __init__(self, cwd: str | None = None, max_restarts: int = 3, startup_timeout: float = 60):
        self._tmp = None if cwd else tempfile.TemporaryDirectory(prefix="bertbook-grade-")
        self.cwd = cwd or self._tmp.name
        self.max_restarts = max_restarts
        self.restarts = 0
        self.startup_timeout = startup_timeout
        self.km: KernelManager | None = None
        self.kc = None
        self.good_cells: list[str] = []  # sources that ran without error, to replay after a death
        self.preamble: list[str] = []  # code the grader defines in every new kernel

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _start(self) -> None:
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0", BERTBOOK_GRADING="1")
        env.pop("BERTBOOK_GLUE_LOG", None)
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(
            cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.kc = self.km.client()
        self.kc.allow_stdin = False
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=self.startup_timeout)
        for code in self.preamble:
            self._execute(code, timeout=60)

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
                if self._execute(code, replay_timeout).status != "ok":
                    break
        return True

    def define(self, code: str) -> None:
        """Code run now and again in every restarted kernel (the grader's helpers)."""
        self.preamble.append(code)
        self._execute(code, timeout=60)

    # -- execution -------------------------------------------------------------------------------
    def _execute(self, code: str, timeout: float, expressions: dict | None = None) -> _Reply:
        msg_id = self.kc.execute(
            code,
            silent=False,
            store_history=False,
            user_expressions=expressions or {},
            allow_stdin=False,
        )
        deadline = time.monotonic() + timeout
        reply: dict | None = None
        idle = False
        out_bytes = 0
        interrupted = False
        while reply is None or not idle:
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
            if reply is None:
                try:
                    msg = self.kc.get_shell_msg(timeout=0)
                    if msg["parent_header"].get("msg_id") == msg_id:
                        reply = msg["content"]
                except queue.Empty:
                    pass
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
        r = self._execute(code, timeout)
        run = CellRun(index, r.status, r.error, r.output_bytes)
        if r.status == "ok":
            self.good_cells.append(code)
        elif r.status == "died" or (r.status == "timeout" and not self._responsive()):
            run.status = "died" if r.status == "died" else "timeout"
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
            return "ok", ast.literal_eval(value["data"]["text/plain"])
        except (KeyError, ValueError, SyntaxError):
            return "error", "the kernel returned an unreadable value"
