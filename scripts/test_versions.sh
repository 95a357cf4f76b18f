#!/usr/bin/env bash
# The course package against other versions than the pins:
#   scripts/test_versions.sh latest|oldest [--chapters] [--install-only]
#   latest: the newest versions that the package's ranges ([project.dependencies]) allow, as a
#           Colab that moved ahead of the pins would have them;
#   oldest: the lowest versions those ranges allow (uv's --resolution lowest-direct), the
#           oldest environment that `pip install bertbook` promises to work in.
# torch stays at its pin in both (only the CUDA build of a newer torch can be had here), unless
# BERTBOOK_TORCH names another requirement (the scheduled workflow floats it to the newest CPU
# build, from the index in BERTBOOK_TORCH_INDEX). Each makes a fresh virtualenv in _build/,
# prints the versions against the pins (bertbook.doctor), then runs the package's tests, which
# grade every solution (full marks) and exercise (zero). --chapters then executes every chapter
# and solution notebook there (nbval --nbval-lax: every cell must run and its asserts hold; the
# printed numbers may differ from the pinned run's). On a failure it names every installed
# package that is not at its pin (bertbook.doctor --moved).
# --install-only stops once the virtualenv is made (.ci/run makes both while the book builds,
# then runs the tests with BERTBOOK_VERSIONS_INSTALLED=1, which reuses a virtualenv made so).
# uv (the pinned environment's) installs everything but torch, from one cache for both sets.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/test_versions.sh latest|oldest [--chapters] [--install-only]}
shift
chapters= install_only=
for option in "$@"; do
  case $option in
    --chapters) chapters=1 ;;
    --install-only) install_only=1 ;;
    *) echo "unknown option: $option" >&2; exit 2 ;;
  esac
done
[[ $kind == latest || $kind == oldest ]] || { echo "unknown set: $kind (latest or oldest)" >&2; exit 2; }
venv=_build/venv-$kind
py=$venv/bin/python
start=$(date +%s)
pin() { grep -i "^$1==" requirements.txt; }

install() {
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  local torch_index=()
  [[ -n ${BERTBOOK_TORCH_INDEX:-} ]] && torch_index=(--index-url "$BERTBOOK_TORCH_INDEX")
  # torch with pip, which honours the machine's or CI's index for its CPU build.
  "$py" -m pip install -q --disable-pip-version-check "${torch_index[@]}" \
    "${BERTBOOK_TORCH:-$(pin torch)}"
  local tools=("$(pin pytest)" "$(pin pytest-timeout)")
  [[ -n $chapters ]] && tools+=("$(pin nbval)")
  case $kind in
    latest)  # the newest release of every dependency the ranges allow (torch is not one)
      .venv/bin/uv pip install -q --python "$py" --upgrade -e . "${tools[@]}"
      ;;
    oldest)
      # Wheels only (the lowest releases may predate this Python and fail to build), except
      # docopt, which has never published one.
      .venv/bin/uv pip install -q --python "$py" --resolution lowest-direct \
        --only-binary :all: --no-binary docopt -e . "${tools[@]}"
      ;;
  esac
  touch "$venv/.installed"
  echo "[$kind] installed after $(( $(date +%s) - start )) s"
}

if [[ ${BERTBOOK_VERSIONS_INSTALLED:-} == 1 && -e $venv/.installed ]]; then
  echo "[$kind] using the virtualenv made earlier in this run"
else
  install
fi
[[ -n $install_only ]] && exit 0

# Which versions moved: every dependency with its range and its pin (not a failure by itself).
"$py" -m bertbook.doctor || true
moved() {
  echo "[$kind] FAILED after $(( $(date +%s) - start )) s; these packages are not at their pins:"
  "$py" -m bertbook.doctor --moved
}
trap 'moved' ERR

# This set's own logs and temporary files: .ci/run runs the two sets and the grader's second
# layout side by side (tests/conftest.py, BERTBOOK_TEST_LOGS).
export BERTBOOK_TEST_LOGS=$PWD/_build/tests-$kind
mkdir -p "$BERTBOOK_TEST_LOGS/tmp"
export TMPDIR=$BERTBOOK_TEST_LOGS/tmp

# The package's own tests; those of the book build, the launch environments, the workflows
# and the tools of the pinned environment (ruff, actionlint, uv, Chromium, the chapters' benchmark,
# which needs nbclient) stay with `make test`.
# So do the jail's limits, uids and layouts (tests/test_sandbox_{limits,uids,layouts}.py): they
# test bubblewrap and the kernel, which no Python package's version changes, and take a third
# of the grader's test time; the grader's own behaviour (every solution, the hostile class, the
# gradebook) runs here on each set.
"$py" -m pytest tests -o addopts="-p no:cacheprovider" -q \
  --ignore=tests/test_book_html.py --ignore=tests/test_pdf.py \
  --ignore=tests/test_determinism.py --ignore=tests/test_lint.py \
  --ignore=tests/test_launch_envs.py --ignore=tests/test_workflows.py \
  --ignore=tests/test_install.py --ignore=tests/test_maint.py \
  --ignore=tests/test_repository_url.py --ignore=tests/test_chapter_resources.py \
  --ignore=tests/test_sandbox_limits.py \
  --ignore=tests/test_sandbox_uids.py --ignore=tests/test_sandbox_layouts.py
echo "[$kind] package tests passed after $(( $(date +%s) - start )) s"

if [[ -n $chapters ]]; then
  "$py" -m pytest book solutions -o addopts="-p no:cacheprovider" -q \
    --nbval-lax --nbval-current-env --nbval-cell-timeout=900
  echo "[$kind] every chapter and solution ran after $(( $(date +%s) - start )) s"
fi
