"""End to end in a real browser: notebook 04 in JupyterLab, the strategy designer widget.

Headless Chromium (Debian's ``chromium`` package) driven by Playwright opens the notebook in a
JupyterLab server started for the test, runs all cells with the smoke sizes (WORKBENCH_SMOKE=1),
changes the unit of one layer through the page and checks that the displayed parameters, GMACs
and estimate follow. A screenshot lands in ``$WORKBENCH_ARTIFACTS`` (default ``test-artifacts/``).

Set-up is done here: Chromium is installed with apt when ``/usr/bin/chromium`` is missing (as
root); Playwright comes with the ``dev`` extras. ``playwright install`` is never needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "04_designer.ipynb"
FIGURES_NOTEBOOK = REPO / "notebooks" / "03_estimates.ipynb"  # matplotlib, plotly and table widgets
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# Generous limits (seconds): the CI machine is small and may be busy.
SERVER_START = 120
PAGE_LOAD = 180
KERNEL_IDLE = 180
RUN_STARTS = 45
WIDGET_APPEARS = 360
UPDATE = 180

STDERR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
ANSI = re.compile(r"\x1b\[[0-9;]*m")
JS_ERRORS = r"""() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const cells = w && w.content && w.content.model && w.content.model.cells;
  if (!cells) return null;
  const errors = [];
  for (let i = 0; i < cells.length; i++) {
    const outputs = cells.get(i).outputs;
    for (let j = 0; outputs && j < outputs.length; j++) {
      const o = outputs.get(j).toJSON();
      if (o.output_type === "error") errors.push(`${o.ename}: ${o.evalue}\n${(o.traceback || []).join("\n")}`);
    }
  }
  return errors;
}"""
IDLE = '.jp-Notebook-ExecutionIndicator[data-status="idle"]'


# ---- set-up -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt (as root) when it is missing."""
    if CHROMIUM.is_file():
        return CHROMIUM
    how = "apt-get update && apt-get install -y --no-install-recommends chromium"
    if os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} is missing and the tests do not run as root, so they cannot install it. "
                    f"Install Debian's chromium package: sudo sh -c '{how}'", pytrace=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for cmd, limit in ((["apt-get", *lock, "update"], 600),
                       (["apt-get", *lock, "install", "-y", "--no-install-recommends", "chromium"], 1200)):
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit)
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.fail(f"installing Chromium failed ({' '.join(cmd)}: {e}). Install it by hand: {how}", pytrace=False)
        if r.returncode != 0:
            pytest.fail(f"installing Chromium failed: `{' '.join(cmd)}` exited with {r.returncode}:\n"
                        f"{(r.stdout + r.stderr)[-3000:]}\nInstall it by hand: {how}", pytrace=False)
    if not CHROMIUM.is_file():
        pytest.fail(f"apt installed the chromium package but {CHROMIUM} is still missing", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright_api():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"the Python package playwright is missing ({e}): pip install -e '.[dev]' "
                    "(no `playwright install` needed, the tests use /usr/bin/chromium)", pytrace=False)
    return sync_playwright


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("WORKBENCH_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A JupyterLab server in its own process group, with its own (empty) user settings."""

    def __init__(self, root: Path, home: Path):
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyterlab.log"
        settings = home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        # no news / update toasts over the page
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = {**os.environ, "WORKBENCH_SMOKE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "PYTHONUNBUFFERED": "1"}
        env.pop("MPLBACKEND", None)  # the kernel's inline backend, as for a user
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}",
               f"--ServerApp.token={self.token}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={root}",
               "--ServerApp.port_retries=0", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.expose_app_in_browser=True"]
        if os.geteuid() == 0:  # CI containers
            cmd.append("--allow-root")
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {self.proc.returncode} at start-up{self.log_tail()}")
            try:
                self.api("/api/status", timeout=5)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(1)
        raise AssertionError(f"JupyterLab did not answer on {self.base} within {SERVER_START} s{self.log_tail()}")

    def kernel_state(self, notebook: str) -> str | None:
        """The execution state of the notebook's kernel, as the server sees it (None: no session)."""
        try:
            sessions = self.api("/api/sessions")
        except (OSError, urllib.error.URLError, ValueError):
            return None
        for s in sessions or []:
            if Path(s.get("path", "")).name == notebook and s.get("kernel"):
                return s["kernel"].get("execution_state")
        return None

    def log_tail(self, n: int = 6000) -> str:
        try:
            self._log.flush()
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            text = f"(no log: {e})"
        return f"\n---- last part of the JupyterLab log ({self.log_path}) ----\n{text[-n:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            # shuts the kernels down too; when it does not answer, the signals below do the job
            with contextlib.suppress(OSError, urllib.error.URLError, subprocess.TimeoutExpired):
                self.api("/api/shutdown", method="POST", timeout=10)
                self.proc.wait(timeout=30)
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:  # the server and what it started (kernels): the group of the process started above
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab server for the designer and the figures (they share the smoke template)."""
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "lab"
    root.mkdir()
    for nb in (NOTEBOOK, FIGURES_NOTEBOOK):
        shutil.copy(nb, root / nb.name)
    server = LabServer(root, home)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# ---- the page ---------------------------------------------------------------------------------

def _texts(page) -> dict[str, str]:
    return {k: (page.locator(f".wb-{k}").first.text_content() or "").strip()
            for k in ("params", "gmacs", "estimate")}


def _run_started(page) -> bool:
    """A cell is queued, running or has run (its prompt shows * or a number)."""
    prompts = page.locator(".jp-Cell .jp-InputPrompt").all_text_contents()
    return any(re.search(r"\[(\*|\d+)\]", p) for p in prompts) or page.locator(".wb-params").count() > 0


def _wait_for(page, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(500)


def _run_all_cells(page) -> str:
    """Run > Run All Cells from the menu bar; the command palette, then the app's command, as
    fallbacks. Returns how the cells were started."""
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})

    def menu():
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).first.click()
        page.locator(".lm-Menu-item:not(.lm-mod-disabled)",
                     has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))).first.click()

    def palette():
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Shift+C")
        search = page.locator(".jp-ModalCommandPalette input, .lm-CommandPalette-input").first
        search.fill("Run All Cells")
        page.locator(".lm-CommandPalette-item", has_text=re.compile(r"^Run All Cells")).first.click()

    def command():
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    tried = []
    for name, start in (("menu Run > Run All Cells", menu), ("command palette", palette),
                        ("command notebook:run-all-cells", command)):
        try:
            start()
            _wait_for(page, lambda: _run_started(page), RUN_STARTS, f"the cells to start ({name})")
            return name
        except Exception as e:  # try the next way, report all if none works
            tried.append(f"{name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            page.keyboard.press("Escape")
    raise AssertionError("could not run the notebook's cells:\n  " + "\n  ".join(tried))


def _cell_errors(page) -> list[str]:
    """Error outputs of the open notebook: from its model (window.jupyterapp), else tracebacks
    in the rendered outputs (JupyterLab renders errors as stderr text)."""
    try:
        errors = page.evaluate(JS_ERRORS)
    except Exception:  # the app's internals changed: read the page instead
        errors = None
    if errors is None:
        errors = [t for t in page.locator(STDERR_OUTPUT).all_text_contents()
                  if "Traceback (most recent call last)" in t]
    return [ANSI.sub("", e) for e in errors]


def _wait_for_widget(page, lab) -> None:
    deadline = time.monotonic() + WIDGET_APPEARS
    finished_since = None
    while page.locator(".wb-params").count() == 0:
        errors = _cell_errors(page)
        if errors:
            raise AssertionError("a cell failed:\n" + errors[0][-4000:])
        running = any("*" in t for t in page.locator(".jp-Cell .jp-InputPrompt").all_text_contents())
        if running or lab.kernel_state(NOTEBOOK.name) != "idle":
            finished_since = None
        elif finished_since is None:
            finished_since = time.monotonic()
        elif time.monotonic() - finished_since > 15:
            raise AssertionError("the cells finished but the designer widget (.wb-params) is not on the page")
        if time.monotonic() > deadline:
            raise AssertionError(f"the designer widget did not appear within {WIDGET_APPEARS} s")
        page.wait_for_timeout(1000)
    page.locator(".wb-gmacs").first.wait_for(state="attached", timeout=30_000)
    page.locator(".wb-estimate").first.wait_for(state="attached", timeout=30_000)


def _layer_select(page, layer: int):
    box = page.locator(".widget-dropdown", has=page.locator("label", has_text=re.compile(rf"^\s*layer {layer}\s*$")))
    return box.locator("select").first


def _as_number(text: str) -> float:
    return float(text.replace(",", ""))


def test_designer_in_jupyterlab(chromium, playwright_api, artifacts, lab):
    t0 = time.monotonic()
    url = f"{lab.base}/lab/tree/{NOTEBOOK.name}?token={lab.token}"
    log = []
    (artifacts / "designer-failure.png").unlink(missing_ok=True)  # from an earlier run

    def step(msg):
        log.append(f"{time.monotonic() - t0:6.1f} s  {msg}")
        print(log[-1], flush=True)

    with playwright_api() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, timeout=120_000)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        console = []
        page.on("console", lambda m: m.type in ("error", "warning") and console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=PAGE_LOAD * 1000)
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(state="visible", timeout=PAGE_LOAD * 1000)
            step("notebook open")
            page.locator(IDLE).first.wait_for(state="attached", timeout=KERNEL_IDLE * 1000)
            _wait_for(page, lambda: lab.kernel_state(NOTEBOOK.name) == "idle", KERNEL_IDLE,
                      "the notebook's kernel to be idle (server side)")
            page.locator(IDLE).first.wait_for(state="attached", timeout=KERNEL_IDLE * 1000)
            step("kernel idle")

            how = _run_all_cells(page)
            step(f"cells started ({how})")
            _wait_for_widget(page, lab)
            step("designer widget shown")

            before = _texts(page)
            step(f"before: {before}")
            for k, v in before.items():
                assert re.fullmatch(r"[\d,.eE+-]+", v), f"displayed {k} is not a number: {v!r}"

            select = _layer_select(page, 0)
            select.wait_for(state="attached", timeout=30_000)
            select.scroll_into_view_if_needed()
            current = select.input_value()
            options = [o.strip() for o in select.locator("option").all_text_contents()]
            choices = [u for u in ("S+ST", "S", "ST") if u in options and u != current]
            assert choices, f"layer 0: no other unit to choose (current {current!r}, options {options})"
            new = choices[0]
            step(f"layer 0: {current} -> {new} (options {options})")
            select.select_option(label=new)

            def updated():
                now = _texts(page)
                return now["params"] != before["params"] and now["gmacs"] != before["gmacs"]

            _wait_for(page, updated, UPDATE, "the displayed params and GMACs to change "
                      f"after layer 0 {current} -> {new} (before: {before}, now: {_texts(page)})")
            page.wait_for_timeout(500)  # the info line is written in one go; let it settle
            after = _texts(page)
            step(f"after: {after}")

            assert select.input_value() == new
            assert after["params"] != before["params"], (before, after)
            assert after["gmacs"] != before["gmacs"], (before, after)
            assert any(after[k] != before[k] for k in before), (before, after)
            assert 0.0 <= _as_number(after["estimate"]) <= 1.0, f"estimate is not in [0, 1]: {after['estimate']!r}"
            assert _as_number(after["params"]) > 0 and _as_number(after["gmacs"]) > 0, after

            # the estimate is recomputed for every design: on the smoke template (near chance, a
            # few validation clips) one layer may leave the top-1 equal, so go on changing layers
            # through the page until the displayed estimate moves
            moved = after["estimate"] != before["estimate"]
            for layer in range(1, 8):
                if moved:
                    break
                sel = _layer_select(page, layer)
                sel.scroll_into_view_if_needed()
                cur = sel.input_value()
                new_unit = "skip" if cur != "skip" else "S"
                prev = _texts(page)
                sel.select_option(label=new_unit)
                _wait_for(page, lambda prev=prev: _texts(page)["params"] != prev["params"], UPDATE,
                          f"the displayed params to change after layer {layer} {cur} -> {new_unit}")
                page.wait_for_timeout(300)
                now = _texts(page)
                step(f"layer {layer}: {cur} -> {new_unit}: {now}")
                moved = now["estimate"] != before["estimate"]
            assert moved, f"the displayed estimate never changed: {before} -> {_texts(page)}"

            # the stream fusion choice: the two-stream network's cost appears beside the RGB one's
            streams = page.locator(".widget-dropdown", has=page.locator("label", has_text=re.compile(r"^\s*streams\s*$")))
            streams = streams.locator("select").first
            streams.scroll_into_view_if_needed()
            streams.select_option(label="pyramid")
            _wait_for(page, lambda: page.locator(".wb-streams-params").count() > 0, UPDATE,
                      "the two-stream params to appear after choosing the pyramid fusion")
            two = _as_number(page.locator(".wb-streams-params").first.text_content() or "0")
            step(f"streams: pyramid -> two-stream params {two:,.0f}")
            assert two > 2 * _as_number(_texts(page)["params"])

            page.locator(".widget-dropdown select").first.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            shot = artifacts / "designer.png"
            shot.unlink(missing_ok=True)
            page.screenshot(path=str(shot))
            assert shot.is_file() and shot.stat().st_size > 0, f"no screenshot at {shot}"
            step(f"screenshot: {shot}")
        except Exception as e:
            with contextlib.suppress(Exception):  # the report below matters more than the picture
                page.screenshot(path=str(artifacts / "designer-failure.png"))
            msg = (f"{e}\n---- steps ----\n" + "\n".join(log)
                   + "\n---- browser console (last 20) ----\n" + "\n".join(console[-20:])
                   + f"\n(failure screenshot: {artifacts / 'designer-failure.png'})" + lab.log_tail())
            raise AssertionError(msg) from e
        finally:
            browser.close()


FIGURE_OUTPUTS = {  # what notebook 03 shows, as the page renders it
    "matplotlib images": '.jp-OutputArea-output img[src^="data:image/png"]',
    "plotly figures": ".jp-OutputArea-output.js-plotly-plot, .jp-OutputArea-output .js-plotly-plot",
    "strategy table widget": ".jp-OutputArea-output .widget-select-multiple",
}


def test_figures_render_in_jupyterlab(chromium, playwright_api, artifacts, lab):
    """Notebook 03 run from the menu in the same server: its matplotlib figures arrive as images,
    its plotly views draw, the strategy table's widget shows, and no cell fails."""
    # ?reset: a fresh workspace, so the designer notebook opened before is not restored beside it
    url = f"{lab.base}/lab/tree/{FIGURES_NOTEBOOK.name}?reset&token={lab.token}"
    shot = artifacts / "notebook-03.png"
    shot.unlink(missing_ok=True)
    with playwright_api() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, timeout=120_000)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=PAGE_LOAD * 1000)
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(state="visible", timeout=PAGE_LOAD * 1000)
            page.locator(IDLE).first.wait_for(state="attached", timeout=KERNEL_IDLE * 1000)
            _wait_for(page, lambda: lab.kernel_state(FIGURES_NOTEBOOK.name) == "idle", KERNEL_IDLE,
                      "the notebook's kernel to be idle (server side)")
            _run_all_cells(page)
            deadline = time.monotonic() + WIDGET_APPEARS
            quiet_since = None
            while True:  # until every cell has run: no prompt shows "*" and the kernel stays idle
                errors = _cell_errors(page)
                assert not errors, "a cell failed:\n" + errors[0][-4000:]
                running = any("*" in t for t in page.locator(".jp-Cell .jp-InputPrompt").all_text_contents())
                if running or lab.kernel_state(FIGURES_NOTEBOOK.name) != "idle":
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > 10:
                    break
                assert time.monotonic() < deadline, f"notebook 03 did not finish within {WIDGET_APPEARS} s"
                page.wait_for_timeout(1000)
            counts = {k: page.locator(sel).count() for k, sel in FIGURE_OUTPUTS.items()}
            mimes = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output')]"
                                  ".map(e => (e.getAttribute('data-mime-type') || '?') + ':' + e.className.slice(0, 80))")
            assert counts["matplotlib images"] >= 3 and counts["plotly figures"] >= 2, (counts, mimes)
            assert counts["strategy table widget"] >= 1, counts
            first = page.locator(FIGURE_OUTPUTS["plotly figures"]).first
            first.scroll_into_view_if_needed()
            assert first.bounding_box()["width"] > 200  # drawn, not an empty placeholder
            page.screenshot(path=str(shot))
            assert shot.is_file() and shot.stat().st_size > 0
        finally:
            browser.close()
