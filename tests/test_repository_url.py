"""The repository URL is written once (_config.yml); every launch link and install line derives from it."""

import tomllib

from bertbook import maint
from bertbook.maint import ROOT


def test_url_is_a_github_repository():
    assert maint.repo_url().startswith("https://github.com/") and maint.repo_url().count("/") == 4


def test_setup_cells_install_from_the_repository():
    assert f'"{maint.install_spec()}"' in maint.setup_cell_source()


def test_readme_links_and_install_line_derive_from_it():
    readme = (ROOT / "README.md").read_text()
    assert maint.install_spec() in readme
    assert maint.binder_url("book/00_intro.ipynb") in readme
    assert maint.colab_url("exercises/00_intro.ipynb") in readme


def test_pyproject_points_at_it():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["urls"]["Repository"] == maint.repo_url()


def test_launch_buttons_are_configured():
    cfg = maint.config()
    assert cfg["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_torch_is_pinned_exactly_and_left_out_of_the_package():
    reqs = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in reqs
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert not [d for d in meta["project"]["dependencies"] if d.lower().startswith("torch")]
