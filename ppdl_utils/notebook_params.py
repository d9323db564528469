"""Check papermill parameters against a notebook's tagged ``parameters`` cell before it runs.

papermill only warns about a parameter the notebook does not have (a typo in a parameter file
then silently runs the default for an hour).  ``python -m ppdl_utils.notebook_params NOTEBOOK
[papermill options]`` exits with status 2 and names the unknown parameter and where it came from;
the Makefile runs it before every notebook.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat
import yaml

from ppdl_utils.errors import PPDLError


class ParameterError(PPDLError, ValueError):
    """A parameter the notebook does not define, or a parameter file that cannot be read."""


def notebook_parameters(path: "str | Path") -> set[str]:
    """Names assigned in the cell tagged ``parameters`` of `path`."""
    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    tree = ast.parse(cells[0].source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)}


def given_parameters(args: list[str]) -> dict[str, str]:
    """``{name: where it was given}`` from papermill's -p/-r/-y/-f options."""
    given: dict[str, str] = {}
    i = 0
    while i < len(args):
        opt = args[i]
        if opt in ("-p", "--parameters", "-r", "--parameters_raw") and i + 2 < len(args) + 1:
            given[args[i + 1]] = f"{opt} {args[i + 1]}"
            i += 3
        elif opt in ("-y", "--parameters_yaml", "-f", "--parameters_file") and i + 1 < len(args):
            source = args[i + 1]
            try:
                text = Path(source).read_text() if opt in ("-f", "--parameters_file") else source
                values = yaml.safe_load(text) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ParameterError(f"parameters {source!r} cannot be read: {exc}") from None
            if not isinstance(values, dict):
                raise ParameterError(f"parameters {source!r} must be a mapping of name: value")
            given.update({str(k): f"{opt} {source}" for k in values})
            i += 2
        else:
            i += 1
    return given


def check(notebook: "str | Path", args: list[str]) -> None:
    """Raise :class:`ParameterError` naming every parameter in `args` that `notebook` lacks."""
    known = notebook_parameters(notebook)
    unknown = {name: where for name, where in given_parameters(args).items() if name not in known}
    if unknown:
        lines = [f"  {name!r} (from {where})" for name, where in sorted(unknown.items())]
        raise ParameterError(f"{Path(notebook).name} has no parameter\n" + "\n".join(lines)
                             + f"\nits parameters: {', '.join(sorted(known))}")


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m ppdl_utils.notebook_params NOTEBOOK [papermill parameter options]", file=sys.stderr)
        return 2
    try:
        check(argv[0], argv[1:])
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
