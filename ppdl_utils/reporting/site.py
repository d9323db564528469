"""The documentation site: generated tables in the pages, the executed notebooks, the Sphinx build.

``make docs`` runs, from the repository root::

    python -m ppdl_utils.reporting.site render     # rewrite every generated block from results/
    python -m ppdl_utils.reporting.site build      # stage docs/ + executed notebooks, run Sphinx

``render`` rewrites the blocks between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated -->``
in README.md and every page under docs/ (see :mod:`ppdl_utils.reporting.tables`); ``check`` reports
the blocks that differ from what the results files give (the test suite runs it).  ``build`` copies
docs/, figures/ and SECURITY.md into ``build/docs_src/`` together with the executed notebooks
``build/notebooks/<notebook>_<run>.ipynb`` (run ``synthetic`` by default: what ``make all`` writes), a
placeholder page for each notebook not executed yet, and builds ``build/site/`` with Sphinx: static
HTML that opens from the file system, with nothing fetched from the network.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ppdl_utils.config import REPO_ROOT
from ppdl_utils.errors import PPDLError
from ppdl_utils.reporting.tables import render

BLOCK = re.compile(r"(<!-- BEGIN generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END generated -->)", re.S)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("*Interactive widget: it needs a running kernel. Run this notebook in JupyterLab (`make lab`) "
               "to use it; the page shows the widget's text form.*")


class SiteError(PPDLError):
    """A page is malformed (an unclosed generated block) or the site build failed; the message names it."""


@dataclass(frozen=True)
class Stale:
    path: Path
    name: str


def pages(root: Path) -> list[Path]:
    """README.md and every markdown page of the documentation."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def _check_balanced(text: str, path: Path) -> None:
    begins, ends = text.count("<!-- BEGIN generated:"), text.count("<!-- END generated -->")
    if begins != ends or begins != len(BLOCK.findall(text)):
        raise SiteError(f"{path}: {begins} 'BEGIN generated' and {ends} 'END generated' markers do not pair up")


def render_text(text: str, results_dir: Path, path: Path = Path("<text>")) -> str:
    """`text` with every generated block rewritten from `results_dir`."""
    _check_balanced(text, path)
    return BLOCK.sub(lambda m: f"{m.group(1)}{render(m.group('name'), results_dir)}\n{m.group(4)}", text)


def render_pages(root: Path = REPO_ROOT) -> list[Path]:
    """Rewrite every generated block of README.md and docs/; returns the files that changed."""
    changed = []
    for path in pages(root):
        text = path.read_text()
        new = render_text(text, root / "results", path)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def stale_blocks(root: Path = REPO_ROOT) -> list[Stale]:
    """The generated blocks whose text differs from what the results files render now."""
    found = []
    for path in pages(root):
        text = path.read_text()
        _check_balanced(text, path)
        for match in BLOCK.finditer(text):
            if match.group("body") != render(match.group("name"), root / "results") + "\n":
                found.append(Stale(path, match.group("name")))
    return found


# --- the Sphinx build ---------------------------------------------------------------------------------

def _is_progress_bar(data: dict) -> bool:
    text = data.get("text/plain", "")
    return "%|" in ("".join(text) if isinstance(text, list) else text)


def _note_widgets(notebook: dict) -> dict:
    """Widget outputs keep their text form, preceded by a note that they need a kernel (the site loads no
    widget JavaScript: nothing may come from a CDN)."""
    for cell in notebook.get("cells", []):
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_MIME in data:
                data.pop(WIDGET_MIME)
                if not _is_progress_bar(data):  # a tqdm bar's text form says all it said
                    outputs.append({"output_type": "display_data", "metadata": {},
                                    "data": {"text/markdown": WIDGET_NOTE, "text/plain": WIDGET_NOTE}})
            outputs.append(output)
        if "outputs" in cell:
            cell["outputs"] = outputs
    notebook.get("metadata", {}).pop("widgets", None)
    return notebook


def stage(root: Path, staging: Path, run: str = "synthetic", executed_dir: Path | None = None) -> list[str]:
    """The site's sources under `staging`, laid out as in the repository (``docs/``, ``figures/``,
    ``SECURITY.md``, so that the pages' relative paths hold in both), with each notebook's executed copy
    for `run` from `executed_dir` (default ``build/notebooks``) or a placeholder page in
    ``docs/notebooks/``; returns the notebooks that were not executed."""
    executed_dir = executed_dir or root / "build" / "notebooks"
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(root / "docs", staging / "docs")
    shutil.copy2(root / "SECURITY.md", staging / "SECURITY.md")  # included by explanations/security.md
    if (root / "figures").is_dir():
        shutil.copytree(root / "figures", staging / "figures")
    missing = []
    for source in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        executed = executed_dir / f"{source.stem}_{run}.ipynb"
        target = staging / "docs" / "notebooks" / source.name
        if executed.is_file():
            notebook = _note_widgets(json.loads(executed.read_text()))
            target.write_text(json.dumps(notebook))
        else:
            missing.append(source.stem)
            target.with_suffix(".md").write_text(
                f"# {source.stem}\n\nThis notebook has not been executed for the run `{run}` yet, so there is no "
                f"page with its outputs. `make {source.stem}` (or `make all`) executes it into "
                f"`build/notebooks/{source.stem}_{run}.ipynb`, and `make docs` then publishes it here.\n\n"
                f"The source is `notebooks/{source.name}`.\n")
    return missing


def build(root: Path = REPO_ROOT, out: Path | None = None, run: str = "synthetic", staging: Path | None = None,
          executed_dir: Path | None = None) -> Path:
    """Stage (into `staging`, default ``build/docs_src``) and build the site into `out` (default
    ``build/site``); returns the path of its index page."""
    out = out or root / "build" / "site"
    staging = staging or root / "build" / "docs_src"
    missing = stage(root, staging, run, executed_dir)
    if missing:
        print(f"not executed for run {run!r} (placeholder pages): {', '.join(missing)}")
    if out.exists():
        shutil.rmtree(out)
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going",
                           "-d", str(staging / "doctrees"), str(staging / "docs"), str(out)])
    if done.returncode:
        raise SiteError(f"sphinx-build failed on {staging / 'docs'} (exit {done.returncode}); its messages are above")
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ppdl_utils.reporting.site", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("render", "check", "build"))
    parser.add_argument("--run", default="synthetic", help="which executed notebooks to publish (build)")
    parser.add_argument("--out", type=Path, default=None, help="site folder (build; default build/site)")
    args = parser.parse_args(argv)
    if args.command == "render":
        for path in render_pages():
            print(f"rendered {path.relative_to(REPO_ROOT)}")
        return 0
    if args.command == "check":
        stale = stale_blocks()
        for s in stale:
            print(f"stale: {s.path.relative_to(REPO_ROOT)}: generated table {s.name!r}")
        return 1 if stale else 0
    try:
        index = build(out=args.out, run=args.run)
    except SiteError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"site: {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
