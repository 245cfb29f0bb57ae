"""Every notebook executes headless with its smoke parameters (WORKBENCH_SMOKE=1), and every code
cell that calls a figure function shows a figure (cells tagged ``export-only`` write their
figures to files instead)."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import workbench.plots

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

EXPORT_ONLY = "export-only"  # the cell tag of cells that write figures to files and show none

# outputs that stay visible in a static export (plotly embeds its HTML version)
VISIBLE = {"image/png", "image/svg+xml", "text/html", "application/vnd.plotly.v1+json"}

# the figure functions: workbench.plots's, the notebook helpers' interactive views, the comparison
FIGURE_FUNCTIONS = {"workbench.plots": workbench.plots.FIGURE_FUNCTIONS,
                    "workbench.notebook": workbench.plots.FIGURE_FUNCTIONS,
                    "workbench.compare": ("comparison_figure",)}

# Run first in the kernel: wraps every figure function so that a call made directly from a cell's
# code is recorded against that cell's execution count.
_TRACK = """
import functools as _ft, importlib as _il, sys as _sys
_wb_called, _wb_cells = set(), {}
def _wb_wrap(mod, name):
    f = getattr(mod, name)
    @_ft.wraps(f)
    def wrapped(*a, **k):
        code = _sys._getframe(1).f_code.co_filename
        if "ipykernel_" in code or code.startswith("<ipython-input"):  # called from a cell
            _wb_called.add(name)
        return f(*a, **k)
    setattr(mod, name, wrapped)
for _m, _names in %r.items():
    _mod = _il.import_module(_m)
    for _n in _names:
        if hasattr(_mod, _n):
            _wb_wrap(_mod, _n)
def _wb_record(result):
    if _wb_called:
        _wb_cells[result.execution_count] = sorted(_wb_called)
        _wb_called.clear()
get_ipython().events.register("post_run_cell", _wb_record)
"""
_REPORT = "import json as _json; print(_json.dumps(_wb_cells))"


def figure_cells_without_figure(nb) -> list[str]:
    """The executed cells that called a figure function (as recorded by the tracking cell) but
    show nothing an exported notebook keeps."""
    report = nb.cells[-1]
    calls = json.loads("".join(o.get("text", "") for o in report.outputs if o.get("output_type") == "stream"))
    missing = []
    for cell in nb.cells[1:-1]:
        names = calls.get(str(cell.get("execution_count")))
        if cell.cell_type != "code" or not names or EXPORT_ONLY in cell.metadata.get("tags", []):
            continue
        shown = {k for o in cell.get("outputs", []) for k in o.get("data", {})}
        if not shown & VISIBLE:
            missing.append(f"cell calling {', '.join(names)} shows no figure:\n{cell.source}")
    return missing


def test_there_are_notebooks():
    assert NOTEBOOKS
    assert "unit_bars" in workbench.plots.FIGURE_FUNCTIONS and "parallel_units" in workbench.plots.FIGURE_FUNCTIONS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SMOKE", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as for a user
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    nb.cells = [nbformat.v4.new_code_cell(_TRACK % (FIGURE_FUNCTIONS,)), *nb.cells, nbformat.v4.new_code_cell(_REPORT)]
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    kinds = {k for c in nb.cells[1:-1] if c.cell_type == "code" for o in c.get("outputs", []) for k in o.get("data", {})}
    assert kinds & VISIBLE, kinds
    missing = figure_cells_without_figure(nb)
    assert not missing, "\n\n".join(missing)
    _keep_figures(nb, path.stem)


def _keep_figures(nb, name: str) -> None:
    """Every PNG the notebook showed, as files under ``$WORKBENCH_ARTIFACTS/notebooks`` (default
    ``test-artifacts/``): what a reader of the executed notebook sees, kept for review."""
    import base64
    import os

    folder = Path(os.environ.get("WORKBENCH_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")
    folder = folder / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{name}-cell*.png"):
        old.unlink()
    for i, c in enumerate(nb.cells[1:-1], start=1):
        for j, o in enumerate(c.get("outputs", [])):
            png = o.get("data", {}).get("image/png")
            if png:
                (folder / f"{name}-cell{i:02d}-{j}.png").write_bytes(base64.b64decode(png))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_documents_the_smoke_switch(path):
    """A reader of any notebook, not only the first, learns how to run it at toy size."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "WORKBENCH_SMOKE=1" in text, f"{path.name}: no markdown cell names the smoke switch"
