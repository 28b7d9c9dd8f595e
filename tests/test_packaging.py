"""pyproject.toml, environment.yml, the README's commands and .ci/run stay in step."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)


def _pip_requirements() -> dict[str, str]:
    project = _pyproject()["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += [r for r in extra if not r.startswith(project["name"])]
    specs: dict[str, str] = {}
    for text in requirements:
        requirement = Requirement(text)
        specs[requirement.name.lower()] = str(requirement.specifier)
    return specs


def _conda_requirements() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    specs = {}
    for entry in environment["dependencies"]:
        if not isinstance(entry, str):
            continue  # the pip: section installs the course package itself
        name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", entry).groups()
        if name in ("python", "pip"):
            continue
        specs[CONDA_NAMES.get(name, name).lower()] = str(Requirement(f"x{spec}").specifier)
    return specs


def test_environment_yml_agrees_with_pyproject():
    assert _conda_requirements() == _pip_requirements()


def test_environment_yml_python_matches_requires_python():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    python = next(
        e for e in environment["dependencies"] if isinstance(e, str) and e.startswith("python")
    )
    assert python.removeprefix("python") == _pyproject()["project"]["requires-python"]


def test_libraries_have_lower_bounds_and_tools_exact_pins():
    project = _pyproject()["project"]
    for text in project["dependencies"]:
        assert ">=" in text, f"{text}: libraries need a lower bound"
    for text in project["optional-dependencies"]["dev"]:
        if not text.startswith(project["name"]):
            assert "==" in text, f"{text}: tools are pinned exactly"


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(python3 bootstrap\.py[^\n]*)\n```", readme)
    assert commands == ["python3 bootstrap.py", "python3 bootstrap.py test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^python3 bootstrap\.py test$", ci, re.MULTILINE)


def test_this_environment_satisfies_every_declared_requirement():
    """The test environment was installed from these files: every bound must hold in it."""
    from importlib.metadata import PackageNotFoundError, version

    unmet = []
    for name, specifier in _pip_requirements().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            unmet.append(f"{name} is not installed")
            continue
        if not SpecifierSet(specifier).contains(installed, prereleases=True):
            unmet.append(f"{name} {installed} does not satisfy {specifier}")
    assert not unmet, "; ".join(unmet)


def test_lower_bounds_script_pins_every_library_at_its_lower_bound():
    script = (ROOT / ".ci" / "lower-bounds").read_text(encoding="utf-8")
    assert "python3 -m venv" in script and "-m pytest" in script
    pins = _lower_bound_pins()
    assert pins["torch"] == "torch==2.13.0"  # the one torch this machine has
    assert all(pin.startswith(f"{name}==") for name, pin in pins.items())
    assert set(pins) == set(_pip_requirements())


def _lower_bound_pins() -> dict[str, str]:
    """What .ci/lower-bounds installs: each requirement at its lower bound (tools as pinned)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "lower_bound_pins.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    return {Requirement(line).name.lower(): line for line in result.stdout.split()}
