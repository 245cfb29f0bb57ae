"""Tables to browse results, as in TensorBoard's and Optuna's views. :class:`RunTable`: every run
folder under a folder, one row each, with filters, a side-by-side comparison of any number of runs
and their curves on one axes. :class:`StrategyTable`: the distinct strategies of an estimates
Dataset, sortable, filterable, linked both ways to the interactive scatter, with export and "send
to the designer". Their figures are in :mod:`workbench.plots.browse`. No torch; widgets are built
only when asked."""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["RunTable", "StrategyTable", "curve"]

ANY = "(any)"
RUN_COLUMNS = ["path", "kind", "dataset", "code", "epochs", "planned", "finished", "best_val_top1", "last_val_top1",
               "test_top1", "seconds", "warnings", "trust", "problem"]
NOISE = "top1 95% (evaluation noise)"


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def curve(history: dict, metric: str = "val_acc") -> tuple[np.ndarray, np.ndarray]:
    """``(epochs, values)`` of ``metric`` in a run's history dict; per-head histories (stream
    fusion) give the ``"fused"`` head (else the first). Empty arrays when the metric is absent."""
    values = history.get(metric) if isinstance(history, dict) else None
    if isinstance(values, dict):
        values = values.get("fused", next(iter(values.values()), None))
    if not isinstance(values, list) or not values:
        return np.zeros(0), np.zeros(0)
    epochs = history.get("epoch")
    if not (isinstance(epochs, list) and len(epochs) == len(values)):
        epochs = list(range(1, len(values) + 1))
    return np.asarray(epochs, float), np.asarray([_number(v) for v in values], float)


def _test_top1(result: dict) -> float:
    test = result.get("test") or {}
    test = test.get("fused", test)  # stream fusion: per head
    return _number(test.get("top1", result.get("test_top1")))


def _code(spec: dict) -> str:
    from .strategy import Strategy

    kind = spec.get("kind")
    if isinstance(spec.get("strategy"), dict):
        return Strategy.from_dict(spec["strategy"]).code
    if kind == "supernet":
        return str((spec.get("supernet_config") or {}).get("backbone", ""))
    if kind == "streams":
        mods = "+".join(spec.get("modalities") or [])
        return f"{spec.get('fusion', '')} ({mods})" if mods else str(spec.get("fusion", ""))
    return str(spec.get("strategy") or spec.get("backbone") or "")


def _run_row(root: Path, folder: Path) -> dict:
    """One row of :class:`RunTable` (never raises: problems go to the ``problem`` column)."""
    from .runs import KIND_NAMES, Run, RunError
    from .studies.trust_record import read_health, trust_short

    row = {**dict.fromkeys(RUN_COLUMNS, math.nan), "path": folder.relative_to(root).as_posix(), "kind": "unreadable",
           "dataset": "", "code": "", "finished": False, "trust": "", "problem": ""}
    run = Run(folder)
    try:
        spec = run.spec()
        if not isinstance(spec, dict):
            raise RunError(f"{folder / 'run.json'} holds a {type(spec).__name__}, not a JSON object")
    except (RunError, OSError, UnicodeDecodeError) as e:
        row["problem"] = str(e)
        return row
    kind, problems = str(spec.get("kind") or "unknown"), []
    row.update(kind=KIND_NAMES.get(kind, kind), dataset=str(spec.get("dataset") or ""), finished=run.is_finished())
    steps = (("run.json", lambda: row.update(code=_code(spec),
                                             planned=_number((spec.get("train_config") or {}).get("epochs")))),
             ("history.json", lambda: _history_numbers(run, row)),
             ("result.json", lambda: row.update(test_top1=_test_top1(run.result())) if row["finished"] else None),
             ("health.json", lambda: row.update(warnings=len(read_health(folder)))),
             ("trust.json", lambda: row.update(trust=trust_short(folder)) if kind == "supernet" else None))
    for name, step in steps:  # each file on its own: a damaged one costs its columns only
        try:
            step()
        except RunError as e:
            problems.append(str(e))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
            problems.append(f"{name}: unexpected content ({type(e).__name__}: {e})")
    # template runs write no result.json: all planned epochs done is finished too
    if kind == "supernet":  # other kinds are finished only with their result.json
        row["finished"] = bool(row["finished"] or row["epochs"] >= row["planned"])
    row["problem"] = "; ".join(problems)
    return row


def _history_numbers(run, row: dict) -> None:
    if not run.file("history.json").is_file():
        return
    history = run.history()
    epochs, val = curve(history, "val_acc")
    per_head = isinstance(history.get("val_acc"), dict)  # stream fusion: epoch 0 is before training
    row["epochs"] = int((epochs > 0).sum()) if per_head else len(history.get("epoch") or [])
    trained = val[epochs > 0] if per_head else val
    if trained.size and np.isfinite(trained).any():
        row["best_val_top1"], row["last_val_top1"] = float(np.nanmax(trained)), float(trained[-1])
    if history.get("seconds"):
        row["seconds"] = float(np.nansum([_number(s) for s in history["seconds"]]))


def _read_history(folder: Path) -> dict:
    try:
        h = json.loads((folder / "history.json").read_text())
        return h if isinstance(h, dict) else {}
    except (OSError, ValueError):
        return {}


class _Filtered:
    """Shared by the tables: a frame, the current filter and sort, an HTML rendering."""

    _frame: pd.DataFrame
    max_html_rows = 100

    def frame(self) -> pd.DataFrame:
        """The whole table (a copy)."""
        return self._frame.copy()

    def html(self, view: pd.DataFrame | None = None) -> str:
        """The table (``view``: the current view by default) as an HTML table."""
        view = self.view() if view is None else view
        n = len(view)
        head = view.head(self.max_html_rows)
        note = f"<small>{len(head)} of {n} rows shown</small>" if n > len(head) else f"<small>{n} rows</small>"
        return note + head.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", escape=True)


class RunTable(_Filtered):
    """Every run folder under ``root`` (``recursive``: at any depth, else ``root`` and its direct
    sub-folders; hidden and ``cache`` folders are skipped), one row each."""

    def __init__(self, root, *, recursive: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"RunTable: {self.root} is not a folder; expected a folder holding run folders (run.json)")
        self.recursive = recursive
        self.controls: dict = {}
        self.figure = None
        self._filters: dict = {}
        self.refresh()

    def refresh(self) -> pd.DataFrame:
        """Read the folders again (runs still training move on)."""
        rows = []
        for here, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "cache")
            if not self.recursive and Path(here) != self.root:
                dirs[:] = []
            if "run.json" in files:
                rows.append(_run_row(self.root, Path(here)))
        self._frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
        return self.frame()

    def filter(self, kind=None, dataset=None, finished=None, text=None) -> pd.DataFrame:
        """The rows of that kind (display name), dataset, finished state and whose path or code
        contains ``text`` (any case); None: no condition. The widget shows the last filter."""
        self._filters = {"kind": kind, "dataset": dataset, "finished": finished, "text": text}
        return self.view()

    def view(self) -> pd.DataFrame:
        """The table under the current filter."""
        df, f = self._frame, self._filters
        keep = np.ones(len(df), bool)
        for col in ("kind", "dataset"):
            if f.get(col) is not None:
                keep &= (df[col] == f[col]).to_numpy()
        if f.get("finished") is not None:
            keep &= (df["finished"] == bool(f["finished"])).to_numpy()
        if f.get("text"):
            t = str(f["text"]).lower()
            keep &= (df["path"].str.lower().str.contains(t, regex=False)
                     | df["code"].str.lower().str.contains(t, regex=False)).to_numpy()
        return df[keep].reset_index(drop=True)

    def _resolve(self, paths) -> list[str]:
        known, out = list(self._frame["path"]), []
        for p in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
            rel = Path(p)
            key = (rel.relative_to(self.root) if rel.is_relative_to(self.root) else rel).as_posix()
            if key not in known:
                raise ValueError(f"no run {str(p)!r} under {self.root}; runs: {', '.join(known[:8])}"
                                 + (" ..." if len(known) > 8 else ""))
            out.append(key)
        if not out:
            raise ValueError("compare needs at least one run path (the table's path column)")
        return out

    def compare(self, paths) -> pd.DataFrame:
        """The final numbers of the runs ``paths`` (as in the path column) side by side, one row
        each in the order given, with their last validation loss."""
        keys = self._resolve(paths)
        df = self._frame.set_index("path").loc[keys].reset_index()
        losses = [curve(_read_history(self.root / k), "val_loss")[1] for k in keys]
        df.insert(df.columns.get_loc("test_top1") + 1, "last_val_loss", [v[-1] if v.size else math.nan for v in losses])
        return df

    def compare_figure(self, paths, metric: str = "val_acc", *, ax=None, width: str = "single"):
        """Every run's ``metric`` (a history key: val_acc, val_loss, train_acc, ...) over epochs on
        one axes (stream fusion: the fused head), the legend above the data. Returns the figure."""
        from .plots.browse import run_curves

        keys = self._resolve(paths)
        curves = {k: curve(_read_history(self.root / k), metric) for k in keys}
        if not any(c[0].size for c in curves.values()):
            raise ValueError(f"none of the runs {', '.join(keys)} has {metric!r} in its history.json; "
                             "expected a history key such as val_acc, val_loss, train_acc, train_loss")
        return run_curves(curves, metric, ax=ax, width=width)

    def selected(self) -> list[str]:
        """The runs selected in the widget (paths), [] before it is built."""
        sel = self.controls.get("runs")
        return list(sel.value) if sel is not None else []

    def widget(self):
        """Filters (kind, dataset, finished, text), the runs to pick, the table, and a compare
        button that draws the picked runs' curves below (metric dropdown beside it)."""
        import ipywidgets as W

        df, states = self._frame, {"any": None, "finished": True, "not finished": False}
        c = self.controls = {
            "kind": W.Dropdown(options=[ANY, *sorted(set(df["kind"]))], description="kind"),
            "dataset": W.Dropdown(options=[ANY, *sorted(d for d in set(df["dataset"]) if d)], description="dataset"),
            "finished": W.Dropdown(options=list(states), description="finished"),
            "text": W.Text(description="search", placeholder="path or strategy"),
            "runs": W.SelectMultiple(options=[], rows=8, description="runs", layout=W.Layout(width="95%")),
            "metric": W.Dropdown(options=["val_acc", "val_loss", "train_acc", "train_loss"], description="metric"),
            "compare": W.Button(description="compare"), "table": W.HTML(), "status": W.HTML(), "output": W.Output()}

        def update(*_):
            view = self.filter(kind=None if c["kind"].value == ANY else c["kind"].value,
                               dataset=None if c["dataset"].value == ANY else c["dataset"].value,
                               finished=states[c["finished"].value], text=c["text"].value or None)
            keep = tuple(p for p in c["runs"].value if p in set(view["path"]))
            c["runs"].options = [(f"{p}  [{k}] {code}", p)
                                 for p, k, code in zip(view["path"], view["kind"], view["code"])]
            c["runs"].value = keep
            c["table"].value = self.html(view)

        def compare(*_):
            import matplotlib.pyplot as plt
            from IPython.display import display

            try:
                self.figure = self.compare_figure(self.selected(), c["metric"].value)
            except ValueError as e:
                c["status"].value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"
                return
            c["status"].value = f"{len(self.selected())} runs compared"
            c["output"].clear_output()
            with c["output"]:
                display(self.figure)
            plt.close(self.figure)

        for name in ("kind", "dataset", "finished", "text"):
            c[name].observe(update, names="value")
        c["compare"].on_click(compare)
        update()
        return W.VBox([W.HBox([c["kind"], c["dataset"], c["finished"], c["text"]]), c["runs"],
                       W.HBox([c["metric"], c["compare"]]), c["status"], c["table"], c["output"]])


class StrategyTable(_Filtered):
    """The distinct strategies of an estimates Dataset (:func:`workbench.analysis.estimates_dataset`),
    one row each (duplicate draws merged, ``drawn`` counts them), indexed by their first row in the
    Dataset. ``designer``: a :class:`~workbench.designer.StrategyDesigner` to send strategies to."""

    NEEDED = ("top1", "gmacs", "code", "key", "source", "units", "strategy_json")

    def __init__(self, estimates, *, designer=None):
        import xarray as xr

        if not isinstance(estimates, xr.Dataset):
            raise ValueError(f"StrategyTable needs an estimates Dataset (workbench.analysis.estimates_dataset), "
                             f"got {type(estimates).__name__}")
        missing = [v for v in self.NEEDED if v not in estimates]
        if missing:
            raise ValueError(f"the estimates Dataset lacks {', '.join(missing)}; expected one made by "
                             "workbench.analysis.estimates_dataset (`workbench template sample`)")
        self.est, self.designer = estimates, designer
        self.controls: dict = {}
        self.scatter_figure = None
        self._filters: dict = {}
        self._sort = ("top1", False)
        self._selected: list[int] = []
        self._syncing = False
        self._frame, self._rep = self._build()

    def _build(self) -> tuple[pd.DataFrame, np.ndarray]:
        from .analysis import pareto_front, unique_strategies
        from .plots.layout import macs_unit

        ds = self.est
        src = [str(s) for s in ds["source"].values]
        rows = []
        for source in dict.fromkeys(src):  # each source in order of appearance
            rows += unique_strategies(ds, source)
        rows.sort()
        idx = np.array([i for i, _ in rows], int)
        keys = [f"{k}|{s}" for k, s in zip(ds["key"].values, src)]
        first = {keys[i]: int(i) for i in idx}
        rep = np.array([first[k] for k in keys], int)  # Dataset row -> the table row of its strategy
        sub = ds.isel(strategy=idx)
        self._factor, self.macs = macs_unit(ds["gmacs"].values)
        df = pd.DataFrame({"row": idx, "code": [str(c) for c in sub["code"].values],
                           "source": [src[i] for i in idx], "name": [str(n) for n in sub["name"].values],
                           "top1": sub["top1"].values.astype(float)}, index=idx)
        if "top1_low" in sub and "top1_high" in sub:
            df[NOISE] = [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(sub["top1_low"].values, sub["top1_high"].values)]
        else:
            df[NOISE] = ""
        df[self.macs] = sub["gmacs"].values.astype(float) * self._factor
        for col in ("params", "log_prob"):
            df[col] = sub[col].values if col in sub else math.nan
        df["drawn"] = [n for _, n in rows]
        df["pareto"] = pareto_front(sub)
        df.index.name = None
        return df, rep

    def sort(self, by: str = "top1", ascending: bool = False) -> pd.DataFrame:
        """The current view sorted by column ``by`` (``"gmacs"`` names the multiply-add column
        whatever its unit); the widget keeps the order."""
        by = self.macs if str(by).lower() in ("gmacs", "mmacs", "kmacs") else by
        if by not in self._frame.columns:
            raise ValueError(f"cannot sort by {by!r}; columns: {', '.join(self._frame.columns)}")
        self._sort = (by, bool(ascending))
        return self.view()

    def filter(self, source=None, min_top1=None, max_gmacs=None, unit_at=None) -> pd.DataFrame:
        """The strategies of that ``source`` ("sampled", "preset"), with top-1 of at least
        ``min_top1``, at most ``max_gmacs`` GMACs, and the unit ``unit_at[layer]`` at each layer
        given; None: no condition. The widget shows the last filter."""
        unit_at = dict(unit_at or {})
        L = self.est.sizes["layer"]
        allowed = self._units()
        for layer, unit in unit_at.items():
            if not isinstance(layer, (int, np.integer)) or not 0 <= layer < L:
                raise ValueError(f"unit_at: layer {layer!r} does not exist; expected a layer number 0..{L - 1}")
            if unit not in allowed:
                raise ValueError(f"unit_at: unit {unit!r} is not a unit of this backbone; units: {', '.join(allowed)}")
        self._filters = {"source": source, "min_top1": min_top1, "max_gmacs": max_gmacs, "unit_at": unit_at}
        return self.view()

    def _units(self) -> list[str]:
        from .strategy import Strategy

        return list(Strategy.from_json(str(self.est["strategy_json"].values[0])).layout.units)

    def view(self) -> pd.DataFrame:
        """The table under the current filter and sort."""
        df, f = self._frame, self._filters
        keep = np.ones(len(df), bool)
        if f.get("source") is not None:
            keep &= (df["source"] == f["source"]).to_numpy()
        if f.get("min_top1") is not None:
            keep &= (df["top1"] >= float(f["min_top1"])).to_numpy()
        if f.get("max_gmacs") is not None:
            keep &= self.est["gmacs"].values[df.index] <= float(f["max_gmacs"])
        units = np.asarray(self.est["units"].values)[df.index]
        for layer, unit in (f.get("unit_at") or {}).items():
            keep &= units[:, int(layer)] == unit
        by, asc = self._sort
        return df[keep].sort_values(by, ascending=asc, kind="stable")

    # ---- selection, linked to the scatter ------------------------------------------------------------
    def selected(self) -> list[int]:
        """The selected strategies (their row in the estimates Dataset)."""
        return list(self._selected)

    def select(self, indices) -> list[int]:
        """Select the strategies of Dataset rows ``indices`` (a duplicate draw selects its table
        row); the widget's list and the scatter's highlighted points follow."""
        n, out = self.est.sizes["strategy"], []
        for i in [indices] if isinstance(indices, (int, np.integer)) else indices:
            if not isinstance(i, (int, np.integer)) or not 0 <= i < n:
                raise ValueError(f"select: {i!r} is not a strategy row; expected row numbers 0..{n - 1}")
            r = int(self._rep[int(i)])
            if r not in out:
                out.append(r)
        self._selected = out
        self._sync()
        return self.selected()

    def on_scatter_selection(self, trace, points, selector=None) -> None:
        """The scatter's ``on_selection`` callback: the points picked on ``trace`` replace that
        trace's part of the selection (its ``customdata`` are Dataset rows)."""
        data = np.asarray(trace.customdata if trace.customdata is not None else [], int).ravel()
        mine = {int(self._rep[i]) for i in data}
        picked = [int(data[j]) for j in points.point_inds]
        self.select([i for i in self._selected if i not in mine] + picked)

    def scatter(self):
        """The interactive scatter (:func:`workbench.plots.interactive.interactive_scatter`),
        linked to the table: selecting points selects rows and selected rows are highlighted.
        A plotly ``FigureWidget`` (a plain ``Figure``, same links, where anywidget is missing)."""
        import plotly.graph_objects as go

        from .plots.interactive import interactive_scatter

        fig = interactive_scatter(self.est)
        with contextlib.suppress(ImportError):  # FigureWidget needs anywidget
            fig = go.FigureWidget(fig)
        fig.update_layout(dragmode="select")
        for trace in fig.data:
            if trace.customdata is not None:
                trace.on_selection(self.on_scatter_selection)
        self.scatter_figure = fig
        self._sync()
        return fig

    def _sync(self) -> None:
        """Show the selection in the widget and on the scatter."""
        if self._syncing:
            return
        self._syncing, sel, rows = True, set(self._selected), self.controls.get("rows")
        try:
            if rows is not None:
                shown = {v for _, v in rows.options}
                rows.value = tuple(i for i in self._selected if i in shown)
            for trace in self.scatter_figure.data if self.scatter_figure is not None else ():
                if trace.customdata is not None:
                    data = np.asarray(trace.customdata, int).ravel()
                    trace.selectedpoints = [j for j, i in enumerate(data) if self._rep[i] in sel] if sel else None
        finally:
            self._syncing = False

    def export(self, path) -> dict:
        """The selected strategies as ``PATH.csv`` and ``PATH.json``
        (:func:`workbench.notebook.export_selection`)."""
        from .notebook import export_selection

        return export_selection(self.est, self.selected(), path)

    def send_to_designer(self):
        """Make the first selected strategy the designer's current design; returns it."""
        from .analysis import strategies_from

        if self.designer is None:
            raise ValueError("no designer to send to: build the table as StrategyTable(estimates, "
                             "designer=StrategyDesigner(...))")
        if not self._selected:
            raise ValueError("nothing selected: select a strategy (table rows or scatter points) first")
        strategy = strategies_from(self.est.isel(strategy=[self._selected[0]]))[0]
        self.designer.set_strategy(strategy)
        return strategy

    def widget(self):
        """Sort and filter controls, the rows to pick (and the table), export and "send to
        designer" buttons, a status line."""
        import ipywidgets as W

        c = self.controls = {
            "sort": W.Dropdown(options=[k for k in self._frame.columns if k not in ("row", NOISE)],
                               value=self._sort[0], description="sort by"),
            "ascending": W.Checkbox(value=self._sort[1], description="ascending"),
            "source": W.Dropdown(options=[ANY, *sorted(set(self._frame["source"]))], description="source"),
            "min_top1": W.Text(description="min top-1", placeholder="any"),
            "max_gmacs": W.Text(description=f"max {self.macs}", placeholder="any"),
            "layer": W.Dropdown(options=[ANY, *range(self.est.sizes["layer"])], description="layer"),
            "unit": W.Dropdown(options=self._units(), description="has unit"),
            "rows": W.SelectMultiple(options=[], rows=10, description="strategies", layout=W.Layout(width="95%")),
            "path": W.Text(value="selection", description="export to"), "export": W.Button(description="export"),
            "send": W.Button(description="send to designer", disabled=self.designer is None),
            "table": W.HTML(), "status": W.HTML()}

        def say(text, error=False):
            c["status"].value = f"<span style='color:{'#b00' if error else '#333'}'>{html.escape(text)}</span>"

        def update(*_):
            try:
                lo, hi = (float(c[k].value) if c[k].value.strip() else None for k in ("min_top1", "max_gmacs"))
            except ValueError:
                return say(f"min top-1 and max {self.macs} take numbers (empty: no limit)", True)
            layer, source = c["layer"].value, c["source"].value
            self.filter(source=None if source == ANY else source, min_top1=lo,
                        max_gmacs=None if hi is None else hi / self._factor,  # typed in the table's unit
                        unit_at=None if layer == ANY else {layer: c["unit"].value})
            view = self.sort(c["sort"].value, c["ascending"].value)
            self._syncing = True  # new options clear the value: not a deselection
            try:
                c["rows"].options = [(f"{code}  top-1 {a:.3f}  {m:.4g} {self.macs}" + (f"  x{n}" if n > 1 else ""),
                                      int(i))
                                     for i, code, a, m, n in zip(view.index, view["code"], view["top1"],
                                                                 view[self.macs], view["drawn"])]
            finally:
                self._syncing = False
            self._sync()
            c["table"].value = self.html(view)
            say(f"{len(view)} of {len(self._frame)} strategies, {len(self._selected)} selected")

        def picked(change):
            if not self._syncing:
                shown = {v for _, v in c["rows"].options}
                self.select([i for i in self._selected if i not in shown] + list(change["new"]))
                say(f"{len(self._selected)} selected")

        def act(what):
            def run(*_):
                try:
                    say(what())
                except (ValueError, OSError) as e:
                    say(str(e), True)
            return run

        for name in ("sort", "ascending", "source", "min_top1", "max_gmacs", "layer", "unit"):
            c[name].observe(update, names="value")
        c["rows"].observe(picked, names="value")
        c["export"].on_click(act(lambda: "wrote " + ", ".join(map(str, self.export(c["path"].value).values()))))
        c["send"].on_click(act(lambda: f"sent {self.send_to_designer().code} to the designer"))
        update()
        return W.VBox([W.HBox([c["sort"], c["ascending"], c["source"]]),
                       W.HBox([c["min_top1"], c["max_gmacs"], c["layer"], c["unit"]]), c["rows"],
                       W.HBox([c["path"], c["export"], c["send"]]), c["status"], c["table"]])
