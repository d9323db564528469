"""Project hygiene: the conda file wraps the pip install, the CI runs the README's command."""
from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_exactly_this_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_deps = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_deps == [["-e .[test]"]], "environment.yml must install this package through pip only"
    assert "test" in pyproject["project"]["optional-dependencies"]
    assert sorted(d.split("=")[0] for d in conda_deps) == ["pip", "python"], \
        f"dependencies belong in pyproject.toml, not environment.yml: {conda_deps}"
    python = re.search(r"python=(\d+)\.(\d+)", " ".join(conda_deps))
    minimum = re.search(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert tuple(map(int, python.groups())) >= tuple(map(int, minimum.groups()))


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
