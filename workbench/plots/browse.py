"""Figures of the browsing views (:mod:`workbench.tables`): several runs' curves on one axes, the
best estimate after n sampled strategies, and one importance bar per layer (Optuna's views)."""

from __future__ import annotations

import warnings

import numpy as np

from .layout import fit_axis_label, fit_ticks, legend_above
from .paper import EXTRA_COLOURS, UNIT_COLOURS, figure_axes, paper_style

__all__ = ["best_so_far_plot", "layer_importance_bars", "run_curves"]

#: colours of curves beyond the units' own
CURVE_COLOURS = [c for u, c in UNIT_COLOURS.items() if u != "skip"] + EXTRA_COLOURS


def run_curves(curves: dict, metric: str = "val_acc", *, ax=None, width: str = "single"):
    """``curves``: ``{run label: (epochs, values)}``, drawn on one axes, the legend above the data.
    Returns the figure."""
    with paper_style():
        fig, ax = figure_axes(ax, width, 0.7)
        for i, (k, (x, y)) in enumerate(curves.items()):
            if len(x):
                ax.plot(x, y, marker="o", markersize=2.5, color=CURVE_COLOURS[i % len(CURVE_COLOURS)], label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_acc", " top-1").replace("_", " "))
        legend_above(ax, fontsize=6)
    return fig


def best_so_far_plot(estimates, *, ax=None, width: str = "single"):
    """Each sampled strategy's estimate (points) and the best so far (steps) against the number
    of strategies sampled, the legend above the axes. Returns the figure."""
    from ..analysis import best_so_far

    df = best_so_far(estimates)
    with paper_style():
        fig, ax = figure_axes(ax, width, 0.65)
        ax.scatter(df["n"], df["top1"], s=6, color="#999999", label="sampled strategy", zorder=1)
        ax.step(df["n"], df["best"], where="post", color=UNIT_COLOURS["S"], label="best so far", zorder=2)
        ax.set_xlabel("strategies sampled")
        ax.set_ylabel("estimated top-1")
        legend_above(ax)
        fit_ticks(ax, "x")
    return fig


def layer_importance_bars(estimates, *, ax=None, width: str = "single", min_count: int = 3):
    """One bar per layer: how far the mean estimate moves with that layer's unit (the range of the
    effects of :func:`workbench.analysis.layer_importance`), most important layer on top; layers
    without two units seen ``min_count`` times get no bar. Returns the figure."""
    from ..analysis import layer_importance

    with warnings.catch_warnings():  # layers where no unit has min_count strategies: NaN, said below
        warnings.simplefilter("ignore", RuntimeWarning)
        imp = layer_importance(estimates, min_count=min_count)["importance"]
    values = np.asarray(imp.values, float)
    if not np.isfinite(values).any():
        raise ValueError(f"no layer has two units chosen by at least {min_count} strategies: sample more strategies "
                         "or lower min_count")
    order = np.argsort(np.nan_to_num(values, nan=-1.0), kind="stable")
    labels = [f"layer {int(imp['layer'].values[i])}" for i in order]
    with paper_style():
        fig, ax = figure_axes(ax, width, 0.25 + 0.07 * len(order))
        ax.barh(range(len(order)), np.nan_to_num(values[order]), color=UNIT_COLOURS["S"], height=0.7)
        ax.set_yticks(range(len(order)), labels)
        ax.set_xlabel("importance (range of mean estimate over units)")
        fit_axis_label(ax, "x")
    return fig
