"""The package tree is layered: a module imports only from its own layer or the layers below it.

Layers, bottom to top (a sub-package's rank is its layer):

    0  foundation   errors, config, records, outputs  (top-level modules)
    1  crypto       the schemes and their keys
    2  images, data what is encrypted: images and datasets (siblings: neither imports the other)
    3  attacks      what a server recovers from deterministic ciphertexts
    4  learning     models, the one training loop, private inference
    5  analysis, scale   measurements across schemes; distributed execution
    6  reporting    run records read back, the papers' tables, figures
    7  studies      whole experiments (the regime study, the ladder) run through the layers below, called by
                    notebooks and bench/; above reporting, since a study may summarise its records with
                    reporting's tables
    7  teaching     widgets for the notebooks (siblings of the studies: neither imports the other)
    8  cli          the ``ppdl`` command line (``ppdl audit``)
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ppdl_utils"

RANK = {"": 0, "crypto": 1, "images": 2, "data": 2, "attacks": 3, "learning": 4, "analysis": 5, "scale": 5,
        "reporting": 6, "studies": 7, "teaching": 7, "cli": 8}
# siblings on one rank that must stay independent of each other
INDEPENDENT = {frozenset({"images", "data"}), frozenset({"analysis", "scale"}), frozenset({"studies", "teaching"})}


def layer_of(module: str) -> str:
    """'ppdl_utils.crypto.paillier' -> 'crypto'; top-level modules ('ppdl_utils.errors') -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else ""


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def package_imports(path: Path) -> set[str]:
    """Every ppdl_utils module `path` imports (relative imports resolved), at any nesting level."""
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ppdl_utils"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "ppdl_utils":
                continue
            for alias in node.names:  # `from ppdl_utils.crypto import lwe` imports the module crypto.lwe
                sub = f"{base}.{alias.name}"
                found.add(sub if (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists()
                          or (PACKAGE.parent / Path(*sub.split("."))).is_dir() else base)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_sub_package_has_a_rank():
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert subpackages <= set(RANK), f"give these layers a rank in RANK: {subpackages - set(RANK)}"
    assert {"crypto", "images", "data", "attacks", "learning", "analysis", "reporting"} <= subpackages


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_module_imports_only_its_layer_or_below(path):
    mine = layer_of(module_name(path))
    for imported in package_imports(path):
        theirs = layer_of(imported)
        assert RANK[theirs] <= RANK[mine], f"{module_name(path)} (layer {mine or 'foundation'}) imports " \
                                           f"{imported} from the higher layer {theirs}"
        assert frozenset({mine, theirs}) not in INDEPENDENT, f"{module_name(path)} imports its sibling {imported}"


def test_the_crypto_layer_never_reaches_up():
    for path in (PACKAGE / "crypto").rglob("*.py"):
        for imported in package_imports(path):
            assert layer_of(imported) in ("", "crypto"), f"{module_name(path)} imports {imported}"


def test_no_import_cycles():
    graph = {module_name(p): {m for m in package_imports(p) if m != module_name(p)} for p in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail + [node, nxt]))
            if nxt in graph and not state.get(nxt):
                visit(nxt, trail + [node])
        state[node] = 2

    for node in graph:
        if not state.get(node):
            visit(node, [])


def test_the_checker_sees_violations(tmp_path):
    """The checker itself must fail on an upward import (a test that cannot fail proves nothing)."""
    bad = PACKAGE / "crypto" / "_layer_probe.py"
    assert not bad.exists()
    try:
        bad.write_text("from ppdl_utils.learning import training\nfrom ..reporting.reports import run_name\n")
        found = package_imports(bad)
        assert {"ppdl_utils.learning.training", "ppdl_utils.reporting.reports"} <= found
        assert any(RANK[layer_of(m)] > RANK["crypto"] for m in found)
    finally:
        bad.unlink()
