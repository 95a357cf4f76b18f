#!/usr/bin/env bash
# The grader's tests once more in a second layout, as unlike the checkout's as one machine
# allows: the repository and its virtualenv copied under /tmp, in a folder whose name has a
# space and a non-ASCII letter, with the grader's temporary files there too. A jail that
# assumes where the interpreter, the venv or the package live fails here (bwrap's --tmpfs /tmp
# once hid a venv under /tmp and every notebook scored 0).
#   scripts/test_grader_layout.sh [pytest options]
# The copy's venv is a fresh venv of the same base interpreter whose site-packages reach the
# checkout's installed packages through a .pth file, with the copy's course package first
# (seconds, not a reinstall of torch).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
base=$(mktemp -d "/tmp/bertbook layout é.XXXXXX")
trap 'rm -rf "$base"' EXIT
repo="$base/course repository"
mkdir -p "$repo" "$base/tmp"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$repo"

python=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')
"$python" -m venv --without-pip "$repo/.venv"
site=$("$repo/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
.venv/bin/python - "$repo" >"$site/layout.pth" <<'PY'
import sys, sysconfig
print(sys.argv[1])  # the copy's course package before the checkout's editable install
print("\n".join(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))))
PY
echo "[grader-layout] $repo ready after $(( $(date +%s) - start )) s"

cd "$repo"
TMPDIR=$base/tmp .venv/bin/python -c 'import bertbook, sys; assert bertbook.__file__.startswith(sys.argv[1]), bertbook.__file__' "$repo"
TMPDIR=$base/tmp .venv/bin/python -m bertbook.sandbox
# The grader's tests, without test_sandbox_layouts.py: this copy is itself a second layout,
# and `make test` builds that file's three layouts from the checkout. Without the tests of how a
# notebook is scored (marked grading_logic), which no layout changes: `make test` runs them.
TMPDIR=$base/tmp .venv/bin/python -m pytest -o addopts="-p no:cacheprovider" -q -m "not grading_logic" \
  tests/test_grade.py tests/test_gradebook.py tests/test_kernel.py tests/test_wire.py \
  tests/test_sandbox.py tests/test_sandbox_limits.py tests/test_sandbox_probe.py \
  tests/test_sandbox_uids.py "$@"
echo "[grader-layout] passed after $(( $(date +%s) - start )) s"
