"""The README's and the documentation's tables are the results files, rendered: a stale table fails here."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ppdl_utils.reporting import site, tables

ROOT = Path(__file__).resolve().parents[1]


def test_every_generated_table_matches_the_results_files():
    stale = site.stale_blocks(ROOT)
    assert not stale, "stale generated tables (run `make docs` or `python -m ppdl_utils.reporting.site render`): " + \
        ", ".join(f"{s.path.relative_to(ROOT)}: {s.name}" for s in stale)


def test_every_table_is_shown_somewhere():
    shown = {m.group("name") for path in site.pages(ROOT) for m in site.BLOCK.finditer(path.read_text())}
    assert set(tables.TABLES) <= shown, f"tables on no page: {sorted(set(tables.TABLES) - shown)}"


def test_readme_stays_short_and_has_the_headline():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "<!-- BEGIN generated: headline -->" in text


@pytest.fixture()
def copy_of_the_pages(tmp_path):
    shutil.copy2(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "results", tmp_path / "results")
    return tmp_path


def test_a_changed_result_makes_its_table_stale_and_render_fixes_it(copy_of_the_pages):
    root = copy_of_the_pages
    assert site.stale_blocks(root) == []
    summary = root / "results" / "covid19_radiography_2class" / "04_overview.csv"
    summary.write_text(summary.read_text().replace(",0.965,", ",0.955,", 1))
    stale = {(s.path.name, s.name) for s in site.stale_blocks(root)}
    assert ("two_class.md", "covid2_overview") in stale
    assert site.render_pages(root)
    assert site.stale_blocks(root) == []
    assert "95.5% (" in (root / "docs" / "results" / "two_class.md").read_text()


def test_a_hand_edited_table_is_stale(copy_of_the_pages):
    root = copy_of_the_pages
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("| plain |", "| plain (edited) |", 1))
    assert [s.name for s in site.stale_blocks(root)] == ["headline"]


def test_quick_runs_are_never_published(copy_of_the_pages):
    root = copy_of_the_pages
    ladder = root / "results" / "synthetic" / "08_privacy_ladder.csv"
    (root / "results" / "synthetic_quick").mkdir(exist_ok=True)  # a local quick run may exist
    (root / "results" / "synthetic_quick" / "08_privacy_ladder.csv").write_text(ladder.read_text())
    (root / "results" / "x_quick").mkdir(exist_ok=True)
    (root / "results" / "x_quick" / "10_private_pipeline.csv").write_text("a\n1\n")
    assert site.stale_blocks(root) == []


def test_a_missing_results_file_is_said_not_shown(tmp_path):
    text = tables.render("covid2_overview", tmp_path)
    assert text.startswith("*Not run yet") and "results/covid19_radiography_2class/04_overview.csv" in text
    assert "make reproduce" in text


def test_unknown_table_and_unpaired_markers_are_errors(tmp_path):
    with pytest.raises(tables.UnknownTableError, match="no_such_table"):
        site.render_text("<!-- BEGIN generated: no_such_table -->\n<!-- END generated -->\n", tmp_path)
    with pytest.raises(site.SiteError, match="page.md"):
        site.render_text("<!-- BEGIN generated: headline -->\nno end\n", tmp_path, Path("page.md"))


def test_markdown_escapes_pipes_and_blanks_missing_values():
    import pandas as pd
    text = tables.markdown(pd.DataFrame({"a": ["x|y"], "b": [float("nan")]}))
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x\\|y |  |"]


def test_stage_publishes_executed_notebooks_and_placeholders(tmp_path):
    executed = tmp_path / "executed"
    executed.mkdir()
    widget = {"output_type": "display_data", "metadata": {},
              "data": {site.WIDGET_MIME: {"model_id": "abc", "version_major": 2, "version_minor": 0},
                       "text/plain": "VBox(children=(IntText(value=1),))"}}
    progress = {"output_type": "display_data", "metadata": {},
                "data": {site.WIDGET_MIME: {"model_id": "bar"}, "text/plain": "encrypting:  50%|#####| 2/4"}}
    notebook = {"cells": [{"cell_type": "code", "source": "w", "metadata": {}, "execution_count": 1,
                           "outputs": [widget, progress]}],
                "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {}}},
                "nbformat": 4, "nbformat_minor": 5}
    (executed / "01_key_generation_fixture.ipynb").write_text(json.dumps(notebook))
    missing = site.stage(ROOT, tmp_path / "src", "fixture", executed)
    assert "01_key_generation" not in missing and "03_training" in missing
    page = json.loads((tmp_path / "src" / "docs" / "notebooks" / "01_key_generation.ipynb").read_text())
    outputs = page["cells"][0]["outputs"]
    assert site.WIDGET_MIME not in outputs[1]["data"] and "VBox" in outputs[1]["data"]["text/plain"]
    assert "needs a running kernel" in outputs[0]["data"]["text/markdown"]
    assert len(outputs) == 3 and outputs[2]["data"] == {"text/plain": "encrypting:  50%|#####| 2/4"}  # no note
    assert "widgets" not in page["metadata"]
    placeholder = (tmp_path / "src" / "docs" / "notebooks" / "03_training.md").read_text()
    assert "make 03_training" in placeholder and "03_training_fixture.ipynb" in placeholder
