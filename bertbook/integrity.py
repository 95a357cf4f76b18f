"""Is the course package still the code it was installed as? The grader asks after every notebook.

The baseline is the installed files' recorded hashes: the wheel's RECORD when the package was
installed from one, else git's blob hashes when it is a git checkout; a file that already differs
from its record when grading starts (a local edit) is named once and taken as found. A sandboxed
kernel cannot write the package at all; this check is what catches anything else (and an
unsandboxed run) changing the references between two notebooks.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import subprocess
from pathlib import Path

import bertbook

PACKAGE = Path(bertbook.__file__).resolve().parent


def _files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _record_hashes() -> dict[str, str]:
    """'bertbook/x.py' -> 'sha256=<urlsafe base64>' from the installed wheel's RECORD."""
    try:
        dist = importlib.metadata.distribution("bertbook")
    except importlib.metadata.PackageNotFoundError:
        return {}
    out = {}
    for f in dist.files or []:
        if f.hash and f.hash.mode == "sha256" and str(f).startswith("bertbook/"):
            if Path(dist.locate_file(f)).resolve().parent.is_relative_to(PACKAGE):
                out[str(f)] = f"sha256={f.hash.value}"
    return out


def _git_hashes() -> dict[str, str]:
    """'bertbook/x.py' -> 'git=<blob sha1>' from the index of the checkout holding the package."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(PACKAGE.parent), "ls-files", "-s", "--", "bertbook"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    out = {}
    for line in listed.stdout.splitlines():
        meta, _, name = line.partition("\t")
        out[name] = f"git={meta.split()[1]}"
    return out


def _hash_as(kind: str, data: bytes) -> str:
    if kind == "sha256":
        digest = hashlib.sha256(data).digest()
        return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return "git=" + hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Package:
    """The package's files against their baseline; ``changed()`` lists what moved since."""

    def __init__(self):
        recorded, self.source = _record_hashes(), "RECORD"
        if not recorded:
            recorded, self.source = _git_hashes(), "git"
        self.kind = "sha256" if self.source == "RECORD" else "git"
        now = self.hashes()
        # Differs from its record before any notebook ran: a local edit, or a change left by an
        # earlier unsandboxed run. Named once; the references use the file as it is.
        self.local_edits = sorted(n for n in now if n in recorded and recorded[n] != now[n])
        self.baseline = now

    def hashes(self) -> dict[str, str]:
        out = {}
        for path in _files():
            try:
                data = path.read_bytes()
            except OSError:
                data = b""
            out[f"bertbook/{path.relative_to(PACKAGE).as_posix()}"] = _hash_as(self.kind, data)
        return out

    def changed(self) -> list[str]:
        now = self.hashes()
        return sorted(
            n for n in set(now) | set(self.baseline) if now.get(n) != self.baseline.get(n)
        )
