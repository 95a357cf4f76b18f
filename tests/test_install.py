"""The notebooks' setup cell installs the course package from the repository, into a fresh
virtualenv, without touching torch, and the package imports from there (not from this tree)."""

import subprocess
import sys
import sysconfig
import venv

from bertbook import maint
from bertbook.maint import ROOT


def test_setup_cell_installs_the_package_from_the_repository(tmp_path):
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    # ensurepip's pip may predate git+file:/// direct references; Colab's pip is current.
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True, timeout=300
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The fresh environment sees this one's packages (torch, transformers...) the way Colab's
    # runtime has its own, but not the course package, which is installed here as an editable
    # finder that a plain path entry does not activate.
    (tmp_path / "env" / site.split(str(env) + "/", 1)[1] / "runtime.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    work = tmp_path / "colab"
    work.mkdir()
    code = maint.setup_cell_source(url=f"file://{clone}") + (
        "\nimport bertbook, bertbook.assets, bertbook.checks, torch\n"
        "print(bertbook.__file__)\nprint(torch.__file__)\n"
    )
    done = subprocess.run(
        [python, "-c", code], cwd=work, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    package_file, torch_file = done.stdout.strip().splitlines()[-2:]
    assert package_file.startswith(site), package_file  # installed into the new environment
    assert not package_file.startswith(str(ROOT))
    assert torch_file.startswith(sysconfig.get_paths()["purelib"])  # the runtime's torch, untouched
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--path", site], capture_output=True, text=True
    ).stdout
    assert "bertbook" in listed and "torch" not in listed


def test_setup_cell_does_nothing_in_a_checkout(tmp_path):
    code = (
        maint.setup_cell_source(url="file:///nonexistent")
        + "\nimport bertbook; print(bertbook.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "book", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(ROOT))
