"""python -m bertbook.doctor: versions outside the package's ranges are problems with a fix,
versions that only differ from the pins are not, and --quiet prints only the problems."""

import importlib.metadata
import subprocess
import sys

from bertbook import doctor


def _fake_versions(monkeypatch, **fake):
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda name: fake.get(name, real(name)))


def test_a_version_outside_the_package_range_is_a_problem_with_its_fix(monkeypatch, capsys):
    _fake_versions(monkeypatch, transformers="4.46.0")
    dep = next(d for d in doctor.declared()[1] if d.name == "transformers")
    assert doctor.main(["--quiet"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f'problem: transformers 4.46.0 is outside {dep.specifier}: pip install "{dep}"']


def test_a_missing_package_and_a_missing_torch_are_problems(monkeypatch):
    _fake_versions(monkeypatch, tiktoken=None, torch=None)
    problems = doctor.diagnose().problems
    assert any(p.startswith("tiktoken is not installed") for p in problems)
    assert any(p.startswith("torch is not installed") for p in problems)


def test_a_version_inside_the_range_but_not_the_pin_is_shown_not_reported(monkeypatch):
    _fake_versions(monkeypatch, transformers="5.19.0", numpy="1.26.4")
    report = doctor.diagnose()
    assert not [p for p in report.problems if "transformers" in p or "numpy" in p]
    line = next(x for x in report.lines if x.startswith("transformers"))
    assert "5.19.0" in line and "pinned" in line


def test_a_missing_sandbox_is_a_problem_only_for_grading(monkeypatch):
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    assert not [p for p in doctor.diagnose().problems if "sandbox" in p]
    assert [p for p in doctor.diagnose(grading=True).problems if "sandbox" in p]


def test_a_corrupt_cached_archive_is_a_problem(monkeypatch, tmp_path):
    monkeypatch.setenv("BERTBOOK_CACHE", str(tmp_path))
    asset = next(iter(doctor.assets.ASSETS.values()))
    (tmp_path / "archives").mkdir()
    (tmp_path / "archives" / asset.filename).write_bytes(b"not the release")
    problems = doctor.diagnose().problems
    assert any("corrupt" in p and asset.filename in p for p in problems)


def test_the_command_reports_this_environment():
    done = subprocess.run(
        [sys.executable, "-m", "bertbook.doctor"], capture_output=True, text=True, timeout=120
    )
    for what in ("Python", "torch", "transformers", "assets", "GPU", "sandbox"):
        assert any(line.startswith(what) for line in done.stdout.splitlines()), what
    problems = [x for x in done.stdout.splitlines() if x.startswith("problem: ")]
    assert f"{len(problems)} problem(s)" in done.stdout
    assert done.returncode == (1 if problems else 0)


def test_moved_names_each_package_off_its_pin_and_nothing_else(monkeypatch, capsys):
    # Pins equal to what is installed here (whichever set this is), torch with its pin's form.
    here = {doctor._key(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    here["torch"] = here["torch"].split("+")[0]  # torch's "+cpu" build tag is not a move
    monkeypatch.setattr(doctor, "pins", lambda: here)
    assert doctor.moved() == []
    fake = dict(here, numpy="1.0.0")
    del fake["tiktoken"]
    monkeypatch.setattr(doctor, "pins", lambda: fake)
    lines = doctor.moved()
    assert [line.split()[0] for line in lines] == ["numpy", "tiktoken"]
    assert lines[0].split()[1:] == [here["numpy"], "pinned", "1.0.0"]
    assert lines[1].endswith("not pinned")
    assert doctor.main(["--moved"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 installed package(s) differ from requirements.txt:"
