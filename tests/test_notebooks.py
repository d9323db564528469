"""Every numbered notebook executes end to end under papermill with tiny parameters, and its
outputs never contain private key material."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
OUTPUT_DIRS = ("figures_dir", "results_dir", "keys_dir", "cache_dir")


def parameter_names(path: Path) -> set[str]:
    """Names assigned in the cell tagged `parameters`."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected exactly one cell tagged 'parameters'"
    tree = ast.parse(cells[0].source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)}


def test_there_are_numbered_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_notebooks_are_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: strip outputs"
            if "parameters" not in cell.metadata.get("tags", []):  # a parameter list may be long
                assert len(cell.source.splitlines()) <= 20, f"{path.name}: cell too long for a thin notebook"
    assert {"quick", "figures_dir", "results_dir"} <= parameter_names(path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """One output tree for all notebooks, executed in numbered order as `make all` does
    (04 reads what 03 wrote)."""
    return tmp_path_factory.mktemp("make_all")


# options beyond `quick` that a notebook's optional sections need to run at all
EXTRA_PARAMETERS = {"03_training": {"monitor_test": 1, "input_table_regimes": ["table"], "input_table_init": "oracle"},
                    "05_scheme_comparison": {"key_draws": 2}}


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_with_quick_parameters(path, run_dir):
    names = parameter_names(path)
    params = {"quick": 1, **{d: str(run_dir / d.removesuffix("_dir")) for d in OUTPUT_DIRS if d in names},
              **EXTRA_PARAMETERS.get(path.stem, {})}
    out = run_dir / path.name
    papermill.execute_notebook(str(path), str(out), parameters=params, cwd=str(path.parent),
                               kernel_name="python3", progress_bar=False)
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    if "figures_dir" in params:
        prefix = path.stem[:2]
        assert any(Path(params["figures_dir"]).glob(f"*/{prefix}_*.png")), "the notebook saved no figure"
        manifests = [json.loads(p.read_text()) for p in Path(params["results_dir"]).glob("*/MANIFEST.json")]
        assert any(f"notebooks/{path.name}" in m["producers"] for m in manifests), "no manifest entry"
    if params.get("monitor_test"):
        curves = list(Path(params["results_dir"]).glob(f"*/{path.stem[:2]}_budget_curves.csv"))
        assert curves and "table+input_table" in curves[0].read_text(), "no budget curves were saved"
    if params.get("key_draws", 1) > 1:
        spread = pd.read_csv(Path(params["results_dir"]) / "synthetic_quick" / "05_key_spread.csv")
        assert spread["key_draw"].nunique() == params["key_draws"], "the key-draw section did not run"
    # every secret of the run (registry next to the keys + the key files), in decimal, hex, wrapped or
    # truncated form, in the executed notebook, results/ and the figures' PNG text chunks
    from ppdl_utils.secret_scan import load_secrets, scan_paths

    findings = scan_paths([out, run_dir / "results", run_dir / "figures"], load_secrets(run_dir / "keys"))
    assert not findings, f"{path.name} leaked private key material: " + "; ".join(map(str, findings))


@pytest.mark.notebooks
def test_a_resumed_training_run_keeps_the_models_it_finished(run_dir):
    """`resume=1` (what `make key_draws` passes) retrains nothing that was saved with the same data,
    key, split and settings (test_records checks that a changed one trains again)."""
    path = ROOT / "notebooks" / "03_training.ipynb"
    saved = sorted((run_dir / "results" / "synthetic_quick").glob("03_*.json"))
    if not saved:
        pytest.skip("needs the quick run of 03_training from test_notebook_executes_with_quick_parameters")
    before = {p.name: p.read_text() for p in saved}
    params = {"quick": 1, **{d: str(run_dir / d.removesuffix("_dir")) for d in OUTPUT_DIRS},
              **EXTRA_PARAMETERS["03_training"], "regimes": ["plain", "table"], "resume": 1}
    out = run_dir / "03_training_resumed.ipynb"
    papermill.execute_notebook(str(path), str(out), parameters=params, cwd=str(path.parent),
                               kernel_name="python3", progress_bar=False)
    printed = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells
                      for o in c.get("outputs", []))
    assert printed.count("with these settings: kept") == 3, printed  # plain, table, table+input_table
    assert {p.name: p.read_text() for p in saved} == before, "a kept model's record was rewritten"
