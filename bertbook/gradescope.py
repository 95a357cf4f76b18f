"""Gradescope: the autograder zip an instructor uploads, and what runs inside Gradescope's container.

``python -m bertbook.grade --make-gradescope EXERCISE [-o autograder.zip]`` writes the zip
(``make_zip``): ``setup.sh`` (and ``find_python.sh``, its first step), which Gradescope runs
once, as root, to build the image (a Python the course supports, a virtualenv with the pinned
requirements and this exact course package, shipped in the zip as a wheel); ``run_autograder``,
which it runs for every submission; the run's settings (``autograder.json``), the pins and a
README for the instructor.

``run_autograder`` calls ``python -m bertbook.gradescope run``, which grades the one notebook
in ``/autograder/submission`` and writes ``/autograder/results/results.json`` (Gradescope's
autograder specification). Whose fault decides what it writes:
- the student's (no notebook, two notebooks, not the course exercise, unreadable): results
  with 0 points and a message saying what to hand in;
- the grader's (the kernel cannot start, the course package changed, anything unexpected): no
  results.json at all and a non-zero exit status, so that Gradescope shows an autograder
  error (and the instructor regrades) instead of a zero.

Isolation: the student's kernel runs in bubblewrap's jail where the container allows it. Where it
does not (no user namespaces), it runs as an unprivileged uid with the memory, process and
file-size limits, without namespaces (``user_command``): it can read what any user may read, and
write only its own scratch folder, /tmp and /dev/shm; the package, the grader's files and the
results folder belong to root and are read-only to it; every process of that uid is killed
before results.json is written. The results' output names the isolation used.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import json
import os
import random
import shutil
import signal
import stat
import sys
import time
import zipfile
from pathlib import Path

from . import __version__, sandbox
from .checks import format_result, questions_for

ROOT = "/autograder"  # Gradescope's layout; BERTBOOK_AUTOGRADER_ROOT moves it (tests only)
VENV = "bertbook-venv"  # under ROOT: root-owned, read-only to the kernel
BASE_IMAGE = "Ubuntu 22.04, variant Base (Gradescope's default)"
KERNEL_USER = "bertbook-kernel"
MAX_FILE_BYTES = 1024**3  # RLIMIT_FSIZE of a kernel outside bubblewrap: one file <= 1 GiB
MAX_OUTPUT_CHARS = 20_000  # per test's output: Gradescope shows it in a collapsed <pre>
# PyTorch's own index serves the CPU build of the pinned torch (as binder/requirements.txt does).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


class GraderFault(RuntimeError):
    """The autograder cannot grade this submission for a reason that is not the student's."""


def root_dir() -> Path:
    return Path(os.environ.get("BERTBOOK_AUTOGRADER_ROOT") or ROOT)


# -- the zip ------------------------------------------------------------------------------------
def build_wheel() -> tuple[str, bytes]:
    """A wheel of the course package as it is installed here (its .py files, its metadata)."""
    from . import integrity

    name = f"bertbook-{__version__}"
    files = {
        f"bertbook/{p.relative_to(integrity.PACKAGE).as_posix()}": p.read_bytes()
        for p in integrity._files()
    }
    meta = [
        "Metadata-Version: 2.1",
        "Name: bertbook",
        f"Version: {__version__}",
        "Requires-Python: >=3.11",
    ]
    try:
        meta += [f"Requires-Dist: {r}" for r in importlib.metadata.requires("bertbook") or []]
    except importlib.metadata.PackageNotFoundError:
        pass
    files[f"{name}.dist-info/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{name}.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: bertbook.gradescope\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}.dist-info/RECORD,,")
    files[f"{name}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as whl:
        for path, data in files.items():
            whl.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return f"{name}-py3-none-any.whl", out.getvalue()


def pinned_requirements() -> list[str]:
    """``name==version`` for torch, the course package's requirements and theirs, as installed
    here (the environment the course's tests pass in)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    pins: dict[str, str] = {}
    installer = {"pip"}  # the virtualenv's own
    todo = ["torch", *(importlib.metadata.requires("bertbook") or [])]
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        key = canonicalize_name(req.name)
        if key in pins or key in installer:
            continue
        try:
            dist = importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            raise GraderFault(f"{req.name} is not installed here: install the course") from None
        if key.startswith(("nvidia-", "cuda-", "triton")):
            continue  # a CUDA build's companions: the autograder installs the CPU build
        version = dist.version
        if key == "torch":  # the CPU build, whichever build is installed here
            version = Version(version).base_version + "+cpu"
        pins[key] = f"{dist.metadata['Name']}=={version}"
        todo += dist.requires or []
    return sorted(pins.values(), key=str.lower)


def _config(exercise: str, wheel: str, digest: str, memory: str) -> dict:
    return {
        "exercise": exercise,
        "bertbook_version": __version__,
        "wheel": f"wheels/{wheel}",
        "wheel_sha256": digest,
        "memory": memory,
        "cell_timeout": 60,
        "call_timeout": 20,
        "notebook_timeout": 600,
        "isolation": "auto",  # bubblewrap where it works, else an unprivileged uid (see above)
        "base_image": BASE_IMAGE,
    }


def make_zip(exercise: str, out: Path, memory: str = "2G") -> Path:
    """Write the autograder zip for one exercise; returns its path."""
    from .integrity import Package

    questions = questions_for(exercise)  # KeyError names the known exercises
    sandbox.parse_size(memory)
    for name in Package().local_edits:
        print(
            f"warning: {name} differs from its record; the zip ships it as it is", file=sys.stderr
        )
    wheel, wheel_bytes = build_wheel()
    config = _config(exercise, wheel, hashlib.sha256(wheel_bytes).hexdigest(), memory)
    cases = sum(len(q.cases(random.Random(0))) for q in questions.values())
    bound = config["notebook_timeout"] + cases * config["call_timeout"] + 120
    fields = dict(
        exercise=exercise,
        version=__version__,
        wheel=config["wheel"],
        base_image=BASE_IMAGE,
        index=TORCH_CPU_INDEX,
        user=KERNEL_USER,
        uid=sandbox.FIRST_UID,
        venv=VENV,
        bound=bound,
        cell_timeout=config["cell_timeout"],
        notebook_timeout=config["notebook_timeout"],
        digest=config["wheel_sha256"],
        memory=memory,
        questions=len(questions),
        points=sum(q.points for q in questions.values()),
        cases=cases,
    )
    pins = pinned_requirements()
    files = {
        "setup.sh": SETUP_SH.format(**fields),
        "find_python.sh": FIND_PYTHON_SH.format(**fields),
        "run_autograder": RUN_AUTOGRADER.format(**fields),
        "README.md": README.format(**fields, pins="\n".join(f"    {p}" for p in pins)),
        "autograder.json": json.dumps(config, indent=2) + "\n",
        "requirements.txt": "\n".join(pins) + "\n",
        config["wheel"]: wheel_bytes,
    }
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            executable = name.endswith(".sh") or name == "run_autograder"
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    os.replace(tmp, out)
    return out


def make_cli(exercise: str, out: str, memory: str = "2G") -> int:
    """``--make-gradescope``: 0 with the zip written, 2 with a one-line error."""
    try:
        path = make_zip(exercise, Path(out), memory)
    except (KeyError, ValueError, GraderFault, OSError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    print(f"wrote {path}: upload it as the autograder of {exercise} (see README.md inside)")
    return 0


SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image. Generated by
# `python -m bertbook.grade --make-gradescope {exercise}` (bertbook {version}).
# Base image: {base_image}. Its Python is 3.10; the course needs 3.11 or newer.
set -euo pipefail
ROOT="${{BERTBOOK_AUTOGRADER_ROOT:-/autograder}}"  # moved only by the course's own test
SOURCE="$ROOT/source"
VENV="$ROOT/{venv}"

# 1. A Python the course supports (find_python.sh prints its path).
PY="${{BERTBOOK_PYTHON:-}}"  # the course's test names one any uid may run
if [ -z "$PY" ]; then
  PY="$(bash "$SOURCE/find_python.sh")"
fi
echo "setup.sh: Python $("$PY" -c 'import platform; print(platform.python_version())') at $PY"

# 2. bubblewrap, the jail the kernel runs in where the container allows user namespaces.
if ! command -v bwrap >/dev/null && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap || true
fi

# 3. The pinned requirements (torch's CPU build), then this exact course package.
rm -rf "$VENV"
"$PY" -m venv "$VENV"
if [ -n "${{BERTBOOK_SETUP_REUSE_SITE:-}}" ]; then
  # The course's test only: the pinned packages come from an environment already installed
  # (pip still checks every pin against it, and installs the course package from the wheel).
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  echo "$BERTBOOK_SETUP_REUSE_SITE" > "$site/zz-bertbook-reuse.pth"
  "$VENV/bin/python" -m pip uninstall -q -y setuptools  # so that pip checks the pinned one
fi
pip=("$VENV/bin/python" -m pip --no-input --disable-pip-version-check)
"${{pip[@]}}" install --extra-index-url {index} -r "$SOURCE/requirements.txt"
echo "{digest}  $SOURCE/{wheel}" | sha256sum --check --quiet -
"${{pip[@]}}" install --no-deps --force-reinstall "$SOURCE/{wheel}"

# 4. Root owns what the grader runs; the kernel may read it, never write it.
chown -R 0:0 "$SOURCE" "$VENV"
chmod -R go-w "$SOURCE" "$VENV"

# 5. The unprivileged user the kernel runs as where bubblewrap cannot be used.
if [ -z "${{BERTBOOK_SETUP_NO_USERADD:-}}" ] && ! id -u {user} >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin --uid {uid} {user}
fi

# 6. Check the result: the interpreter, the package's version, the isolation available here.
"$VENV/bin/python" -I -m bertbook.gradescope check --config "$SOURCE/autograder.json"
"""

FIND_PYTHON_SH = r"""#!/usr/bin/env bash
# setup.sh's first step: print the path of a Python >= 3.11 with venv, installing one if needed
# (Gradescope's default base image, Ubuntu 22.04, has 3.10). Everything else goes to stderr.
set -euo pipefail
supported() {{ "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }}
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null && supported "$(command -v "$candidate")"; then
    command -v "$candidate"
    exit 0
  fi
done
# Ubuntu's own python3.11 (universe), else the deadsnakes PPA's python3.12.
export DEBIAN_FRONTEND=noninteractive
{{
  apt-get update
  if apt-get install -y --no-install-recommends python3.11 python3.11-venv; then
    wanted=python3.11
  else
    apt-get install -y --no-install-recommends software-properties-common
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    apt-get install -y --no-install-recommends python3.12 python3.12-venv
    wanted=python3.12
  fi
}} >&2
PY="$(command -v "$wanted" || true)"
if [ -z "$PY" ] || ! supported "$PY"; then
  echo "find_python.sh: could not install a Python >= 3.11 with venv" >&2
  exit 1
fi
echo "$PY"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this, as root, for every submission. Generated by
# `python -m bertbook.grade --make-gradescope {exercise}` (bertbook {version}).
ROOT="${{BERTBOOK_AUTOGRADER_ROOT:-/autograder}}"  # moved only by the course's own test
exec "$ROOT/{venv}/bin/python" -I -m bertbook.gradescope run --config "$ROOT/source/autograder.json"
"""

README = """# Autograder for the exercise {exercise} (bertbook {version})

Generated by `python -m bertbook.grade --make-gradescope {exercise}`.

## Upload
1. In the assignment's *Configure Autograder* page, choose the base image **{base_image}**
   (setup.sh installs Python 3.11, since that image has 3.10; on an image with Python 3.11 or
   newer it uses that one).
2. Upload this zip, and wait for the build: it installs torch's CPU build and the course's
   pinned requirements (a few minutes).
3. Test it with the solution notebook (full marks) and the untouched exercise (0).

Students submit the one notebook `{exercise}.ipynb` (any file name ending in `.ipynb`).

## Run time
Each submission starts a kernel, runs the notebook top to bottom (at most {cell_timeout} s per
cell and {notebook_timeout} s in all are allowed), then calls each of the {questions} questions' functions on
{cases} test cases. A typical run takes the notebook's own run time plus about half a minute;
the grader's limits bound a run at {bound} s: set Gradescope's autograder timeout above that.

## What students see
One test per question ({points} points in all): its points, the failed cases and, when a wrong
answer equals a typical mistake, its name, and the question's hint; the run's seed, the grader's
version and the isolation used are in the top-level output. A submission that cannot be graded
because of the student (no notebook, two notebooks, not this exercise) gets 0 and a message; a
failure of the autograder itself writes no results, so Gradescope reports an autograder error:
regrade once the cause is fixed.

## Isolation
The kernel runs in a bubblewrap jail where the container allows user namespaces; otherwise as
the unprivileged user `{user}` (uid {uid}) with a memory limit of {memory}, a process limit and
a file-size limit, unable to write the package, the grader's files or the results. The output
says which.

## Pins
setup.sh installs these (torch's CPU build from PyTorch's index) and then the course package
from the wheel in this zip:

{pins}
"""


# -- inside the container -------------------------------------------------------------------------
def _text(value: object, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Student-derived text as plain text: control characters shown as escapes, length capped."""
    from .feedback import printable

    text = printable(str(value))
    return text if len(text) <= limit else text[:limit] + "\n[... cut]"


def find_notebook(submission: Path) -> tuple[Path | None, str]:
    """(the notebook, "") or (None, the student's problem). Links are refused, never followed."""
    found, links = [], []
    for dirpath, dirnames, filenames in os.walk(submission):
        # Jupyter's checkpoints, hidden folders, and what macOS adds to a zip are not answers.
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
        for name in filenames:
            if name.endswith(".ipynb") and not name.startswith("._"):
                path = Path(dirpath) / name
                (links if path.is_symlink() else found).append(path)
    if links:
        return None, f"{links[0].name} is a symbolic link: submit the notebook file itself"
    if not found:
        return None, "no notebook (.ipynb) in the submission: submit your exercise notebook"
    if len(found) > 1:
        names = ", ".join(sorted(str(p.relative_to(submission)) for p in found))
        return None, f"several notebooks ({names}): submit only the exercise notebook"
    return found[0], ""


def isolation(requested: str) -> tuple[str, str]:
    """('bubblewrap' | 'user', a note for the output); GraderFault when neither can be had."""
    requested = os.environ.get("BERTBOOK_AUTOGRADER_ISOLATION") or requested
    if requested not in ("auto", "bubblewrap", "user"):
        raise GraderFault(f"unknown isolation {requested!r} (auto, bubblewrap or user)")
    why = sandbox.unavailable_reason() if requested != "user" else "the fallback was asked for"
    if why is None:
        return "bubblewrap", "isolation: bubblewrap jail"
    if requested == "bubblewrap":
        raise GraderFault(f"bubblewrap is required but unavailable: {why}")
    if os.geteuid() != 0:
        raise GraderFault(f"no isolation for the student's code: {why}, and not root")
    return "user", (
        f"isolation: no bubblewrap ({why}); the kernel ran as an unprivileged uid "
        "with memory, process and file-size limits, without namespaces"
    )


_USED_UIDS: set[int] = set()


def user_command(
    scratch: str, sockdir: str, memory: int, uid: int | None, env: dict, hide: tuple[str, ...] = ()
) -> list[str]:
    """The command prefix that runs a kernel as ``uid`` with limits and no namespaces: what
    stands in for ``sandbox.bwrap_command`` (same arguments) where bubblewrap cannot run.
    ``hide`` cannot be honoured without a mount namespace: the uid reads what any user may."""
    if uid is None:
        raise GraderFault("the kernel needs a uid of its own outside bubblewrap (run as root)")
    from . import assets

    _USED_UIDS.add(uid)
    # The grader's private folder holds this one notebook's scratch folder: the uid may cross
    # it (not list it), so that its home is reachable by its path, as in the jail.
    parent = Path(scratch).parent
    if stat.S_IMODE(parent.stat().st_mode) == 0o700:
        parent.chmod(0o711)
    env = dict(env, HOME=scratch, MPLCONFIGDIR=f"{scratch}/.config/matplotlib")
    env["BERTBOOK_CACHE"] = str(assets.cache_dir())
    cmd = [shutil.which("env") or "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items())]
    cmd += [sys.executable, "-I", "-m", "bertbook.gradescope", "limit", f"--memory={memory}"]
    cmd += [f"--uid={uid}", f"--nproc={sandbox.MAX_PROCESSES}", f"--home={scratch}"]
    return cmd + ["--"]


def _limit(argv: list[str]) -> None:
    """Outside bubblewrap, as root: set the limits, drop to the uid for good, exec the kernel."""
    import resource

    split = argv.index("--")
    opts = dict(a.lstrip("-").split("=", 1) for a in argv[:split])
    command = argv[split + 1 :]
    uid, memory, nproc = int(opts["uid"]), int(opts["memory"]), int(opts["nproc"])
    if uid == 0:
        raise SystemExit("refusing to run a student's kernel as root")
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    os.chdir(opts["home"])  # as root: the folders above it are the grader's, closed to the uid
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise SystemExit("could not drop root")
    os.umask(0o077)
    os.execv(command[0], command)


def _processes_of(uid: int) -> list[int]:
    """The processes of ``uid`` in this PID namespace (a jail elsewhere on the machine that
    happens to use the same uid lives in a namespace of its own, and is not ours to kill)."""
    mine = os.readlink("/proc/self/ns/pid")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            uids = map(int, status["Uid"].split())
            if status["State"].split()[0] == "Z":  # a zombie holds nothing; its parent reaps it
                continue
            if uid in uids and os.readlink(f"/proc/{entry}/ns/pid") == mine:
                found.append(int(entry))
        except (OSError, KeyError, ValueError):
            continue  # gone meanwhile
    return found


def kill_uids(uids) -> None:
    """Kill every process of each uid that a kernel outside bubblewrap ran as (its children,
    ``setsid`` ones included); GraderFault if any survives."""
    for uid in uids:
        for _ in range(50):  # a fork loop is bounded by RLIMIT_NPROC; each round kills all
            pids = _processes_of(uid)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        else:
            raise GraderFault(f"processes of uid {uid} survived SIGKILL")


def _results_dir(results: Path) -> None:
    """The results folder belongs to root and is closed to writes by others; no stale results."""
    results.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(results.parent, 0, 0)
        os.chmod(results.parent, 0o755)
    discard(results)


def discard(results: Path) -> None:
    try:
        results.unlink()
    except FileNotFoundError:
        pass


def _tests(exercise: str, results, problem: str = "") -> list[dict]:
    questions = questions_for(exercise)
    tests = []
    if problem:
        for q in questions.values():
            tests.append(_test(q, 0.0, f"not graded: {problem}"))
        return tests
    for r in results:
        q = questions.get(r.question)
        hint = q.hint if q is not None and r.failed else ""
        tests.append(_test(q, r.points, format_result(r, hint), r.question, r.max_points))
    return tests


def _test(q, points: float, output: str, qid: str = "", max_points: float = 0) -> dict:
    name = f"{q.id}: {q.title or q.function}" if q is not None else qid
    return {
        "name": _text(name, 200),
        "score": float(points),
        "max_score": float(q.points if q is not None else max_points),
        "output": _text(output),
        "output_format": "text",
        "visibility": "visible",
    }


def results_for(report, exercise: str, meta: dict, elapsed: float, problem: str = "") -> dict:
    """Gradescope's results.json for one report (or for a student's problem, with 0 points)."""
    lines = []
    if problem:
        lines.append(f"Not graded: {problem}")
    else:
        lines.append(f"Notebook {Path(report.path).name}: {report.points:g}/{report.max_points}")
        for cell in report.cells:
            if cell.status != "ok":
                lines.append(f"cell {cell.index}: {cell.status} ({cell.error})")
        if report.kernel_restarts:
            lines.append(f"the kernel was restarted {report.kernel_restarts} time(s)")
    lines.append(
        f"exercise {exercise}; seed {meta['seed']}; grader bertbook {meta['grader_version']}; "
        f"{meta['isolation_note']}"
    )
    tests = _tests(exercise, [] if problem else report.results, problem)
    return {
        "score": 0.0 if problem else float(report.points),
        "execution_time": max(0, round(elapsed)),
        "output": _text("\n".join(lines)),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "exercise": exercise,
            "seed": meta["seed"],
            "grader_version": meta["grader_version"],
            "sandbox": meta["sandbox"],
            "status": "not graded" if problem else report.status,
        },
    }


def grader_fault_in(report) -> str:
    """'' when the report is a grade; else why the grader, not the student, failed."""
    if report.status == "graded":
        return ""
    return report.status  # could not be graded, grader error, invalid: none is the student's


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, ensure_ascii=True)
    os.replace(tmp, path)


def run_autograder(config: dict, root: Path | None = None) -> int:
    """Grade the submission; 0 with results.json written, 1 (and no results.json) on a grader
    fault."""
    from . import grade
    from .kernel import Jail

    started = time.monotonic()
    root = root or root_dir()
    results = root / "results" / "results.json"
    exercise = config["exercise"]
    try:
        _results_dir(results)
        if config.get("bertbook_version") != __version__:
            raise GraderFault(
                f"the zip is for bertbook {config.get('bertbook_version')}, this is {__version__}"
            )
        mode, note = isolation(config.get("isolation", "auto"))
        seed = random.SystemRandom().randrange(2**31)
        meta = {
            "seed": seed,
            "grader_version": __version__,
            "sandbox": mode,
            "isolation_note": note,
        }
        notebook, problem = find_notebook(root / "submission")
        report = None
        if notebook is not None:
            try:
                _, found = grade.read_exercise(notebook)
                if found != exercise:
                    problem = (
                        f"{notebook.name} is the exercise {found}; this assignment is {exercise}"
                    )
            except grade.Unusable as err:
                problem = str(err).removeprefix(f"{notebook}: ")
        if not problem:
            settings = grade.Settings(
                config["cell_timeout"], config["call_timeout"], config["notebook_timeout"], seed
            )
            launcher = user_command if mode == "user" else None
            settings.jail = Jail(sandbox.parse_size(config["memory"]), launcher=launcher)
            try:
                report = grade.Run([(notebook, None)], settings, jobs=1).execute()[0]
            finally:
                kill_uids(sorted(_USED_UIDS))  # the kernel and all it started are gone
            print(grade.render(report), flush=True)  # Gradescope shows stdout to instructors
            fault = grader_fault_in(report)
            if fault:
                raise GraderFault(f"{notebook.name}: {fault}")
        payload = results_for(report, exercise, meta, time.monotonic() - started, problem)
        _write_json(results, payload)
    except Exception as err:
        discard(results)
        kind = "" if isinstance(err, GraderFault) else f"{type(err).__name__}: "
        print(f"autograder error (not the student's fault): {kind}{err}", file=sys.stderr)
        if not isinstance(err, GraderFault):
            import traceback

            traceback.print_exc()
        return 1
    print(f"results: {payload['score']:g} points; {note}")
    return 0


def check(config: dict) -> int:
    """After setup: the interpreter, the package version, and the isolation this container gives."""
    print(f"Python {sys.version.split()[0]} at {sys.executable}")
    if sys.version_info < (3, 11):  # noqa: UP036 (this check is the point: setup.sh's Python)
        print("error: the course needs Python >= 3.11", file=sys.stderr)
        return 1
    if config.get("bertbook_version") != __version__:
        print(
            f"error: bertbook {__version__} installed, the zip is for "
            f"{config.get('bertbook_version')}",
            file=sys.stderr,
        )
        return 1
    questions_for(config["exercise"])
    try:
        mode, note = isolation(config.get("isolation", "auto"))
    except GraderFault as err:
        print(f"warning: {err}", file=sys.stderr)
        return 0  # the build may run where the graded container differs; run_autograder decides
    print(f"bertbook {__version__}, exercise {config['exercise']}; {note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["limit"]:
        _limit(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bertbook.gradescope")
    parser.add_argument("command", choices=["run", "check"])
    parser.add_argument("--config", required=True, help="the zip's autograder.json")
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    return run_autograder(config) if args.command == "run" else check(config)


if __name__ == "__main__":
    sys.exit(main())
