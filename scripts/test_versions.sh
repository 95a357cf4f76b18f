#!/usr/bin/env bash
# The course package against other versions than the pins:
#   scripts/test_versions.sh latest|oldest [--chapters]
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
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/test_versions.sh latest|oldest [--chapters]}
chapters=${2:-}
[[ -z $chapters || $chapters == --chapters ]] || { echo "unknown option: $chapters" >&2; exit 2; }
venv=_build/venv-$kind
py=$venv/bin/python
start=$(date +%s)
pin() { grep -i "^$1==" requirements.txt; }

rm -rf "$venv"
"${PYTHON:-python3}" -m venv "$venv"
torch_index=()
[[ -n ${BERTBOOK_TORCH_INDEX:-} ]] && torch_index=(--index-url "$BERTBOOK_TORCH_INDEX")
"$py" -m pip install -q --disable-pip-version-check "${torch_index[@]}" \
  "${BERTBOOK_TORCH:-$(pin torch)}"
tools=("$(pin pytest)" "$(pin pytest-timeout)")
[[ -n $chapters ]] && tools+=("$(pin nbval)")
case $kind in
  latest)
    "$py" -m pip install -q --disable-pip-version-check --upgrade --upgrade-strategy eager \
      -e . "${tools[@]}"
    ;;
  oldest)
    # Wheels only (the lowest releases may predate this Python and fail to build), except
    # docopt, which has never published one.
    .venv/bin/uv pip install -q --python "$py" --resolution lowest-direct \
      --only-binary :all: --no-binary docopt -e . "${tools[@]}"
    ;;
  *) echo "unknown set: $kind (latest or oldest)" >&2; exit 2 ;;
esac
echo "[$kind] installed after $(( $(date +%s) - start )) s"

# Which versions moved: every dependency with its range and its pin (not a failure by itself).
"$py" -m bertbook.doctor || true
moved() {
  echo "[$kind] FAILED after $(( $(date +%s) - start )) s; these packages are not at their pins:"
  "$py" -m bertbook.doctor --moved
}
trap 'moved' ERR

# The package's own tests; those of the book build, the launch environments, the workflows
# and the tools of the pinned environment (ruff, actionlint, uv, Chromium) stay with `make test`.
"$py" -m pytest tests -o addopts="-p no:cacheprovider" -q \
  --ignore=tests/test_book_html.py --ignore=tests/test_pdf.py \
  --ignore=tests/test_determinism.py --ignore=tests/test_lint.py \
  --ignore=tests/test_launch_envs.py --ignore=tests/test_workflows.py \
  --ignore=tests/test_install.py --ignore=tests/test_maint.py \
  --ignore=tests/test_repository_url.py
echo "[$kind] package tests passed after $(( $(date +%s) - start )) s"

if [[ -n $chapters ]]; then
  "$py" -m pytest book solutions -o addopts="-p no:cacheprovider" -q \
    --nbval-lax --nbval-current-env --nbval-cell-timeout=900
  echo "[$kind] every chapter and solution ran after $(( $(date +%s) - start )) s"
fi
