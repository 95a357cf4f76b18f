"""The launch environments, as their builders see them, resolve on the public package index.

* **Binder** (repo2docker): with a ``binder/`` folder, repo2docker reads only that folder. Its
  Python comes from ``binder/runtime.txt`` (without one, repo2docker's default, still 3.10,
  which the pins do not support); ``binder/requirements.txt`` is installed with pip, then
  ``binder/postBuild`` runs. Every pin must have a wheel for that Python on Linux x86_64, except
  releases that publish no wheel at all (``SDIST_ONLY``, checked).
* **Colab**: the first cell installs the course package, so the package's own dependency ranges
  (``[project.dependencies]``, which leave torch to the runtime) must resolve for Colab's Python.

The resolutions use uv (pinned in requirements.txt) rather than pip: pip reads a wheel's
metadata by downloading the whole wheel wherever the index does not serve the metadata file on
its own (about 90 s for the pins here, and far more for torch), and pip cannot resolve for
another Python version at all while one requirement is an sdist. uv selects wheels by the same
tags and Requires-Python and fetches only the metadata. The three resolutions run at once.
"""

import json
import os
import re
import subprocess
import tomllib
import urllib.error
import urllib.request

import pytest
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

pytestmark = pytest.mark.timeout(300)

BINDER = ROOT / "binder"
INDEX = "https://pypi.org/simple"  # what repo2docker's pip and Colab's pip use
COLAB_PYTHON = "3.12"
# repo2docker builds on Ubuntu 24.04 (glibc 2.39); Colab runs Ubuntu 22.04 (glibc 2.35).
BINDER_PLATFORM = "x86_64-manylinux_2_39"
COLAB_PLATFORM = "x86_64-manylinux_2_35"
# Releases with no wheel at all; pip builds them from the sdist (pure Python). The test checks
# that each really publishes no wheel, so this list cannot excuse a missing binary wheel.
SDIST_ONLY = {"docopt"}
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
POSTBUILD = ["pip install --no-deps -e .", "python -m bertbook.assets fetch"]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            pins[Requirement(name).name.lower().replace("_", "-")] = version
    return pins


def binder_python() -> str:
    """The Python version repo2docker picks for this repository, as it parses runtime.txt."""
    runtime = BINDER / "runtime.txt"
    assert runtime.exists(), (
        "binder/runtime.txt is missing: repo2docker reads only binder/ and then builds with its "
        "default Python 3.10, which the pins do not support"
    )
    text = runtime.read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", text)
    assert match, f"binder/runtime.txt says {text!r}; repo2docker wants python-X.Y"
    return match.group(1)


def test_binder_python_is_one_the_package_supports():
    python = binder_python()
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert Version(python) in requires, f"binder/runtime.txt: Python {python} is not {requires}"


def test_readme_and_intro_name_each_launch_path_python():
    python = binder_python()
    for page in ("README.md", "book/intro.md"):
        text = (ROOT / page).read_text()
        assert f"Binder runs Python {python}" in text, f"{page} does not say Binder's Python"
        assert f"Colab runs Python {COLAB_PYTHON}" in text, f"{page} does not say Colab's Python"


def test_binder_requirements_are_the_pins_with_the_cpu_torch_index():
    lines = [
        line.strip()
        for line in (BINDER / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == [CPU_INDEX, "-r ../requirements.txt"]
    assert "torch" in _pins()


def test_postbuild_is_executable_and_only_installs_the_package_and_fetches_assets():
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), (
        "binder/postBuild is not executable (git update-index --chmod=+x)"
    )
    lines = post.read_text().splitlines()
    assert lines[0].startswith("#!")
    commands = [x.strip() for x in lines[1:] if x.strip() and not x.strip().startswith("#")]
    assert [c for c in commands if c != "set -e"] == POSTBUILD


def test_pins_satisfy_the_package_ranges():
    """postBuild installs the package with --no-deps: the pins must be inside its ranges."""
    pins = _pins()
    for dep in map(Requirement, _pyproject()["project"]["dependencies"]):
        name = dep.name.lower().replace("_", "-")
        assert name != "torch", "the package must leave torch to the environment"
        assert name in pins, f"{dep} is not pinned in requirements.txt"
        assert dep.specifier.contains(pins[name], prereleases=True), f"pin {name}=={pins[name]}"


def _probe_index() -> dict:
    """The index page of each SDIST_ONLY release, or a skip when the index cannot be reached."""
    pages = {}
    for name in sorted(SDIST_ONLY):
        request = urllib.request.Request(
            f"{INDEX}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as reply:
                pages[name] = json.load(reply)
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            pytest.skip(f"the package index cannot be reached ({e}); launch environments unchecked")
    return pages


def _uv(*args: str, timeout: int | None = None) -> list[str]:
    try:
        import uv
    except ImportError:
        pytest.fail("uv is not installed: pip install -r requirements.txt")
    cmd = [uv.find_uv_bin(), "pip", "compile", "--no-config", "--quiet", "--no-header"]
    cmd += ["--no-annotate", "--default-index", INDEX, "--only-binary", ":all:"]
    for name in sorted(SDIST_ONLY):
        cmd += ["--no-binary", name]
    return cmd + list(args)


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    """Run the three resolutions at once; each result is (returncode, stdout, stderr)."""
    pages = _probe_index()
    tmp = tmp_path_factory.mktemp("launch")
    pins = _pins()
    (tmp / "binder.txt").write_text(
        "".join(f"{name}=={version}\n" for name, version in pins.items() if name != "torch")
    )
    (tmp / "torch.txt").write_text(f"torch=={pins['torch']}\n")
    deps = _pyproject()["project"]["dependencies"]
    (tmp / "colab.txt").write_text("".join(f"{dep}\n" for dep in deps))
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") or k == "UV_CACHE_DIR"}
    python = binder_python()
    runs = {
        "binder": (
            _uv("--no-deps", "--python-version", python, "--python-platform", BINDER_PLATFORM)
            + [str(tmp / "binder.txt")],
            env,
        ),
        # PyTorch's CPU index (named in binder/requirements.txt) cannot be reached from every
        # machine that runs this test, so torch's pin is checked against the same index as
        # the rest: its wheels there are the CUDA builds of the same release, published
        # together with the CPU ones. A short timeout and no retries keep a slow index from
        # stalling the test on torch's long file list.
        "torch": (
            _uv("--no-deps", "--python-version", python, "--python-platform", BINDER_PLATFORM)
            + [str(tmp / "torch.txt")],
            env | {"UV_HTTP_TIMEOUT": "20", "UV_HTTP_RETRIES": "0"},
        ),
        "colab": (
            _uv("--python-version", COLAB_PYTHON, "--python-platform", COLAB_PLATFORM)
            + [str(tmp / "colab.txt")],
            env,
        ),
    }
    procs = {
        key: subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for key, (cmd, e) in runs.items()
    }
    out = {key: (p.wait(timeout=240), *p.communicate()) for key, p in procs.items()}
    return out, pages


def _names(lines: str) -> set[str]:
    return {
        line.split("==")[0].strip().lower().replace("_", "-")
        for line in lines.splitlines()
        if "==" in line
    }


def test_sdist_only_releases_publish_no_wheel(resolved):
    _, pages = resolved
    pins = _pins()
    for name, page in pages.items():
        files = [f["filename"] for f in page["files"] if f"-{pins[name]}" in f["filename"]]
        assert files, f"{name}=={pins[name]} is not on the index"
        wheels = [f for f in files if f.endswith(".whl")]
        assert not wheels, f"{name} has wheels now ({wheels}): remove it from SDIST_ONLY"


def test_binder_pins_resolve_for_its_python(resolved):
    out, _ = resolved
    code, stdout, stderr = out["binder"]
    python = binder_python()
    assert code == 0, f"binder/requirements.txt does not resolve for Python {python}:\n{stderr}"
    assert _names(stdout) == set(_pins()) - {"torch"}


def test_binder_torch_pin_has_a_wheel_for_its_python(resolved):
    out, _ = resolved
    code, stdout, stderr = out["torch"]
    assert code == 0, f"torch=={_pins()['torch']} has no wheel for Binder's Python:\n{stderr}"


def test_package_ranges_resolve_for_colab_python(resolved):
    out, _ = resolved
    code, stdout, stderr = out["colab"]
    assert code == 0, f"the package's dependencies do not resolve for Python 3.12:\n{stderr}"
    assert "torch" not in _names(stdout)
