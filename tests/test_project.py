"""Project hygiene: the conda file wraps the pip install, the CI runs the README's command."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_exactly_this_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_deps = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_deps == [["-e .[test,docs]"]], "environment.yml must install this package through pip only"
    assert {"test", "docs"} <= set(pyproject["project"]["optional-dependencies"])
    assert sorted(d.split("=")[0] for d in conda_deps) == ["pip", "python"], \
        f"dependencies belong in pyproject.toml, not environment.yml: {conda_deps}"
    python = re.search(r"python=(\d+)\.(\d+)", " ".join(conda_deps))
    minimum = re.search(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert tuple(map(int, python.groups())) >= tuple(map(int, minimum.groups()))


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _dry_run(*args: str) -> str:
    done = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, check=True)
    return done.stdout


def _planned_runs(plan: str) -> list[str]:
    return re.search(r"for run in ([^;]*);", plan).group(1).split()


def test_key_draws_default_is_three_keys_of_one_new_split_pooled_with_the_reproduce_run(tmp_path):
    data = tmp_path / "my_xrays"  # no results of this run exist: nothing to pool
    plan = _dry_run("key_draws", f"DATA={data}")
    assert _planned_runs(plan) == ["_key1_split1", "_key2_split1", "_key3_split1"]
    assert "earlier_draw_runs" not in plan
    # a run of make reproduce on the same folder name (committed here) is pooled in as split seed 0
    reproduced = next(ROOT.glob("results/*/03_summary.csv")).parent.name
    plan = _dry_run("key_draws", f"DATA={tmp_path / reproduced}")
    assert f"-p earlier_draw_runs '{reproduced}'" in plan
    # SPLITS and DRAWS still widen it; EARLIER_DRAW_RUNS replaces the default
    plan = _dry_run("key_draws", f"DATA={data}", "DRAWS=2", "SPLITS=2", "EARLIER_DRAW_RUNS=old_a old_b")
    assert _planned_runs(plan) == ["_key1_split1", "_key2_split1", "_key1_split2", "_key2_split2"]
    assert "-p earlier_draw_runs 'old_a old_b'" in plan


@pytest.mark.parametrize("data, quick, suffix", [
    ("", "0", ""), ("", "1", ""), ("covid19_radiography_2class/", "1", "_key1_split1"),
    ("chest.xrays.v2", "0", "_draw2"), ("pneumoniamnist.npz", "0", ""), ("odd#name", "1", "_x"),
])
def test_make_names_an_executed_notebook_by_the_notebooks_run_name(tmp_path, data, quick, suffix):
    """One rule: the executed copy make plans is named by ppdl_utils.config.run_name, as the notebook's outputs."""
    from ppdl_utils.config import is_quick, run_name

    path = str(tmp_path / data) if data else ""
    plan = _dry_run("01_key_generation", f"DATA={path}", f"QUICK={quick}", f"SUFFIX={suffix}")
    expected = run_name(path or None, is_quick(quick), suffix)
    assert f"build/notebooks/01_key_generation_{expected}.part.ipynb" in plan, plan
