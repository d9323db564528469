"""The teaching widgets work in a real browser: JupyterLab in headless Chromium runs notebooks 01
and 02 with ``quick = 1``, a student's clicks change the inputs, and the displayed results follow.

Needs Debian's ``chromium`` (``apt-get install chromium``; browsers fetched by Playwright's own
installer need the internet) and the ``playwright`` package (the ``test`` extra). Skipped, with
the reason, when either is missing. Every process it starts (the JupyterLab server, its kernels,
Chromium) is ended on the way out, failure included. Screenshots land in ``build/browser/``.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("PPDL_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "build" / "browser"
# without the background-networking flags Chromium dials out, and a closed network refuses it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S, RUN_ALL_S, UPDATE_S = 90, 150, 30
NOTEBOOKS = ("01_key_generation", "02_image_encryption")
# the lab's own settings: no news or update checks (no internet) and no toast over the widgets;
# start the notebook's kernel without asking (JupyterLab 4 shows a "Select Kernel" dialog otherwise)
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                {"fetchNews": "false", "checkForUpdates": False},
                "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True}}

pytestmark = pytest.mark.browser


def _require_browser() -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install chromium; .ci/run does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is missing (pip install -e '.[test]')")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _quick_copies(root: Path, work: Path) -> None:
    """Copies of notebooks 01 and 02 with papermill-style injected parameters: quick, and every
    output in the test's own folders (never the committed figures, results or keys)."""
    from papermill.iorw import load_notebook_node  # adds the cell metadata papermill expects
    from papermill.parameterize import parameterize_notebook

    for name in NOTEBOOKS:
        nb = load_notebook_node(str(ROOT / "notebooks" / f"{name}.ipynb"))
        params = {"quick": 1, **{d: str(work / d.removesuffix("_dir"))
                                 for d in ("figures_dir", "results_dir", "keys_dir")}}
        nbformat.write(parameterize_notebook(nb, params), root / f"{name}.ipynb")


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer {url.split('?')[0]} within {SERVER_START_S} s:\n"
                f"{log.read_text()[-3000:]}")


def _descendants(pid: int, itself: bool = False) -> list:
    """The processes below `pid` (and `pid` itself when asked), as psutil handles (PID-reuse safe)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        return ([parent] if itself else []) + parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _stop(processes: list) -> None:
    """Terminate, wait up to 5 s, then kill what is left; processes already gone are skipped."""
    import psutil

    for proc in processes:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def _end_process_tree(process: subprocess.Popen, base: str, token: str) -> None:
    """Shut the server down politely (it stops its kernels), then terminate and kill whatever of
    its process tree is left: kernels run in their own sessions, so the group alone is not enough."""
    family = _descendants(process.pid, itself=True)
    try:
        request = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(request, timeout=5).close()
        process.wait(timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        pass
    _stop(family)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything else left in the server's own group
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with a random token, serving quick copies of 01 and 02."""
    _require_browser()
    work = tmp_path_factory.mktemp("browser")
    root, settings = work / "notebooks", work / "lab-settings"
    root.mkdir()
    _quick_copies(root, work)
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    # everything the server writes (cookie and signing secrets, settings, workspaces) stays in `work`
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"),
           **{f"JUPYTER_{kind}_DIR": str(work / kind.lower()) for kind in ("RUNTIME", "DATA", "CONFIG")}}
    log = work / "jupyterlab.log"
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", *(["--allow-root"] if os.geteuid() == 0 else [])]  # CI is root
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                  start_new_session=True)  # its own process group, ended as one
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/api/status?token={token}", server, log)
        yield {"base": base, "token": token, "log": log, "pid": server.pid}
    finally:
        _end_process_tree(server, base, token)


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    """Headless Debian Chromium driven by Playwright, with a fresh profile; closed on the way out."""
    import psutil
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(UPDATE_S * 1000)
            try:
                yield context
            finally:
                context.close()
    finally:  # Playwright's driver ends Chromium; this catches anything of theirs left behind
        lab_family = {lab["pid"], *(child.pid for child in _descendants(lab["pid"]))}  # the lab ends its own
        _stop([child for child in psutil.Process().children(recursive=True)
               if child.pid not in before | lab_family])


def _shot(target, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _open_and_run_all(browser, lab, name: str, ready: str):
    """Open a notebook, wait for its kernel, Run > Run All Cells, and wait until `ready` (a CSS
    selector in some cell's output) shows; fail with the traceback if a cell raises.  Returns the page
    and the cell whose output holds `ready`."""
    page = browser.new_page()
    # a workspace per notebook: the lab would otherwise restore the other test's notebook beside it
    page.goto(f"{lab['base']}/lab/workspaces/{name}/tree/{name}.ipynb?token={lab['token']}")
    kernel = page.locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName")
    idle = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
    # the indicator says idle before a kernel is attached ("No Kernel"): wait for both
    _wait_for(lambda: kernel.count() == 1 and "ipykernel" in kernel.inner_text() and idle.count() == 1,
              f"{name}: a running, idle kernel", timeout=SERVER_START_S)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    deadline = time.monotonic() + RUN_ALL_S
    # the cell whose output shows `ready` (the playground is not the notebook's last cell)
    target = page.locator(".jp-Notebook .jp-CodeCell").filter(has=page.locator(ready)).last
    while time.monotonic() < deadline:
        if target.count() and target.locator(ready).first.is_visible():
            break
        notebook_text = page.locator(".jp-Notebook").inner_text()
        if "Traceback (most recent call last)" in notebook_text:
            _shot(page, f"{name}_error")
            pytest.fail(f"{name} raised in the browser:\n{notebook_text[-3000:]}")
        time.sleep(0.5)
    else:
        _shot(page, f"{name}_timeout")
        pytest.fail(f"{name}: {ready} did not appear within {RUN_ALL_S} s (log: {lab['log']})")
    target.scroll_into_view_if_needed()
    return page, target


def _int_input(widget, label: str):
    return widget.locator(".widget-text", has=widget.page.locator("label", has_text=re.compile(f"^{label}$"))
                          ).locator("input")


def _row_value(widget, name: str) -> str:
    return widget.locator(f"tr.ppdl-{name} td").nth(1).inner_text().strip()


def _wait_for(condition, what: str, timeout: float = UPDATE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"the display did not update: {what} (after {timeout} s)")
        time.sleep(0.25)


def test_paillier_playground_in_the_browser(browser, lab):
    page, cell = _open_and_run_all(browser, lab, "01_key_generation", "tr.ppdl-decrypted-sum")
    widget = cell.locator(".jp-Cell-outputArea").first
    _shot(widget, "01_playground_initial")
    assert _row_value(widget, "decrypted-sum") == str(42 + 57)
    for label, value in (("m1", 1234), ("m2", 999)):
        _int_input(widget, label).fill(str(value))
        _int_input(widget, label).press("Enter")  # IntText commits on Enter (continuous_update off)
    _wait_for(lambda: _row_value(widget, "decrypted-sum") == str(1234 + 999), "D(c1·c2) = m1 + m2")
    assert _row_value(widget, "expected-sum") == str(1234 + 999)
    _shot(widget, "01_playground_sum")

    warning = widget.locator(".ppdl-r-one-warning")
    assert not warning.is_visible()
    widget.get_by_text("fresh random r for every encryption", exact=True).click()
    _wait_for(lambda: "SAME ciphertext" in _row_value(widget, "c1-again"), "E(m1) again is the same")
    assert warning.is_visible() and "r = 1" in warning.inner_text()
    _shot(widget, "01_playground_r_equals_1")

    widget.get_by_role("button", name="bit size").click()
    _wait_for(lambda: not _int_input(widget, "p").is_visible(), "p and q hidden in bit-size mode")
    widget.locator(".widget-dropdown select").select_option(label="2048")
    _wait_for(lambda: "2048 bits)" in _row_value(widget, "n"), "a 2048-bit n, abbreviated")
    assert len(_row_value(widget, "n")) < 80 and widget.get_by_text("show every digit").is_visible()
    _shot(widget, "01_playground_2048_bits")
    page.close()


def test_image_explorer_in_the_browser(browser, lab):
    page, cell = _open_and_run_all(browser, lab, "02_image_encryption", ".widget-output img")
    widget = cell.locator(".jp-Cell-outputArea").first
    image = widget.locator(".widget-output img").last
    regime = widget.locator(".widget-dropdown", has=page.locator("label", has_text="regime")).locator("select")
    _shot(widget, "02_explorer_table")
    for label in ("randomized (semantically secure)", "r_one (deterministic, NOT secure)"):
        before = image.get_attribute("src")
        regime.select_option(label=label)
        _wait_for(lambda: image.count() >= 1 and image.get_attribute("src") not in (None, before),
                  f"the image re-rendered for {label}")
        _shot(widget, f"02_explorer_{label.split()[0]}")
    assert "n mod 256 =" in widget.inner_text()  # r_one says what its picture shows, and why
    _shot(page, "02_notebook_page")
    page.close()
