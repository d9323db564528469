"""The documentation site in a real browser: every page opened from the file system in headless Debian
Chromium (Playwright), failing on a broken internal link or anchor, a missing image, a request that
leaves the file system (a CDN) or a console error.  Screenshots land in build/site_browser/.

The site is built as ``make docs`` builds it, from the committed pages and results, with one executed
notebook made here (a figure and a widget output: what the notebook pages must show) and placeholder
pages for the others, so the test needs no executed ``make all``.
"""
from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from ppdl_utils.reporting import site

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "site_browser"

pytestmark = pytest.mark.browser


def _figure_png() -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0, 1, 4])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _executed_notebook(folder: Path) -> None:
    """An executed copy of notebook 01 as papermill leaves one: markdown, a figure, a widget with its state."""
    widget = {"output_type": "display_data", "metadata": {},
              "data": {site.WIDGET_MIME: {"model_id": "f00d", "version_major": 2, "version_minor": 0},
                       "text/plain": "VBox(children=(IntText(value=7, description='m1'),))"}}
    figure = {"output_type": "display_data", "metadata": {},
              "data": {"image/png": _figure_png(), "text/plain": "<Figure size 300x200 with 1 Axes>"}}
    cells = [{"cell_type": "markdown", "id": "intro", "metadata": {},
              "source": "# 01 · Key generation\n\nA figure and a widget."},
             {"cell_type": "code", "id": "figure", "metadata": {}, "execution_count": 1, "source": "plot()",
              "outputs": [figure]},
             {"cell_type": "code", "id": "widget", "metadata": {}, "execution_count": 2, "source": "playground()",
              "outputs": [widget]}]
    notebook = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                             "language_info": {"name": "python"},
                             "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {},
                                                                                        "version_major": 2,
                                                                                        "version_minor": 0}}}}
    (folder / "01_key_generation_sitetest.ipynb").write_text(json.dumps(notebook))


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    work = tmp_path_factory.mktemp("site")
    executed = work / "executed"
    executed.mkdir()
    _executed_notebook(executed)
    index = site.build(ROOT, out=work / "html", run="sitetest", staging=work / "src", executed_dir=executed)
    return index.parent


def _ids(path: Path, cache: dict) -> set[str]:
    if path not in cache:
        cache[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
    return cache[path]


def test_every_page_opens_with_its_links_and_images(built_site):
    from test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser  # the widget test's browser settings
    _require_browser()
    from playwright.sync_api import sync_playwright

    pages = sorted(p for p in built_site.rglob("*.html") if "_static" not in p.parts)  # _static: theme templates
    assert len(pages) > 20, pages
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems, ids = [], {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            current = {}
            page.on("console", lambda m: m.type == "error" and problems.append(
                f"{current['name']}: console error: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"{current['name']}: page error: {e}"))

            def only_files(route):
                if route.request.url.startswith("file:") or route.request.url.startswith("data:"):
                    route.continue_()
                else:
                    problems.append(f"{current['name']}: request leaves the file system: {route.request.url}")
                    route.abort()
            page.route("**/*", only_files)
            for path in pages:
                name = str(path.relative_to(built_site))
                current["name"] = name
                page.goto(path.as_uri(), wait_until="load")
                for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                    parts = urlsplit(href)
                    if parts.scheme != "file":
                        continue  # outside links (none are fetched: the route above refuses them)
                    target = Path(unquote(parts.path))
                    if target.is_dir():
                        target = target / "index.html"
                    if not target.is_file():
                        problems.append(f"{name}: broken link {href}")
                    elif parts.fragment and target.suffix == ".html" and parts.fragment not in _ids(target, ids):
                        problems.append(f"{name}: link to a missing anchor {href}")
                for src in page.eval_on_selector_all(
                        "img", "els => els.filter(e => !e.complete || e.naturalWidth === 0).map(e => e.src)"):
                    problems.append(f"{name}: image not shown: {src}")
                page.screenshot(path=str(SCREENSHOTS / (name.replace("/", "__") + ".png")))
            notebook = built_site / "notebooks" / "01_key_generation.html"
            page.goto(notebook.as_uri(), wait_until="load")
            assert page.locator("img").count() >= 1, "the notebook page shows no figure"
            assert "needs a running kernel" in page.inner_text("main")
            page.goto((built_site / "notebooks" / "03_training.html").as_uri(), wait_until="load")
            assert "make 03_training" in page.inner_text("main"), "the placeholder says how to execute it"
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
