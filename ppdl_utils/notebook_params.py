"""Check papermill parameters against a notebook's tagged ``parameters`` cell before it runs.

papermill only warns about a parameter the notebook does not have (a typo in a parameter file
then silently runs the default for an hour), and never checks a value.  ``python -m
ppdl_utils.notebook_params NOTEBOOK [papermill options]`` exits with status 2 and names every
parameter that is unknown, of the wrong type or out of range, and where it came from; the
Makefile runs it before every notebook.

* The options are parsed by papermill's own command-line parser, so every spelling papermill
  accepts (``-p epochs 5``, ``-pepochs 5``, ``--parameters=epochs 5``, ``-r``, ``-y``, ``-f``,
  ``-b``) is checked, with papermill's value conversion (``-p`` resolves ints, floats, True,
  False and None; ``-r`` keeps strings; YAML for the others).
* The type of a parameter is the type of its default in the cell: an int default takes ints, a
  float default ints or finite floats, a bool default bools (or 0/1), a string default strings, a
  list default lists.  A ``None`` default takes anything (None included).
* A range or a set of choices is declared in the parameter's comment: ``range 16..1024`` (either
  end may be left open: ``range 1..``), ``one of constant|cosine``.  None stays allowed where the
  default is None.
"""
from __future__ import annotations

import ast
import base64
import binascii
import io
import math
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

from ppdl_utils.errors import PPDLError


class ParameterError(PPDLError, ValueError):
    """A parameter the notebook does not define, a value of the wrong type or out of its declared
    range, or a parameter file that cannot be read."""


_UNKNOWN = object()  # a default that is not a literal (an expression): its type is not checked
_RANGE = re.compile(r"\brange\s+(-?[0-9][0-9_.e+-]*)?\s*\.\.\s*(-?[0-9][0-9_.e+-]*)?")
_CHOICES = re.compile(r"\bone of\s+([A-Za-z0-9_+.-]+(?:\|[A-Za-z0-9_+.-]+)+)")


@dataclass(frozen=True)
class Declared:
    """One parameter of a notebook: its default, and the range or choices its comment declares."""

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None


def _parameters_cell(path: "str | Path") -> str:
    try:
        nb = nbformat.read(str(path), as_version=4)
    except FileNotFoundError:
        raise ParameterError(f"notebook {path} does not exist") from None
    except (OSError, ValueError, nbformat.reader.NotJSONError) as exc:
        raise ParameterError(f"notebook {path} cannot be read: {exc}") from None
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0].source


def _number(text: str | None, where: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text.replace("_", ""))
    except ValueError:
        raise ParameterError(f"{where}: range bound {text!r} is not a number") from None


def declared_parameters(path: "str | Path") -> dict[str, Declared]:
    """``{name: Declared}`` for every assignment of the cell tagged ``parameters`` of `path`."""
    source = _parameters_cell(path)
    try:
        tree = ast.parse(source)
        comments: dict[int, str] = {}
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.string
    except (SyntaxError, tokenize.TokenError) as exc:
        raise ParameterError(f"{path}: the parameters cell is not valid Python: {exc}") from None
    assigns = [node for node in tree.body if isinstance(node, ast.Assign)]
    starts = [node.lineno for node in assigns] + [len(source.splitlines()) + 1]
    out: dict[str, Declared] = {}
    for node, next_start in zip(assigns, starts[1:]):
        comment = " ".join(comments.get(line, "") for line in range(node.lineno, next_start))
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            default = _UNKNOWN
        bounds = _RANGE.search(comment)
        choices = _CHOICES.search(comment)
        where = f"{Path(path).name}, parameter declared on line {node.lineno}"
        for target in node.targets:
            if isinstance(target, ast.Name):
                out[target.id] = Declared(
                    target.id, default,
                    _number(bounds.group(1), where) if bounds else None,
                    _number(bounds.group(2), where) if bounds else None,
                    tuple(choices.group(1).split("|")) if choices else None)
    return out


def notebook_parameters(path: "str | Path") -> set[str]:
    """Names assigned in the cell tagged ``parameters`` of `path`."""
    return set(declared_parameters(path))


def _resolve(value: str) -> Any:
    """papermill's conversion of a ``-p`` value (papermill.cli._resolve_type)."""
    if value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[value]
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _yaml(text: "str | bytes", source: str) -> dict:
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameters {source!r} cannot be read: {exc}") from None
    if not isinstance(values, dict):
        raise ParameterError(f"parameters {source!r} must be a mapping of name: value")
    return values


def given_values(args: list[str]) -> dict[str, tuple[Any, str]]:
    """``{name: (value, where it was given)}`` from papermill options, parsed by papermill's own
    parser and converted as papermill converts them (later options win, as in papermill)."""
    import click
    from papermill.cli import papermill as papermill_command

    try:
        ctx = papermill_command.make_context("papermill", ["in.ipynb", "out.ipynb", *args], resilient_parsing=False)
    except click.exceptions.Exit:
        return {}
    except click.ClickException as exc:
        raise ParameterError(f"papermill options {' '.join(args)!r}: {exc.format_message()}") from None
    p = ctx.params
    given: dict[str, tuple[Any, str]] = {}
    for encoded in p.get("parameters_base64") or ():
        try:
            text = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ParameterError(f"parameters -b {encoded!r:.40} is not base64") from None
        given.update({str(k): (v, f"-b {encoded[:20]}") for k, v in _yaml(text, f"-b {encoded[:20]}").items()})
    for path in p.get("parameters_file") or ():
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ParameterError(f"parameters {path!r} cannot be read: {exc}") from None
        given.update({str(k): (v, f"-f {path}") for k, v in _yaml(text, path).items()})
    for text in p.get("parameters_yaml") or ():
        given.update({str(k): (v, f"-y {text}") for k, v in _yaml(text, text).items()})
    for name, value in p.get("parameters") or ():
        given[name] = (_resolve(value), f"-p {name} {value}")
    for name, value in p.get("parameters_raw") or ():
        given[name] = (value, f"-r {name} {value}")
    return given


def given_parameters(args: list[str]) -> dict[str, str]:
    """``{name: where it was given}`` from papermill's parameter options."""
    return {name: where for name, (_, where) in given_values(args).items()}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def value_problem(declared: Declared, value: Any) -> str | None:
    """Why `value` does not fit `declared` (type from the default, declared range or choices), or None."""
    default = declared.default
    if value is None:
        return None if default is None or default is _UNKNOWN else f"None, but the default {default!r} is not None"
    if default is _UNKNOWN:
        kind = None
    elif isinstance(default, bool):
        kind = "a bool (True/False)" if not (isinstance(value, bool) or value in (0, 1)) else None
    elif _is_int(default):
        kind = "an integer" if not _is_int(value) else None
    elif isinstance(default, float):
        ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(float(value))
        kind = None if ok else "a finite number"
    elif isinstance(default, str):
        kind = "a string (use -r for a string of digits)" if not isinstance(value, str) else None
    elif isinstance(default, (list, tuple)):
        kind = "a list" if not isinstance(value, (list, tuple)) else None
    elif isinstance(default, dict):
        kind = "a mapping" if not isinstance(value, dict) else None
    else:  # None default: a range then asks for a number
        numeric = declared.low is not None or declared.high is not None
        kind = "a number or None" if numeric and not (
            (_is_int(value) or isinstance(value, float)) and math.isfinite(float(value))) else None
    if kind:
        return f"{value!r:.60} is not {kind} (default {default!r:.40})"
    if declared.choices is not None and str(value) not in declared.choices:
        return f"{value!r:.60} is not one of {', '.join(declared.choices)}"
    if (declared.low is not None or declared.high is not None) and not isinstance(value, bool):
        number = float(value)
        below = declared.low is not None and number < declared.low
        if below or (declared.high is not None and number > declared.high):
            low = "" if declared.low is None else f"{declared.low:g}"
            high = "" if declared.high is None else f"{declared.high:g}"
            return f"{value!r} is outside the declared range {low}..{high}"
    return None


def check(notebook: "str | Path", args: list[str]) -> None:
    """Raise :class:`ParameterError` naming every parameter in `args` that `notebook` lacks or whose
    value does not fit its declared type and range."""
    declared = declared_parameters(notebook)
    lines = []
    for name, (value, where) in sorted(given_values(args).items()):
        if name not in declared:
            lines.append(f"  {name!r} (from {where}): no such parameter")
            continue
        problem = value_problem(declared[name], value)
        if problem:
            lines.append(f"  {name!r} (from {where}): {problem}")
    if lines:
        raise ParameterError(f"{Path(notebook).name}: bad parameters\n" + "\n".join(lines)
                             + f"\nits parameters: {', '.join(sorted(declared))}")


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
